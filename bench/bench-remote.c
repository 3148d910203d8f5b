/* bench-remote: what the remote backend costs next to a plain socket of the same kind.
 *   vgpu-bench-remote [--hostd PATH] [--shim-dir DIR] [--transport unix|tcp|both]
 *                     [--endpoint EP] [--calls N] [--rounds R] [--copies N] [--size MIB]
 * Starts `vgpu-hostd --sim` on each transport (or uses the daemon at --endpoint, e.g. one on
 * a real GPU), and measures in one run, each against a raw socket of the same type served
 * by a plain echo process:
 *   - latency of a small call: VR_PING without bulk over the raw protocol (24+64 bytes out,
 *     24+40 back) and cuDeviceGetAttribute / cuMemGetInfo_v2 through libvgpu-cuda.so.1,
 *     against a ping-pong of 88 and 64 bytes: median and p99 in µs, the ratio, goal ≤ 1.5×;
 *   - throughput of cuMemcpyHtoD_v2 / cuMemcpyDtoH_v2 of SIZE MiB buffers through the shim,
 *     against streaming the same bytes over the socket: GB/s, goal ≥ 90 %.
 * Prints PASS/MISS per goal; exits non-zero only when something could not run. */
#include <errno.h>
#include <ftw.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "rawproto.h"

static struct {
    const char *shim_dir, *endpoint, *transport;
    unsigned calls, rounds, copies;
    size_t size;
} opt = {NULL, NULL, "both", 20000, 3, 8, 64 * MiB};

struct lat {
    double median_us, p99_us;
};

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static struct lat summarize(uint64_t *ns, unsigned n)
{
    qsort(ns, n, sizeof(*ns), cmp_u64);
    return (struct lat){(double)ns[n / 2] / 1e3, (double)ns[(size_t)n * 99 / 100] / 1e3};
}

static struct lat best(struct lat a, struct lat b)
{
    return a.median_us <= b.median_us ? a : b;
}

/* ---- the raw baseline: an echo process on the same socket type ---- */

/* Commands of the baseline server: 16 bytes, then the exchange. */
enum { PINGPONG = 1, SINK = 2, SOURCE = 3 };
struct cmd {
    uint64_t kind, n;
};

static int read_full(int fd, void *p, size_t n)
{
    for (char *c = p; n;) {
        ssize_t k = recv(fd, c, n, 0);
        if (k <= 0) {
            if (k < 0 && errno == EINTR)
                continue;
            return -1;
        }
        c += k;
        n -= (size_t)k;
    }
    return 0;
}

static int write_full(int fd, const void *p, size_t n)
{
    for (const char *c = p; n;) {
        ssize_t k = send(fd, c, n, MSG_NOSIGNAL);
        if (k <= 0) {
            if (k < 0 && errno == EINTR)
                continue;
            return -1;
        }
        c += k;
        n -= (size_t)k;
    }
    return 0;
}

static void serve(int fd, unsigned char *buf)
{
    struct cmd c;
    while (read_full(fd, &c, sizeof(c)) == 0) {
        if (c.kind == PINGPONG) {
            /* As a small call: a 88-byte request, a 64-byte reply, c.n times. */
            for (uint64_t i = 0; i < c.n; i++)
                if (read_full(fd, buf, 88) || write_full(fd, buf, 64))
                    return;
        } else if (c.kind == SINK) {
            if (read_full(fd, buf, c.n) || write_full(fd, buf, 64))
                return;
        } else if (c.kind == SOURCE) {
            if (write_full(fd, buf, c.n))
                return;
        }
    }
}

/* Forks the baseline server listening on ep; its pid. */
static pid_t echo_start(const char *ep)
{
    struct vr_endpoint e;
    char err[256];
    if (vr_endpoint_parse(ep, &e, err, sizeof(err)) < 0)
        return -1;
    int l = vr_listen(&e, err, sizeof(err));
    if (l < 0) {
        fprintf(stderr, "bench-remote: baseline listener %s: %s\n", ep, err);
        return -1;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        unsigned char *buf = malloc(opt.size);
        for (;;) {
            int fd = accept(l, NULL, NULL);
            if (fd < 0)
                _exit(0);
            int one = 1;
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
            serve(fd, buf);
            close(fd);
        }
    }
    close(l);
    return pid;
}

struct raw_result {
    struct lat pingpong, ping;
    double up_gbs, down_gbs;
};

/* What the measuring process found (shared memory): best of the rounds. */
struct shim_result {
    int ok;
    struct lat attr, meminfo;
    double h2d_gbs, d2h_gbs;
    struct raw_result raw;
};

/* The endpoints of the transport being measured. */
static const char *daemon_ep, *base_ep;

static double gbs(size_t bytes, unsigned times, uint64_t ns)
{
    return (double)bytes * times / (double)ns;
}

static struct shim_result *shim_res;

/* The measuring process's connections: the baseline server (fd -1: none) and the daemon. */
struct conns {
    int base;
    struct raw daemon;
    struct cuapi cu;
    CUdeviceptr dev;
    unsigned char *buf;
};

enum { L_PINGPONG, L_PING, L_ATTR, L_MEMINFO, N_LAT };

/* One call of each kind in turn, calls times (after 100 untimed): a busy machine disturbs
 * all of them alike. */
static int latency_round(struct conns *c, uint64_t *ns[N_LAT])
{
    unsigned char small[128] = {0};
    struct cmd cmd = {PINGPONG, opt.calls + 100};
    if (c->base >= 0 && write_full(c->base, &cmd, sizeof(cmd)))
        return -1;
    struct vr_args a = {{0}};
    struct vr_ret re;
    for (unsigned i = 0; i < opt.calls + 100; i++) {
        uint64_t t[N_LAT + 1];
        int v;
        size_t fr, tot;
        t[0] = now_ns();
        if (c->base >= 0 && (write_full(c->base, small, 88) || read_full(c->base, small, 64)))
            return -1;
        t[1] = now_ns();
        if (raw_call(&c->daemon, VR_PING, &a, NULL, 0, &re, NULL, 0, NULL) < 0 || re.status)
            return -1;
        t[2] = now_ns();
        if (c->cu.cuDeviceGetAttribute(&v, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, 0))
            return -1;
        t[3] = now_ns();
        if (c->cu.cuMemGetInfo_v2(&fr, &tot))
            return -1;
        t[4] = now_ns();
        if (i >= 100)
            for (int k = 0; k < N_LAT; k++)
                ns[k][i - 100] = t[k + 1] - t[k];
    }
    struct lat l[N_LAT];
    for (int k = 0; k < N_LAT; k++)
        l[k] = summarize(ns[k], opt.calls);
    struct shim_result *r = shim_res;
    r->raw.pingpong = best(r->raw.pingpong, l[L_PINGPONG]);
    r->raw.ping = best(r->raw.ping, l[L_PING]);
    r->attr = best(r->attr, l[L_ATTR]);
    r->meminfo = best(r->meminfo, l[L_MEMINFO]);
    return 0;
}

/* SIZE bytes up and down, raw and through the shim in turn, copies times (after one warm-up). */
static int throughput_round(struct conns *c)
{
    unsigned char ack[64];
    uint64_t sum[4] = {0}; /* raw up, shim H2D, raw down, shim D2H */
    for (unsigned i = 0; i < opt.copies + 1; i++) {
        uint64_t t[5];
        t[0] = now_ns();
        struct cmd cmd = {SINK, opt.size};
        if (c->base >= 0 && (write_full(c->base, &cmd, sizeof(cmd)) ||
                             write_full(c->base, c->buf, opt.size) || read_full(c->base, ack, 64)))
            return -1;
        t[1] = now_ns();
        if (c->cu.cuMemcpyHtoD_v2(c->dev, c->buf, opt.size))
            return -1;
        t[2] = now_ns();
        cmd = (struct cmd){SOURCE, opt.size};
        if (c->base >= 0 &&
            (write_full(c->base, &cmd, sizeof(cmd)) || read_full(c->base, c->buf, opt.size)))
            return -1;
        t[3] = now_ns();
        if (c->cu.cuMemcpyDtoH_v2(c->buf, c->dev, opt.size))
            return -1;
        t[4] = now_ns();
        for (int k = 0; i && k < 4; k++)
            sum[k] += t[k + 1] - t[k];
    }
    struct shim_result *r = shim_res;
    double g[4];
    for (int k = 0; k < 4; k++)
        g[k] = gbs(opt.size, opt.copies, sum[k] ? sum[k] : 1);
    r->raw.up_gbs = g[0] > r->raw.up_gbs ? g[0] : r->raw.up_gbs;
    r->h2d_gbs = g[1] > r->h2d_gbs ? g[1] : r->h2d_gbs;
    r->raw.down_gbs = g[2] > r->raw.down_gbs ? g[2] : r->raw.down_gbs;
    r->d2h_gbs = g[3] > r->d2h_gbs ? g[3] : r->d2h_gbs;
    return 0;
}

/* ---- the measuring process (a child: the shim reads its configuration once) ---- */

static int measure(void *arg)
{
    (void)arg;
    struct conns c = {.base = -1};
    char err[256] = "";
    struct vr_ret re;
    if (cu_open(&c.cu))
        return 1;
    if (raw_connect(&c.daemon, daemon_ep, 2000, err, sizeof(err)) < 0 ||
        raw_hello(&c.daemon, VR_API_CUDA, NULL, &re) < 0 || re.status != VR_OK) {
        fprintf(stderr, "bench-remote: %s: cannot connect or HELLO (%s)\n", daemon_ep, err);
        return 1;
    }
    struct raw b;
    if (base_ep) {
        if (raw_connect(&b, base_ep, 2000, err, sizeof(err)) < 0) {
            fprintf(stderr, "bench-remote: baseline %s: %s\n", base_ep, err);
            return 1;
        }
        c.base = b.fd;
    }
    uint64_t *ns[N_LAT];
    for (int k = 0; k < N_LAT; k++)
        if (!(ns[k] = malloc(sizeof(uint64_t) * opt.calls)))
            return 1;
    c.buf = malloc(opt.size);
    if (!c.buf || c.cu.cuMemAlloc_v2(&c.dev, opt.size) != CUDA_SUCCESS)
        return 1;
    memset(c.buf, 2, opt.size);
    struct lat worst = {1e30, 1e30};
    shim_res->raw.pingpong = shim_res->raw.ping = shim_res->attr = shim_res->meminfo = worst;
    for (unsigned round = 0; round < opt.rounds; round++)
        if (latency_round(&c, ns) < 0 || throughput_round(&c) < 0) {
            fprintf(stderr, "bench-remote: a call failed in round %u\n", round);
            return 1;
        }
    shim_res->ok = 1;
    return 0;
}

/* ---- report ---- */

static void lat_row(const char *tr, const char *what, struct lat l, struct lat base)
{
    double ratio = l.median_us / base.median_us;
    printf("%-6s %-34s %9.1f %9.1f %9.1f %9.1f %6.2fx  %s\n", tr, what, l.median_us, l.p99_us,
           base.median_us, base.p99_us, ratio, ratio <= 1.5 ? "PASS" : "MISS");
}

static void tput_row(const char *tr, const char *what, double got, double base)
{
    double pct = 100.0 * got / base;
    printf("%-6s %-34s %8.2f GB/s  raw %8.2f GB/s  %5.1f %%  %s\n", tr, what, got, base, pct,
           pct >= 90.0 ? "PASS" : "MISS");
}

/* One transport: the daemon's endpoint and a baseline endpoint of the same kind (NULL: none). */
static int bench_transport(const char *tr, const char *dep, const char *bep)
{
    pid_t echo = bep ? echo_start(bep) : -1;
    daemon_ep = dep;
    base_ep = echo > 0 ? bep : NULL;
    memset(shim_res, 0, sizeof(*shim_res));
    sleep_ms(50);
    int rc = client_run(dep, NULL, 600, measure, NULL);
    if (echo > 0) {
        kill(echo, SIGKILL);
        waitpid(echo, NULL, 0);
    }
    if (rc || !shim_res->ok) {
        fprintf(stderr, "bench-remote: the %s measurements could not run\n", tr);
        return -1;
    }
    struct raw_result raw = shim_res->raw;
    if (!base_ep) {
        printf("%-6s (no raw baseline for %s)\n", tr, dep);
        raw.pingpong = (struct lat){1e30, 1e30};
        raw.up_gbs = raw.down_gbs = 1e30;
    }
    printf("%-6s %-34s %9s %9s %9s %9s %7s\n", "", "latency (µs)", "median", "p99", "raw med",
           "raw p99", "ratio");
    lat_row(tr, "PING, raw protocol", raw.ping, raw.pingpong);
    lat_row(tr, "cuDeviceGetAttribute (shim)", shim_res->attr, raw.pingpong);
    lat_row(tr, "cuMemGetInfo_v2 (shim)", shim_res->meminfo, raw.pingpong);
    char what[64];
    snprintf(what, sizeof(what), "cuMemcpyHtoD_v2 %zu MiB (shim)", opt.size / MiB);
    tput_row(tr, what, shim_res->h2d_gbs, raw.up_gbs);
    snprintf(what, sizeof(what), "cuMemcpyDtoH_v2 %zu MiB (shim)", opt.size / MiB);
    tput_row(tr, what, shim_res->d2h_gbs, raw.down_gbs);
    if (shim_res->attr.median_us < 0.5)
        printf("%-6s note: cuDeviceGetAttribute under 0.5 µs is answered by the shim without a "
               "round trip\n",
               tr);
    return 0;
}

static int rm_entry(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
    (void)sb;
    (void)type;
    (void)ftw;
    remove(path);
    return 0;
}

static int usage(void)
{
    fprintf(stderr, "usage: vgpu-bench-remote [--hostd PATH] [--shim-dir DIR] "
                    "[--transport unix|tcp|both] [--endpoint EP] [--calls N] [--rounds R] "
                    "[--copies N] [--size MIB]\n");
    return 2;
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v)
            return usage();
        i++;
        if (!strcmp(a, "--hostd"))
            setenv("VGPU_TEST_HOSTD", v, 1);
        else if (!strcmp(a, "--shim-dir"))
            opt.shim_dir = v;
        else if (!strcmp(a, "--transport"))
            opt.transport = v;
        else if (!strcmp(a, "--endpoint"))
            opt.endpoint = v;
        else if (!strcmp(a, "--calls"))
            opt.calls = (unsigned)strtoul(v, NULL, 10);
        else if (!strcmp(a, "--rounds"))
            opt.rounds = (unsigned)strtoul(v, NULL, 10);
        else if (!strcmp(a, "--copies"))
            opt.copies = (unsigned)strtoul(v, NULL, 10);
        else if (!strcmp(a, "--size"))
            opt.size = strtoul(v, NULL, 10) * MiB;
        else
            return usage();
    }
    if (opt.calls < 100 || !opt.rounds || !opt.copies || !opt.size)
        return usage();
    if (opt.shim_dir)
        setenv("VGPU_TEST_SHIM_DIR", opt.shim_dir, 1);
    signal(SIGPIPE, SIG_IGN);
    snprintf(test_dir, sizeof(test_dir), "/tmp/vgpu-bench-remote-XXXXXX");
    if (!mkdtemp(test_dir)) {
        perror(test_dir);
        return 1;
    }
    shim_res = shared_alloc(sizeof(*shim_res));
    printf("bench-remote: %u calls x %u rounds (best median), %u x %zu MiB copies; "
           "goals: latency <= 1.5x raw, throughput >= 90 %% of raw\n",
           opt.calls, opt.rounds, opt.copies, opt.size / MiB);
    int rc = 0;
    char base[160];
    if (opt.endpoint) {
        const char *tr = !strncmp(opt.endpoint, "unix:", 5)  ? "unix"
                         : !strncmp(opt.endpoint, "tcp:", 4) ? "tcp"
                                                             : "other";
        if (!strcmp(tr, "unix"))
            snprintf(base, sizeof(base), "unix:%s/echo.sock", test_dir);
        else
            snprintf(base, sizeof(base), "tcp:127.0.0.1:%u", free_tcp_port());
        printf("daemon: %s (already running)\n", opt.endpoint);
        rc = bench_transport(tr, opt.endpoint, strcmp(tr, "other") ? base : NULL);
    } else {
        static const char *const trs[] = {"unix", "tcp"};
        for (size_t k = 0; k < 2 && !rc; k++) {
            if (strcmp(opt.transport, "both") && strcmp(opt.transport, trs[k]))
                continue;
            struct daemon d;
            if (daemon_start(&d, trs[k], NULL)) {
                rc = -1;
                break;
            }
            if (k == 0)
                snprintf(base, sizeof(base), "unix:%s/echo.sock", test_dir);
            else
                snprintf(base, sizeof(base), "tcp:127.0.0.1:%u", free_tcp_port());
            rc = bench_transport(trs[k], d.endpoint, base);
            if (daemon_stop(&d))
                rc = -1;
        }
    }
    nftw(test_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return rc ? 1 : 0;
}
