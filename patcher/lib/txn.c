/* txn: state dir, lock, journal and replay (undo or finish) of transactions. */
#include "txn.h"
#include "copy.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>

struct vp_txn_item {
    char *path, *tmp;
};

void vp_fault(const char *point)
{
#ifdef VGPU_FAULT_INJECTION
    static const char *spec;
    static bool read_env;
    static unsigned hits;
    if (!read_env) {
        spec = secure_getenv("VGPU_FAULT");
        read_env = true;
    }
    if (!spec)
        return;
    size_t len = strcspn(spec, ":");
    if (strlen(point) != len || strncmp(spec, point, len) != 0)
        return;
    unsigned want = spec[len] == ':' ? (unsigned)strtoul(spec + len + 1, NULL, 10) : 1;
    if (++hits == (want ? want : 1))
        kill(getpid(), SIGKILL);
#else
    (void)point;
#endif
}

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

/* ---- journal ---- */

static int jlog(struct vp_txn *t, const char *kind, const char *a, const char *b,
                const char *c)
{
    const char *args[] = {a, b, c};
    _cleanup_(freep) char *line = vp_xstrdup(kind);
    for (size_t i = 0; i < 3 && args[i]; i++) {
        _cleanup_(freep) char *e = vp_escape(args[i]);
        char *next = vp_xasprintf("%s %s", line, e);
        free(line);
        line = next;
    }
    char *full = vp_xasprintf("%s\n", line);
    size_t len = strlen(full);
    ssize_t n = write(t->jfd, full, len);
    free(full);
    if (n != (ssize_t)len || fdatasync(t->jfd) < 0)
        return vp_error_errno(n < 0 ? -errno : -EIO, "cannot write the journal in %s",
                              t->st->dir);
    return 0;
}

struct jrec {
    char kind[16];
    char *arg[3];
};

static void jrecs_release(struct jrec *r, size_t n)
{
    for (size_t i = 0; i < n; i++)
        for (int k = 0; k < 3; k++)
            free(r[i].arg[k]);
    free(r);
}

/* Reads the journal; a torn last line (crash while writing it) is ignored. */
static int jread(const struct vp_state *st, struct jrec **ret, size_t *ret_n)
{
    *ret = NULL;
    *ret_n = 0;
    _cleanup_(freep) char *path = state_path(st, "journal");
    _cleanup_(freep) char *text = NULL;
    size_t len;
    int r = vp_read_file(path, 16 << 20, &text, &len);
    if (r < 0)
        return vp_error_errno(r, "cannot read %s", path);
    struct jrec *recs = NULL;
    size_t n = 0;
    for (char *line = text, *next; (next = strchr(line, '\n')); line = next) {
        *next++ = '\0';
        struct vp_strv tok = {0};
        vp_strv_split(&tok, line, " ");
        if (tok.n && strlen(tok.v[0]) < sizeof(recs->kind)) {
            recs = vp_xrealloc(recs, (n + 1) * sizeof(*recs));
            struct jrec *j = &recs[n++];
            *j = (struct jrec){0};
            strcpy(j->kind, tok.v[0]);
            for (size_t k = 1; k < tok.n && k <= 3; k++)
                if (vp_unescape(tok.v[k], &j->arg[k - 1]) < 0)
                    j->arg[k - 1] = NULL;
        }
        vp_strv_release(&tok);
    }
    *ret = recs;
    *ret_n = n;
    return 0;
}

static const struct jrec *find_rec(const struct jrec *r, size_t n, const char *kind,
                                   const char *path)
{
    for (size_t i = n; i-- > 0;)
        if (!strcmp(r[i].kind, kind) && r[i].arg[0] && !strcmp(r[i].arg[0], path))
            return &r[i];
    return NULL;
}

/* Puts the inode kept at prev back at path (through a fresh name and a rename). */
static int restore_file(const char *path, const char *prev)
{
    _cleanup_(freep) char *tmp = vp_xasprintf("%s.vgpu-restore", path);
    unlink(tmp);
    if (link(prev, tmp) < 0) {
        if (errno != EXDEV && errno != EPERM)
            return vp_error_errno(-errno, "cannot restore %s from %s", path, prev);
        /* The backup is a copy on another file system: copy it back. */
        _cleanup_(closep) int in = open(prev, O_RDONLY | O_CLOEXEC);
        struct stat st;
        if (in < 0 || fstat(in, &st) < 0)
            return vp_error_errno(-errno, "cannot read backup %s", prev);
        _cleanup_(closep) int out =
            open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, st.st_mode & 07777);
        struct vp_copy_result cr;
        if (out < 0 || vp_copy_patched(in, (uint64_t)st.st_size, out, NULL, &cr) < 0 ||
            fchown(out, st.st_uid, st.st_gid) < 0 || fchmod(out, st.st_mode & 07777) < 0 ||
            fsync(out) < 0) {
            int e = -errno;
            unlink(tmp);
            return vp_error_errno(e ? e : -EIO, "cannot copy backup %s back", prev);
        }
    }
    if (rename(tmp, path) < 0) {
        int e = -errno;
        unlink(tmp);
        return vp_error_errno(e, "cannot restore %s", path);
    }
    return vp_fsync_dir_of(path);
}

static int restore_link(const char *path, const char *prev_target)
{
    if (!prev_target || !*prev_target) {
        if (unlink(path) < 0 && errno != ENOENT)
            return vp_error_errno(-errno, "cannot remove %s", path);
        return vp_fsync_dir_of(path);
    }
    _cleanup_(freep) char *tmp = vp_xasprintf("%s.vgpu-restore", path);
    unlink(tmp);
    if (symlink(prev_target, tmp) < 0 || rename(tmp, path) < 0)
        return vp_error_errno(-errno, "cannot restore link %s", path);
    return vp_fsync_dir_of(path);
}

/* Replays the journal: finishes a committed transaction, or undoes one that was not.
 * Messages describe what was done. Idempotent: a crash during replay is replayed. */
static int replay(struct vp_state *st)
{
    struct jrec *r = NULL;
    size_t n = 0;
    int res = jread(st, &r, &n);
    if (res < 0)
        return res;
    bool committed = false;
    for (size_t i = 0; i < n; i++)
        committed |= !strcmp(r[i].kind, "committed");
    unsigned restored = 0;
    if (!committed) {
        for (size_t i = n; i-- > 0 && res == 0;) {
            if (strcmp(r[i].kind, "rename") || !r[i].arg[0])
                continue;
            const char *path = r[i].arg[0];
            const struct jrec *prev = find_rec(r, n, "prev", path);
            const struct jrec *lnk = find_rec(r, n, "link", path);
            if (prev && prev->arg[1])
                res = restore_file(path, prev->arg[1]);
            else if (lnk)
                res = restore_link(path, lnk->arg[2]);
            restored += res == 0;
        }
    }
    for (size_t i = 0; i < n && res == 0; i++) {
        const struct jrec *j = &r[i];
        if ((!strcmp(j->kind, "tmp") || !strcmp(j->kind, "link")) && j->arg[1])
            unlink(j->arg[1]);
        /* prev PATH PREV CREATED KEEP: remove what this transaction created, except a
         * permanent backup of a committed one. */
        if (!strcmp(j->kind, "prev") && j->arg[1] && j->arg[2] && j->arg[2][0] == '1') {
            bool keep = j->arg[2][1] == '1';
            if (!committed || !keep)
                unlink(j->arg[1]);
        }
    }
    jrecs_release(r, n);
    if (res < 0)
        return res;
    if (committed)
        vp_strv_push(&st->recovered, "an interrupted run had made all its changes; the "
                                     "leftovers of its journal were cleaned up");
    else if (restored)
        vp_strv_push_take(&st->recovered,
                          vp_xasprintf("an interrupted run was undone: %u file(s) restored to "
                                       "what they were before it",
                                       restored));
    else if (!committed)
        vp_strv_push(&st->recovered,
                     "an interrupted run was undone before it had changed any installed file");
    _cleanup_(freep) char *jpath = state_path(st, "journal");
    if (unlink(jpath) < 0 && errno != ENOENT)
        return vp_error_errno(-errno, "cannot remove %s", jpath);
    return vp_fsync_dir_of(jpath);
}

/* ---- state dir ---- */

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
    } else if (s.st_mode & 022) {
        r = vp_error(-EPERM,
                     "state dir %s is writable by group or others (mode %04o): it holds the "
                     "backups of Ollama's executables; make it 0700",
                     st.dir, (unsigned)(s.st_mode & 07777));
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
        if (vp_state_interrupted(&st) && (r = replay(&st)) < 0)
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

/* ---- transactions ---- */

int vp_txn_begin(struct vp_state *st, struct vp_txn *t)
{
    *t = (struct vp_txn){.st = st};
    _cleanup_(freep) char *path = state_path(st, "journal");
    t->jfd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0600);
    if (t->jfd < 0)
        return vp_error_errno(-errno, "cannot create %s", path);
    char pid[16];
    snprintf(pid, sizeof(pid), "%d", (int)getpid());
    int r = jlog(t, "begin", pid, NULL, NULL);
    if (r == 0)
        r = vp_fsync_dir_of(path);
    return r;
}

static struct vp_txn_item *add_item(struct vp_txn *t, const char *path, const char *tmp)
{
    t->items = vp_xrealloc(t->items, (t->n + 1) * sizeof(*t->items));
    struct vp_txn_item *it = &t->items[t->n++];
    *it = (struct vp_txn_item){vp_xstrdup(path), vp_xstrdup(tmp)};
    return it;
}

static char *tmp_name(const char *path, size_t n)
{
    _cleanup_(freep) char *dir = vp_dirname(path);
    return vp_xasprintf("%s/.%s.vgpu-%d-%zu", dir, vp_basename(path), (int)getpid(), n);
}

int vp_txn_stage_file(struct vp_txn *t, const char *path, int *ret_fd, const char **ret_tmp)
{
    _cleanup_(freep) char *tmp = tmp_name(path, t->n);
    int r = jlog(t, "tmp", path, tmp, NULL);
    if (r < 0)
        return r;
    int fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        r = -errno;
        _cleanup_(freep) char *dir = vp_dirname(path);
        if (r == -EROFS)
            return vp_error(r, "cannot write beside %s: %s is on a read-only file system", path,
                            dir);
        if (r == -EACCES || r == -EPERM)
            return vp_error(r, "cannot write beside %s: no permission to create files in %s "
                               "(run as root, or as the owner of the Ollama tree)",
                            path, dir);
        return vp_error_errno(r, "cannot create %s", tmp);
    }
    *ret_tmp = add_item(t, path, tmp)->tmp;
    *ret_fd = fd;
    return 0;
}

static int copy_into(const char *src, const char *dst)
{
    _cleanup_(closep) int in = open(src, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (in < 0 || fstat(in, &st) < 0)
        return vp_error_errno(-errno, "cannot read %s", src);
    _cleanup_(closep) int out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (out < 0)
        return vp_error_errno(-errno, "cannot create %s", dst);
    struct vp_copy_result cr;
    int r = vp_copy_patched(in, (uint64_t)st.st_size, out, NULL, &cr);
    if (r == 0 && (fchown(out, st.st_uid, st.st_gid) < 0 ||
                   fchmod(out, st.st_mode & 07777) < 0 || fsync(out) < 0))
        r = vp_error_errno(-errno, "cannot finish %s", dst);
    if (r < 0)
        unlink(dst);
    return r;
}

int vp_txn_keep_prev(struct vp_txn *t, const char *path, const char *prev, bool keep)
{
    bool created = true;
    if (link(path, prev) < 0) {
        if (errno == EEXIST && keep) {
            created = false; /* the same original is backed up already */
        } else if (errno == EXDEV || errno == EPERM || errno == EMLINK) {
            int r = copy_into(path, prev);
            if (r < 0)
                return r;
        } else {
            return vp_error_errno(-errno, "cannot keep %s as %s", path, prev);
        }
    }
    int r = jlog(t, "prev", path, prev, created ? (keep ? "11" : "10") : "00");
    if (r == 0)
        r = vp_fsync_dir_of(prev);
    vp_fault("prev");
    return r;
}

int vp_txn_stage_link(struct vp_txn *t, const char *path, const char *target)
{
    _cleanup_(freep) char *tmp = tmp_name(path, t->n);
    struct stat st;
    if (lstat(path, &st) == 0 && !S_ISLNK(st.st_mode))
        return vp_error(-EEXIST, "%s exists and is not a link: not replacing it", path);
    char cur[4096];
    ssize_t n = readlink(path, cur, sizeof(cur) - 1);
    cur[n > 0 ? n : 0] = '\0';
    int r = jlog(t, "link", path, tmp, cur);
    if (r < 0)
        return r;
    if (symlink(target, tmp) < 0)
        return vp_error_errno(-errno, "cannot create link %s", tmp);
    add_item(t, path, tmp);
    return 0;
}

int vp_txn_rename_all(struct vp_txn *t)
{
    for (size_t i = 0; i < t->n; i++) {
        struct vp_txn_item *it = &t->items[i];
        /* Intent first: undoing a rename that did not happen restores the same inode. */
        int r = jlog(t, "rename", it->path, NULL, NULL);
        if (r < 0)
            return r;
        if (rename(it->tmp, it->path) < 0)
            return vp_error_errno(-errno, "cannot rename %s over %s", it->tmp, it->path);
        if ((r = vp_fsync_dir_of(it->path)) < 0)
            return r;
        vp_fault("renamed");
    }
    return 0;
}

static void txn_release(struct vp_txn *t)
{
    for (size_t i = 0; i < t->n; i++) {
        free(t->items[i].path);
        free(t->items[i].tmp);
    }
    free(t->items);
    if (t->jfd >= 0)
        close(t->jfd);
    t->jfd = -1;
    t->items = NULL;
    t->n = 0;
}

int vp_txn_commit(struct vp_txn *t)
{
    int r = jlog(t, "committed", NULL, NULL, NULL);
    vp_fault("committed");
    txn_release(t);
    if (r < 0)
        return r;
    r = replay(t->st); /* removes temporary links and the journal */
    vp_strv_release(&t->st->recovered);
    return r;
}

int vp_txn_abort(struct vp_txn *t)
{
    txn_release(t);
    struct vp_strv keep = t->st->recovered;
    t->st->recovered = (struct vp_strv){0};
    int r = replay(t->st);
    vp_strv_release(&t->st->recovered);
    t->st->recovered = keep;
    return r;
}
