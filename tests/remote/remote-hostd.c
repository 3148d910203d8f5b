/* The daemon's own defences and CUDA's semantics, over the raw protocol: module images
 * that declare more than was sent, connections that trickle their HELLO, stream and
 * event ops from another context, padded `extra` launch buffers, the per-client limits,
 * NVML under a memory quota, and cuInit with no visible device. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "rawproto.h"
#include "scenarios.h"

/* CUresult values the checks name. */
enum {
    CU_INVALID_VALUE = 1,
    CU_OUT_OF_MEMORY = 2,
    CU_NO_DEVICE = 100,
    CU_INVALID_IMAGE = 200,
    CU_INVALID_CONTEXT = 201,
    CU_INVALID_HANDLE = 400,
    CU_NOT_SUPPORTED = 801,
};

/* A connection past HELLO (extra: more HELLO lines). 0 or 1. */
static int open_session(struct daemon *d, struct raw *r, uint32_t api, const char *extra)
{
    char err[256];
    struct vr_ret re;
    CHECK(raw_connect(r, d->endpoint, 2000, err, sizeof(err)) == 0, "connect: %s", err);
    int rc = raw_hello(r, api, extra, &re);
    CHECK(rc == 0 && re.status == VR_OK, "HELLO: rc %d status %d", rc, re.status);
    return 0;
}

/* One call whose status goes to *status; r0 is returned (0 when the call failed on the
 * wire, with *status -1). */
static uint64_t call(struct raw *r, uint16_t op, struct vr_args a, const void *bulk, size_t n,
                     int *status)
{
    struct vr_ret re;
    if (raw_call(r, op, &a, bulk, n, &re, NULL, 0, NULL) < 0) {
        *status = -1;
        return 0;
    }
    *status = re.status;
    return re.r[0];
}

#define ARGS(...) ((struct vr_args){{__VA_ARGS__}})

/* The client's primary context of device 0. */
static uint64_t primary(struct raw *r, int *st)
{
    return call(r, VR_CU_PRIMARY_CTX_RETAIN, ARGS(0), NULL, 0, st);
}

static int stop(struct daemon *d, int rc)
{
    if (rc) {
        daemon_dump_log(d);
        daemon_kill(d);
        return 1;
    }
    return daemon_stop(d);
}

/* ---- module images ---- */

static int images(struct daemon *d)
{
    struct raw r;
    int st;
    if (open_session(d, &r, VR_API_CUDA, NULL))
        return 1;
    uint64_t ctx = primary(&r, &st);
    CHECK(st == 0, "PRIMARY_CTX_RETAIN: %d", st);

    /* A fatbin header claiming 1 MiB in 64 bytes. */
    unsigned char fat[64] = {0x50, 0xed, 0x55, 0xba, 1, 0, 16, 0};
    uint64_t claim = 1 << 20;
    memcpy(fat + 8, &claim, 8);
    call(&r, VR_CU_MODULE_LOAD, ARGS(ctx), fat, sizeof(fat), &st);
    CHECK(st == CU_INVALID_IMAGE, "a 64-byte fatbin claiming 1 MiB: status %d", st);
    /* Its header size and fat size wrapping around 2^64. */
    claim = UINT64_MAX - 8;
    memcpy(fat + 8, &claim, 8);
    call(&r, VR_CU_MODULE_LOAD, ARGS(ctx), fat, sizeof(fat), &st);
    CHECK(st == CU_INVALID_IMAGE, "a fatbin whose sizes overflow: status %d", st);
    /* An ELF header whose section headers lie past the 64 bytes sent. */
    unsigned char elf[64] = {0x7f, 'E', 'L', 'F', 2, 1, 1};
    uint64_t shoff = 4096;
    memcpy(elf + 0x28, &shoff, 8);
    elf[0x3a] = 0x40; /* shentsize */
    elf[0x3c] = 4;    /* shnum */
    call(&r, VR_CU_MODULE_LOAD, ARGS(ctx), elf, sizeof(elf), &st);
    CHECK(st == CU_INVALID_IMAGE, "an ELF with its section headers past the end: status %d", st);
    /* PTX without its NUL: the driver would read on. */
    static const char ptx[] = ".version 7.0\n.target sm_75\n.address_size 64\n";
    call(&r, VR_CU_MODULE_LOAD, ARGS(ctx), ptx, sizeof(ptx) - 1, &st);
    CHECK(st == CU_INVALID_IMAGE, "PTX without its NUL: status %d", st);
    /* A whole one loads. */
    uint64_t mod = call(&r, VR_CU_MODULE_LOAD, ARGS(ctx), ptx, sizeof(ptx), &st);
    CHECK(st == 0 && mod, "PTX with its NUL: status %d", st);
    raw_close(&r);
    return 0;
}

int scenario_images(void)
{
    struct daemon d;
    if (daemon_start(&d, "unix", NULL))
        return 1;
    return stop(&d, images(&d));
}

/* ---- HELLO deadline ---- */

#define TRICKLERS 32

static int slow_hello(struct daemon *d)
{
    static const struct vr_hdr h = {
        .magic = VR_MAGIC, .op = VR_HELLO, .len = sizeof(struct vr_args)};
    struct raw t[TRICKLERS];
    char err[256];
    int n = 0;
    /* More connections than --max-clients 1 plus the old slack, each sending its HELLO a
     * byte every 300 ms: never idle for long, never done. A second wave takes whatever
     * places the first left (the harness's probe connection, say). */
    uint64_t start = now_ns();
    for (size_t k = 0; now_ns() - start < 6500000000ull; k++) {
        for (; n < (k < 2 ? TRICKLERS / 2 : TRICKLERS); n++)
            CHECK(raw_connect(&t[n], d->endpoint, 2000, err, sizeof(err)) == 0, "connect %d: %s", n,
                  err);
        for (int i = 0; i < n; i++)
            /* Fails once the daemon closed it: what should happen. */
            (void)send(t[i].fd, (const char *)&h + k % sizeof(h), 1, MSG_NOSIGNAL | MSG_DONTWAIT);
        sleep_ms(300);
    }
    /* Past the HELLO deadline: a client is served. */
    struct raw r;
    int rc = open_session(d, &r, VR_API_CUDA, NULL);
    for (int i = 0; i < n; i++)
        raw_close(&t[i]);
    if (rc)
        return 1;
    raw_close(&r);
    return 0;
}

int scenario_slow_hello(void)
{
    static const char *const extra[] = {"--max-clients", "1", NULL};
    struct daemon d;
    if (daemon_start(&d, "unix", extra))
        return 1;
    return stop(&d, slow_hello(&d));
}

/* A burst of honest clients connecting at once (more than the daemon lets wait for
 * their HELLO at a time): every one is served; the extra ones wait in the backlog. */
#define BURST 48

static int burst(struct daemon *d)
{
    pid_t kids[BURST];
    for (int i = 0; i < BURST; i++) {
        kids[i] = fork();
        CHECK(kids[i] >= 0, "fork");
        if (kids[i] == 0) {
            struct raw r;
            int rc = open_session(d, &r, VR_API_CUDA, NULL);
            if (!rc)
                raw_close(&r);
            _exit(rc ? 1 : 0);
        }
    }
    int failed = 0;
    for (int i = 0; i < BURST; i++) {
        int st;
        waitpid(kids[i], &st, 0);
        failed += !(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }
    CHECK(failed == 0, "%d of %d clients connecting at once were not served", failed, BURST);
    return 0;
}

int scenario_burst(void)
{
    struct daemon d;
    if (daemon_start(&d, "unix", NULL))
        return 1;
    return stop(&d, burst(&d));
}

/* ---- stream and event ops from another context ---- */

static int handles(struct daemon *d)
{
    struct raw r;
    int st;
    if (open_session(d, &r, VR_API_CUDA, NULL))
        return 1;
    uint64_t a = primary(&r, &st);
    CHECK(st == 0, "PRIMARY_CTX_RETAIN: %d", st);
    uint64_t b = call(&r, VR_CU_CTX_CREATE, ARGS(0, 0), NULL, 0, &st);
    CHECK(st == 0, "CTX_CREATE: %d", st);
    uint64_t s = call(&r, VR_CU_STREAM_CREATE, ARGS(a, 0, 0), NULL, 0, &st);
    CHECK(st == 0, "STREAM_CREATE: %d", st);
    uint64_t e0 = call(&r, VR_CU_EVENT_CREATE, ARGS(a, 0), NULL, 0, &st);
    CHECK(st == 0, "EVENT_CREATE: %d", st);
    uint64_t e1 = call(&r, VR_CU_EVENT_CREATE, ARGS(a, 0), NULL, 0, &st);
    CHECK(st == 0, "EVENT_CREATE: %d", st);

    /* Never recorded: an invalid handle for this purpose, as cuda.h documents. */
    call(&r, VR_CU_EVENT_ELAPSED_TIME, ARGS(a, e0, e1), NULL, 0, &st);
    CHECK(st == CU_INVALID_HANDLE, "EVENT_ELAPSED_TIME of unrecorded events: %d", st);
    /* Context b current (a0), or none at all: the handles' own context is used. */
    const uint64_t cur[] = {b, 0};
    for (int i = 0; i < 2; i++) {
        call(&r, VR_CU_STREAM_SYNCHRONIZE, ARGS(cur[i], s), NULL, 0, &st);
        CHECK(st == 0, "STREAM_SYNCHRONIZE with a0 %d: %d", i, st);
        call(&r, VR_CU_STREAM_QUERY, ARGS(cur[i], s), NULL, 0, &st);
        CHECK(st == 0, "STREAM_QUERY with a0 %d: %d", i, st);
        call(&r, VR_CU_EVENT_RECORD, ARGS(cur[i], e0, s), NULL, 0, &st);
        CHECK(st == 0, "EVENT_RECORD with a0 %d: %d", i, st);
        call(&r, VR_CU_EVENT_RECORD, ARGS(cur[i], e1, 0), NULL, 0, &st);
        CHECK(st == 0, "EVENT_RECORD on stream 0 with a0 %d: %d", i, st);
        call(&r, VR_CU_EVENT_SYNCHRONIZE, ARGS(cur[i], e1), NULL, 0, &st);
        CHECK(st == 0, "EVENT_SYNCHRONIZE with a0 %d: %d", i, st);
        call(&r, VR_CU_EVENT_QUERY, ARGS(cur[i], e1), NULL, 0, &st);
        CHECK(st == 0, "EVENT_QUERY with a0 %d: %d", i, st);
        call(&r, VR_CU_EVENT_ELAPSED_TIME, ARGS(cur[i], e0, e1), NULL, 0, &st);
        CHECK(st == 0, "EVENT_ELAPSED_TIME with a0 %d: %d", i, st);
    }
    call(&r, VR_CU_EVENT_DESTROY, ARGS(0, e0), NULL, 0, &st);
    CHECK(st == 0, "EVENT_DESTROY with no context: %d", st);
    call(&r, VR_CU_STREAM_DESTROY, ARGS(b, s), NULL, 0, &st);
    CHECK(st == 0, "STREAM_DESTROY from another context: %d", st);
    /* The special streams still need a context. */
    call(&r, VR_CU_STREAM_SYNCHRONIZE, ARGS(0, 0), NULL, 0, &st);
    CHECK(st == CU_INVALID_CONTEXT, "STREAM_SYNCHRONIZE of stream 0 without a context: %d", st);
    raw_close(&r);
    return 0;
}

int scenario_handles(void)
{
    struct daemon d;
    if (daemon_start(&d, "unix", NULL))
        return 1;
    return stop(&d, handles(&d));
}

/* ---- launches with a padded `extra` buffer ---- */

static int launch_extra(struct daemon *d, const char *ptx_path)
{
    FILE *f = fopen(ptx_path, "rb");
    CHECK(f, "%s: %s", ptx_path, strerror(errno));
    static char ptx[1 << 16];
    size_t n = fread(ptx, 1, sizeof(ptx) - 1, f);
    fclose(f);
    ptx[n++] = '\0';

    struct raw r;
    int st;
    if (open_session(d, &r, VR_API_CUDA, NULL))
        return 1;
    uint64_t ctx = primary(&r, &st);
    uint64_t mod = call(&r, VR_CU_MODULE_LOAD, ARGS(ctx), ptx, n, &st);
    CHECK(st == 0, "MODULE_LOAD: %d", st);
    uint64_t fn = call(&r, VR_CU_MODULE_GET_FUNCTION, ARGS(ctx, mod), "vecadd", 7, &st);
    CHECK(st == 0, "MODULE_GET_FUNCTION vecadd: %d", st);
    /* vecadd(u64, u64, u64, u32) packs into 28 bytes; sizeof a struct of them is 32. The
     * simulated device runs no kernels: NOT_SUPPORTED means the arguments passed. */
    static const unsigned char args[64];
    const uint64_t one = 1 | 1ull << 32;
    call(&r, VR_CU_LAUNCH_KERNEL, ARGS(ctx, fn, one, 1, one, 1, 0, 0), args, 32, &st);
    CHECK(st == CU_NOT_SUPPORTED, "a 32-byte buffer for 28 bytes of arguments: %d", st);
    call(&r, VR_CU_LAUNCH_KERNEL, ARGS(ctx, fn, one, 1, one, 1, 0, 0), args, 28, &st);
    CHECK(st == CU_NOT_SUPPORTED, "the exact 28 bytes: %d", st);
    call(&r, VR_CU_LAUNCH_KERNEL, ARGS(ctx, fn, one, 1, one, 1, 0, 0), args, 24, &st);
    CHECK(st == CU_INVALID_VALUE, "a 24-byte buffer for 28 bytes of arguments: %d", st);
    raw_close(&r);
    return 0;
}

int scenario_launch_extra(const char *ptx_path)
{
    struct daemon d;
    if (daemon_start(&d, "unix", NULL))
        return 1;
    return stop(&d, launch_extra(&d, ptx_path));
}

/* ---- per-client limits, NVML under the quota, cuInit without devices ---- */

static int limits(struct daemon *d)
{
    struct raw r, r2;
    int st;
    if (open_session(d, &r, VR_API_CUDA, NULL))
        return 1;
    int made = 0;
    for (; made < 20; made++) {
        call(&r, VR_CU_CTX_CREATE, ARGS(0, 0), NULL, 0, &st);
        if (st)
            break;
    }
    /* One per visible device (--sim has one) and 8 more. */
    CHECK(made == 9 && st == CU_OUT_OF_MEMORY, "%d contexts, then status %d (want 9, then %d)",
          made, st, CU_OUT_OF_MEMORY);
    /* Another client has its own allowance. */
    if (open_session(d, &r2, VR_API_CUDA, NULL))
        return 1;
    call(&r2, VR_CU_CTX_CREATE, ARGS(0, 0), NULL, 0, &st);
    CHECK(st == 0, "another client's first context: %d", st);
    raw_close(&r2);
    raw_close(&r);

    /* NVML under --memory-limit 1G: the quota, as CUDA reports it — also while another
     * client holds its whole quota (that memory is not this client's to count). */
    struct raw other;
    if (open_session(d, &other, VR_API_CUDA, NULL))
        return 1;
    uint64_t octx = primary(&other, &st);
    CHECK(st == 0, "another client's PRIMARY_CTX_RETAIN: %d", st);
    call(&other, VR_CU_MEM_ALLOC, ARGS(octx, 1ull << 30), NULL, 0, &st);
    CHECK(st == 0, "another client's 1 GiB: %d", st);
    if (open_session(d, &r, VR_API_NVML, NULL))
        return 1;
    struct vr_ret re;
    struct vr_args a = {{0}};
    CHECK(raw_call(&r, VR_NVML_DEVICE_MEMORY, &a, NULL, 0, &re, NULL, 0, NULL) == 0 &&
              re.status == 0,
          "NVML_DEVICE_MEMORY");
    CHECK(re.r[0] == 1ull << 30 && re.r[1] == re.r[0] && re.r[2] == 0,
          "NVML memory: total %llu free %llu used %llu (want 1 GiB, all of it free)",
          (unsigned long long)re.r[0], (unsigned long long)re.r[1], (unsigned long long)re.r[2]);
    raw_close(&other);
    struct vr_nvml_device info;
    uint64_t got = 0;
    CHECK(raw_call(&r, VR_NVML_DEVICE_INFO, &a, NULL, 0, &re, &info, sizeof(info), &got) == 0 &&
              re.status == 0 && got == sizeof(info),
          "NVML_DEVICE_INFO");
    CHECK(info.total_memory == 1ull << 30, "NVML total memory %llu (want 1 GiB)",
          (unsigned long long)info.total_memory);
    raw_close(&r);

    /* CUDA_VISIBLE_DEVICES naming no device: cuInit fails as the driver's does. */
    static const char *const visible[] = {"visible=\n", "visible=-1\n", "visible=7\n"};
    for (size_t i = 0; i < sizeof(visible) / sizeof(visible[0]); i++) {
        if (open_session(d, &r, VR_API_CUDA, visible[i]))
            return 1;
        call(&r, VR_CU_INIT, ARGS(0), NULL, 0, &st);
        raw_close(&r);
        CHECK(st == CU_NO_DEVICE, "CU_INIT with %.*s: %d (want %d)", (int)strlen(visible[i]) - 1,
              visible[i], st, CU_NO_DEVICE);
    }
    if (open_session(d, &r, VR_API_CUDA, "visible=0\n"))
        return 1;
    call(&r, VR_CU_INIT, ARGS(0), NULL, 0, &st);
    raw_close(&r);
    CHECK(st == 0, "CU_INIT with visible=0: %d", st);
    return 0;
}

int scenario_limits(void)
{
    static const char *const extra[] = {"--memory-limit", "1G", NULL};
    struct daemon d;
    if (daemon_start(&d, "unix", extra))
        return 1;
    return stop(&d, limits(&d));
}
