/* shimtest: run shim scenarios in children, collect what they print. */
#include "shimtest.h"

#include <dlfcn.h>
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

extern char **environ;

void st_fail(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "CHECK FAILED %s:%d: ", file, line);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    fflush(NULL);
    _exit(1);
}

/* Whether a variable configures a shim or a dummy (the tests' own VGPU_TEST_* and
 * VGPU_SOURCE_DIR stay). */
static bool is_config(const char *e)
{
    if (!strncmp(e, "VGPU_TEST_", 10) || !strncmp(e, "VGPU_SOURCE_DIR=", 16))
        return false;
    return !strncmp(e, "VGPU_", 5) || !strncmp(e, "DUMMY_", 6);
}

/* Drops every configuring variable, then applies env. */
static void set_environment(const char *const *env)
{
    for (bool again = true; again;) {
        again = false;
        for (char **e = environ; *e; e++)
            if (is_config(*e)) {
                char name[256];
                size_t n = strcspn(*e, "=");
                snprintf(name, sizeof(name), "%.*s", (int)n, *e);
                unsetenv(name);
                again = true;
                break;
            }
    }
    setenv("VGPU_CONFIG", "/nonexistent/vgpu-test/vgpu.conf", 1);
    for (; env && *env; env++)
        putenv((char *)*env);
}

/* Reads both pipes to the end into the result. */
static void drain(int out, int err, struct st_result *r)
{
    struct pollfd p[2] = {{.fd = out, .events = POLLIN}, {.fd = err, .events = POLLIN}};
    char *buf[2] = {r->out, r->err};
    size_t cap[2] = {sizeof(r->out) - 1, sizeof(r->err) - 1}, len[2] = {0, 0};
    int open = 2;
    while (open > 0) {
        if (poll(p, 2, -1) < 0 && errno != EINTR)
            break;
        for (int i = 0; i < 2; i++) {
            if (p[i].fd < 0 || !(p[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            char tmp[4096];
            ssize_t k = read(p[i].fd, tmp, sizeof(tmp));
            if (k <= 0) {
                close(p[i].fd);
                p[i].fd = -1;
                open--;
                continue;
            }
            size_t take = (size_t)k < cap[i] - len[i] ? (size_t)k : cap[i] - len[i];
            memcpy(buf[i] + len[i], tmp, take);
            len[i] += take;
        }
    }
    r->out[len[0]] = '\0';
    r->err[len[1]] = '\0';
}

void st_run(void (*fn)(void *arg), void *arg, const char *const *env, struct st_result *ret)
{
    int out[2], err[2];
    assert_int_equal(pipe(out), 0);
    assert_int_equal(pipe(err), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(out[1], STDOUT_FILENO);
        dup2(err[1], STDERR_FILENO);
        close(out[0]);
        close(err[0]);
        close(out[1]);
        close(err[1]);
        set_environment(env);
        fn(arg);
        fflush(NULL);
        _exit(0);
    }
    close(out[1]);
    close(err[1]);
    *ret = (struct st_result){0};
    drain(out[0], err[0], ret);
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    ret->status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

void st_assert_ok(const struct st_result *r)
{
    if (r->status != 0)
        print_error("child exited %d\n--- stdout\n%s--- stderr\n%s", r->status, r->out, r->err);
    assert_int_equal(r->status, 0);
}

unsigned st_count(const char *haystack, const char *needle)
{
    unsigned n = 0;
    for (const char *p = haystack; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

static const char *env_dir(const char *name)
{
    const char *v = getenv(name);
    if (!v || !*v) {
        fprintf(stderr, "%s is not set (run the tests through ctest)\n", name);
        exit(1);
    }
    return v;
}

const char *st_shim_dir(void)
{
    return env_dir("VGPU_TEST_SHIM_DIR");
}

const char *st_dummy_dir(void)
{
    return env_dir("VGPU_TEST_DUMMY_DIR");
}

char *st_path(char *buf, size_t n, const char *dir, const char *file)
{
    snprintf(buf, n, "%s/%s", dir, file);
    return buf;
}

void *st_open(const char *file)
{
    char path[4096];
    void *h = dlopen(st_path(path, sizeof(path), st_shim_dir(), file), RTLD_NOW | RTLD_GLOBAL);
    if (!h)
        st_fail(__FILE__, __LINE__, "dlopen %s: %s", path, dlerror());
    return h;
}

void *st_sym(void *h, const char *name)
{
    void *p = dlsym(h, name);
    if (!p)
        st_fail(__FILE__, __LINE__, "no symbol %s", name);
    return p;
}

void st_stat(void *h, const char *prefix, const char *entry, unsigned long *calls,
             unsigned long *unserved)
{
    char fn[64];
    snprintf(fn, sizeof(fn), "vgpu_%s_stat", prefix);
    int (*stat)(unsigned, const char **, unsigned long *, unsigned long *) =
        (int (*)(unsigned, const char **, unsigned long *, unsigned long *))st_sym(h, fn);
    const char *name;
    for (unsigned i = 0; stat(i, &name, calls, unserved); i++)
        if (!strcmp(name, entry))
            return;
    st_fail(__FILE__, __LINE__, "%s has no entry %s", fn, entry);
}

static const char *dummy_file(const char *api)
{
    return strcmp(api, "cuda") == 0 ? "libcuda.so.1" : "libnvidia-ml.so.1";
}

const char *st_native(const char *api)
{
    static char cuda[4096], nvml[4096];
    char *buf = strcmp(api, "cuda") == 0 ? cuda : nvml;
    snprintf(buf, sizeof(cuda), "VGPU_NATIVE_%s=%s/%s", buf == cuda ? "CUDA" : "NVML",
             st_dummy_dir(), dummy_file(api));
    return buf;
}

unsigned long st_dummy_calls(const char *api, const char *name)
{
    char path[4096], fn[64];
    /* RTLD_NOLOAD: the shim's backend loaded it, or this fails. */
    void *h = dlopen(st_path(path, sizeof(path), st_dummy_dir(), dummy_file(api)),
                     RTLD_NOW | RTLD_NOLOAD);
    if (!h)
        st_fail(__FILE__, __LINE__, "the dummy %s driver is not loaded", api);
    snprintf(fn, sizeof(fn), "dummy_%s_calls", api);
    unsigned long (*calls)(const char *) = (unsigned long (*)(const char *))st_sym(h, fn);
    return calls(name);
}
