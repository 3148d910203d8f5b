/* The CUDA shim against the dummy driver: backends, forwarding, NOT_SUPPORTED,
 * RTLD_DEEPBIND, the export table, threads and fork. (cuGetProcAddress and the memory
 * limit have files of their own.) */
#include <dlfcn.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "cu.h"
#include "shimtest.h"

static void no_backend_child(void *arg)
{
    (void)arg;
    struct cu cu = cu_load();
    int n = -1, v = 0;
    ST_CHECK_INT(cu.Init(0), CU_NO_DEVICE);
    ST_CHECK_INT(cu.DeviceGetCount(&n), CU_NOT_INITIALIZED);
    ST_CHECK_INT(n, -1);
    ST_CHECK_INT(cu.DriverGetVersion(&v), CU_OK);
    ST_CHECK_INT(v, 13000);
    unsigned long calls, unserved;
    st_stat(cu.h, "cuda", "cuDeviceGetCount", &calls, &unserved);
    ST_CHECK_INT(calls, 1);
    ST_CHECK_INT(unserved, 1);
    const void *table = NULL;
    char uuid[16] = {0};
    ST_CHECK_INT(cu.GetExportTable(&table, uuid), CU_NOT_INITIALIZED);
    /* The error strings answer without a backend, for the codes the shim returns. */
    int (*name)(int, const char **) = (int (*)(int, const char **))st_sym(cu.h, "cuGetErrorName");
    int (*text)(int, const char **) = (int (*)(int, const char **))st_sym(cu.h, "cuGetErrorString");
    const char *s = NULL;
    ST_CHECK_INT(name(CU_NO_DEVICE, &s), CU_OK);
    ST_CHECK(s && strcmp(s, "CUDA_ERROR_NO_DEVICE") == 0);
    ST_CHECK_INT(text(CU_NOT_SUPPORTED, &s), CU_OK);
    ST_CHECK(s && strcmp(s, "operation not supported") == 0);
    /* Any other code of the API has its name (the remote backend passes them on). */
    ST_CHECK_INT(name(222, &s), CU_OK);
    ST_CHECK(s && strcmp(s, "CUDA_ERROR_UNSUPPORTED_PTX_VERSION") == 0);
    ST_CHECK_INT(text(222, &s), CU_OK);
    ST_CHECK(s && strcmp(s, "unsupported ptx version") == 0);
    ST_CHECK_INT(text(12345, &s), CU_INVALID_VALUE);
    ST_CHECK(s == NULL);
}

static void no_backend_means_no_device_and_the_log_says_why(void **state)
{
    (void)state;
    struct st_result r;
    st_run(no_backend_child, NULL, NULL, &r);
    st_assert_ok(&r);
    /* The default backend is remote at vsock:2:7735, where nobody listens here. */
    assert_int_equal(st_count(r.err, "backend remote: cannot reach vgpu-hostd at vsock:2:7735"), 1);
    assert_string_equal(r.out, "");
}

static void backend_none_child(void *arg)
{
    (void)arg;
    struct cu cu = cu_load();
    ST_CHECK_INT(cu.Init(0), CU_NO_DEVICE);
}

static void backends_none_and_remote_report_no_device(void **state)
{
    (void)state;
    struct st_result r;
    const char *const none[] = {"VGPU_BACKEND=none", "VGPU_LOG=info", NULL};
    st_run(backend_none_child, NULL, none, &r);
    st_assert_ok(&r);
    assert_int_equal(st_count(r.err, "backend none"), 1);
    const char *const remote[] = {"VGPU_BACKEND=remote", "VGPU_ENDPOINT=unix:/run/x", NULL};
    st_run(backend_none_child, NULL, remote, &r);
    st_assert_ok(&r);
    assert_int_equal(st_count(r.err, "backend remote: cannot reach vgpu-hostd at unix:/run/x"), 1);
    const char *const unset_path[] = {"VGPU_BACKEND=native", NULL};
    st_run(backend_none_child, NULL, unset_path, &r);
    st_assert_ok(&r);
    assert_int_equal(st_count(r.err, "backend native needs native_cuda"), 1);
}

/* A peer that accepts and then sends one byte every 300 ms (a valid-looking header,
 * slowly): it must not hold cuInit past connect_timeout. */
static pid_t trickler(const char *path)
{
    int l = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un un = {.sun_family = AF_UNIX};
    snprintf(un.sun_path, sizeof(un.sun_path), "%s", path);
    assert_true(l >= 0);
    assert_int_equal(bind(l, (struct sockaddr *)&un, sizeof(un)), 0);
    assert_int_equal(listen(l, 4), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int c = accept(l, NULL, NULL);
        for (int i = 0; c >= 0 && i < 100; i++) {
            if (send(c, "V", 1, MSG_NOSIGNAL) != 1)
                break;
            usleep(300000);
        }
        _exit(0);
    }
    close(l);
    return pid;
}

static void trickle_child(void *arg)
{
    (void)arg;
    struct cu cu = cu_load();
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    ST_CHECK_INT(cu.Init(0), CU_NO_DEVICE);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    ST_CHECK(s < 3.0); /* connect_timeout is 1 s: a functional bound, with slack */
}

static void a_trickling_peer_cannot_hold_cuinit_past_the_timeout(void **state)
{
    (void)state;
    char dir[] = "/tmp/vgpu-trickle-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[64], ep[96];
    snprintf(path, sizeof(path), "%s/s", dir);
    snprintf(ep, sizeof(ep), "VGPU_ENDPOINT=unix:%s", path);
    pid_t peer = trickler(path);
    const char *const env[] = {"VGPU_BACKEND=remote", ep, "VGPU_CONNECT_TIMEOUT=1", NULL};
    struct st_result r;
    st_run(trickle_child, NULL, env, &r);
    kill(peer, SIGKILL);
    waitpid(peer, NULL, 0);
    unlink(path);
    rmdir(dir);
    st_assert_ok(&r);
    assert_int_equal(st_count(r.err, "no answer within connect_timeout"), 1);
}

static void forward_child(void *arg)
{
    (void)arg;
    struct cu cu = cu_load();
    int n = -1, v = 0;
    char name[64] = "";
    ST_CHECK_INT(cu.Init(0), CU_OK);
    ST_CHECK_INT(cu.DeviceGetCount(&n), CU_OK);
    ST_CHECK_INT(n, 3);
    ST_CHECK_INT(cu.DeviceGetName(name, sizeof(name), 2), CU_OK);
    ST_CHECK(strcmp(name, "Forwarded GPU") == 0);
    ST_CHECK_INT(cu.DriverGetVersion(&v), CU_OK);
    ST_CHECK_INT(v, 12080); /* the driver's, not the shim's table version */
    ST_CHECK_INT(st_dummy_calls("cuda", "cuDeviceGetCount"), 1);
    ST_CHECK_INT(st_dummy_calls("cuda", "cuInit"), 1);
    unsigned long calls, unserved;
    st_stat(cu.h, "cuda", "cuDeviceGetName", &calls, &unserved);
    ST_CHECK_INT(calls, 1);
    ST_CHECK_INT(unserved, 0);
}

static void native_forwards_to_the_real_driver(void **state)
{
    (void)state;
    const char *const env[] = {"VGPU_BACKEND=native",      st_native("cuda"),
                               "DUMMY_CUDA_DEVICES=3",     "DUMMY_CUDA_NAME=Forwarded GPU",
                               "DUMMY_CUDA_VERSION=12080", NULL};
    struct st_result r;
    st_run(forward_child, NULL, env, &r);
    st_assert_ok(&r);
    assert_string_equal(r.err, ""); /* warn is the default level: nothing to say */
}

static void driver_errors_pass_through(void *arg)
{
    (void)arg;
    struct cu cu = cu_load();
    ST_CHECK_INT(cu.Init(0), CU_NO_DEVICE); /* DUMMY_CUDA_FAIL=cuInit=100 */
}

static void the_drivers_own_errors_reach_the_caller(void **state)
{
    (void)state;
    const char *const env[] = {"VGPU_BACKEND=native", st_native("cuda"),
                               "DUMMY_CUDA_FAIL=cuInit=100", NULL};
    struct st_result r;
    st_run(driver_errors_pass_through, NULL, env, &r);
    st_assert_ok(&r);
}

static void unsupported_child(void *arg)
{
    (void)arg;
    struct cu cu = cu_load();
    cu_start(&cu);
    for (int i = 0; i < 3; i++)
        ST_CHECK_INT(cu.LaunchKernel(NULL, 1, 1, 1, 1, 1, 1, 0, NULL, NULL, NULL),
                     CU_NOT_SUPPORTED);
    unsigned long calls, unserved;
    st_stat(cu.h, "cuda", "cuLaunchKernel", &calls, &unserved);
    ST_CHECK_INT(calls, 3);
    ST_CHECK_INT(unserved, 3);
}

static void entry_points_the_driver_lacks_say_not_supported_and_are_counted(void **state)
{
    (void)state;
    const char *const env[] = {"VGPU_BACKEND=native", st_native("cuda"), "VGPU_LOG=info", NULL};
    struct st_result r;
    st_run(unsupported_child, NULL, env, &r);
    st_assert_ok(&r);
    assert_int_equal(st_count(r.err, "cuLaunchKernel: the backend does not provide it"), 1);
}

static void arguments_child(void *arg)
{
    (void)arg;
    struct cu cu = cu_load();
    cu_start(&cu);
    /* Ten arguments, four on the stack: the first call goes through the lazy stub and
     * the resolver, the second straight through the filled slot. The dummy driver
     * succeeds only when every argument arrives as sent (tests/dummy/dummy_cuda.h). */
    for (int i = 0; i < 2; i++)
        ST_CHECK_INT(cu.LaunchCooperativeKernel((void *)0x1001, 2, 3, 5, 7, 11, 13, 17,
                                                (void *)0x1019, (void **)0x1023),
                     CU_OK);
    ST_CHECK_INT(cu.LaunchCooperativeKernel((void *)0x1001, 2, 3, 5, 7, 11, 13, 17, (void *)0x1019,
                                            (void **)0x1024),
                 CU_INVALID_VALUE);
    ST_CHECK_INT(st_dummy_calls("cuda", "cuLaunchCooperativeKernel"), 3);
}

static void arguments_cross_the_trampolines_intact(void **state)
{
    (void)state;
    const char *const env[] = {"VGPU_BACKEND=native", st_native("cuda"), NULL};
    struct st_result r;
    st_run(arguments_child, NULL, env, &r);
    st_assert_ok(&r);
}

static void refuse_child(void *arg)
{
    (void)arg;
    struct cu cu = cu_load();
    ST_CHECK_INT(cu.Init(0), CU_NO_DEVICE);
}

static void native_refuses_a_shim_or_a_missing_driver(void **state)
{
    (void)state;
    char self[4200], path[4096];
    snprintf(self, sizeof(self), "VGPU_NATIVE_CUDA=%s",
             st_path(path, sizeof(path), st_shim_dir(), "libvgpu-cuda.so.1"));
    const char *const env[] = {"VGPU_BACKEND=native", self, NULL};
    struct st_result r;
    st_run(refuse_child, NULL, env, &r);
    st_assert_ok(&r);
    assert_int_equal(st_count(r.err, "is a vgpu shim, not the real driver"), 1);

    const char *const missing[] = {"VGPU_BACKEND=native",
                                   "VGPU_NATIVE_CUDA=/nonexistent/libcuda.so.1", NULL};
    st_run(refuse_child, NULL, missing, &r);
    st_assert_ok(&r);
    assert_int_equal(st_count(r.err, "cannot load /nonexistent/libcuda.so.1"), 1);
}

static void reopen_child(void *arg)
{
    (void)arg;
    char path[4096];
    void *h = dlopen(st_path(path, sizeof(path), st_shim_dir(), "libvgpu-cuda.so.1"),
                     RTLD_NOW | RTLD_LOCAL);
    ST_CHECK(h != NULL);
    int (*init)(unsigned) = (int (*)(unsigned))st_sym(h, "cuInit");
    ST_CHECK_INT(init(0), CU_OK);
    dlclose(h); /* a probe that opens, asks and closes */
    void *again = dlopen("libcuda.so.1", RTLD_NOW | RTLD_NOLOAD);
    ST_CHECK(again != NULL);
    ST_CHECK(dlsym(again, "vgpu_shim_abi_version") != NULL); /* the shim, not the driver */
}

static void a_closed_shim_never_leaves_the_driver_to_answer(void **state)
{
    (void)state;
    const char *const env[] = {"VGPU_BACKEND=native", st_native("cuda"), NULL};
    struct st_result r;
    st_run(reopen_child, NULL, env, &r);
    st_assert_ok(&r);
}

static void deepbind_child(void *arg)
{
    (void)arg;
    struct cu cu = cu_load();
    cu_start(&cu);
    size_t free = 0, total = 0;
    cudev_t p = 0;
    ST_CHECK_INT(cu.MemGetInfo_v2(&free, &total), CU_OK);
    ST_CHECK_INT(cu.MemAlloc_v2(&p, 1 << 20), CU_OK);
    /* The dummy's cuMemGetInfo_v2 called its exported cuDeviceTotalMem_v2, and its
     * cuMemAlloc_v2 called cuCtxGetCurrent: inside the driver, not through the shim. */
    ST_CHECK_INT(st_dummy_calls("cuda", "cuDeviceTotalMem_v2"), 1);
    ST_CHECK_INT(st_dummy_calls("cuda", "cuCtxGetCurrent"), 1);
    unsigned long calls, unserved;
    st_stat(cu.h, "cuda", "cuDeviceTotalMem_v2", &calls, &unserved);
    ST_CHECK_INT(calls, 0);
    st_stat(cu.h, "cuda", "cuCtxGetCurrent", &calls, &unserved);
    ST_CHECK_INT(calls, 0);
}

static void the_drivers_calls_to_its_own_exports_stay_in_the_driver(void **state)
{
    (void)state;
    const char *const env[] = {"VGPU_BACKEND=native", st_native("cuda"), "DUMMY_CUDA_SELFCALL=1",
                               NULL};
    struct st_result r;
    st_run(deepbind_child, NULL, env, &r);
    st_assert_ok(&r);
}

static void export_table_child(void *arg)
{
    (void)arg;
    struct cu cu = cu_load();
    static const unsigned char known[16] = {0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77,
                                            0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff};
    struct table {
        size_t size;
        int (*a)(void);
        int (*b)(void);
    };
    const void *t = NULL;
    ST_CHECK_INT(cu.GetExportTable(&t, known), CU_OK);
    ST_CHECK(t != NULL);
    ST_CHECK_INT(((const struct table *)t)->a(), 42);
    unsigned char other[16] = {1};
    ST_CHECK_INT(cu.GetExportTable(&t, other), CU_INVALID_VALUE);
    ST_CHECK_INT(cu.GetExportTable(NULL, known), CU_INVALID_VALUE);
    ST_CHECK_INT(st_dummy_calls("cuda", "cuGetExportTable"), 2);
}

static void export_tables_come_from_the_native_driver(void **state)
{
    (void)state;
    const char *const env[] = {"VGPU_BACKEND=native", st_native("cuda"), NULL};
    struct st_result r;
    st_run(export_table_child, NULL, env, &r);
    st_assert_ok(&r);
}

#define THREADS 16

static pthread_barrier_t barrier;

static void *thread_main(void *arg)
{
    const struct cu *cu = arg;
    pthread_barrier_wait(&barrier);
    int n = 0;
    ST_CHECK_INT(cu->Init(0), CU_OK);
    ST_CHECK_INT(cu->DeviceGetCount(&n), CU_OK);
    ST_CHECK_INT(n, 1);
    cu_start(cu);
    for (int i = 0; i < 200; i++) {
        cudev_t p = 0;
        ST_CHECK_INT(cu->MemAlloc_v2(&p, 1 << 20), CU_OK);
        ST_CHECK_INT(cu->MemFree_v2(p), CU_OK);
    }
    return NULL;
}

static void threads_child(void *arg)
{
    (void)arg;
    struct cu cu = cu_load();
    pthread_t t[THREADS];
    pthread_barrier_init(&barrier, NULL, THREADS);
    for (int i = 0; i < THREADS; i++)
        ST_CHECK_INT(pthread_create(&t[i], NULL, thread_main, &cu), 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    cu_start(&cu);
    size_t free = 0, total = 0;
    ST_CHECK_INT(cu.MemGetInfo_v2(&free, &total), CU_OK);
    ST_CHECK_INT(free, total); /* every reservation was given back */
    ST_CHECK_INT(total, 64ull << 20);
    ST_CHECK_INT(st_dummy_calls("cuda", "cuInit"), 2 * THREADS + 1); /* cuInit, cu_start */
}

static void many_threads_initialising_at_once_see_one_backend(void **state)
{
    (void)state;
    const char *const env[] = {"VGPU_BACKEND=native", st_native("cuda"), "VGPU_LOG=info",
                               "VGPU_MEMORY_LIMIT=64M", NULL};
    struct st_result r;
    st_run(threads_child, NULL, env, &r);
    st_assert_ok(&r);
    assert_int_equal(st_count(r.err, "backend native:"), 1);
}

static void fork_child(void *arg)
{
    bool init_first = *(bool *)arg;
    struct cu cu = cu_load();
    cudev_t held = 0, p = 0;
    if (init_first) {
        cu_start(&cu);
        ST_CHECK_INT(cu.MemAlloc_v2(&held, 600u << 20), CU_OK);
    }
    pid_t pid = fork();
    ST_CHECK(pid >= 0);
    if (pid == 0) {
        if (!init_first)
            cu_start(&cu);
        /* The child inherits the parent's accounting along with its memory. */
        ST_CHECK_INT(cu.MemAlloc_v2(&p, 300u << 20), CU_OK);
        ST_CHECK_INT(cu.MemAlloc_v2(&p, 300u << 20), init_first ? CU_OUT_OF_MEMORY : CU_OK);
        _exit(0);
    }
    int status = -1;
    ST_CHECK(waitpid(pid, &status, 0) == pid);
    ST_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    if (!init_first)
        cu_start(&cu);
    ST_CHECK_INT(cu.MemAlloc_v2(&p, 300u << 20), CU_OK);
    ST_CHECK_INT(cu.MemFree_v2(p), CU_OK);
}

static void fork_in_a_consumer_keeps_working(void **state)
{
    (void)state;
    const char *const env[] = {"VGPU_BACKEND=native", st_native("cuda"), "VGPU_MEMORY_LIMIT=1G",
                               NULL};
    struct st_result r;
    bool init_first = true;
    st_run(fork_child, &init_first, env, &r);
    st_assert_ok(&r);
    init_first = false;
    st_run(fork_child, &init_first, env, &r);
    st_assert_ok(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(no_backend_means_no_device_and_the_log_says_why),
        cmocka_unit_test(backends_none_and_remote_report_no_device),
        cmocka_unit_test(a_trickling_peer_cannot_hold_cuinit_past_the_timeout),
        cmocka_unit_test(native_forwards_to_the_real_driver),
        cmocka_unit_test(the_drivers_own_errors_reach_the_caller),
        cmocka_unit_test(entry_points_the_driver_lacks_say_not_supported_and_are_counted),
        cmocka_unit_test(arguments_cross_the_trampolines_intact),
        cmocka_unit_test(native_refuses_a_shim_or_a_missing_driver),
        cmocka_unit_test(the_drivers_calls_to_its_own_exports_stay_in_the_driver),
        cmocka_unit_test(a_closed_shim_never_leaves_the_driver_to_answer),
        cmocka_unit_test(export_tables_come_from_the_native_driver),
        cmocka_unit_test(many_threads_initialising_at_once_see_one_backend),
        cmocka_unit_test(fork_in_a_consumer_keeps_working),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
