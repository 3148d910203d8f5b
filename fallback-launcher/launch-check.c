/* launch-check: the pre-exec check of vgpu-launch. Loading happens in a child so a
 * library that crashes, hangs or leaves state behind cannot harm the launcher, and so
 * nothing of it could be mistaken for a pre-load: exec replaces the address space. */
#include "launch-check.h"
#include "vgpu-trust.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* The child's reply, one line each: "loading PATH" before each dlopen(), then "ok" or
 * "fail REASON". The last line says where a child that crashed or hung stopped. */
#define REPLY_MAX (4 * PATH_MAX + 1024)

static const struct {
    const char *file;
    const char *symbols[3]; /* NULL-terminated */
} objects[] = {
    {"libvgpu-cuda.so.1", {"vgpu_shim_abi_version", "cuInit", NULL}},
    {"libvgpu-nvml.so.1", {"vgpu_shim_abi_version", "nvmlInit_v2", NULL}},
    {"libvgpu-audit.so", {"la_version", "la_objsearch", NULL}},
};

/* In the child: writes the line fmt... to fd, control characters as '?'. */
static void tell(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void tell(int fd, const char *fmt, ...)
{
    char line[PATH_MAX + 512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    size_t len = strlen(line);
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)line[i] < 0x20 || line[i] == 0x7f)
            line[i] = '?';
    line[len++] = '\n';
    for (size_t off = 0; off < len;) {
        ssize_t w = write(fd, line + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            _exit(1);
        off += (size_t)w;
    }
}

/* In the child: loads each object in turn and reports to fd; never calls into them. */
static __attribute__((noreturn)) void child(const char *dir, int fd)
{
    for (size_t i = 0; i < sizeof(objects) / sizeof(objects[0]); i++) {
        char path[PATH_MAX];
        int n = snprintf(path, sizeof(path), "%s/%s", strcmp(dir, "/") ? dir : "", objects[i].file);
        if (n < 0 || (size_t)n >= sizeof(path)) {
            tell(fd, "fail %s/%s: the path is too long", dir, objects[i].file);
            _exit(0);
        }
        tell(fd, "loading %s", path);
        void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
        if (!h) {
            const char *err = dlerror();
            tell(fd, "fail %s", err ? err : "dlopen failed");
            _exit(0);
        }
        for (const char *const *sym = objects[i].symbols; *sym; sym++)
            if (!dlsym(h, *sym)) {
                tell(fd, "fail %s does not export %s", path, *sym);
                _exit(0);
            }
    }
    tell(fd, "ok");
    _exit(0);
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Reads the child's reply from fd until end of file into buf (cut to size, and
 * NUL-terminated also on failure). Returns 0, -ETIMEDOUT past the deadline, or -errno. */
static int read_reply(int fd, char *buf, size_t size)
{
    long long deadline = now_ms() + LAUNCH_CHECK_TIMEOUT_MS;
    size_t n = 0;
    char sink[256];
    buf[0] = '\0';
    for (;;) {
        long long left = deadline - now_ms();
        if (left <= 0)
            return -ETIMEDOUT;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int r = poll(&p, 1, (int)left);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -errno;
        if (r == 0)
            return -ETIMEDOUT;
        char *to = n + 1 < size ? buf + n : sink;
        size_t room = n + 1 < size ? size - 1 - n : sizeof(sink);
        ssize_t got = read(fd, to, room);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0)
            return -errno;
        if (got == 0)
            return 0;
        if (to == buf + n) {
            n += (size_t)got;
            buf[n] = '\0';
        }
    }
}

/* Waits for the child. Returns its wait status, or -1 when it cannot be had (SIGCHLD
 * ignored by whoever started us: the child was reaped for us). */
static int reap(pid_t pid)
{
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return -1;
    return status;
}

/* The last complete line of the reply (its final '\n' removed), or "". */
static const char *last_line(char *reply)
{
    size_t n = strlen(reply);
    if (!n || reply[n - 1] != '\n')
        return ""; /* cut short: trust nothing */
    reply[--n] = '\0';
    char *nl = strrchr(reply, '\n');
    return nl ? nl + 1 : reply;
}

/* Why the check failed, from the last line and how the child ended. */
static void explain(const char *dir, const char *line, int r, int status, char *why, size_t size)
{
    const char *loading = !strncmp(line, "loading ", 8) ? line + 8 : NULL;
    if (!strncmp(line, "fail ", 5))
        snprintf(why, size, "%s", line + 5);
    else if (r == -ETIMEDOUT)
        snprintf(why, size, "loading %s took more than %d s", loading ? loading : dir,
                 LAUNCH_CHECK_TIMEOUT_MS / 1000);
    else if (r < 0)
        snprintf(why, size, "cannot read the result of the check: %s", strerror(-r));
    else if (status != -1 && WIFSIGNALED(status))
        snprintf(why, size, "loading %s killed the check (signal %d, %s)", loading ? loading : dir,
                 WTERMSIG(status), strsignal(WTERMSIG(status)));
    else if (loading)
        snprintf(why, size, "loading %s ended the check without a result", loading);
    else
        snprintf(why, size, "the check of the shims in %s ended without a result", dir);
}

/* The trust rule of vgpu-patch (DESIGN §7): what LD_AUDIT loads into the program must
 * not be replaceable by another user. Missing files are left to the load check. */
static int check_trust(const char *dir, char *why, size_t size)
{
    for (size_t i = 0; i < sizeof(objects) / sizeof(objects[0]); i++) {
        char path[PATH_MAX];
        snprintf(path, sizeof(path), "%s/%s", dir, objects[i].file);
        if (access(path, F_OK) < 0)
            continue;
        int r = vgpu_trust_check(path, why, size);
        if (r < 0)
            return r;
    }
    return 0;
}

int launch_check(const char *dir, char *why, size_t size)
{
    static char reply[REPLY_MAX];
    int r = check_trust(dir, why, size);
    if (r < 0)
        return r;
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) < 0) {
        int err = errno;
        snprintf(why, size, "cannot make a pipe for the check: %s", strerror(err));
        return -err;
    }
    fflush(NULL); /* nothing buffered may be written twice */
    pid_t pid = fork();
    if (pid < 0) {
        int err = errno;
        close(fds[0]);
        close(fds[1]);
        snprintf(why, size, "cannot fork the check: %s", strerror(err));
        return -err;
    }
    if (pid == 0) {
        close(fds[0]);
        child(dir, fds[1]);
    }
    close(fds[1]);
    r = read_reply(fds[0], reply, sizeof(reply));
    close(fds[0]);
    if (r == -ETIMEDOUT)
        kill(pid, SIGKILL);
    int status = reap(pid);
    const char *line = last_line(reply);
    bool exited_0 = status == -1 || (WIFEXITED(status) && WEXITSTATUS(status) == 0);
    if (r == 0 && exited_0 && !strcmp(line, "ok"))
        return 0;
    explain(dir, line, r, status, why, size);
    return r < 0 ? r : -ENOEXEC;
}
