/* The transport: malformed messages close only their connection, an unreachable host
 * gives CUDA_ERROR_NO_DEVICE within the connect timeout, vsock where the kernel has a
 * loopback, and SIGTERM. */
#include <errno.h>
#include <fcntl.h>
#include <arpa/inet.h>
#include <linux/vm_sockets.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"
#include "rawproto.h"
#include "scenarios.h"

/* ---- (d) malformed messages ---- */

enum { NO_HELLO = 0, HELLO_FIRST = 1 };

/* A connection (after a HELLO when asked), the bytes, and the daemon must close it. */
static int must_close(struct daemon *d, const char *what, int hello, const void *bytes, size_t n,
                      bool half_close)
{
    struct raw r;
    char err[256];
    struct vr_ret re;
    CHECK(raw_connect(&r, d->endpoint, 2000, err, sizeof(err)) == 0, "%s: connect: %s", what, err);
    if (hello) {
        int rc = raw_hello(&r, VR_API_CUDA, NULL, &re);
        CHECK(rc == 0 && re.status == VR_OK, "%s: HELLO: rc %d status %d", what, rc, re.status);
    }
    if (n)
        CHECK(send(r.fd, bytes, n, MSG_NOSIGNAL) == (ssize_t)n, "%s: send: %s", what,
              strerror(errno));
    if (half_close)
        shutdown(r.fd, SHUT_WR);
    int rc = raw_wait_closed(&r, 3000);
    raw_close(&r);
    CHECK(rc == 0, "%s: the daemon kept the connection open for 3 s", what);
    CHECK(daemon_alive(d), "%s: vgpu-hostd died", what);
    note("# %s: connection closed, daemon alive", what);
    return 0;
}

struct frame {
    struct vr_hdr h;
    struct vr_args a;
};

static struct frame request(uint16_t op, uint64_t bulk)
{
    struct frame f;
    memset(&f, 0, sizeof(f));
    f.h = (struct vr_hdr){.magic = VR_MAGIC, .op = op, .id = 7, .len = sizeof(f.a), .bulk = bulk};
    return f;
}

/* A HELLO'd connection and a PING on it: 0 when answered VR_OK. */
static int ping(struct raw *r, const char *what)
{
    struct vr_ret re;
    char echo[32];
    uint64_t got = 0;
    struct vr_args a = {{sizeof(echo)}};
    int rc = raw_call(r, VR_PING, &a, "xyz", 3, &re, echo, sizeof(echo), &got);
    CHECK(rc == 0 && re.status == VR_OK && got == sizeof(echo),
          "%s: PING: rc %d status %d, %llu bulk bytes (asked %zu)", what, rc, re.status,
          (unsigned long long)got, sizeof(echo));
    return 0;
}

static int malformed(struct daemon *d)
{
    /* A client connected all along: it must be served before and after. */
    struct raw by;
    char err[256];
    struct vr_ret re;
    CHECK(raw_connect(&by, d->endpoint, 2000, err, sizeof(err)) == 0, "connect: %s", err);
    CHECK(raw_hello(&by, VR_API_CUDA, NULL, &re) == 0 && re.status == VR_OK, "HELLO");
    CHECK(re.r[0] == VR_VERSION && (re.r[1] & VR_CAP_SIM) && re.r[2] == 1,
          "HELLO reply: version %llu caps %#llx devices %llu", (unsigned long long)re.r[0],
          (unsigned long long)re.r[1], (unsigned long long)re.r[2]);
    if (ping(&by, "bystander"))
        return 1;

    struct frame f = request(VR_PING, 0);
    f.h.magic = 0x31505257;
    if (must_close(d, "bad magic", HELLO_FIRST, &f, sizeof(f), false))
        return 1;
    f = request(VR_PING, 0);
    f.h.len = sizeof(f.a) - 8;
    if (must_close(d, "fixed part of 56 bytes", HELLO_FIRST, &f, sizeof(f), false))
        return 1;
    f = request(VR_PING, 0);
    f.h.len = 1u << 31;
    if (must_close(d, "fixed part of 2 GiB", HELLO_FIRST, &f, sizeof(f), false))
        return 1;
    /* Bulk above the op's limit, announced but never sent: the daemon must not wait for it. */
    f = request(VR_CU_INIT, 16);
    if (must_close(d, "CU_INIT with 16 bytes of bulk", HELLO_FIRST, &f, sizeof(f), false))
        return 1;
    f = request(VR_PING, VR_MAX_NAME + 1);
    if (must_close(d, "PING with 257 bytes of bulk", HELLO_FIRST, &f, sizeof(f), false))
        return 1;
    f = request(VR_CU_MODULE_LOAD, VR_MAX_IMAGE + 1ull);
    if (must_close(d, "MODULE_LOAD above VR_MAX_IMAGE", HELLO_FIRST, &f, sizeof(f), false))
        return 1;
    f = request(VR_CU_MEMCPY_HTOD, VR_MAX_BULK + 1);
    if (must_close(d, "MEMCPY_HTOD above VR_MAX_BULK", HELLO_FIRST, &f, sizeof(f), false))
        return 1;
    f = request(VR_HELLO, VR_MAX_HELLO + 1);
    if (must_close(d, "HELLO above VR_MAX_HELLO", NO_HELLO, &f, sizeof(f), false))
        return 1;
    f = request(VR_PING, 0);
    if (must_close(d, "PING before HELLO", NO_HELLO, &f, sizeof(f), false))
        return 1;
    f = request(VR_CU_DEVICE_GET_COUNT, 0);
    if (must_close(d, "CU_DEVICE_GET_COUNT before HELLO", NO_HELLO, &f, sizeof(f), false))
        return 1;
    f = request(VR_PING, 0);
    f.h.flags = VR_F_REPLY;
    if (must_close(d, "reply flag on a request", HELLO_FIRST, &f, sizeof(f), false))
        return 1;
    f = request(VR_PING, 0);
    f.h.flags = 0x8;
    if (must_close(d, "unknown flag", HELLO_FIRST, &f, sizeof(f), false))
        return 1;
    f = request(VR_PING, 0);
    if (must_close(d, "truncated header, then close", HELLO_FIRST, &f, 10, true))
        return 1;
    if (must_close(d, "truncated fixed part, then close", HELLO_FIRST, &f, 40, true))
        return 1;
    f = request(VR_CU_MEMCPY_HTOD, 1 * MiB);
    if (must_close(d, "truncated bulk, then close", HELLO_FIRST, &f, sizeof(f), true))
        return 1;
    static unsigned char junk[4096];
    fill_random(junk, sizeof(junk), 42);
    if (must_close(d, "4 KiB of random bytes", NO_HELLO, junk, sizeof(junk), false) ||
        must_close(d, "4 KiB of random bytes after HELLO", HELLO_FIRST, junk, sizeof(junk), false))
        return 1;

    /* A version nobody speaks: refused with VR_E_VERSION. */
    struct raw r;
    CHECK(raw_connect(&r, d->endpoint, 2000, err, sizeof(err)) == 0, "connect: %s", err);
    struct vr_args a = {{90, 99, VR_API_CUDA, (uint64_t)getpid()}};
    int rc = raw_call(&r, VR_HELLO, &a, "program=x\n", 10, &re, NULL, 0, NULL);
    raw_close(&r);
    CHECK(rc == 0 && re.status == VR_E_VERSION, "HELLO for versions 90..99: rc %d status %d", rc,
          re.status);
    /* An op this version does not know: answered VR_E_UNKNOWN_OP, the connection stays. */
    CHECK(raw_connect(&r, d->endpoint, 2000, err, sizeof(err)) == 0, "connect: %s", err);
    CHECK(raw_hello(&r, VR_API_CUDA, NULL, &re) == 0 && re.status == VR_OK, "HELLO");
    rc = raw_call(&r, 0x7abc, NULL, "abc", 3, &re, NULL, 0, NULL);
    CHECK(rc == 0 && re.status == VR_E_UNKNOWN_OP && re.aux == VR_AUX_UNKNOWN_OP,
          "op 0x7abc: rc %d status %d aux %#x", rc, re.status, re.aux);
    if (ping(&r, "after an unknown op"))
        return 1;
    raw_close(&r);

    if (ping(&by, "bystander after the malformed connections"))
        return 1;
    raw_close(&by);
    return 0;
}

static int one_device(void *arg)
{
    (void)arg;
    struct cuapi cu;
    if (cu_open(&cu))
        return 1;
    int n = 0;
    CHECK_RC(cu.cuDeviceGetCount(&n), CUDA_SUCCESS);
    CHECK(n == 1, "%d devices", n);
    CUdeviceptr p;
    CHECK_RC(cu.cuMemAlloc_v2(&p, MiB), CUDA_SUCCESS);
    CHECK_RC(cu.cuMemsetD8_v2(p, 1, MiB), CUDA_SUCCESS);
    return 0;
}

int scenario_malformed(void)
{
    struct daemon d;
    if (daemon_start(&d, "unix", NULL))
        return 1;
    int rc = malformed(&d);
    if (!rc && client_run(d.endpoint, NULL, 30, one_device, NULL)) {
        fail_at(__FILE__, __LINE__, "a shim client failed after the malformed connections");
        rc = 1;
    }
    if (rc) {
        daemon_dump_log(&d);
        daemon_kill(&d);
        return 1;
    }
    return daemon_stop(&d);
}

/* ---- (e) host down ---- */

struct bound {
    double limit_s;
};

static int no_device_fast(void *arg)
{
    const struct bound *b = arg;
    struct cuapi cu;
    struct nvmlapi nv;
    CHECK(cuapi_load(&cu, NULL) == 0 && nvmlapi_load(&nv, NULL) == 0, "cannot load the shims");
    uint64_t t0 = now_ns();
    int rc = cu.cuInit(0);
    double s = (double)(now_ns() - t0) / 1e9;
    CHECK(rc == CUDA_ERROR_NO_DEVICE, "cuInit returned %d, expected CUDA_ERROR_NO_DEVICE", rc);
    CHECK(s < b->limit_s, "cuInit took %.2f s, bound %.1f s", s, b->limit_s);
    int n = -1;
    rc = cu.cuDeviceGetCount(&n);
    CHECK(rc != CUDA_SUCCESS || n == 0, "cuDeviceGetCount after a failed cuInit: %d devices", n);
    t0 = now_ns();
    rc = nv.nvmlInit_v2();
    double s2 = (double)(now_ns() - t0) / 1e9;
    CHECK(rc != 0, "nvmlInit_v2 succeeded with no host");
    CHECK(s2 < b->limit_s, "nvmlInit_v2 took %.2f s, bound %.1f s", s2, b->limit_s);
    note("# %s: cuInit -> CUDA_ERROR_NO_DEVICE in %.3f s, nvmlInit_v2 -> %d in %.3f s",
         getenv("VGPU_ENDPOINT"), s, rc, s2);
    return 0;
}

/* A loopback tcp port whose accept queue is full, so that a connect to it gets no answer:
 * the listener and the connections that fill it in fds[0..3]. The port, or 0. */
static unsigned tcp_black_hole(int fds[4])
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t l = sizeof(a);
    fds[0] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fds[0] < 0 || bind(fds[0], (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fds[0], 0) < 0 ||
        getsockname(fds[0], (struct sockaddr *)&a, &l) < 0)
        return 0;
    for (int i = 1; i < 4; i++) {
        fds[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        connect(fds[i], (struct sockaddr *)&a, sizeof(a));
        sleep_ms(20);
    }
    return ntohs(a.sin_port);
}

/* A unix listener that never accepts: the kernel completes connections into its backlog, so
 * a client connects and then hears nothing. */
static int unix_silent(const char *path)
{
    struct vr_endpoint e = {.transport = VR_UNIX};
    snprintf(e.path, sizeof(e.path), "%.100s", path);
    char err[256];
    return vr_listen(&e, err, sizeof(err));
}

int scenario_host_down(void)
{
    char ep[192];
    snprintf(ep, sizeof(ep), "unix:%s/nobody.sock", test_dir);
    struct bound unix_bound = {2.5};
    int rc = client_run(ep, NULL, 10, no_device_fast, &unix_bound);
    CHECK(rc == 0, "unix endpoint nobody listens on: client exit %d", rc);
    /* The stale socket of a killed daemon: connection refused. */
    struct daemon d;
    if (daemon_start(&d, "unix", NULL))
        return 1;
    daemon_kill(&d);
    rc = client_run(d.endpoint, NULL, 10, no_device_fast, &unix_bound);
    CHECK(rc == 0, "the stale socket of a killed daemon: client exit %d", rc);
    /* Nothing answers 10.255.255.1: the connect times out, or fails at once without a route. */
    const char *env[] = {"VGPU_CONNECT_TIMEOUT=1", NULL};
    struct bound tcp_bound = {1.5};
    rc = client_run("tcp:10.255.255.1:9", env, 10, no_device_fast, &tcp_bound);
    CHECK(rc == 0, "unroutable tcp endpoint: client exit %d", rc);
    /* A connect nobody answers on loopback: the connect timeout itself. */
    int hole[4];
    unsigned port = tcp_black_hole(hole);
    CHECK(port, "cannot make a full tcp listener");
    char tcp_ep[64];
    snprintf(tcp_ep, sizeof(tcp_ep), "tcp:127.0.0.1:%u", port);
    rc = client_run(tcp_ep, env, 10, no_device_fast, &tcp_bound);
    for (int i = 0; i < 4; i++)
        close(hole[i]);
    CHECK(rc == 0, "tcp endpoint whose connects get no answer: client exit %d", rc);
    /* A peer that takes the connection and never answers HELLO. */
    char path[128];
    snprintf(path, sizeof(path), "%s/silent.sock", test_dir);
    int silent = unix_silent(path);
    CHECK(silent >= 0, "cannot listen on %s", path);
    snprintf(ep, sizeof(ep), "unix:%s", path);
    struct bound hello_bound = {2.5};
    rc = client_run(ep, env, 10, no_device_fast, &hello_bound);
    close(silent);
    CHECK(rc == 0, "a peer that never answers HELLO: client exit %d", rc);
    return 0;
}

/* ---- (i) vsock ---- */

/* 0 when this kernel connects a vsock socket to itself through CID 1 on port. */
static int vsock_loopback(unsigned port, char *why, size_t len)
{
    int l = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (l < 0) {
        snprintf(why, len, "socket(AF_VSOCK): %s", strerror(errno));
        return -1;
    }
    struct sockaddr_vm a = {.svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_ANY, .svm_port = port};
    if (bind(l, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(l, 1) < 0) {
        snprintf(why, len, "vsock bind/listen on port %u: %s", port, strerror(errno));
        close(l);
        return -1;
    }
    struct vr_endpoint e = {.transport = VR_VSOCK, .cid = 1, .port = port};
    char err[256];
    int c = vr_connect(&e, 1000, err, sizeof(err));
    close(l);
    if (c < 0) {
        snprintf(why, len, "no vsock loopback (CID 1): %.200s", err);
        return -1;
    }
    close(c);
    return 0;
}

int scenario_vsock(void)
{
    unsigned port = 20000u + (unsigned)getpid() % 20000u;
    char why[256];
    if (vsock_loopback(port, why, sizeof(why)) < 0) {
        note("SKIP: %s", why);
        return SKIP;
    }
    char ep[64];
    snprintf(ep, sizeof(ep), "vsock:1:%u", port + 1);
    struct daemon d;
    if (daemon_start(&d, ep, NULL))
        return 1;
    int rc = client_run(d.endpoint, NULL, 30, one_device, NULL);
    if (rc) {
        daemon_dump_log(&d);
        daemon_kill(&d);
        CHECK(0, "vsock client exited %d", rc);
    }
    return daemon_stop(&d);
}

/* ---- (j) SIGTERM ---- */

/* Connected and holding memory while the daemon is told to stop; afterwards its calls fail
 * instead of hanging. */
static int bystander(void *arg)
{
    struct chan *c = arg;
    struct cuapi cu;
    if (cu_open(&cu))
        return 1;
    CUdeviceptr p;
    CHECK_RC(cu.cuMemAlloc_v2(&p, 64 * MiB), CUDA_SUCCESS);
    chan_tell_harness(c, 'r');
    CHECK(chan_hear_harness(c, 60000) == 'g', "no word from the harness");
    uint64_t t0 = now_ns();
    int rc = cu.cuMemAlloc_v2(&p, MiB);
    CHECK(rc != CUDA_SUCCESS, "cuMemAlloc_v2 succeeded after the daemon stopped");
    rc = cu.cuMemcpyHtoD_v2(p, &t0, sizeof(t0));
    CHECK(rc != CUDA_SUCCESS, "cuMemcpyHtoD_v2 succeeded after the daemon stopped");
    CHECK(now_ns() - t0 < 5000000000ull, "calls after the daemon stopped took %.1f s",
          (double)(now_ns() - t0) / 1e9);
    return 0;
}

int scenario_sigterm(void)
{
    struct daemon d;
    struct chan c;
    CHECK(chan_open(&c) == 0, "pipe");
    if (daemon_start(&d, "unix", NULL))
        return 1;
    pid_t p = client_spawn(d.endpoint, NULL, 60, bystander, &c);
    if (chan_hear_from(&c, p, 30000) != 'r') {
        daemon_kill(&d);
        client_wait(p, 1);
        CHECK(0, "the client did not get ready");
    }
    /* A second daemon on the same live socket refuses to start; the first serves on. */
    const char *hostd = getenv("VGPU_TEST_HOSTD");
    const char *argv2[] = {hostd, "--sim", "--listen", d.endpoint, NULL};
    fflush(NULL);
    pid_t second = fork();
    if (second == 0) {
        int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
        dup2(null, 1);
        dup2(null, 2);
        execv(hostd, (char *const *)argv2);
        _exit(127);
    }
    int rc2 = client_wait(second, 10);
    struct raw r;
    char err[256];
    struct vr_ret re;
    int served = raw_connect(&r, d.endpoint, 2000, err, sizeof(err)) == 0 &&
                 raw_hello(&r, VR_API_CUDA, NULL, &re) == 0 && re.status == VR_OK;
    if (served)
        raw_close(&r);
    if (rc2 == 0 || rc2 == -1 || !served) {
        daemon_kill(&d);
        client_wait(p, 1);
        CHECK(0, "a second daemon on the live socket: exit %d (want non-zero); first serves: %d",
              rc2, served);
    }
    if (daemon_stop(&d)) {
        client_wait(p, 1);
        return 1;
    }
    note("# SIGTERM with a client connected: exit 0, socket removed");
    chan_tell(&c, 'g');
    int rc = client_wait(p, 30);
    CHECK(rc == 0, "the client of the stopped daemon exited %d", rc);
    /* An idle daemon too, on tcp. */
    if (daemon_start(&d, "tcp", NULL))
        return 1;
    return daemon_stop(&d);
}
