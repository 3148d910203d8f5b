/* The NVML shim against the dummy NVML: initialisation without a backend, forwarding,
 * the memory limit on nvmlDeviceGetMemoryInfo*, NOT_SUPPORTED, RTLD_DEEPBIND. */
#include <dlfcn.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "shimtest.h"

#define MiB (1ull << 20)
#define GiB (1ull << 30)

typedef struct {
    unsigned long long total, free, used;
} mem_v1;
typedef struct {
    unsigned version;
    unsigned long long total, reserved, free, used;
} mem_v2;
#define MEM_V2_VERSION ((unsigned)(sizeof(mem_v2) | (2u << 24)))

struct nvml {
    void *h;
    int (*Init_v2)(void);
    int (*DeviceGetCount_v2)(unsigned *);
    int (*DeviceGetHandleByIndex_v2)(unsigned, void **);
    int (*DeviceGetName)(void *, char *, unsigned);
    int (*DeviceGetMemoryInfo)(void *, mem_v1 *);
    int (*DeviceGetMemoryInfo_v2)(void *, mem_v2 *);
    int (*DeviceGetPowerUsage)(void *, unsigned *);
    const char *(*ErrorString)(int);
};

#define LOAD(field) n.field = (__typeof__(n.field))st_sym(n.h, "nvml" #field)

static struct nvml nvml_load(void)
{
    struct nvml n = {.h = st_open("libvgpu-nvml.so.1")};
    LOAD(Init_v2);
    LOAD(DeviceGetCount_v2);
    LOAD(DeviceGetHandleByIndex_v2);
    LOAD(DeviceGetName);
    LOAD(DeviceGetMemoryInfo);
    LOAD(DeviceGetMemoryInfo_v2);
    LOAD(DeviceGetPowerUsage);
    LOAD(ErrorString);
    return n;
}

static void no_backend_child(void *arg)
{
    (void)arg;
    struct nvml n = nvml_load();
    unsigned count = 7;
    ST_CHECK_INT(n.Init_v2(), 9);                 /* NVML_ERROR_DRIVER_NOT_LOADED */
    ST_CHECK_INT(n.DeviceGetCount_v2(&count), 1); /* NVML_ERROR_UNINITIALIZED */
    ST_CHECK_INT(count, 7);
    ST_CHECK(strcmp(n.ErrorString(9), "Driver Not Loaded") == 0);
    ST_CHECK(strcmp(n.ErrorString(12345), "Unknown Error") == 0);
}

static void without_a_backend_nvml_says_the_driver_is_not_loaded(void **state)
{
    (void)state;
    struct st_result r;
    st_run(no_backend_child, NULL, NULL, &r);
    st_assert_ok(&r);
    assert_int_equal(st_count(r.err, "backend remote: cannot reach vgpu-hostd at vsock:2:7735"), 1);
    assert_int_equal(st_count(r.err, "NVML device"), 1);
}

static void *start(const struct nvml *n)
{
    void *dev = NULL;
    unsigned count = 0;
    ST_CHECK_INT(n->Init_v2(), 0);
    ST_CHECK_INT(n->DeviceGetCount_v2(&count), 0);
    ST_CHECK_INT(count, 2);
    ST_CHECK_INT(n->DeviceGetHandleByIndex_v2(1, &dev), 0);
    return dev;
}

/* What the child expects nvmlDeviceGetMemoryInfo and _v2 to report. */
struct want {
    unsigned long long total, free, used;          /* v1 */
    unsigned long long total2, free2, used2, res2; /* v2 */
};

static void limit_child(void *arg)
{
    const struct want *w = arg;
    struct nvml n = nvml_load();
    void *dev = start(&n);
    char name[96] = "";
    ST_CHECK_INT(n.DeviceGetName(dev, name, sizeof(name)), 0);
    ST_CHECK(strcmp(name, "NVML Dummy") == 0);
    mem_v1 m1;
    ST_CHECK_INT(n.DeviceGetMemoryInfo(dev, &m1), 0);
    ST_CHECK_INT(m1.total, w->total);
    ST_CHECK_INT(m1.free, w->free);
    ST_CHECK_INT(m1.used, w->used);
    mem_v2 m2 = {.version = MEM_V2_VERSION};
    ST_CHECK_INT(n.DeviceGetMemoryInfo_v2(dev, &m2), 0);
    ST_CHECK_INT(m2.total, w->total2);
    ST_CHECK_INT(m2.free, w->free2);
    ST_CHECK_INT(m2.used, w->used2);
    ST_CHECK_INT(m2.reserved, w->res2);
    unsigned mw = 0;
    ST_CHECK_INT(n.DeviceGetPowerUsage(dev, &mw), 3); /* the dummy lacks it */
    ST_CHECK(strcmp(n.ErrorString(3), "Not Supported") == 0);
}

static void memory_info_reports_at_most_the_limit(void **state)
{
    (void)state;
    struct st_result r;
    /* A 16 GiB device, 512 MiB used by others, 256 MiB reserved: a process could
     * still get the whole 4 GiB limit. */
    const char *const roomy[] = {"VGPU_BACKEND=native",    st_native("nvml"),
                                 "DUMMY_NVML_DEVICES=2",   "DUMMY_NVML_NAME=NVML Dummy",
                                 "VGPU_MEMORY_LIMIT=4GiB", NULL};
    struct want w = {4 * GiB, 4 * GiB, 0, 4 * GiB, 4 * GiB, 0, 0};
    st_run(limit_child, &w, roomy, &r);
    st_assert_ok(&r);
    /* 13 GiB used by others: less is free than the limit, and that is what is shown. */
    const char *const busy[] = {"VGPU_BACKEND=native",    st_native("nvml"),
                                "DUMMY_NVML_DEVICES=2",   "DUMMY_NVML_NAME=NVML Dummy",
                                "VGPU_MEMORY_LIMIT=4GiB", "DUMMY_NVML_USED=13G",
                                "DUMMY_NVML_SELFCALL=1",  NULL};
    w = (struct want){4 * GiB, 3 * GiB, GiB, 4 * GiB, 3 * GiB - 256 * MiB, GiB, 256 * MiB};
    st_run(limit_child, &w, busy, &r);
    st_assert_ok(&r);
    /* No limit: the device as it is. */
    const char *const unlimited[] = {"VGPU_BACKEND=native", st_native("nvml"),
                                     "DUMMY_NVML_DEVICES=2", "DUMMY_NVML_NAME=NVML Dummy", NULL};
    w = (struct want){16 * GiB, 16 * GiB - 512 * MiB, 512 * MiB,
                      16 * GiB, 16 * GiB - 768 * MiB, 512 * MiB,
                      256 * MiB};
    st_run(limit_child, &w, unlimited, &r);
    st_assert_ok(&r);
}

static void deepbind_child(void *arg)
{
    (void)arg;
    struct nvml n = nvml_load();
    void *dev = start(&n);
    mem_v2 m2 = {.version = MEM_V2_VERSION};
    ST_CHECK_INT(n.DeviceGetMemoryInfo_v2(dev, &m2), 0);
    unsigned long calls, unserved;
    st_stat(n.h, "nvml", "nvmlDeviceGetMemoryInfo", &calls, &unserved);
    ST_CHECK_INT(calls, 0); /* the dummy's internal call stayed inside it */
    st_stat(n.h, "nvml", "nvmlDeviceGetPowerUsage", &calls, &unserved);
    ST_CHECK_INT(calls, 0);
    st_stat(n.h, "nvml", "nvmlDeviceGetCount_v2", &calls, &unserved);
    ST_CHECK_INT(calls, 1);
}

static void the_drivers_calls_to_its_own_exports_stay_in_the_driver(void **state)
{
    (void)state;
    const char *const env[] = {"VGPU_BACKEND=native", st_native("nvml"), "DUMMY_NVML_DEVICES=2",
                               "DUMMY_NVML_SELFCALL=1", NULL};
    struct st_result r;
    st_run(deepbind_child, NULL, env, &r);
    st_assert_ok(&r);
}

static void bad_config_child(void *arg)
{
    (void)arg;
    struct nvml n = nvml_load();
    ST_CHECK_INT(n.Init_v2(), 1); /* NVML_ERROR_UNINITIALIZED */
}

static void a_bad_configuration_is_an_error_not_a_default(void **state)
{
    (void)state;
    const char *const env[] = {"VGPU_BACKEND=native", st_native("nvml"), "VGPU_LOG=loud", NULL};
    struct st_result r;
    st_run(bad_config_child, NULL, env, &r);
    st_assert_ok(&r);
    assert_int_equal(st_count(r.err, "\n"), 1);
    assert_int_equal(st_count(r.err, "bad value 'loud' for log"), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(without_a_backend_nvml_says_the_driver_is_not_loaded),
        cmocka_unit_test(memory_info_reports_at_most_the_limit),
        cmocka_unit_test(the_drivers_calls_to_its_own_exports_stay_in_the_driver),
        cmocka_unit_test(a_bad_configuration_is_an_error_not_a_default),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
