/* fileops: exact copies, inode-preserving backups and restores. */
#include "fileops.h"
#include "copy.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/xattr.h>

int vp_copy_attributes(int src, int dst, const struct stat *st, bool mtime, const char *what)
{
    if (fchown(dst, st->st_uid, st->st_gid) < 0 &&
        !(errno == EPERM && st->st_uid == geteuid() && st->st_gid == getegid()))
        return vp_error_errno(-errno, "cannot give the copy of %s its owner", what);
    if (fchmod(dst, st->st_mode & 07777) < 0)
        return vp_error_errno(-errno, "cannot give the copy of %s its mode", what);
    ssize_t len = flistxattr(src, NULL, 0);
    if (len > 0) {
        _cleanup_(freep) char *names = vp_xmalloc((size_t)len);
        len = flistxattr(src, names, (size_t)len);
        for (ssize_t off = 0; off < len; off += (ssize_t)strlen(names + off) + 1) {
            const char *name = names + off;
            ssize_t vlen = fgetxattr(src, name, NULL, 0);
            if (vlen < 0)
                continue;
            _cleanup_(freep) char *val = vp_xmalloc((size_t)vlen + 1);
            vlen = fgetxattr(src, name, val, (size_t)vlen);
            if (vlen < 0 || fsetxattr(dst, name, val, (size_t)vlen, 0) < 0)
                return vp_error_errno(-errno, "cannot copy extended attribute %s of %s", name,
                                      what);
        }
    }
    const struct timespec times[2] = {{0, UTIME_OMIT}, st->st_mtim};
    if (mtime && futimens(dst, times) < 0)
        return vp_error_errno(-errno, "cannot give the copy of %s its mtime", what);
    return 0;
}

int vp_copy_exact(int src, const char *dst)
{
    struct stat st;
    if (fstat(src, &st) < 0)
        return vp_error_errno(-errno, "cannot read the file to copy to %s", dst);
    _cleanup_(freep) char *tmp = vp_xasprintf("%s.vgpu-copy-%d", dst, (int)getpid());
    unlink(tmp);
    _cleanup_(closep) int out = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (out < 0)
        return vp_error_errno(-errno, "cannot create %s", tmp);
    struct vp_copy_result cr;
    int r = vp_copy_patched(src, (uint64_t)st.st_size, out, NULL, &cr);
    if (r == 0)
        r = vp_copy_attributes(src, out, &st, true, dst);
    if (r == 0 && fsync(out) < 0)
        r = vp_error_errno(-errno, "cannot sync %s", tmp);
    if (r == 0 && rename(tmp, dst) < 0)
        r = vp_error_errno(-errno, "cannot name the copy %s", dst);
    if (r < 0) {
        unlink(tmp);
        return r;
    }
    return vp_fsync_dir_of(dst);
}

/* A symbolic link cannot be copied as a file: a new link at dst with the same target,
 * owner and modification time as the one at src (an absolute path, or "" with fd). */
static int copy_link(int fd, const char *src, const char *dst)
{
    char target[4096];
    struct stat st;
    ssize_t n = readlinkat(fd, src, target, sizeof(target) - 1);
    if (n < 0 || fstatat(fd, src, &st, AT_SYMLINK_NOFOLLOW | (*src ? 0 : AT_EMPTY_PATH)) < 0)
        return vp_error_errno(-errno, "cannot read the link to copy to %s", dst);
    target[n] = '\0';
    _cleanup_(freep) char *tmp = vp_xasprintf("%s.vgpu-copy-%d", dst, (int)getpid());
    unlink(tmp);
    const struct timespec times[2] = {{0, UTIME_OMIT}, st.st_mtim};
    if (symlink(target, tmp) < 0 || lchown(tmp, st.st_uid, st.st_gid) < 0 ||
        utimensat(AT_FDCWD, tmp, times, AT_SYMLINK_NOFOLLOW) < 0 || rename(tmp, dst) < 0) {
        int e = -errno;
        unlink(tmp);
        return vp_error_errno(e, "cannot copy the link %s", dst);
    }
    return vp_fsync_dir_of(dst);
}

int vp_keep_inode(int fd, const char *keep)
{
    /* Through /proc, link() reaches the open inode itself, not the current name. */
    _cleanup_(freep) char *self = vp_xasprintf("/proc/self/fd/%d", fd);
    if (linkat(AT_FDCWD, self, AT_FDCWD, keep, AT_SYMLINK_FOLLOW) == 0)
        return vp_fsync_dir_of(keep);
    if (errno == EEXIST)
        return -EEXIST;
    if (errno != EXDEV && errno != EPERM && errno != EMLINK && errno != ENOENT)
        return vp_error_errno(-errno, "cannot keep a link to the original as %s", keep);
    struct stat st;
    if (fstat(fd, &st) == 0 && S_ISLNK(st.st_mode))
        return copy_link(fd, "", keep);
    return vp_copy_exact(fd, keep);
}

static int copy_file(const char *src, const char *dst)
{
    _cleanup_(closep) int in = open(src, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return vp_error_errno(-errno, "cannot read the backup %s", src);
    return vp_copy_exact(in, dst);
}

int vp_restore_file(const char *path, const char *backup)
{
    _cleanup_(freep) char *tmp = vp_xasprintf("%s.vgpu-restore", path);
    unlink(tmp);
    if (link(backup, tmp) < 0) {
        if (errno != EXDEV && errno != EPERM && errno != EMLINK)
            return vp_error_errno(-errno, "cannot restore %s from %s", path, backup);
        struct stat st;
        int r = lstat(backup, &st) == 0 && S_ISLNK(st.st_mode) ? copy_link(AT_FDCWD, backup, tmp)
                                                                : copy_file(backup, tmp);
        if (r < 0)
            return r;
    }
    if (rename(tmp, path) < 0) {
        int e = -errno;
        unlink(tmp);
        return vp_error_errno(e, "cannot put %s back", path);
    }
    return vp_fsync_dir_of(path);
}

int vp_restore_link(const char *path, const char *target)
{
    if (!target || !*target) {
        if (unlink(path) < 0 && errno != ENOENT)
            return vp_error_errno(-errno, "cannot remove %s", path);
        return vp_fsync_dir_of(path);
    }
    _cleanup_(freep) char *tmp = vp_xasprintf("%s.vgpu-restore", path);
    unlink(tmp);
    if (symlink(target, tmp) < 0 || rename(tmp, path) < 0) {
        int e = -errno;
        unlink(tmp);
        return vp_error_errno(e, "cannot put the link %s back", path);
    }
    return vp_fsync_dir_of(path);
}

bool vp_same_inode(const char *path, dev_t dev, ino_t ino)
{
    struct stat st;
    return lstat(path, &st) == 0 && st.st_dev == dev && st.st_ino == ino;
}
