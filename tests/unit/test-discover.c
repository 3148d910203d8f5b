/* discover: ExecStart= of ollama.service and its drop-ins (name order, resets, masking,
 * our launcher unwrapped), PATH, /usr/local, /usr and /opt, duplicates, --prefix, and the
 * identification of every fixture tree (release from the build info, else layout and the
 * files' fingerprints). Fake roots are mkdtemp directories; identification reads the
 * fixture trees in place, with the fixtures dir as the root. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "discover.h"
#include "testutil.h"

static const char *fixtures(void)
{
    const char *fx = getenv("VGPU_TEST_FIXTURES");
    char *probe = fx ? vp_path_join(fx, "trees/e/bin/ollama") : NULL;
    bool built = probe && access(probe, F_OK) == 0;
    free(probe);
    if (!built)
        skip();
    return fx;
}

/* Copies a fixture file into the root (fixtures() skips the test; a missing one fails it). */
static void put_fixture(const char *root, const char *rel, const char *fixture_rel)
{
    fixtures();
    tu_put_fixture(root, rel, fixture_rel);
}

#define UNIT "etc/systemd/system/ollama.service"
#define DROPINS "etc/systemd/system/ollama.service.d/"

static void exec_start_is_read_from_the_service_section(void **state)
{
    const char *root = *state;
    tu_put(root, UNIT,
           "[Unit]\nDescription=x\n\n[Service]\nExecStart=/usr/local/bin/ollama serve\n"
           "[Install]\nWantedBy=default.target\nExecStart=/not/this\n");
    char *unit = NULL;
    _cleanup_(freep) char *bin = vp_service_exec_binary(root, &unit);
    assert_non_null(bin);
    assert_string_equal(bin, "/usr/local/bin/ollama");
    assert_string_equal(unit, "/" UNIT);
    free(unit);
}

static void unit_in_etc_masks_the_packaged_one(void **state)
{
    const char *root = *state;
    tu_put(root, "lib/systemd/system/ollama.service",
           "[Service]\nExecStart=/usr/bin/ollama serve\n");
    tu_put(root, "usr/lib/systemd/system/ollama.service", "[Service]\nExecStart=/x/bin/ollama\n");
    char *unit = NULL;
    char *bin = vp_service_exec_binary(root, &unit);
    assert_string_equal(bin, "/usr/bin/ollama");
    assert_string_equal(unit, "/lib/systemd/system/ollama.service");
    free(bin);
    free(unit);
    tu_put(root, UNIT, "[Service]\nExecStart=/opt/ollama/bin/ollama serve\n");
    bin = vp_service_exec_binary(root, NULL);
    assert_string_equal(bin, "/opt/ollama/bin/ollama");
    free(bin);
}

static void drop_ins_apply_in_name_order_and_an_empty_exec_start_resets(void **state)
{
    const char *root = *state;
    tu_put(root, "lib/systemd/system/ollama.service",
           "[Service]\nExecStart=/usr/bin/ollama serve\n");
    /* Created out of order, in two directories; systemd sorts them by file name. */
    tu_put(root, DROPINS "20-b.conf", "[Service]\nExecStart=\nExecStart=/b/bin/ollama serve\n");
    tu_put(root, DROPINS "10-a.conf", "[Service]\nExecStart=\nExecStart=/a/bin/ollama serve\n");
    tu_put(root, "run/systemd/system/ollama.service.d/15-c.conf",
           "[Service]\nExecStart=\nExecStart=/c/bin/ollama serve\n");
    /* Same name in a later directory: masked by the /etc one, which sets no ExecStart. */
    tu_put(root, DROPINS "30-z.conf", "[Service]\nEnvironment=OLLAMA_DEBUG=1\n");
    tu_put(root, "lib/systemd/system/ollama.service.d/30-z.conf",
           "[Service]\nExecStart=\nExecStart=/z/bin/ollama serve\n");
    tu_put(root, DROPINS "40-not-a-drop-in.txt", "[Service]\nExecStart=\nExecStart=/t\n");
    char *unit = NULL;
    char *bin = vp_service_exec_binary(root, &unit);
    assert_non_null(bin);
    assert_string_equal(bin, "/b/bin/ollama");
    assert_string_equal(unit, "/" DROPINS "20-b.conf");
    free(bin);
    free(unit);
    /* A last drop-in with only the reset: no ExecStart at all. */
    tu_put(root, DROPINS "99-reset.conf", "[Service]\nExecStart=\n");
    unit = (char *)0x1;
    assert_null(vp_service_exec_binary(root, &unit));
    assert_ptr_equal(unit, (char *)0x1);
}

static void no_unit_means_no_service_binary(void **state)
{
    const char *root = *state;
    assert_null(vp_service_exec_binary(root, NULL));
    /* Drop-ins alone do not make a unit. */
    tu_put(root, DROPINS "10-a.conf", "[Service]\nExecStart=\nExecStart=/a/bin/ollama serve\n");
    assert_null(vp_service_exec_binary(root, NULL));
}

static void launcher_and_systemd_prefixes_are_unwrapped(void **state)
{
    const char *root = *state;
    static const struct {
        const char *exec, *want;
    } cases[] = {
        {"/usr/lib/vgpu/vgpu-launch --strict -- /usr/local/bin/ollama serve",
         "/usr/local/bin/ollama"},
        {"vgpu-launch -- /x/bin/ollama", "/x/bin/ollama"},
        {"-/usr/bin/ollama serve", "/usr/bin/ollama"},
        {"+!/usr/bin/ollama serve", "/usr/bin/ollama"},
        {"@/usr/bin/ollama ollama serve", "/usr/bin/ollama"},
        {"\"/opt/o/bin/ollama\" serve", "/opt/o/bin/ollama"},
        {"   /usr/bin/ollama", "/usr/bin/ollama"},
    };
    for (size_t i = 0; i < VP_ARRAY_SIZE(cases); i++) {
        _cleanup_(freep) char *text = vp_xasprintf("[Service]\nExecStart=%s\n", cases[i].exec);
        tu_put(root, UNIT, text);
        _cleanup_(freep) char *bin = vp_service_exec_binary(root, NULL);
        if (!bin || strcmp(bin, cases[i].want) != 0)
            print_message("ExecStart=%s gave %s\n", cases[i].exec, bin ? bin : "NULL");
        assert_non_null(bin);
        assert_string_equal(bin, cases[i].want);
    }
}

static const struct vp_install *by_prefix(const struct vp_discovery *d, const char *prefix)
{
    for (size_t i = 0; i < d->n; i++)
        if (strcmp(d->installs[i].prefix, prefix) == 0)
            return &d->installs[i];
    return NULL;
}

static void service_wins_and_the_other_installs_are_noted(void **state)
{
    const char *root = *state;
    put_fixture(root, "usr/local/bin/ollama", "trees/c/bin/ollama");
    put_fixture(root, "usr/bin/ollama", "trees/b/bin/ollama"); /* the stale-copy trap */
    put_fixture(root, "opt/ollama/bin/ollama", "trees/e/bin/ollama");
    tu_put(root, UNIT, "[Service]\nExecStart=/opt/ollama/bin/ollama serve\n");
    struct vp_discovery d;
    assert_int_equal(vp_discover(root, NULL, NULL, &d), 0);
    assert_int_equal(d.n, 3);
    const struct vp_install *c = &d.installs[d.chosen];
    assert_string_equal(c->prefix, "/opt/ollama");
    assert_string_equal(c->binary, "/opt/ollama/bin/ollama");
    assert_int_equal(c->found_by, VP_FOUND_SERVICE | VP_FOUND_SCAN);
    assert_string_equal(c->unit, "/" UNIT);
    const struct vp_install *local = by_prefix(&d, "/usr/local"), *usr = by_prefix(&d, "/usr");
    assert_non_null(local);
    assert_non_null(usr);
    assert_int_equal(local->found_by, VP_FOUND_PATH | VP_FOUND_SCAN);
    assert_int_equal(usr->found_by, VP_FOUND_PATH | VP_FOUND_SCAN);
    assert_null(local->unit);
    assert_int_equal(d.notes.n, 2);
    assert_true(tu_strv_mentions(&d.notes, "another Ollama is installed at /usr (found by PATH)"));
    assert_true(
        tu_strv_mentions(&d.notes, "another Ollama is installed at /usr/local (found by PATH)"));
    assert_true(tu_strv_mentions(&d.notes, "acting on /opt/ollama (found by ollama.service)"));
    vp_discovery_release(&d);
}

static void without_a_service_the_first_on_path_wins(void **state)
{
    const char *root = *state;
    put_fixture(root, "usr/bin/ollama", "trees/b/bin/ollama");
    put_fixture(root, "usr/local/bin/ollama", "trees/c/bin/ollama");
    put_fixture(root, "opt/x/bin/ollama", "trees/d/bin/ollama");
    struct vp_discovery d;
    assert_int_equal(vp_discover(root, NULL, NULL, &d), 0); /* /usr/local/bin first */
    assert_string_equal(d.installs[d.chosen].prefix, "/usr/local");
    assert_int_equal(by_prefix(&d, "/opt/x")->found_by, VP_FOUND_SCAN);
    vp_discovery_release(&d);
    assert_int_equal(vp_discover(root, NULL, "/usr/bin:/usr/local/bin", &d), 0);
    assert_string_equal(d.installs[d.chosen].prefix, "/usr");
    vp_discovery_release(&d);
    assert_int_equal(vp_discover(root, NULL, "/nowhere", &d), 0); /* scan: /usr/local first */
    assert_string_equal(d.installs[d.chosen].prefix, "/usr/local");
    assert_int_equal(d.installs[d.chosen].found_by, VP_FOUND_SCAN);
    vp_discovery_release(&d);
}

static void links_to_one_binary_are_one_install(void **state)
{
    const char *root = *state;
    put_fixture(root, "opt/ollama-0.5/bin/ollama", "trees/c/bin/ollama");
    tu_lnk(root, "usr/local/bin/ollama", "/opt/ollama-0.5/bin/ollama");
    tu_lnk(root, "custom/bin/ollama", "../../opt/ollama-0.5/bin/ollama");
    tu_lnk(root, "usr/bin/ollama", "/nowhere/ollama");              /* dangling: no install */
    _cleanup_(freep) char *dir = vp_path_join(root, "sbin/ollama"); /* a directory */
    assert_int_equal(vp_mkdir_p(dir, 0755), 0);
    struct vp_discovery d;
    assert_int_equal(vp_discover(root, NULL, "/custom/bin:/sbin:/usr/local/bin", &d), 0);
    assert_int_equal(d.n, 1);
    const struct vp_install *in = &d.installs[0];
    assert_int_equal(d.chosen, 0);
    assert_string_equal(in->prefix, "/opt/ollama-0.5");
    assert_string_equal(in->binary, "/opt/ollama-0.5/bin/ollama");
    assert_int_equal(in->found_by, VP_FOUND_PATH | VP_FOUND_SCAN);
    assert_int_equal(d.notes.n, 0);
    vp_discovery_release(&d);
}

static void prefix_wins_and_a_missing_one_is_an_error(void **state)
{
    const char *root = *state;
    put_fixture(root, "usr/local/bin/ollama", "trees/c/bin/ollama");
    put_fixture(root, "srv/ollama/bin/ollama", "trees/e/bin/ollama");
    tu_put(root, UNIT, "[Service]\nExecStart=/usr/local/bin/ollama serve\n");
    struct vp_discovery d;
    assert_int_equal(vp_discover(root, "/srv/ollama", NULL, &d), 0);
    const struct vp_install *c = &d.installs[d.chosen];
    assert_string_equal(c->prefix, "/srv/ollama");
    assert_int_equal(c->found_by, VP_FOUND_PREFIX);
    assert_true(tu_strv_mentions(&d.notes, "/usr/local (found by ollama.service)"));
    assert_true(tu_strv_mentions(&d.notes, "acting on /srv/ollama (found by --prefix)"));
    vp_discovery_release(&d);

    d.n = 77;
    vp_clear_error();
    assert_int_equal(vp_discover(root, "/srv/none", NULL, &d), -ENOENT);
    assert_non_null(strstr(vp_last_error(), "--prefix /srv/none"));
    assert_int_equal(d.n, 77); /* not written */
}

static void nothing_installed_is_enoent(void **state)
{
    const char *root = *state;
    tu_put(root, UNIT, "[Service]\nExecStart=/usr/local/bin/ollama serve\n"); /* not there */
    struct vp_discovery d = {.n = 77};
    vp_clear_error();
    assert_int_equal(vp_discover(root, NULL, NULL, &d), -ENOENT);
    assert_non_null(strstr(vp_last_error(), "pass --prefix"));
    assert_int_equal(d.n, 77);
}

static void every_fixture_tree_is_identified(void **state)
{
    (void)state;
    const char *fx = fixtures();
    static const struct {
        const char *tree, *version;
        unsigned eras;
        bool lib, runners, cuda, server;
        const char *reason;
    } cases[] = {
        {"a0", "0.1.31", 1u << VP_ERA_A0, false, false, false, false, "the layout agrees"},
        {"a", "0.3.14", 1u << VP_ERA_A, true, false, false, false, "the layout agrees"},
        {"b", "0.5.7", 1u << VP_ERA_B, true, true, false, false, "the layout agrees"},
        {"c", "0.12.3", 1u << VP_ERA_C, true, false, true, false, "the layout agrees"},
        {"d", "0.24.0", 1u << VP_ERA_D, true, false, true, false, "the layout agrees"},
        {"e", "0.30.1", 1u << VP_ERA_E, true, false, true, true, "the layout agrees"},
        {"c-trim", NULL, 1u << VP_ERA_C, true, false, true, false, "Go discovery globs"},
        {"d-trim", NULL, 1u << VP_ERA_D, true, false, true, false, "WSL path"},
        {"e-go", NULL, 1u << VP_ERA_E, true, false, true, true, "(lib/ollama/llama-server)"},
    };
    for (size_t i = 0; i < VP_ARRAY_SIZE(cases); i++) {
        _cleanup_(freep) char *prefix = vp_xasprintf("/trees/%s", cases[i].tree);
        _cleanup_(freep) char *bin = vp_xasprintf("%s/bin/ollama", prefix);
        _cleanup_(freep) char *ondisk = vp_path_join(fx, bin);
        if (access(ondisk, F_OK) != 0) {
            print_message("%s not built: not checked\n", ondisk);
            continue;
        }
        struct vp_install in = {.prefix = prefix, .binary = bin};
        assert_int_equal(vp_install_identify(fx, &in), 0);
        if (in.eras != cases[i].eras)
            print_message("%s: eras %#x: %s\n", cases[i].tree, in.eras, in.era_reason);
        assert_int_equal(in.eras, cases[i].eras);
        if (cases[i].version)
            assert_string_equal(in.version, cases[i].version);
        else
            assert_null(in.version);
        assert_true(vp_startswith(in.toolchain, "go1."));
        assert_int_equal(in.has_lib_ollama, cases[i].lib);
        assert_int_equal(in.has_runners, cases[i].runners);
        assert_int_equal(in.has_cuda_dirs, cases[i].cuda);
        assert_int_equal(in.has_llama_server, cases[i].server);
        assert_non_null(strstr(in.era_reason, cases[i].reason));
        free(in.version);
        free(in.toolchain);
        free(in.era_reason);
    }
}

static void release_wins_over_a_mixed_layout_and_no_fingerprint_covers_c_and_d(void **state)
{
    const char *root = *state;
    /* B's binary beside E's llama-server: the release says B, and the mix is reported. */
    put_fixture(root, "mix/bin/ollama", "trees/b/bin/ollama");
    put_fixture(root, "mix/lib/ollama/llama-server", "trees/e/lib/ollama/llama-server");
    struct vp_install in = {.prefix = "/mix", .binary = "/mix/bin/ollama"};
    assert_int_equal(vp_install_identify(root, &in), 0);
    assert_int_equal(in.eras, 1u << VP_ERA_B);
    assert_non_null(strstr(in.era_reason, "files from two releases are mixed"));
    free(in.version);
    free(in.toolchain);
    free(in.era_reason);
    /* A C/D layout whose files carry neither fingerprint: both eras are covered. */
    put_fixture(root, "cd/bin/ollama", "bad/static-exe");
    tu_put(root, "cd/lib/ollama/cuda_v12/libggml-cuda.so", "");
    in = (struct vp_install){.prefix = "/cd", .binary = "/cd/bin/ollama"};
    assert_int_equal(vp_install_identify(root, &in), 0);
    assert_int_equal(in.eras, 1u << VP_ERA_C | 1u << VP_ERA_D);
    assert_non_null(strstr(in.era_reason, "no C or D fingerprint found: covering both"));
    free(in.version);
    free(in.toolchain);
    free(in.era_reason);
    /* A script is no binary to identify. */
    tu_put(root, "sh/bin/ollama", "#!/bin/sh\nexec /usr/local/bin/ollama \"$@\"\n");
    in = (struct vp_install){.prefix = "/sh", .binary = "/sh/bin/ollama"};
    assert_int_equal(vp_install_identify(root, &in), -ENOEXEC);
}

static void fingerprints_of_both_c_and_d_cover_both(void **state)
{
    const char *root = *state;
    /* A -trimpath C binary (Go discovery globs) beside D's libggml-base (WSL NVML route). */
    put_fixture(root, "cd/bin/ollama", "trees/c-trim/bin/ollama");
    put_fixture(root, "cd/lib/ollama/libggml-base.so", "trees/d/lib/ollama/libggml-base.so");
    tu_put(root, "cd/lib/ollama/cuda_v13/libggml-cuda.so", "");
    struct vp_install in = {.prefix = "/cd", .binary = "/cd/bin/ollama"};
    assert_int_equal(vp_install_identify(root, &in), 0);
    assert_null(in.version);
    assert_int_equal(in.eras, 1u << VP_ERA_C | 1u << VP_ERA_D);
    assert_non_null(strstr(in.era_reason, "both C and D fingerprints are present"));
    free(in.toolchain);
    free(in.era_reason);
}

#define T(f) cmocka_unit_test_setup_teardown(f, tu_setup_tmpdir, tu_teardown_tmpdir)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(exec_start_is_read_from_the_service_section),
        T(unit_in_etc_masks_the_packaged_one),
        T(drop_ins_apply_in_name_order_and_an_empty_exec_start_resets),
        T(no_unit_means_no_service_binary),
        T(launcher_and_systemd_prefixes_are_unwrapped),
        T(service_wins_and_the_other_installs_are_noted),
        T(without_a_service_the_first_on_path_wins),
        T(links_to_one_binary_are_one_install),
        T(prefix_wins_and_a_missing_one_is_an_error),
        T(nothing_installed_is_enoent),
        T(every_fixture_tree_is_identified),
        T(release_wins_over_a_mixed_layout_and_no_fingerprint_covers_c_and_d),
        T(fingerprints_of_both_c_and_d_cover_both),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
