/* util: error messages, allocation, string vectors and path helpers. */
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static _Thread_local char last_error[1024];

/* Formats into a scratch buffer first: callers may pass vp_last_error() as an argument
 * to wrap the previous message. */
static void vset(int err, bool with_errno, const char *fmt, va_list ap)
{
    char buf[sizeof(last_error)];
    int n = vsnprintf(buf, sizeof(buf), fmt, ap);
    if (with_errno && n >= 0 && (size_t)n < sizeof(buf))
        snprintf(buf + n, sizeof(buf) - (size_t)n, ": %s", strerror(-err));
    memcpy(last_error, buf, sizeof(buf));
}

int vp_error(int err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vset(err, false, fmt, ap);
    va_end(ap);
    return err;
}

int vp_error_errno(int err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vset(err, true, fmt, ap);
    va_end(ap);
    return err;
}

const char *vp_last_error(void)
{
    return last_error;
}

void vp_clear_error(void)
{
    last_error[0] = '\0';
}

static void *oom(void)
{
    fputs("vgpu-patch: out of memory\n", stderr);
    abort();
}

void *vp_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    return p ? p : oom();
}

void *vp_xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    return p ? p : oom();
}

void *vp_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    return q ? q : oom();
}

char *vp_xstrdup(const char *s)
{
    char *p = strdup(s);
    return p ? p : oom();
}

char *vp_xstrndup(const char *s, size_t n)
{
    char *p = strndup(s, n);
    return p ? p : oom();
}

char *vp_xasprintf(const char *fmt, ...)
{
    va_list ap;
    char *s;
    va_start(ap, fmt);
    int r = vasprintf(&s, fmt, ap);
    va_end(ap);
    return r < 0 ? oom() : s;
}

void vp_strv_push_take(struct vp_strv *sv, char *s)
{
    if (sv->n + 2 > sv->cap) {
        sv->cap = sv->cap ? sv->cap * 2 : 8;
        sv->v = vp_xrealloc(sv->v, sv->cap * sizeof(char *));
    }
    sv->v[sv->n++] = s;
    sv->v[sv->n] = NULL;
}

void vp_strv_push(struct vp_strv *sv, const char *s)
{
    vp_strv_push_take(sv, vp_xstrdup(s));
}

bool vp_strv_contains(const struct vp_strv *sv, const char *s)
{
    for (size_t i = 0; i < sv->n; i++)
        if (strcmp(sv->v[i], s) == 0)
            return true;
    return false;
}

void vp_strv_release(struct vp_strv *sv)
{
    for (size_t i = 0; i < sv->n; i++)
        free(sv->v[i]);
    free(sv->v);
    *sv = (struct vp_strv){0};
}

void vp_strv_split(struct vp_strv *sv, const char *s, const char *seps)
{
    while (s && *s) {
        size_t skip = strspn(s, seps);
        s += skip;
        size_t len = strcspn(s, seps);
        if (len)
            vp_strv_push_take(sv, vp_xstrndup(s, len));
        s += len;
    }
}

bool vp_startswith(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

bool vp_streq_null(const char *a, const char *b)
{
    return a && b ? strcmp(a, b) == 0 : a == b;
}

bool vp_endswith(const char *s, const char *suffix)
{
    size_t ls = strlen(s), lx = strlen(suffix);
    return ls >= lx && memcmp(s + ls - lx, suffix, lx) == 0;
}

char *vp_path_join(const char *a, const char *b)
{
    size_t la = strlen(a);
    while (la > 1 && a[la - 1] == '/')
        la--;
    while (*b == '/')
        b++;
    if (la == 1 && a[0] == '/')
        return vp_xasprintf("/%s", b);
    if (!*b)
        return vp_xstrndup(a, la);
    return vp_xasprintf("%.*s/%s", (int)la, a, b);
}

char *vp_rooted(const char *root, const char *path)
{
    if (!root || !*root || strcmp(root, "/") == 0)
        return vp_xstrdup(path);
    return vp_path_join(root, path);
}

char *vp_dirname(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return vp_xstrdup(".");
    if (slash == path)
        return vp_xstrdup("/");
    return vp_xstrndup(path, (size_t)(slash - path));
}

const char *vp_basename(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

char *vp_path_normalize(const char *path)
{
    struct vp_strv parts = {0}, out = {0};
    vp_strv_split(&parts, path, "/");
    for (size_t i = 0; i < parts.n; i++) {
        if (strcmp(parts.v[i], ".") == 0)
            continue;
        if (strcmp(parts.v[i], "..") == 0) {
            if (out.n)
                free(out.v[--out.n]), out.v[out.n] = NULL;
            continue;
        }
        vp_strv_push(&out, parts.v[i]);
    }
    size_t len = 2;
    for (size_t i = 0; i < out.n; i++)
        len += strlen(out.v[i]) + 1;
    char *res = vp_xmalloc(len), *p = res;
    *p = '\0';
    for (size_t i = 0; i < out.n; i++)
        p += sprintf(p, "/%s", out.v[i]);
    if (!out.n)
        strcpy(res, "/");
    vp_strv_release(&parts);
    vp_strv_release(&out);
    return res;
}

int vp_root_realpath(const char *root, const char *path, char **ret)
{
    if (path[0] != '/')
        return vp_error(-EINVAL, "not an absolute path: %s", path);
    char *pending = vp_xstrdup(path); /* still to resolve */
    char *done = vp_xstrdup("");      /* resolved prefix, inside the root */
    int links = 0, r = 0;

    for (;;) {
        char *p = pending;
        while (*p == '/')
            p++;
        if (!*p)
            break;
        size_t len = strcspn(p, "/");
        char *comp = vp_xstrndup(p, len);
        char *rest = vp_xstrdup(p + len);
        free(pending);
        pending = rest;
        if (strcmp(comp, ".") == 0) {
            free(comp);
            continue;
        }
        if (strcmp(comp, "..") == 0) {
            char *slash = strrchr(done, '/');
            if (slash)
                *slash = '\0';
            free(comp);
            continue;
        }
        char *cand = vp_xasprintf("%s/%s", done, comp);
        free(comp);
        char *ondisk = vp_rooted(root, cand);
        char target[PATH_MAX];
        ssize_t n = readlink(ondisk, target, sizeof(target) - 1);
        free(ondisk);
        if (n < 0) { /* not a link (or missing): keep the component */
            free(done);
            done = cand;
            continue;
        }
        free(cand);
        if (++links > 40) {
            r = vp_error(-ELOOP, "too many symbolic links resolving %s", path);
            break;
        }
        target[n] = '\0';
        /* An absolute target restarts from the root, a relative one from the
         * directory that holds the link (which is what done is now). */
        char *next = target[0] == '/' ? vp_xasprintf("%s%s", target, pending)
                                      : vp_xasprintf("/%s%s", target, pending);
        free(pending);
        pending = next;
        if (target[0] == '/') {
            free(done);
            done = vp_xstrdup("");
        }
    }
    free(pending);
    if (r < 0) {
        free(done);
        return r;
    }
    if (!*done) {
        free(done);
        done = vp_xstrdup("/");
    }
    *ret = done;
    return 0;
}

/* Whether the directory dir (on disk) is root or below it, as the kernel resolves both. */
static bool dir_in_root(const char *root, const char *dir)
{
    _cleanup_(freep) char *rr = realpath(root, NULL);
    _cleanup_(freep) char *rd = realpath(dir, NULL);
    if (!rr || !rd)
        return !rd; /* a missing directory holds nothing to act on */
    size_t n = strlen(rr);
    return !strcmp(rr, "/") || (!strncmp(rd, rr, n) && (rd[n] == '/' || rd[n] == '\0'));
}

int vp_root_ondisk(const char *root, const char *path, char **ret)
{
    _cleanup_(freep) char *dir = vp_dirname(path);
    _cleanup_(freep) char *real = NULL;
    int r = vp_root_realpath(root, dir, &real);
    if (r < 0)
        return r;
    _cleanup_(freep) char *ondir = vp_rooted(root, real);
    if (!dir_in_root(root ? root : "/", ondir))
        return vp_error(-EXDEV, "%s leads out of the root %s", dir, root);
    *ret = vp_path_join(ondir, vp_basename(path));
    return 0;
}

char *vp_root_resolved(const char *root, const char *path)
{
    _cleanup_(freep) char *real = NULL;
    if (vp_root_realpath(root, path, &real) < 0)
        return NULL;
    return vp_rooted(root, real);
}

int vp_read_file(const char *path, size_t max, char **ret, size_t *ret_len)
{
    _cleanup_(closep) int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    size_t cap = 4096, len = 0;
    char *buf = vp_xmalloc(cap);
    for (;;) {
        if (len + 1 >= cap) {
            if (cap > max) {
                free(buf);
                return vp_error(-EFBIG, "%s is larger than %zu bytes", path, max);
            }
            cap *= 2;
            buf = vp_xrealloc(buf, cap);
        }
        ssize_t n = read(fd, buf + len, cap - len - 1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            int e = -errno;
            free(buf);
            return e;
        }
        if (n == 0)
            break;
        len += (size_t)n;
        if (len > max) {
            free(buf);
            return vp_error(-EFBIG, "%s is larger than %zu bytes", path, max);
        }
    }
    buf[len] = '\0';
    *ret = buf;
    if (ret_len)
        *ret_len = len;
    return 0;
}

int vp_fsync_dir_of(const char *path)
{
    _cleanup_(freep) char *dir = vp_dirname(path);
    _cleanup_(closep) int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || fsync(fd) < 0)
        return vp_error_errno(-errno, "cannot sync directory %s", dir);
    return 0;
}

int vp_write_file_atomic(const char *path, const void *data, size_t len, mode_t mode)
{
    _cleanup_(freep) char *tmp = vp_xasprintf("%s.tmp", path);
    _cleanup_(closep) int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0)
        return vp_error_errno(-errno, "cannot create %s", tmp);
    const char *p = data;
    while (len) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int e = -errno;
            unlink(tmp);
            return vp_error_errno(e, "cannot write %s", tmp);
        }
        p += n;
        len -= (size_t)n;
    }
    if (fsync(fd) < 0 || rename(tmp, path) < 0) {
        int e = -errno;
        unlink(tmp);
        return vp_error_errno(e, "cannot commit %s", path);
    }
    return vp_fsync_dir_of(path);
}

int vp_mkdir_p(const char *path, mode_t mode)
{
    _cleanup_(freep) char *p = vp_xstrdup(path);
    for (size_t n = strlen(p); n > 1 && p[n - 1] == '/'; n--)
        p[n - 1] = '\0'; /* the last component is the one named, slash or not */
    for (char *s = p + 1;; s++) {
        if (*s == '/' || *s == '\0') {
            char c = *s;
            *s = '\0';
            if (mkdir(p, c ? 0755 : mode) < 0 && errno != EEXIST)
                return vp_error_errno(-errno, "cannot create directory %s", p);
            *s = c;
            if (!c)
                break;
        }
    }
    struct stat st;
    if (stat(path, &st) < 0 || !S_ISDIR(st.st_mode))
        return vp_error(-ENOTDIR, "%s is not a directory", path);
    return 0;
}

static bool plain_char(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           strchr("/._+-:@=,", c);
}

char *vp_escape(const char *s)
{
    char *out = vp_xmalloc(strlen(s) * 3 + 2), *p = out;
    if (!*s) { /* the empty string is a lone '%' */
        strcpy(out, "%");
        return out;
    }
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (plain_char(c) && c != '%')
            *p++ = (char)c;
        else
            p += sprintf(p, "%%%02X", c);
    }
    *p = '\0';
    return out;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

int vp_unescape(const char *s, char **ret)
{
    if (strcmp(s, "%") == 0) {
        *ret = vp_xstrdup("");
        return 0;
    }
    char *out = vp_xmalloc(strlen(s) + 1), *p = out;
    for (; *s; s++) {
        if (*s != '%') {
            *p++ = *s;
            continue;
        }
        int hi = hexval(s[1]), lo = hi < 0 ? -1 : hexval(s[2]);
        if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
            free(out);
            return vp_error(-EINVAL, "bad escape in \"%s\"", s);
        }
        *p++ = (char)(hi * 16 + lo);
        s += 2;
    }
    *p = '\0';
    *ret = out;
    return 0;
}

void vp_root_glob(const char *root, const char *pattern, struct vp_strv *ret)
{
    _cleanup_(freep) char *pat = vp_rooted(root, pattern);
    size_t skip = root && strcmp(root, "/") ? strlen(root) : 0;
    while (skip && root[skip - 1] == '/')
        skip--;
    glob_t g;
    if (glob(pat, 0, NULL, &g) != 0)
        return;
    for (size_t i = 0; i < g.gl_pathc; i++)
        vp_strv_push(ret, g.gl_pathv[i] + skip);
    globfree(&g);
}

char *vp_self_relative(const char *rel)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n < 0)
        return NULL;
    self[n] = '\0';
    _cleanup_(freep) char *bindir = vp_dirname(self);
    _cleanup_(freep) char *joined = vp_path_join(bindir, rel);
    return vp_path_normalize(joined);
}

double vp_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}
