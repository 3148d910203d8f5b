/* vgpu-trust: ownership and permission checks up a path. */
#include "vgpu-trust.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static bool trusted_owner(uid_t uid)
{
    uid_t me = geteuid();
    return uid == 0 || (me != 0 && uid == me);
}

static int check_one(const char *p, bool ancestor, char *msg, size_t n)
{
    struct stat st;
    if (lstat(p, &st) < 0) {
        int e = errno;
        snprintf(msg, n, "cannot check %s: %s", p, strerror(e));
        return -e;
    }
    if (!trusted_owner(st.st_uid)) {
        snprintf(msg, n,
                 "%s is owned by uid %u, not root: another user could put code into Ollama "
                 "through it",
                 p, (unsigned)st.st_uid);
        return -EPERM;
    }
    if (S_ISLNK(st.st_mode))
        return 0; /* the target is checked on its own */
    if (st.st_mode & (S_IWGRP | S_IWOTH)) {
        if (ancestor && S_ISDIR(st.st_mode) && (st.st_mode & S_ISVTX) && st.st_uid == 0)
            return 0;
        snprintf(msg, n,
                 "%s is writable by %s (mode %04o): another user could replace the shims "
                 "Ollama loads",
                 p, (st.st_mode & S_IWOTH) ? "others" : "its group",
                 (unsigned)(st.st_mode & 07777));
        return -EPERM;
    }
    return 0;
}

/* Lexically normalises an absolute path in place: no "//", ".", ".." or trailing '/'. */
static void normalize(char *p)
{
    char *out = p;
    for (const char *in = p; *in;) {
        while (*in == '/')
            in++;
        const char *end = strchrnul(in, '/');
        size_t len = (size_t)(end - in);
        if (len == 0 || (len == 1 && in[0] == '.')) {
            /* nothing */
        } else if (len == 2 && in[0] == '.' && in[1] == '.') {
            while (out > p && *--out != '/')
                ;
        } else {
            *out++ = '/';
            memmove(out, in, len);
            out += len;
        }
        in = end;
    }
    if (out == p)
        *out++ = '/';
    *out = '\0';
}

/* Checks path and each of its ancestors as they are named (links not followed). */
static int check_chain(const char *path, char *msg, size_t n)
{
    char p[PATH_MAX];
    if (snprintf(p, sizeof(p), "%s", path) >= (int)sizeof(p)) {
        snprintf(msg, n, "%.64s...: path too long", path);
        return -ENAMETOOLONG;
    }
    normalize(p);
    int r = check_one(p, false, msg, n);
    for (char *slash; r == 0 && strcmp(p, "/") != 0;) {
        slash = strrchr(p, '/');
        if (slash == p)
            slash[1] = '\0';
        else
            *slash = '\0';
        r = check_one(p, true, msg, n);
    }
    return r;
}

int vgpu_trust_check(const char *path, char *msg, size_t n)
{
    if (path[0] != '/') {
        snprintf(msg, n, "%s is not an absolute path", path);
        return -EINVAL;
    }
    /* The names as given, then the directories they really are: a link anywhere on the
     * way (even a root-owned one) must not lead through a directory others can write. */
    int r = check_chain(path, msg, n);
    if (r < 0)
        return r;
    char real[PATH_MAX];
    if (!realpath(path, real)) {
        int e = errno;
        snprintf(msg, n, "cannot resolve %s: %s", path, strerror(e));
        return -e;
    }
    return strcmp(real, path) ? check_chain(real, msg, n) : 0;
}
