/* txn: the journal, its replay (undo or finish), and the staging, renaming and commit of
 * the files a transaction replaces. */
#include "txn.h"
#include "blake3.h"
#include "fileops.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>

struct vp_txn_item {
    char *path, *tmp;
    bool is_link;
    bool is_drop; /* removed, kept as its backup (vp_txn_stage_drop) */
    bool is_move; /* renamed to tmp (vp_txn_stage_move) */
    dev_t dev;    /* the inode the rename replaces (files), as it was read */
    ino_t ino;
    off_t size;
    struct timespec mtime;
    char *prev_target; /* the link it replaces (links), NULL for none */
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

/* ---- journal: one record per line, a kind and up to four escaped arguments ---- */

#define JARGS 4

static int jlog(struct vp_txn *t, const char *kind, const char *const args[JARGS])
{
    _cleanup_(freep) char *line = vp_xstrdup(kind);
    for (size_t i = 0; args && i < JARGS && args[i]; i++) {
        _cleanup_(freep) char *e = vp_escape(args[i]);
        char *next = vp_xasprintf("%s %s", line, e);
        free(line);
        line = next;
    }
    _cleanup_(freep) char *full = vp_xasprintf("%s\n", line);
    size_t len = strlen(full);
    ssize_t n = write(t->jfd, full, len);
    if (n != (ssize_t)len || fdatasync(t->jfd) < 0)
        return vp_error_errno(n < 0 ? -errno : -EIO, "cannot write the journal in %s", t->st->dir);
    return 0;
}

struct jrec {
    char kind[16];
    char *arg[JARGS];
};

static void jrecs_release(struct jrec *r, size_t n)
{
    for (size_t i = 0; i < n; i++)
        for (int k = 0; k < JARGS; k++)
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
            for (size_t k = 1; k < tok.n && k <= JARGS; k++)
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

/* "prev PATH PREV FLAGS DEV:INO": whether PATH still names the original inode (then its
 * rename never happened, and there is nothing to put back). */
static bool original_in_place(const struct jrec *prev)
{
    unsigned long long dev, ino;
    return prev->arg[3] && sscanf(prev->arg[3], "%llu:%llu", &dev, &ino) == 2 &&
           vp_same_inode(prev->arg[0], (dev_t)dev, (ino_t)ino);
}

static int undo_renames(const struct jrec *r, size_t n, unsigned *restored)
{
    for (size_t i = n; i-- > 0;) {
        if (strcmp(r[i].kind, "rename") || !r[i].arg[0])
            continue;
        const char *path = r[i].arg[0];
        const struct jrec *prev = find_rec(r, n, "prev", path);
        const struct jrec *lnk = find_rec(r, n, "link", path);
        const struct jrec *mv = find_rec(r, n, "move", path);
        struct stat st;
        int res = 0;
        if (mv && mv->arg[1]) {
            /* A move that happened leaves the name free and the new name taken. */
            if (lstat(path, &st) == 0 || lstat(mv->arg[1], &st) < 0)
                continue;
            if (rename(mv->arg[1], path) < 0 || (res = vp_fsync_dir_of(path)) < 0)
                return res < 0 ? res : vp_error_errno(-errno, "cannot move %s back", path);
        } else if (prev && prev->arg[1]) {
            if (original_in_place(prev))
                continue;
            res = vp_restore_file(path, prev->arg[1]);
        } else if (lnk) {
            res = vp_restore_link(path, lnk->arg[2]);
        }
        if (res < 0)
            return res;
        (*restored)++;
    }
    return 0;
}

int vp_txn_replay(struct vp_state *st)
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
    _cleanup_(freep) char *mnew = state_path(st, "manifest.new");
    _cleanup_(freep) char *mpath = state_path(st, "manifest");
    if (committed) {
        /* The manifest that describes the committed files goes in now, if it has not. */
        if (access(mnew, F_OK) == 0 && (rename(mnew, mpath) < 0 || vp_fsync_dir_of(mpath) < 0))
            res = vp_error_errno(-errno, "cannot put %s in place", mpath);
    } else {
        res = undo_renames(r, n, &restored);
        unlink(mnew);
    }
    for (size_t i = 0; i < n && res == 0; i++) {
        const struct jrec *j = &r[i];
        if ((!strcmp(j->kind, "tmp") || !strcmp(j->kind, "link")) && j->arg[1])
            unlink(j->arg[1]);
        /* prev PATH PREV CREATED+KEEP: remove what this transaction created, except a
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
    else
        vp_strv_push(&st->recovered,
                     "an interrupted run was undone before it had changed any installed file");
    _cleanup_(freep) char *jpath = state_path(st, "journal");
    if (unlink(jpath) < 0 && errno != ENOENT)
        return vp_error_errno(-errno, "cannot remove %s", jpath);
    return vp_fsync_dir_of(jpath);
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
    int r = jlog(t, "begin", (const char *const[JARGS]){pid});
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

static struct vp_txn_item *find_item(struct vp_txn *t, const char *path)
{
    for (size_t i = 0; i < t->n; i++)
        if (!strcmp(t->items[i].path, path))
            return &t->items[i];
    return NULL;
}

static char *tmp_name(const char *path, size_t n)
{
    _cleanup_(freep) char *dir = vp_dirname(path);
    return vp_xasprintf("%s/.%s.vgpu-%d-%zu", dir, vp_basename(path), (int)getpid(), n);
}

int vp_txn_stage_file(struct vp_txn *t, const char *path, int *ret_fd, const char **ret_tmp)
{
    _cleanup_(freep) char *tmp = tmp_name(path, t->n);
    int r = jlog(t, "tmp", (const char *const[JARGS]){path, tmp});
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
            return vp_error(r,
                            "cannot write beside %s: no permission to create files in %s "
                            "(run as root, or as the owner of the Ollama tree)",
                            path, dir);
        return vp_error_errno(r, "cannot create %s", tmp);
    }
    *ret_tmp = add_item(t, path, tmp)->tmp;
    *ret_fd = fd;
    return 0;
}

/* An existing permanent backup is reused only when it is the original: the same inode,
 * or a copy with the same content (a copy left half-written by a crash is not). */
static bool backup_is(const char *prev, const struct stat *orig, const char *orig_b3)
{
    struct stat st;
    if (lstat(prev, &st) < 0 || !S_ISREG(st.st_mode))
        return false;
    if (st.st_dev == orig->st_dev && st.st_ino == orig->st_ino)
        return true;
    char b3[VP_B3_HEX];
    return st.st_size == orig->st_size && orig_b3 && vp_b3_file(prev, b3) == 0 &&
           strcmp(b3, orig_b3) == 0;
}

int vp_txn_keep_prev(struct vp_txn *t, const char *path, int orig_fd, const struct stat *orig,
                     const char *prev, bool keep, const char *orig_b3)
{
    bool created = true;
    int r = vp_keep_inode(orig_fd, prev);
    if (r == -EEXIST) {
        if (keep && backup_is(prev, orig, orig_b3)) {
            created = false; /* the same original is backed up already */
            r = 0;
        } else if (unlink(prev) < 0) {
            r = vp_error_errno(-errno, "cannot replace the stale %s", prev);
        } else {
            r = vp_keep_inode(orig_fd, prev);
        }
    }
    if (r < 0)
        return r;
    char id[64];
    snprintf(id, sizeof(id), "%llu:%llu", (unsigned long long)orig->st_dev,
             (unsigned long long)orig->st_ino);
    r = jlog(t, "prev",
             (const char *const[JARGS]){path, prev, created ? (keep ? "11" : "10") : "00", id});
    struct vp_txn_item *it = find_item(t, path);
    if (it) {
        it->dev = orig->st_dev;
        it->ino = orig->st_ino;
        it->size = orig->st_size;
        it->mtime = orig->st_mtim;
    }
    vp_fault("prev");
    return r;
}

int vp_txn_stage_link(struct vp_txn *t, const char *path, const char *target,
                      char **ret_prev_target)
{
    _cleanup_(freep) char *tmp = tmp_name(path, t->n);
    struct stat st;
    if (lstat(path, &st) == 0 && !S_ISLNK(st.st_mode))
        return vp_error(-EEXIST, "%s exists and is not a link: not replacing it", path);
    char cur[4096];
    ssize_t n = readlink(path, cur, sizeof(cur) - 1);
    cur[n > 0 ? n : 0] = '\0';
    int r = jlog(t, "link", (const char *const[JARGS]){path, tmp, cur});
    if (r < 0)
        return r;
    if (symlink(target, tmp) < 0)
        return vp_error_errno(-errno, "cannot create link %s", tmp);
    struct vp_txn_item *it = add_item(t, path, tmp);
    it->is_link = true;
    it->prev_target = n > 0 ? vp_xstrdup(cur) : NULL;
    if (ret_prev_target)
        *ret_prev_target = it->prev_target ? vp_xstrdup(it->prev_target) : NULL;
    return 0;
}

static void item_identity(struct vp_txn_item *it, const struct stat *st)
{
    it->dev = st->st_dev;
    it->ino = st->st_ino;
    it->size = st->st_size;
    it->mtime = st->st_mtim;
}

int vp_txn_stage_drop(struct vp_txn *t, const char *path, int fd, const struct stat *st,
                      const char *backup, const char *orig_b3)
{
    add_item(t, path, "")->is_drop = true;
    /* Journals "prev" (the backup, kept for good) and records the identity to check. */
    return vp_txn_keep_prev(t, path, fd, st, backup, true, orig_b3);
}

int vp_txn_stage_move(struct vp_txn *t, const char *path, const struct stat *st, const char *to)
{
    struct stat cur;
    if (lstat(to, &cur) == 0)
        return vp_error(-EEXIST, "%s exists already: not renaming %s to it", to, path);
    int r = jlog(t, "move", (const char *const[JARGS]){path, to});
    if (r < 0)
        return r;
    struct vp_txn_item *it = add_item(t, path, to);
    it->is_move = true;
    item_identity(it, st);
    return 0;
}

/* Whether the path still holds what the transaction means to replace: the same inode,
 * not written to since it was read (size and modification time; not the change time,
 * which our own hard link to it moved). */
static bool unchanged(const struct vp_txn_item *it)
{
    if (!it->is_link) {
        struct stat st;
        return lstat(it->path, &st) == 0 && st.st_dev == it->dev && st.st_ino == it->ino &&
               st.st_size == it->size && st.st_mtim.tv_sec == it->mtime.tv_sec &&
               st.st_mtim.tv_nsec == it->mtime.tv_nsec;
    }
    char cur[4096];
    ssize_t n = readlink(it->path, cur, sizeof(cur) - 1);
    if (n < 0)
        return !it->prev_target && errno == ENOENT;
    cur[n] = '\0';
    return it->prev_target && !strcmp(cur, it->prev_target);
}

int vp_txn_rename_all(struct vp_txn *t)
{
    for (size_t i = 0; i < t->n; i++) {
        struct vp_txn_item *it = &t->items[i];
        if (!unchanged(it))
            return vp_error(-EAGAIN,
                            "%s changed while vgpu-patch was working on it (an "
                            "upgrade?); everything is put back: run it again",
                            it->path);
        /* Intent first: undoing a rename that did not happen finds the original in place. */
        int r = jlog(t, "rename", (const char *const[JARGS]){it->path});
        if (r < 0)
            return r;
        if (it->is_drop   ? unlink(it->path) < 0
            : it->is_move ? renameat2(AT_FDCWD, it->path, AT_FDCWD, it->tmp, RENAME_NOREPLACE) < 0
                          : rename(it->tmp, it->path) < 0)
            return vp_error_errno(-errno, "cannot %s %s", it->is_drop ? "remove" : "rename",
                                  it->is_drop ? it->path : it->tmp);
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
        free(t->items[i].prev_target);
    }
    free(t->items);
    if (t->jfd >= 0)
        close(t->jfd);
    t->jfd = -1;
    t->items = NULL;
    t->n = 0;
}

int vp_txn_commit(struct vp_txn *t, const struct vp_manifest *m)
{
    /* The manifest is part of the transaction: staged first, put in place only by a
     * committed journal (here, or by the replay after a crash). */
    _cleanup_(freep) char *mnew = state_path(t->st, "manifest.new");
    _cleanup_(freep) char *text = vp_manifest_format(m);
    vp_fault("before-manifest");
    int r = vp_write_file_atomic(mnew, text, strlen(text), 0600);
    vp_fault("after-manifest");
    if (r == 0)
        r = jlog(t, "committed", NULL);
    t->committed = r == 0;
    vp_fault("committed");
    txn_release(t);
    if (r < 0)
        return r;
    r = vp_txn_replay(t->st); /* puts the manifest in; removes temporaries and the journal */
    vp_strv_release(&t->st->recovered);
    return r;
}

int vp_txn_abort(struct vp_txn *t)
{
    txn_release(t);
    struct vp_strv keep = t->st->recovered;
    t->st->recovered = (struct vp_strv){0};
    int r = vp_txn_replay(t->st);
    vp_strv_release(&t->st->recovered);
    t->st->recovered = keep;
    return r;
}
