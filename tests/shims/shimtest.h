/* shimtest: helpers for the shim tests. A shim reads its configuration once per
 * process, so each scenario runs in a child: st_run() forks, sets the environment the
 * scenario names (nothing else of VGPU_* or DUMMY_* leaks in, and VGPU_CONFIG points
 * at a file that does not exist unless the scenario names one), runs the scenario and
 * collects its exit status, stdout and stderr. Inside a child, ST_CHECK() reports a
 * failed check on stderr and exits 1; cmocka assertions are for the parent. */
#ifndef VGPU_SHIMTEST_H
#define VGPU_SHIMTEST_H

#include <stdbool.h>
#include <stddef.h>

struct st_result {
    int status; /* exit code, or 128 + signal */
    char out[4096];
    char err[16384];
};

/* Runs fn(arg) in a child with env (NULL-terminated "NAME=value" list). */
void st_run(void (*fn)(void *arg), void *arg, const char *const *env, struct st_result *ret);
/* Asserts (cmocka) that the child exited 0, printing what it wrote when it did not. */
void st_assert_ok(const struct st_result *r);
/* How often needle occurs in haystack. */
unsigned st_count(const char *haystack, const char *needle);

/* Paths from the test environment: the shim dir, the dummy driver dir, sources. */
const char *st_shim_dir(void);
const char *st_dummy_dir(void);
/* "<dir>/<file>" in a static buffer per call site; the caller copies it if needed. */
char *st_path(char *buf, size_t n, const char *dir, const char *file);

/* "VGPU_NATIVE_CUDA=<the dummy libcuda.so.1>" for api "cuda", the NVML one for "nvml":
 * the native backend pointed at the dummy driver (a static string). */
const char *st_native(const char *api);
/* In a child: how often the dummy driver's own implementation of name ran. */
unsigned long st_dummy_calls(const char *api, const char *name);

/* In a child: dlopen the shim (RTLD_NOW | RTLD_GLOBAL, as a DT_NEEDED entry would
 * be), or exit 1. */
void *st_open(const char *file);
/* In a child: dlsym, or exit 1 naming the symbol. */
void *st_sym(void *h, const char *name);
/* In a child: the shim's statistics for an entry point (vgpu_<prefix>_stat). */
void st_stat(void *h, const char *prefix, const char *entry, unsigned long *calls,
             unsigned long *unserved);

void st_fail(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4), noreturn));
#define ST_CHECK(cond)                                                                             \
    do {                                                                                           \
        if (!(cond))                                                                               \
            st_fail(__FILE__, __LINE__, "%s", #cond);                                              \
    } while (0)
#define ST_CHECK_INT(got, want)                                                                    \
    do {                                                                                           \
        long long g_ = (long long)(got), w_ = (long long)(want);                                   \
        if (g_ != w_)                                                                              \
            st_fail(__FILE__, __LINE__, "%s is %lld, want %lld", #got, g_, w_);                    \
    } while (0)

#endif
