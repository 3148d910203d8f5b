/* cuGetProcAddress through the shim: every answer is one of the shim's own exports,
 * the variant the requested name means at the requested version and stream mode. */
#include <dlfcn.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cu.h"
#include "shimtest.h"

#define PTDS 2 /* CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM */

/* Asserts (in a child) that base@version with flags resolves to the shim's symbol. */
static void expect(const struct cu *cu, const char *base, int version, unsigned flags,
                   const char *symbol)
{
    void *fn = NULL;
    int status = -1;
    int r = cu->GetProcAddress_v2(base, &fn, version, flags, &status);
    if (r != CU_OK || status != 0 || fn != dlsym(cu->h, symbol))
        st_fail(__FILE__, __LINE__, "%s@%d flags %u: result %d status %d, %s", base, version, flags,
                r, status, fn == dlsym(cu->h, symbol) ? "right entry" : "not the shim's entry");
}

static void expect_missing(const struct cu *cu, const char *base, int version, int want_status)
{
    void *fn = (void *)1;
    int status = -1;
    int r = cu->GetProcAddress_v2(base, &fn, version, 0, &status);
    if (r != CU_NOT_FOUND || status != want_status || fn != NULL)
        st_fail(__FILE__, __LINE__, "%s@%d: result %d status %d fn %p, want %d/%d/NULL", base,
                version, r, status, fn, CU_NOT_FOUND, want_status);
}

static void variants_child(void *arg)
{
    (void)arg;
    struct cu cu = cu_load();
    expect(&cu, "cuGetProcAddress", 12000, 0, "cuGetProcAddress_v2");
    expect(&cu, "cuGetProcAddress", 11030, 0, "cuGetProcAddress");
    expect(&cu, "cuMemAlloc", 3020, 0, "cuMemAlloc_v2");
    expect(&cu, "cuMemAlloc", 13000, 0, "cuMemAlloc_v2");
    expect(&cu, "cuMemAlloc", 2000, 0, "cuMemAlloc");
    expect(&cu, "cuCtxCreate", 11040, 0, "cuCtxCreate_v3");
    expect(&cu, "cuCtxCreate", 12050, 0, "cuCtxCreate_v4");
    expect(&cu, "cuMemcpyHtoD", 12000, 0, "cuMemcpyHtoD_v2");
    expect(&cu, "cuMemcpyHtoD", 12000, PTDS, "cuMemcpyHtoD_v2_ptds");
    expect(&cu, "cuMemAllocAsync", 11020, 0, "cuMemAllocAsync");
    expect(&cu, "cuMemAllocAsync", 11020, PTDS, "cuMemAllocAsync_ptsz");
    expect(&cu, "cuLaunchKernel", 12000, PTDS, "cuLaunchKernel_ptsz");
    /* No per-thread variant: the legacy one. */
    expect(&cu, "cuInit", 12000, PTDS, "cuInit");
    expect(&cu, "cuMemAlloc", 12000, 1, "cuMemAlloc_v2");
    expect_missing(&cu, "cuGetProcAddress", 11000, 2);
    expect_missing(&cu, "cuNoSuchEntryPoint", 12000, 1);

    void *fn = NULL;
    int status = -1;
    ST_CHECK_INT(cu.GetProcAddress_v2(NULL, &fn, 12000, 0, &status), CU_INVALID_VALUE);
    ST_CHECK_INT(cu.GetProcAddress_v2("cuInit", NULL, 12000, 0, &status), CU_INVALID_VALUE);
    ST_CHECK_INT(cu.GetProcAddress_v2("cuInit", &fn, 12000, 4, &status), CU_INVALID_VALUE);
    ST_CHECK_INT(cu.GetProcAddress_v2("cuInit", &fn, 12000, 0, NULL), CU_OK);
    ST_CHECK(fn == dlsym(cu.h, "cuInit"));
    ST_CHECK_INT(cu.GetProcAddress("cuMemAlloc", &fn, 12000, 0), CU_OK);
    ST_CHECK(fn == dlsym(cu.h, "cuMemAlloc_v2"));
}

static void names_map_to_the_variant_of_the_requested_version(void **state)
{
    (void)state;
    struct st_result r;
    st_run(variants_child, NULL, NULL, &r);
    st_assert_ok(&r);
}

/* Every line of cuda-procaddr.def, asked back through the shim. */
static void table_child(void *arg)
{
    const char *def = arg;
    struct cu cu = cu_load();
    FILE *f = fopen(def, "r");
    ST_CHECK(f != NULL);
    char line[512], base[128], symbol[128];
    int version, ptds, lines = 0;
    while (fgets(line, sizeof(line), f)) {
        if (sscanf(line, "VGPU_PROC(%127[^,], %d, %d, %127[^)])", base, &version, &ptds, symbol) !=
            4)
            continue;
        expect(&cu, base, version, ptds ? PTDS : 0, symbol);
        lines++;
    }
    fclose(f);
    ST_CHECK(lines > 600);
}

static void every_table_line_resolves_to_the_shims_own_entry(void **state)
{
    (void)state;
    char def[4096];
    const char *src = getenv("VGPU_SOURCE_DIR");
    assert_non_null(src);
    snprintf(def, sizeof(def), "%s/shims/cuda/cuda-procaddr.def", src);
    struct st_result r;
    st_run(table_child, def, NULL, &r);
    st_assert_ok(&r);
}

static void mirror_child(void *arg)
{
    (void)arg;
    struct cu cu = cu_load();
    /* The dummy driver says it has no cuStreamCreate: neither does the shim. */
    expect_missing(&cu, "cuStreamCreate", 12000, 1);
    /* What the driver has, the shim hands out as its own entry point. */
    void *fn = NULL;
    ST_CHECK_INT(cu.GetProcAddress_v2("cuMemAlloc", &fn, 12000, 0, NULL), CU_OK);
    ST_CHECK(fn == dlsym(cu.h, "cuMemAlloc_v2"));
    Dl_info info;
    ST_CHECK(dladdr(fn, &info) && strstr(info.dli_fname, "libvgpu-cuda.so.1"));
}

static void the_driver_decides_what_exists_the_shim_what_is_returned(void **state)
{
    (void)state;
    const char *const env[] = {"VGPU_BACKEND=native", st_native("cuda"),
                               "DUMMY_CUDA_PROC_MISSING=cuStreamCreate", NULL};
    struct st_result r;
    st_run(mirror_child, NULL, env, &r);
    st_assert_ok(&r);
}

static void answers_child(void *arg)
{
    (void)arg;
    struct cu cu = cu_load();
    /* Both answers forwarded entry points: the driver knows its ABI, it wins (the
     * table would say cuCtxSynchronize_v2 at 13000). */
    expect(&cu, "cuCtxSynchronize", 13000, 0, "cuCtxSynchronize");
    /* The driver names a forwarded entry where the table has a policy entry: the
     * policy entry stays. */
    expect(&cu, "cuMemAlloc", 12000, 0, "cuMemAlloc_v2");
    /* The driver hands out a function it does not export: the table's answer. */
    expect(&cu, "cuStreamSynchronize", 12000, 0, "cuStreamSynchronize");
    /* ...and for a name the table does not know, nothing: NOT_FOUND, not found. */
    expect_missing(&cu, "cuDummyInternalOnly", 12000, 1);
}

static void the_drivers_answer_wins_unless_it_would_bypass_the_policy(void **state)
{
    (void)state;
    /* info: the name the shim does not know is said at that level (it is expected for
     * the graphics interop entry points cudart asks for). */
    const char *const env[] = {"VGPU_BACKEND=native", st_native("cuda"), "VGPU_LOG=info",
                               "DUMMY_CUDA_PROC_ANSWER=cuMemAlloc=cuCtxGetCurrent,"
                               "cuStreamSynchronize=internal,cuDummyInternalOnly=internal",
                               NULL};
    struct st_result r;
    st_run(answers_child, NULL, env, &r);
    st_assert_ok(&r);
    assert_int_equal(st_count(r.err, "keeping cuMemAlloc_v2 (it applies the vGPU policy)"), 1);
    assert_int_equal(st_count(r.err, "cuDummyInternalOnly@12000: the driver has it"), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(names_map_to_the_variant_of_the_requested_version),
        cmocka_unit_test(every_table_line_resolves_to_the_shims_own_entry),
        cmocka_unit_test(the_driver_decides_what_exists_the_shim_what_is_returned),
        cmocka_unit_test(the_drivers_answer_wins_unless_it_would_bypass_the_policy),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
