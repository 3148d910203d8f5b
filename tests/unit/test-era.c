/* era: release version ordering, the era of a version on every boundary of the table, and
 * the table's own consistency (contiguous ranges, routes that say what they are). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "era.h"
#include "util.h"

static int sign(int v)
{
    return (v > 0) - (v < 0);
}

static void version_cmp_orders_releases_numerically(void **state)
{
    (void)state;
    static const struct {
        const char *a, *b;
        int want;
    } cases[] = {
        {"0.5.7", "0.5.7", 0},
        {"v0.5.7", "0.5.7", 0},
        {"0.5.7", "v0.5.7", 0},
        {"0.5.10", "0.5.9", 1},
        {"0.12.3", "0.5.8", 1},
        {"1.0", "1.0.0", 0},
        {"0.1.31", "0.1.32", -1},
        {"1.0.0", "0.99.99", 1},
        {"0.30.0-rc31", "0.30.0-rc32", -1},
        {"0.30.0-rc9", "0.30.0-rc10", -1},
        {"0.30.0-rc32", "0.30.0", -1}, /* a pre-release sorts before its release */
        {"0.30.0", "0.30.0-rc32", 1},
        {"0.30.0-rc32", "0.29.9", 1},  /* but after the previous release */
        {"0.12.3", "0.12.4-rc1", -1},
        {"v0.30.0-rc1", "0.30.0-rc1", 0},
    };
    for (size_t i = 0; i < VP_ARRAY_SIZE(cases); i++) {
        int got = sign(vp_version_cmp(cases[i].a, cases[i].b));
        int back = sign(vp_version_cmp(cases[i].b, cases[i].a));
        if (got != cases[i].want)
            print_message("cmp(%s, %s) = %d, want %d\n", cases[i].a, cases[i].b, got,
                          cases[i].want);
        assert_int_equal(got, cases[i].want);
        assert_int_equal(back, -cases[i].want); /* antisymmetric */
    }
}

static void era_from_version_on_every_boundary(void **state)
{
    (void)state;
    static const struct {
        const char *v;
        unsigned want;
    } cases[] = {
        {"0.1.19", 0},
        {"0.1.20", 1u << VP_ERA_A0},
        {"0.1.31", 1u << VP_ERA_A0},
        {"0.1.32", 1u << VP_ERA_A},
        {"0.3.14", 1u << VP_ERA_A},
        {"0.5.1", 1u << VP_ERA_A},
        {"0.5.2", 1u << VP_ERA_B},
        {"0.5.7", 1u << VP_ERA_B},
        {"v0.5.7", 1u << VP_ERA_B},
        {"0.5.8", 1u << VP_ERA_C},
        {"0.5.8-rc1", 1u << VP_ERA_C}, /* the first pre-release counts as the release */
        {"0.12.3", 1u << VP_ERA_C},
        {"0.12.4", 1u << VP_ERA_D},
        {"0.12.4-rc0", 1u << VP_ERA_D},
        {"0.24.0", 1u << VP_ERA_D},
        {"0.30.0-rc31", 1u << VP_ERA_D}, /* E began at a pre-release */
        {"0.30.0-rc32", 1u << VP_ERA_E},
        {"0.30.0", 1u << VP_ERA_E},
        {"0.30.1", 1u << VP_ERA_E},
        {"1.2.3", 1u << VP_ERA_E},
        {"0.0.1", 0},
        {NULL, 0},
        {"", 0},
        {"(devel)", 0},
        {"devel", 0},
        {"v", 0},
    };
    for (size_t i = 0; i < VP_ARRAY_SIZE(cases); i++) {
        unsigned got = vp_era_from_version(cases[i].v);
        if (got != cases[i].want)
            print_message("%s: got %#x, want %#x\n", cases[i].v ? cases[i].v : "NULL", got,
                          cases[i].want);
        assert_int_equal(got, cases[i].want);
    }
}

static void era_ranges_are_contiguous_and_ordered(void **state)
{
    (void)state;
    for (int i = 0; i < VP_ERA_COUNT; i++) {
        const struct vp_era_spec *e = vp_era_get(i);
        assert_non_null(e);
        assert_int_equal(e->era, i);
        /* Each era's own first and last release map back to it. */
        assert_int_equal(vp_era_from_version(e->first), 1u << i);
        if (e->last)
            assert_int_equal(vp_era_from_version(e->last), 1u << i);
        else
            assert_int_equal(i, VP_ERA_COUNT - 1); /* only the newest is open-ended */
        if (i > 0) {
            const struct vp_era_spec *prev = vp_era_get(i - 1);
            assert_true(vp_version_cmp(prev->last, e->first) < 0);
        }
    }
    assert_null(vp_era_get(VP_ERA_COUNT));
}

static void era_names_parse_back(void **state)
{
    (void)state;
    static const char *const names[VP_ERA_COUNT] = {"A0", "A", "B", "C", "D", "E"};
    for (int i = 0; i < VP_ERA_COUNT; i++) {
        assert_string_equal(vp_era_name(i), names[i]);
        assert_int_equal(vp_era_parse(names[i]), i);
    }
    assert_int_equal(vp_era_parse("a0"), VP_ERA_A0);
    assert_int_equal(vp_era_parse("e"), VP_ERA_E);
    assert_int_equal(vp_era_parse("F"), -1);
    assert_int_equal(vp_era_parse(""), -1);
    assert_int_equal(vp_era_parse("A01"), -1);
    assert_string_equal(vp_era_name(VP_ERA_COUNT), "unknown");
    assert_int_equal(VP_ERA_ALL, (1u << VP_ERA_COUNT) - 1);
}

static void every_process_names_an_executable_and_explained_routes(void **state)
{
    (void)state;
    for (int i = 0; i < VP_ERA_COUNT; i++) {
        const struct vp_era_spec *e = vp_era_get(i);
        assert_string_equal(e->procs[0].role, "serve");
        assert_string_equal(e->procs[0].exe, "bin/ollama");
        for (size_t p = 0; p < VP_MAX_PROCS && e->procs[p].role; p++) {
            const struct vp_proc_spec *ps = &e->procs[p];
            assert_non_null(ps->exe);
            for (size_t r = 0; r < VP_MAX_ROUTES && ps->routes[r].target; r++) {
                assert_non_null(ps->routes[r].note);
                if (ps->routes[r].kind == VP_ROUTE_DLOPEN_ABS)
                    assert_true(ps->routes[r].target[0] == '/');
            }
        }
    }
    /* The facts the planner relies on. */
    assert_true(vp_era_get(VP_ERA_A)->glob_lib_ollama_first);
    assert_true(vp_era_get(VP_ERA_C)->glob_lib_ollama_first);
    assert_false(vp_era_get(VP_ERA_D)->glob_lib_ollama_first);
    assert_true(vp_era_get(VP_ERA_A)->procs[1].extracted);
    const struct vp_proc_spec *d_runner = &vp_era_get(VP_ERA_D)->procs[1];
    bool wsl = false;
    for (size_t r = 0; r < VP_MAX_ROUTES && d_runner->routes[r].target; r++)
        wsl |= d_runner->routes[r].kind == VP_ROUTE_DLOPEN_ABS && d_runner->routes[r].nvml &&
               strcmp(d_runner->routes[r].target, "/usr/lib/wsl/lib/libnvidia-ml.so.1") == 0;
    assert_true(wsl);
    assert_string_equal(vp_era_get(VP_ERA_E)->procs[2].exe, "lib/ollama/llama-server");
    assert_string_equal(vp_route_kind_name(VP_ROUTE_NEEDED), "needed");
    assert_string_equal(vp_route_kind_name(VP_ROUTE_DLOPEN_ABS), "dlopen-absolute");
    assert_string_equal(vp_route_kind_name(VP_ROUTE_EXTRACTED), "extracted");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(version_cmp_orders_releases_numerically),
        cmocka_unit_test(era_from_version_on_every_boundary),
        cmocka_unit_test(era_ranges_are_contiguous_and_ordered),
        cmocka_unit_test(era_names_parse_back),
        cmocka_unit_test(every_process_names_an_executable_and_explained_routes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
