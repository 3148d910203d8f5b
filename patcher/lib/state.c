/* state: the state dir — its trust check, its lock, and the recovery of a transaction
 * an earlier run left unfinished. */
#include "trust.h"
#include "txn.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>

static char *state_path(const struct vp_state *st, const char *name)
{
    return vp_path_join(st->dir, name);
}

char *vp_state_backup_dir(const struct vp_state *st)
{
    return state_path(st, "backups");
}

bool vp_state_interrupted(const struct vp_state *st)
{
    _cleanup_(freep) char *j = state_path(st, "journal");
    return access(j, F_OK) == 0;
}

bool vp_state_busy(const struct vp_state *st)
{
    _cleanup_(freep) char *path = state_path(st, "lock");
    _cleanup_(closep) int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return false;
    if (flock(fd, LOCK_SH | LOCK_NB) == 0) {
        flock(fd, LOCK_UN);
        return false;
    }
    return errno == EWOULDBLOCK;
}

static int take_lock(struct vp_state *st, int timeout_ms)
{
    _cleanup_(freep) char *path = state_path(st, "lock");
    st->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (st->lock_fd < 0)
        return vp_error_errno(-errno, "cannot open %s", path);
    for (int waited = 0;; waited += 50) {
        if (flock(st->lock_fd, LOCK_EX | LOCK_NB) == 0)
            break;
        if (errno != EWOULDBLOCK)
            return vp_error_errno(-errno, "cannot lock %s", path);
        if (waited >= timeout_ms) {
            char pid[32] = "";
            ssize_t k = pread(st->lock_fd, pid, sizeof(pid) - 1, 0);
            pid[k > 0 ? k : 0] = '\0';
            pid[strcspn(pid, "\n")] = '\0';
            return vp_error(-EBUSY,
                            "another vgpu-patch (pid %s) is working on %s; waited %d s for it",
                            *pid ? pid : "?", st->dir, timeout_ms / 1000);
        }
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    char pid[32];
    int len = snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
    if (ftruncate(st->lock_fd, 0) < 0 || pwrite(st->lock_fd, pid, (size_t)len, 0) != len)
        return vp_error_errno(-errno, "cannot write %s", path);
    return 0;
}

int vp_state_open(const char *dir, unsigned flags, int timeout_ms, struct vp_state *ret)
{
    struct vp_state st = {.dir = vp_path_normalize(dir), .lock_fd = -1};
    struct stat s;
    int r = 0;
    if (stat(st.dir, &s) < 0) {
        if (errno != ENOENT || !(flags & VP_STATE_CREATE)) {
            r = errno == ENOENT ? vp_error(-ENOENT, "no state in %s: nothing was patched with "
                                                    "this state dir",
                                           st.dir)
                                : vp_error_errno(-errno, "cannot use state dir %s", st.dir);
            goto fail;
        }
        if ((r = vp_mkdir_p(st.dir, 0700)) < 0)
            goto fail;
    } else if (!S_ISDIR(s.st_mode)) {
        r = vp_error(-ENOTDIR, "state dir %s is not a directory", st.dir);
        goto fail;
    }
    /* It holds the backups that rollback renames into Ollama's tree as root: it and its
     * ancestors must be as trusted as the shim dir. */
    if ((r = vp_trust_check(st.dir)) < 0) {
        r = vp_error(r, "state dir: %s", vp_last_error());
        goto fail;
    }
    if (flags & (VP_STATE_CREATE | VP_STATE_LOCK)) {
        _cleanup_(freep) char *b = vp_state_backup_dir(&st);
        if ((r = vp_mkdir_p(b, 0700)) < 0)
            goto fail;
    }
    if (flags & VP_STATE_LOCK) {
        if ((r = take_lock(&st, timeout_ms)) < 0)
            goto fail;
        if (vp_state_interrupted(&st) && (r = vp_txn_replay(&st)) < 0)
            goto fail;
    }
    *ret = st;
    return 0;
fail:
    vp_state_close(&st);
    return r;
}

void vp_state_close(struct vp_state *st)
{
    if (st->lock_fd >= 0)
        close(st->lock_fd); /* releases the lock */
    free(st->dir);
    vp_strv_release(&st->recovered);
    *st = (struct vp_state){.lock_fd = -1};
}
