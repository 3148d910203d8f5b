/* harness: the daemon child, client processes and helpers the scenarios share (harness.h). */
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "rawproto.h"

char test_dir[80];

void fail_at(const char *file, int line, const char *fmt, ...)
{
    const char *base = strrchr(file, '/');
    fprintf(stderr, "FAIL %s:%d: ", base ? base + 1 : file, line);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

void note(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stdout, fmt, ap);
    va_end(ap);
    fputc('\n', stdout);
    fflush(stdout);
}

uint64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

void sleep_ms(unsigned ms)
{
    struct timespec t = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&t, &t) < 0 && errno == EINTR)
        ;
}

unsigned free_tcp_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t l = sizeof(a);
    unsigned port = 0;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &l) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

void daemon_dump_log(const struct daemon *d)
{
    FILE *f = fopen(d->log, "re");
    if (!f)
        return;
    char line[512];
    fprintf(stderr, "---- %s ----\n", d->log);
    for (int n = 0; n < 200 && fgets(line, sizeof(line), f); n++)
        fputs(line, stderr);
    fprintf(stderr, "----\n");
    fclose(f);
}

bool daemon_alive(struct daemon *d)
{
    if (d->pid <= 0)
        return false;
    int st;
    pid_t w = waitpid(d->pid, &st, WNOHANG);
    if (w == d->pid) {
        fprintf(stderr, "vgpu-hostd (pid %d) is gone: %s %d\n", (int)d->pid,
                WIFEXITED(st) ? "exit" : "signal", WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
        d->pid = 0;
        return false;
    }
    return true;
}

int daemon_start(struct daemon *d, const char *transport, const char *const *extra)
{
    static unsigned serial;
    const char *hostd = getenv("VGPU_TEST_HOSTD");
    CHECK(hostd && *hostd, "VGPU_TEST_HOSTD is not set");
    CHECK(access(hostd, X_OK) == 0, "%s: %s", hostd, strerror(errno));
    memset(d, 0, sizeof(*d));
    serial++;
    char listen[160];
    if (!strcmp(transport, "unix")) {
        snprintf(d->sock, sizeof(d->sock), "%s/hostd%u.sock", test_dir, serial);
        snprintf(d->endpoint, sizeof(d->endpoint), "unix:%s", d->sock);
        snprintf(listen, sizeof(listen), "%s", d->endpoint);
    } else if (!strcmp(transport, "tcp")) {
        unsigned port = free_tcp_port();
        CHECK(port, "no free loopback port");
        snprintf(d->endpoint, sizeof(d->endpoint), "tcp:127.0.0.1:%u", port);
        snprintf(listen, sizeof(listen), "%s", d->endpoint);
    } else {
        snprintf(d->endpoint, sizeof(d->endpoint), "%s", transport);
        snprintf(listen, sizeof(listen), "%s", transport);
        if (!strncmp(transport, "vsock:", 6)) /* the daemon listens on any CID */
            snprintf(listen, sizeof(listen), "vsock:any:%s", strrchr(transport, ':') + 1);
    }
    snprintf(d->log, sizeof(d->log), "%s/hostd%u.log", test_dir, serial);

    const char *argv[32] = {hostd, "--sim", "--listen", listen};
    size_t argc = 4;
    for (; extra && *extra && argc < 31; extra++)
        argv[argc++] = *extra;
    argv[argc] = NULL;
    note("# starting %s --sim --listen %s%s", hostd, listen, argc > 4 ? " ..." : "");
    fflush(NULL);
    pid_t pid = fork();
    CHECK(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        int fd = open(d->log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execv(hostd, (char *const *)argv);
        _exit(127);
    }
    d->pid = pid;
    /* Ready when it accepts a connection. */
    char err[256] = "";
    for (uint64_t t0 = now_ns(); now_ns() - t0 < 10000000000ull; sleep_ms(20)) {
        if (!daemon_alive(d)) {
            daemon_dump_log(d);
            CHECK(0, "vgpu-hostd exited before it listened on %s", listen);
        }
        struct raw r;
        if (raw_connect(&r, d->endpoint, 500, err, sizeof(err)) == 0) {
            raw_close(&r);
            return 0;
        }
    }
    daemon_dump_log(d);
    daemon_kill(d);
    CHECK(0, "vgpu-hostd did not accept on %s within 10 s (%s)", d->endpoint, err);
}

int daemon_stop(struct daemon *d)
{
    CHECK(daemon_alive(d), "vgpu-hostd died before SIGTERM");
    CHECK(kill(d->pid, SIGTERM) == 0, "kill: %s", strerror(errno));
    int st = 0;
    pid_t w = 0;
    for (int i = 0; i < 1000 && (w = waitpid(d->pid, &st, WNOHANG)) == 0; i++)
        sleep_ms(10);
    if (w != d->pid) {
        daemon_dump_log(d);
        daemon_kill(d);
        CHECK(0, "vgpu-hostd did not exit within 10 s of SIGTERM");
    }
    d->pid = 0;
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        daemon_dump_log(d);
    CHECK(WIFEXITED(st), "vgpu-hostd ended by signal %d on SIGTERM", WTERMSIG(st));
    CHECK(WEXITSTATUS(st) == 0, "vgpu-hostd exited %d on SIGTERM, expected 0", WEXITSTATUS(st));
    struct stat sb;
    CHECK(!d->sock[0] || lstat(d->sock, &sb) < 0, "vgpu-hostd left its socket %s behind", d->sock);
    return 0;
}

void daemon_kill(struct daemon *d)
{
    if (d->pid > 0) {
        kill(d->pid, SIGKILL);
        waitpid(d->pid, NULL, 0);
    }
    d->pid = 0;
}

pid_t client_spawn(const char *endpoint, const char *const *env, unsigned timeout_s, client_fn *fn,
                   void *arg)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    setenv("VGPU_CONFIG", "/nonexistent/vgpu.conf", 1);
    setenv("VGPU_BACKEND", "remote", 1);
    setenv("VGPU_ENDPOINT", endpoint, 1);
    unsetenv("CUDA_VISIBLE_DEVICES");
    unsetenv("VGPU_MEMORY_LIMIT");
    for (; env && *env; env++) {
        const char *eq = strchr(*env, '=');
        if (!eq) {
            unsetenv(*env);
            continue;
        }
        char name[128];
        snprintf(name, sizeof(name), "%.*s", (int)(eq - *env), *env);
        setenv(name, eq + 1, 1);
    }
    signal(SIGALRM, SIG_DFL);
    alarm(timeout_s);
    int rc = fn(arg);
    fflush(NULL);
    _exit(rc);
}

int client_wait(pid_t pid, unsigned timeout_s)
{
    if (pid < 0)
        return -1;
    int st;
    for (uint64_t t0 = now_ns();; sleep_ms(5)) {
        pid_t w = waitpid(pid, &st, WNOHANG);
        if (w == pid)
            break;
        if (now_ns() - t0 > (uint64_t)timeout_s * 1000000000ull) {
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
            return -1;
        }
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

int client_run(const char *endpoint, const char *const *env, unsigned timeout_s, client_fn *fn,
               void *arg)
{
    int rc = client_wait(client_spawn(endpoint, env, timeout_s, fn, arg), timeout_s + 5);
    if (rc == 128 + SIGALRM)
        fprintf(stderr, "client: hung (watchdog of %u s fired)\n", timeout_s);
    return rc;
}

void *shared_alloc(size_t n)
{
    void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        perror("mmap");
        exit(1);
    }
    return p;
}

int chan_open(struct chan *c)
{
    return pipe2(c->up, O_CLOEXEC) < 0 || pipe2(c->down, O_CLOEXEC) < 0 ? -1 : 0;
}

static int put(int fd, char what)
{
    return write(fd, &what, 1) == 1 ? 0 : -1;
}

static int get(int fd, unsigned timeout_ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int n;
    do
        n = poll(&p, 1, (int)timeout_ms);
    while (n < 0 && errno == EINTR);
    char c;
    if (n <= 0 || read(fd, &c, 1) != 1)
        return -1;
    return (unsigned char)c;
}

int chan_hear_from(struct chan *c, pid_t pid, unsigned timeout_ms)
{
    for (unsigned waited = 0; waited < timeout_ms; waited += 100) {
        int r = get(c->up[0], 100);
        if (r >= 0)
            return r;
        siginfo_t si = {0};
        if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid == pid)
            return get(c->up[0], 0); /* it ended: only what it wrote before */
    }
    return -1;
}

int chan_tell(struct chan *c, char what)
{
    return put(c->down[1], what);
}

int chan_tell_harness(struct chan *c, char what)
{
    return put(c->up[1], what);
}

int chan_hear_harness(struct chan *c, unsigned timeout_ms)
{
    return get(c->down[0], timeout_ms);
}

int cu_open(struct cuapi *cu)
{
    CHECK(cuapi_load(cu, NULL) == 0, "cannot load the CUDA shim");
    CHECK_RC(cu->cuInit(0), CUDA_SUCCESS);
    CUdevice dev;
    CHECK_RC(cu->cuDeviceGet(&dev, 0), CUDA_SUCCESS);
    CUcontext ctx;
    CHECK_RC(cu->cuDevicePrimaryCtxRetain(&ctx, dev), CUDA_SUCCESS);
    CHECK(ctx, "cuDevicePrimaryCtxRetain gave a NULL context");
    CHECK_RC(cu->cuCtxSetCurrent(ctx), CUDA_SUCCESS);
    return 0;
}

void fill_random(void *buf, size_t n, uint64_t seed)
{
    uint64_t s = seed * 0x9e3779b97f4a7c15ull + 1, *w = buf;
    size_t words = n / 8;
    for (size_t i = 0; i < words; i++) {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        w[i] = s;
    }
    for (size_t i = words * 8; i < n; i++)
        ((unsigned char *)buf)[i] = (unsigned char)(s >> (8 * (i % 8)));
}
