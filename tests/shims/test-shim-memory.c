/* The memory limit: reported totals, and every allocation path failing past the limit
 * with CUDA_ERROR_OUT_OF_MEMORY before the driver sees it, its bytes given back on
 * free. The dummy device has 16 GiB; the limit is 1 GiB. */
#include <dlfcn.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "cu.h"
#include "shimtest.h"

#define MiB (1ull << 20)
#define GiB (1ull << 30)

/* One allocation path: allocate size bytes, free what alloc returned. */
struct path {
    const char *name; /* the entry point that allocates */
    int (*alloc)(const struct cu *cu, cudev_t *key, size_t size);
    int (*release)(const struct cu *cu, cudev_t key);
};

static void *stream(const struct cu *cu)
{
    static void *s;
    if (!s)
        ST_CHECK_INT(cu->StreamCreate(&s, 0), CU_OK);
    return s;
}

static void *pool(const struct cu *cu)
{
    static void *p;
    if (!p)
        ST_CHECK_INT(cu->DeviceGetDefaultMemPool(&p, 0), CU_OK);
    return p;
}

static int alloc_v2(const struct cu *cu, cudev_t *k, size_t n)
{
    return cu->MemAlloc_v2(k, n);
}
static int alloc_managed(const struct cu *cu, cudev_t *k, size_t n)
{
    return cu->MemAllocManaged(k, n, 1);
}
static int alloc_async(const struct cu *cu, cudev_t *k, size_t n)
{
    return cu->MemAllocAsync(k, n, stream(cu));
}
static int alloc_async_ptsz(const struct cu *cu, cudev_t *k, size_t n)
{
    return cu->MemAllocAsync_ptsz(k, n, stream(cu));
}
static int alloc_pool(const struct cu *cu, cudev_t *k, size_t n)
{
    return cu->MemAllocFromPoolAsync(k, n, pool(cu), stream(cu));
}
static int alloc_pool_ptsz(const struct cu *cu, cudev_t *k, size_t n)
{
    return cu->MemAllocFromPoolAsync_ptsz(k, n, pool(cu), stream(cu));
}
static int alloc_pitch(const struct cu *cu, cudev_t *k, size_t n)
{
    size_t pitch = 0;
    int r = cu->MemAllocPitch_v2(k, &pitch, 1000, n / 1024, 4); /* pitch 1024 */
    ST_CHECK(r != CU_OK || pitch == 1024);
    return r;
}
/* The VMM path as ggml-cuda's pool takes it: create, map, release the handle at once;
 * the memory goes at unmap. The mapping of each handle is remembered for release_vmm. */
static struct {
    cudev_t handle, va;
    size_t size;
} vmm[4];

static int alloc_vmm(const struct cu *cu, cudev_t *k, size_t n)
{
    static const char prop[64]; /* passed through to the driver only */
    int r = cu->MemCreate(k, n, prop, 0);
    if (r != CU_OK)
        return r;
    for (size_t i = 0; i < sizeof(vmm) / sizeof(vmm[0]); i++)
        if (!vmm[i].size) {
            vmm[i].handle = *k;
            vmm[i].size = n;
            ST_CHECK_INT(cu->MemAddressReserve(&vmm[i].va, n, 0, 0, 0), CU_OK);
            ST_CHECK_INT(cu->MemMap(vmm[i].va, n, 0, *k, 0), CU_OK);
            ST_CHECK_INT(cu->MemRelease(*k), CU_OK); /* still mapped: still held */
            return r;
        }
    st_fail(__FILE__, __LINE__, "too many VMM allocations");
}

static int release_vmm(const struct cu *cu, cudev_t k)
{
    for (size_t i = 0; i < sizeof(vmm) / sizeof(vmm[0]); i++)
        if (vmm[i].size && vmm[i].handle == k) {
            int r = cu->MemUnmap(vmm[i].va, vmm[i].size);
            vmm[i].size = 0;
            return r;
        }
    st_fail(__FILE__, __LINE__, "unknown VMM handle");
}

static int free_v2(const struct cu *cu, cudev_t k)
{
    return cu->MemFree_v2(k);
}
static int free_async(const struct cu *cu, cudev_t k)
{
    return cu->MemFreeAsync(k, stream(cu));
}
static int free_async_ptsz(const struct cu *cu, cudev_t k)
{
    return cu->MemFreeAsync_ptsz(k, stream(cu));
}
static const struct path paths[] = {
    {"cuMemAlloc_v2", alloc_v2, free_v2},
    {"cuMemAllocManaged", alloc_managed, free_v2},
    {"cuMemAllocPitch_v2", alloc_pitch, free_v2},
    {"cuMemAllocAsync", alloc_async, free_async},
    {"cuMemAllocAsync_ptsz", alloc_async_ptsz, free_async_ptsz},
    {"cuMemAllocFromPoolAsync", alloc_pool, free_async},
    {"cuMemAllocFromPoolAsync_ptsz", alloc_pool_ptsz, free_v2},
    {"cuMemCreate", alloc_vmm, release_vmm},
};

static void check_free(const struct cu *cu, unsigned long long want)
{
    size_t free = 0, total = 0;
    ST_CHECK_INT(cu->MemGetInfo_v2(&free, &total), CU_OK);
    ST_CHECK_INT(total, GiB);
    ST_CHECK_INT(free, want);
}

static void paths_child(void *arg)
{
    (void)arg;
    struct cu cu = cu_load();
    cu_start(&cu);
    size_t total = 0;
    ST_CHECK_INT(cu.DeviceTotalMem_v2(&total, 0), CU_OK);
    ST_CHECK_INT(total, GiB);
    check_free(&cu, GiB);
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        const struct path *p = &paths[i];
        cudev_t a = 0, b = 0;
        fprintf(stderr, "path %s\n", p->name);
        ST_CHECK_INT(p->alloc(&cu, &a, 600 * MiB), CU_OK);
        check_free(&cu, GiB - 600 * MiB);
        unsigned long reached = st_dummy_calls("cuda", p->name);
        ST_CHECK_INT(p->alloc(&cu, &b, 600 * MiB), CU_OUT_OF_MEMORY);
        ST_CHECK_INT(st_dummy_calls("cuda", p->name), reached); /* refused before the driver */
        ST_CHECK_INT(p->release(&cu, a), CU_OK);
        check_free(&cu, GiB);
        ST_CHECK_INT(p->alloc(&cu, &b, 600 * MiB), CU_OK);
        ST_CHECK_INT(p->release(&cu, b), CU_OK);
        check_free(&cu, GiB);
    }
}

static void every_allocation_path_fails_past_the_limit(void **state)
{
    (void)state;
    const char *const env[] = {"VGPU_BACKEND=native", st_native("cuda"), "VGPU_MEMORY_LIMIT=1G",
                               NULL};
    struct st_result r;
    st_run(paths_child, NULL, env, &r);
    st_assert_ok(&r);
}

static void vmm_child(void *arg)
{
    (void)arg;
    struct cu cu = cu_load();
    cu_start(&cu);
    static const char prop[64];
    cudev_t h = 0, h2 = 0, again = 0, va = 0;
    ST_CHECK_INT(cu.MemAddressReserve(&va, 2 * GiB, 0, 0, 0), CU_OK);
    /* Two chunks mapped side by side, each handle released at once (ggml's pool). */
    ST_CHECK_INT(cu.MemCreate(&h, 300 * MiB, prop, 0), CU_OK);
    ST_CHECK_INT(cu.MemMap(va, 300 * MiB, 0, h, 0), CU_OK);
    ST_CHECK_INT(cu.MemRelease(h), CU_OK);
    ST_CHECK_INT(cu.MemCreate(&h2, 300 * MiB, prop, 0), CU_OK);
    ST_CHECK_INT(cu.MemMap(va + 300 * MiB, 300 * MiB, 0, h2, 0), CU_OK);
    ST_CHECK_INT(cu.MemRelease(h2), CU_OK);
    check_free(&cu, GiB - 600 * MiB);
    ST_CHECK_INT(cu.MemCreate(&h, 600 * MiB, prop, 0), CU_OUT_OF_MEMORY);
    /* A retained handle is one more reference: its release frees nothing. */
    ST_CHECK_INT(cu.MemRetainAllocationHandle(&again, (void *)(uintptr_t)va), CU_OK);
    ST_CHECK_INT(cu.MemRelease(again), CU_OK);
    check_free(&cu, GiB - 600 * MiB);
    /* One unmap of the whole range gives both chunks back. */
    ST_CHECK_INT(cu.MemUnmap(va, 600 * MiB), CU_OK);
    check_free(&cu, GiB);
    /* A release the driver refuses keeps the reference. */
    ST_CHECK_INT(cu.MemCreate(&h, 600 * MiB, prop, 0), CU_OK);
    ST_CHECK_INT(cu.MemRelease(h), CU_OK);
    ST_CHECK_INT(cu.MemRelease(h), CU_INVALID_VALUE);
    check_free(&cu, GiB);
}

static void vmm_memory_is_held_while_mapped(void **state)
{
    (void)state;
    const char *const env[] = {"VGPU_BACKEND=native", st_native("cuda"), "VGPU_MEMORY_LIMIT=1G",
                               NULL};
    struct st_result r;
    st_run(vmm_child, NULL, env, &r);
    st_assert_ok(&r);
}

#define RACERS 8

static struct cu racer_cu;
static pthread_barrier_t racers;
static cudev_t won[RACERS][16];
static int wins[RACERS];

static void *racer(void *arg)
{
    int me = (int)(intptr_t)arg;
    cu_start(&racer_cu);
    pthread_barrier_wait(&racers);
    for (int i = 0; i < 16; i++) {
        int r = racer_cu.MemAlloc_v2(&won[me][wins[me]], 100 * MiB);
        ST_CHECK(r == CU_OK || r == CU_OUT_OF_MEMORY);
        wins[me] += r == CU_OK;
    }
    return NULL;
}

static void racers_child(void *arg)
{
    (void)arg;
    racer_cu = cu_load();
    cu_start(&racer_cu);
    pthread_t t[RACERS];
    pthread_barrier_init(&racers, NULL, RACERS);
    for (int i = 0; i < RACERS; i++)
        ST_CHECK_INT(pthread_create(&t[i], NULL, racer, (void *)(intptr_t)i), 0);
    int total = 0;
    for (int i = 0; i < RACERS; i++) {
        pthread_join(t[i], NULL);
        total += wins[i];
    }
    ST_CHECK_INT(total, 10); /* exactly what fits: 10 x 100 MiB of 1 GiB */
    check_free(&racer_cu, GiB - 1000 * MiB);
    for (int i = 0; i < RACERS; i++)
        for (int k = 0; k < wins[i]; k++)
            ST_CHECK_INT(racer_cu.MemFree_v2(won[i][k]), CU_OK);
    check_free(&racer_cu, GiB);
}

static void threads_racing_for_the_last_bytes_never_pass_the_limit(void **state)
{
    (void)state;
    const char *const env[] = {"VGPU_BACKEND=native", st_native("cuda"), "VGPU_MEMORY_LIMIT=1G",
                               NULL};
    struct st_result r;
    st_run(racers_child, NULL, env, &r);
    st_assert_ok(&r);
}

static void failures_child(void *arg)
{
    (void)arg;
    struct cu cu = cu_load();
    cu_start(&cu);
    cudev_t p = 0;
    /* The driver refuses: the reservation is given back. */
    ST_CHECK_INT(cu.MemAlloc_v2(&p, 100 * MiB), CU_OUT_OF_MEMORY);
    check_free(&cu, GiB);
    /* The driver lacks the 32-bit cuMemAlloc: NOT_SUPPORTED, nothing held. */
    unsigned p32 = 0;
    ST_CHECK_INT(cu.MemAlloc(&p32, 1 << 20), CU_NOT_SUPPORTED);
    check_free(&cu, GiB);
    /* A free the driver rejects keeps nothing and releases nothing. */
    ST_CHECK_INT(cu.MemFree_v2(0xdead0000), CU_INVALID_VALUE);
    check_free(&cu, GiB);
    /* One byte past the limit at once. */
    ST_CHECK_INT(cu.MemAllocManaged(&p, GiB + 1, 1), CU_OUT_OF_MEMORY);
    ST_CHECK_INT(cu.MemAllocManaged(&p, GiB, 1), CU_OK);
    check_free(&cu, 0);
    ST_CHECK_INT(cu.MemFree_v2(p), CU_OK);
    check_free(&cu, GiB);
}

static void refused_and_failed_calls_hold_no_memory(void **state)
{
    (void)state;
    const char *const env[] = {"VGPU_BACKEND=native", st_native("cuda"), "VGPU_MEMORY_LIMIT=1G",
                               "DUMMY_CUDA_FAIL=cuMemAlloc_v2=2", NULL};
    struct st_result r;
    st_run(failures_child, NULL, env, &r);
    st_assert_ok(&r);
}

static void unlimited_child(void *arg)
{
    (void)arg;
    struct cu cu = cu_load();
    cu_start(&cu);
    size_t free = 0, total = 0;
    cudev_t p = 0;
    ST_CHECK_INT(cu.MemAlloc_v2(&p, 3 * GiB), CU_OK);
    ST_CHECK_INT(cu.MemGetInfo_v2(&free, &total), CU_OK);
    ST_CHECK_INT(total, 16 * GiB);
    ST_CHECK_INT(free, 13 * GiB);
}

static void without_a_limit_the_device_is_reported_as_it_is(void **state)
{
    (void)state;
    const char *const env[] = {"VGPU_BACKEND=native", st_native("cuda"), NULL};
    struct st_result r;
    st_run(unlimited_child, NULL, env, &r);
    st_assert_ok(&r);
    const char *const none[] = {"VGPU_BACKEND=native", st_native("cuda"), "VGPU_MEMORY_LIMIT=none",
                                NULL};
    st_run(unlimited_child, NULL, none, &r);
    st_assert_ok(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_allocation_path_fails_past_the_limit),
        cmocka_unit_test(vmm_memory_is_held_while_mapped),
        cmocka_unit_test(threads_racing_for_the_last_bytes_never_pass_the_limit),
        cmocka_unit_test(refused_and_failed_calls_hold_no_memory),
        cmocka_unit_test(without_a_limit_the_device_is_reported_as_it_is),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
