/* util: error messages, cleanup helpers, string vectors and path helpers shared by
 * every module of the core library. Nothing here prints or exits. */
#ifndef VP_UTIL_H
#define VP_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/types.h>
#include <unistd.h>

#define _cleanup_(f)     __attribute__((cleanup(f)))
#define VP_PRINTF(a, b)  __attribute__((format(printf, a, b)))
#define VP_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

static inline void freep(void *p)
{
    free(*(void **)p);
}
static inline void closep(int *fd)
{
    if (*fd >= 0)
        close(*fd);
}
static inline void fclosep(FILE **f)
{
    if (*f)
        fclose(*f);
}

/* Records a message for the caller (per thread, like dlerror) and returns err,
 * so library code reads `return vp_error(-EINVAL, "...")`. err is a negative errno. */
int vp_error(int err, const char *fmt, ...) VP_PRINTF(2, 3);
/* Like vp_error, appending ": strerror(-err)". */
int vp_error_errno(int err, const char *fmt, ...) VP_PRINTF(2, 3);
/* The message of the last vp_error in this thread ("" if none). */
const char *vp_last_error(void);
void vp_clear_error(void);

/* Allocation that aborts on exhaustion: the core never limps on without memory. */
void *vp_xmalloc(size_t n);
void *vp_xcalloc(size_t n, size_t size);
void *vp_xrealloc(void *p, size_t n);
char *vp_xstrdup(const char *s);
char *vp_xstrndup(const char *s, size_t n);
char *vp_xasprintf(const char *fmt, ...) VP_PRINTF(1, 2);

/* A growable NULL-terminated vector of owned strings. */
struct vp_strv {
    char **v;
    size_t n, cap;
};
void vp_strv_push(struct vp_strv *sv, const char *s);
void vp_strv_push_take(struct vp_strv *sv, char *s);
bool vp_strv_contains(const struct vp_strv *sv, const char *s);
void vp_strv_release(struct vp_strv *sv);
/* Splits s at every character in seps, skipping empty fields. */
void vp_strv_split(struct vp_strv *sv, const char *s, const char *seps);

bool vp_startswith(const char *s, const char *prefix);
/* strcmp() == 0, where two NULLs are equal and a NULL equals nothing else. */
bool vp_streq_null(const char *a, const char *b);
bool vp_endswith(const char *s, const char *suffix);

/* Joins a and b with exactly one '/' between them. */
char *vp_path_join(const char *a, const char *b);
/* root + path for a system path; root "/" or NULL returns a copy of path. */
char *vp_rooted(const char *root, const char *path);
/* The directory part of path (a new string; "." when there is none). */
char *vp_dirname(const char *path);
const char *vp_basename(const char *path);
/* Normalises an absolute path lexically: removes "." and "//", resolves "..". */
char *vp_path_normalize(const char *path);
/* Resolves symlinks of an absolute path as if root were "/" (chroot semantics);
 * the result is a path inside the root (not prefixed with root). Missing final
 * components are kept as they are. Returns 0 or a negative errno. */
int vp_root_realpath(const char *root, const char *path, char **ret);
/* Where a runtime path lies on disk: root + the path with its directory resolved inside
 * the root (vp_root_realpath), so that no link among its directories leads out of it;
 * the last component is not followed. -EXDEV when that directory, as the kernel
 * resolves it, is still outside the root. Caller frees *ret. */
int vp_root_ondisk(const char *root, const char *path, char **ret);
/* root + path with every link resolved inside the root; NULL when it cannot be. */
char *vp_root_resolved(const char *root, const char *path);

/* <directory of this program>/rel, normalised (how an installation finds its own
 * parts); NULL when /proc/self/exe cannot be read. */
char *vp_self_relative(const char *rel);

/* Reads a whole small file (at most max bytes) into a NUL-terminated buffer. */
int vp_read_file(const char *path, size_t max, char **ret, size_t *ret_len);
/* Writes data to path atomically: path.tmp, fsync, rename, fsync of the directory. */
int vp_write_file_atomic(const char *path, const void *data, size_t len, mode_t mode);
/* fsync of the directory that holds path. */
int vp_fsync_dir_of(const char *path);
/* mkdir -p: the last component gets mode, missing parents 0755. */
int vp_mkdir_p(const char *path, mode_t mode);

/* Percent-escapes bytes outside [A-Za-z0-9/._+-:@=,] so a path fits one token of a
 * line-oriented file; vp_unescape reverses it. */
char *vp_escape(const char *s);
int vp_unescape(const char *s, char **ret);

/* Expands a glob pattern given as a runtime path inside root; appends the matches
 * (runtime paths, sorted) to ret. */
void vp_root_glob(const char *root, const char *pattern, struct vp_strv *ret);

/* Milliseconds of CLOCK_MONOTONIC: for timeouts and durations. */
double vp_now_ms(void);

#endif
