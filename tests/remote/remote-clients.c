/* Several clients of one daemon: a client killed in the middle of a copy is cleaned up
 * while another is served on, memory quotas are per client, and a forked child gets a
 * connection of its own. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "rawproto.h"
#include "scenarios.h"

/* NVML's view of device 0's used memory, over a raw connection. 0 or 1. */
static int device_used(const char *endpoint, uint64_t *ret)
{
    struct raw r;
    char err[256];
    struct vr_ret re;
    CHECK(raw_connect(&r, endpoint, 2000, err, sizeof(err)) == 0, "connect: %s", err);
    int rc = raw_hello(&r, VR_API_NVML, NULL, &re);
    if (rc == 0 && re.status == VR_OK)
        rc = raw_call(&r, VR_NVML_INIT, NULL, NULL, 0, &re, NULL, 0, NULL);
    struct vr_args a = {{0}};
    if (rc == 0 && re.status == 0)
        rc = raw_call(&r, VR_NVML_DEVICE_MEMORY, &a, NULL, 0, &re, NULL, 0, NULL);
    raw_close(&r);
    CHECK(rc == 0 && re.status == 0, "NVML_DEVICE_MEMORY: rc %d status %d", rc, re.status);
    *ret = re.r[2];
    return 0;
}

/* ---- (c) a client killed in the middle of a large copy ---- */

struct pair {
    struct chan victim, survivor;
};

/* Holds 400 MiB and copies into it until killed. */
static int victim(void *arg)
{
    struct chan *c = arg;
    struct cuapi cu;
    if (cu_open(&cu))
        return 1;
    const size_t n = 400 * MiB;
    unsigned char *buf = malloc(n);
    CHECK(buf, "out of host memory");
    fill_random(buf, n, 5);
    CUdeviceptr d;
    CHECK_RC(cu.cuMemAlloc_v2(&d, n), CUDA_SUCCESS);
    CHECK_RC(cu.cuMemcpyHtoD_v2(d, buf, n), CUDA_SUCCESS);
    chan_tell_harness(c, 'a');
    for (;;)
        CHECK_RC(cu.cuMemcpyHtoD_v2(d, buf, n), CUDA_SUCCESS);
}

/* Connected before the kill; after it, its data and new work are intact. */
static int survivor(void *arg)
{
    struct chan *c = arg;
    struct cuapi cu;
    if (cu_open(&cu))
        return 1;
    const size_t n = 8 * MiB;
    unsigned char *src = malloc(n), *dst = malloc(n);
    CHECK(src && dst, "out of host memory");
    fill_random(src, n, 6);
    CUdeviceptr d, e;
    CHECK_RC(cu.cuMemAlloc_v2(&d, n), CUDA_SUCCESS);
    CHECK_RC(cu.cuMemcpyHtoD_v2(d, src, n), CUDA_SUCCESS);
    chan_tell_harness(c, 'r');
    CHECK(chan_hear_harness(c, 60000) == 'g', "no word from the harness");
    CHECK_RC(cu.cuMemcpyDtoH_v2(dst, d, n), CUDA_SUCCESS);
    CHECK(!memcmp(src, dst, n), "the survivor's memory changed while another client died");
    CHECK_RC(cu.cuMemAlloc_v2(&e, n), CUDA_SUCCESS);
    CHECK_RC(cu.cuMemcpyDtoD_v2(e, d, n), CUDA_SUCCESS);
    memset(dst, 0, n);
    CHECK_RC(cu.cuMemcpyDtoH_v2(dst, e, n), CUDA_SUCCESS);
    CHECK(!memcmp(src, dst, n), "the survivor's D2D after the kill differs");
    return 0;
}

/* Allocates 400 MiB, retrying for up to 5 s while the daemon cleans up. */
static int reallocate(void *arg)
{
    (void)arg;
    struct cuapi cu;
    if (cu_open(&cu))
        return 1;
    CUdeviceptr d = 0;
    int rc = -1;
    for (int i = 0; i < 50 && rc != CUDA_SUCCESS; i++) {
        rc = cu.cuMemAlloc_v2(&d, 400 * MiB);
        if (rc != CUDA_SUCCESS)
            sleep_ms(100);
    }
    CHECK(rc == CUDA_SUCCESS, "400 MiB could not be allocated again within 5 s: %d", rc);
    CHECK_RC(cu.cuMemsetD32_v2(d, 0x12345678, 100 * MiB), CUDA_SUCCESS);
    unsigned v = 0;
    CHECK_RC(cu.cuMemcpyDtoH_v2(&v, d + 400 * MiB - 4, 4), CUDA_SUCCESS);
    CHECK(v == 0x12345678, "memset of the new allocation reads back %#x", v);
    return 0;
}

static int killed_client(struct daemon *d, struct pair *p)
{
    pid_t s = client_spawn(d->endpoint, NULL, 120, survivor, &p->survivor);
    CHECK(chan_hear_from(&p->survivor, s, 30000) == 'r', "the survivor did not get ready");
    uint64_t used0, used1, used2 = 0;
    if (device_used(d->endpoint, &used0))
        return 1;
    pid_t v = client_spawn(d->endpoint, NULL, 120, victim, &p->victim);
    CHECK(chan_hear_from(&p->victim, v, 60000) == 'a', "the victim did not allocate 400 MiB");
    if (device_used(d->endpoint, &used1))
        return 1;
    CHECK(used1 >= used0 + 400 * MiB,
          "NVML used memory %llu MiB with the victim's 400 MiB, "
          "%llu MiB before",
          (unsigned long long)(used1 / MiB), (unsigned long long)(used0 / MiB));
    sleep_ms(300); /* well into one of its 400 MiB copies */
    CHECK(kill(v, SIGKILL) == 0, "kill: %s", strerror(errno));
    CHECK(client_wait(v, 10) == 128 + SIGKILL, "the victim did not die of SIGKILL");
    note("# victim killed in the middle of a 400 MiB H2D copy");
    CHECK(daemon_alive(d), "vgpu-hostd died with its client");
    CHECK(chan_tell(&p->survivor, 'g') == 0, "pipe");
    int rc = client_wait(s, 60);
    CHECK(rc == 0, "the other client failed after the kill (exit %d)", rc);
    /* Both gone now: their memory must be back, within a bounded wait. */
    for (int i = 0; i < 50; i++, sleep_ms(100)) {
        if (device_used(d->endpoint, &used2))
            return 1;
        if (used2 <= used0)
            break;
    }
    CHECK(used2 <= used0,
          "NVML used memory %llu MiB 5 s after the clients ended, %llu MiB "
          "before the victim",
          (unsigned long long)(used2 / MiB), (unsigned long long)(used0 / MiB));
    rc = client_run(d->endpoint, NULL, 60, reallocate, NULL);
    CHECK(rc == 0, "a new client could not use 400 MiB after the kill (exit %d)", rc);
    return 0;
}

int scenario_killed_client(void)
{
    struct daemon d;
    /* A device of 512 MiB: the 400 MiB come back only if the victim's were freed. */
    const char *extra[] = {"--sim-memory", "512M", NULL};
    struct pair p;
    CHECK(chan_open(&p.victim) == 0 && chan_open(&p.survivor) == 0, "pipe");
    if (daemon_start(&d, "unix", extra))
        return 1;
    if (killed_client(&d, &p)) {
        daemon_dump_log(&d);
        daemon_kill(&d);
        return 1;
    }
    return daemon_stop(&d);
}

/* ---- (f) quotas are per client ---- */

/* Takes 200 MiB; on 'o' asks for 100 MiB more, which must fail, then frees and retries. */
static int quota_a(void *arg)
{
    struct chan *c = arg;
    struct cuapi cu;
    if (cu_open(&cu))
        return 1;
    CUdeviceptr big, more = 0;
    CHECK_RC(cu.cuMemAlloc_v2(&big, 200 * MiB), CUDA_SUCCESS);
    chan_tell_harness(c, 'a');
    CHECK(chan_hear_harness(c, 60000) == 'o', "no word from the harness");
    CHECK_RC(cu.cuMemAlloc_v2(&more, 100 * MiB), CUDA_ERROR_OUT_OF_MEMORY);
    size_t free_b = 0, total = 0;
    CHECK_RC(cu.cuMemGetInfo_v2(&free_b, &total), CUDA_SUCCESS);
    CHECK(total <= 256 * MiB && free_b <= 56 * MiB,
          "cuMemGetInfo under a 256 MiB quota with 200 MiB used: free %zu total %zu", free_b,
          total);
    CHECK_RC(cu.cuMemFree_v2(big), CUDA_SUCCESS);
    CHECK_RC(cu.cuMemAlloc_v2(&more, 100 * MiB), CUDA_SUCCESS);
    chan_tell_harness(c, 'd');
    return 0;
}

/* Takes 200 MiB next to A's; on 'c' (after A's refusal) still gets 40 MiB more. */
static int quota_b(void *arg)
{
    struct chan *c = arg;
    struct cuapi cu;
    if (cu_open(&cu))
        return 1;
    CUdeviceptr big, more;
    CHECK_RC(cu.cuMemAlloc_v2(&big, 200 * MiB), CUDA_SUCCESS);
    chan_tell_harness(c, 'b');
    CHECK(chan_hear_harness(c, 60000) == 'c', "no word from the harness");
    CHECK_RC(cu.cuMemAlloc_v2(&more, 40 * MiB), CUDA_SUCCESS);
    CHECK_RC(cu.cuMemsetD8_v2(big, 7, 200 * MiB), CUDA_SUCCESS);
    unsigned char last = 0;
    CHECK_RC(cu.cuMemcpyDtoH_v2(&last, big + 200 * MiB - 1, 1), CUDA_SUCCESS);
    CHECK(last == 7, "B's memory reads %u", last);
    return 0;
}

int scenario_quotas(void)
{
    struct daemon d;
    const char *extra[] = {"--memory-limit", "256M", NULL};
    struct chan a, b;
    CHECK(chan_open(&a) == 0 && chan_open(&b) == 0, "pipe");
    if (daemon_start(&d, "unix", extra))
        return 1;
    pid_t pa = client_spawn(d.endpoint, NULL, 60, quota_a, &a);
    pid_t pb = -1;
    int ok = chan_hear_from(&a, pa, 30000) == 'a';
    if (ok)
        pb = client_spawn(d.endpoint, NULL, 60, quota_b, &b);
    ok = ok && chan_hear_from(&b, pb, 30000) == 'b';
    ok = ok && chan_tell(&a, 'o') == 0 && chan_hear_from(&a, pa, 30000) == 'd';
    ok = ok && chan_tell(&b, 'c') == 0;
    if (!ok) { /* whoever waits for word now would only wait for its watchdog */
        kill(pa, SIGKILL);
        if (pb > 0)
            kill(pb, SIGKILL);
    }
    int ra = client_wait(pa, 30), rb = pb > 0 ? client_wait(pb, 30) : -1;
    if (!ok || ra || rb) {
        daemon_dump_log(&d);
        daemon_kill(&d);
        CHECK(0, "quota clients: A exit %d, B exit %d", ra, rb);
    }
    return daemon_stop(&d);
}

/* ---- (g) fork ---- */

static int forker(void *arg)
{
    (void)arg;
    struct cuapi cu;
    if (cu_open(&cu))
        return 1;
    const size_t n = 16 * MiB;
    unsigned char *src = malloc(n), *dst = malloc(n);
    CHECK(src && dst, "out of host memory");
    fill_random(src, n, 9);
    CUdeviceptr d;
    CHECK_RC(cu.cuMemAlloc_v2(&d, n), CUDA_SUCCESS);
    CHECK_RC(cu.cuMemcpyHtoD_v2(d, src, n), CUDA_SUCCESS);
    fflush(NULL);
    pid_t child = fork();
    CHECK(child >= 0, "fork: %s", strerror(errno));
    if (child == 0) {
        alarm(20);
        int count = -1, major = 0;
        char name[128] = "";
        int rc = cu.cuDeviceGetCount(&count);
        if (rc || count != 1) {
            fprintf(stderr, "FAIL: in the forked child cuDeviceGetCount returned %d, count %d\n",
                    rc, count);
            _exit(1);
        }
        rc = cu.cuDeviceGetName(name, sizeof(name), 0);
        rc = rc ? rc : cu.cuDeviceGetAttribute(&major, 75, 0);
        if (rc || !strstr(name, "imulated") || major != 8) {
            fprintf(stderr, "FAIL: in the forked child: rc %d name '%s' cc major %d\n", rc, name,
                    major);
            _exit(1);
        }
        _exit(0);
    }
    /* The parent works on while the child talks to the daemon. */
    for (int i = 0; i < 4; i++) {
        memset(dst, 0, n);
        CHECK_RC(cu.cuMemcpyDtoH_v2(dst, d, n), CUDA_SUCCESS);
        CHECK(!memcmp(src, dst, n), "the parent's memory differs after fork (round %d)", i);
    }
    int st;
    CHECK(waitpid(child, &st, 0) == child, "waitpid");
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the forked child failed (status %#x)", st);
    int count = 0;
    CHECK_RC(cu.cuDeviceGetCount(&count), CUDA_SUCCESS);
    CHECK(count == 1, "the parent counts %d devices after the fork", count);
    CUdeviceptr e;
    CHECK_RC(cu.cuMemAlloc_v2(&e, n), CUDA_SUCCESS);
    CHECK_RC(cu.cuMemcpyDtoD_v2(e, d, n), CUDA_SUCCESS);
    memset(dst, 0, n);
    CHECK_RC(cu.cuMemcpyDtoH_v2(dst, e, n), CUDA_SUCCESS);
    CHECK(!memcmp(src, dst, n), "the parent's D2D after the fork differs");
    return 0;
}

int scenario_fork(void)
{
    struct daemon d;
    if (daemon_start(&d, "unix", NULL))
        return 1;
    int rc = client_run(d.endpoint, NULL, 60, forker, NULL);
    if (rc) {
        daemon_dump_log(&d);
        daemon_kill(&d);
        CHECK(0, "fork client exited %d", rc);
    }
    return daemon_stop(&d);
}
