/* apply: the write phase of `vgpu-patch ollama`. */
#include "apply.h"
#include "copy.h"
#include "fileops.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <pthread.h>
#include <signal.h>
#include <time.h>

static char *describe_edits(const struct vp_plan_file *f)
{
    _cleanup_(freep) char *s = vp_xstrdup("");
    for (size_t i = 0; i < f->n_edits; i++) {
        _cleanup_(freep) char *d = vp_edit_describe(&f->edits[i]);
        char *next = vp_xasprintf("%s%s%s", s, i ? "; " : "", d);
        free(s);
        s = next;
    }
    char *r = s;
    s = NULL;
    return r;
}

static void add_result(struct vp_apply_result *r, const char *path, const char *action,
                       const char *method, uint64_t bytes)
{
    r->files = vp_xrealloc(r->files, (r->n + 1) * sizeof(*r->files));
    r->files[r->n++] = (struct vp_apply_file){vp_xstrdup(path), action, method, bytes};
    r->bytes_written += bytes;
}

struct staged {
    struct vp_entry entry;
    char *obsolete_backup; /* the backup of an original that was replaced since */
    uint64_t dev, ino;     /* the inode being replaced */
};

static int stage_elf(struct vp_txn *t, const struct vp_plan *p, const struct vp_plan_file *f,
                     struct vp_manifest_install *mi, const char *patchelf,
                     struct vp_apply_result *res, struct staged *out, unsigned idx)
{
    _cleanup_(freep) char *ondisk = vp_rooted(p->root, f->path);
    _cleanup_(vp_elf_freep) struct vp_elf *e = NULL;
    int r = vp_elf_open(ondisk, &e);
    if (r < 0)
        return r;
    struct stat st;
    if (fstat(e->fd, &st) < 0)
        return vp_error_errno(-errno, "cannot stat %s", ondisk);
    /* The plan (its method, its program header slot) holds for the file it was made for. */
    if (st.st_dev != f->dev || st.st_ino != f->ino || (uint64_t)st.st_size != f->size ||
        vp_mtime_ns(&st) != f->mtime_ns)
        return vp_error(-EAGAIN,
                        "%s changed after it was planned (an upgrade?); nothing is "
                        "changed: run vgpu-patch again",
                        ondisk);
    const struct vp_entry *old = vp_manifest_find(mi, f->path);
    bool ours = old && old->patched.ino == st.st_ino && old->patched.size == (uint64_t)st.st_size &&
                old->patched.mtime_ns == vp_mtime_ns(&st);

    int fd;
    const char *tmp;
    if ((r = vp_txn_stage_file(t, ondisk, &fd, &tmp)) < 0)
        return r;
    _cleanup_(closep) int tmpfd = fd;
    struct vp_copy_result cr;
    char patched_b3[VP_B3_HEX];
    if (f->choice.method == VP_WRITE_PATCHELF) {
        if ((r = vp_copy_patched(e->fd, e->size, tmpfd, NULL, &cr)) < 0 ||
            (r = vp_elfwrite_patchelf(e, tmp, f->edits, f->n_edits, patchelf, &res->wstats)) < 0 ||
            (r = vp_b3_file(tmp, patched_b3)) < 0)
            return r;
    } else {
        struct vp_patchset ps;
        if ((r = vp_elfwrite_prepare(e, f->edits, f->n_edits, &f->choice, &ps)) < 0)
            return r;
        r = vp_copy_patched(e->fd, e->size, tmpfd, &ps, &cr);
        vp_patchset_release(&ps);
        if (r < 0)
            return vp_error(r, "%s: %s", ondisk, vp_last_error());
        memcpy(patched_b3, cr.patched_b3, VP_B3_HEX);
    }
    struct stat tst;
    if ((r = vp_copy_attributes(e->fd, tmpfd, &st, false, ondisk)) < 0 ||
        (r = vp_elfwrite_check(e, tmp, f->edits, f->n_edits)) < 0)
        return r;
    if (fsync(tmpfd) < 0 || fstat(tmpfd, &tst) < 0)
        return vp_error_errno(-errno, "cannot sync %s", tmp);
    vp_fault("staged");

    _cleanup_(freep) char *bdir = vp_state_backup_dir(t->st);
    /* A backup keeps one inode: named by content and inode, so an identical file that
     * replaced it (an upgrade to the same bytes) gets its own. */
    _cleanup_(freep) char *prev =
        ours ? vp_xasprintf("%s/txn-%d-%u", bdir, (int)getpid(), idx)
             : vp_xasprintf("%s/%s.%llu", bdir, cr.orig_b3, (unsigned long long)st.st_ino);
    if ((r = vp_txn_keep_prev(t, ondisk, e->fd, &st, prev, !ours, cr.orig_b3)) < 0)
        return r;

    struct vp_entry *en = &out->entry;
    *en = (struct vp_entry){.kind = VP_ENTRY_FILE,
                            .path = vp_xstrdup(f->path),
                            .role = vp_xstrdup(vp_file_role_name(f->role)),
                            .method = vp_xstrdup(vp_write_method_name(f->choice.method)),
                            .edits = describe_edits(f)};
    if (ours) {
        en->orig = old->orig;
        en->mode = old->mode, en->uid = old->uid, en->gid = old->gid;
        en->backup = vp_xstrdup(old->backup);
    } else {
        vp_fileid_of(&en->orig, &st, cr.orig_b3);
        en->mode = st.st_mode & 07777, en->uid = st.st_uid, en->gid = st.st_gid;
        en->backup = vp_xstrdup(prev);
        if (old && old->backup && strcmp(old->backup, prev))
            out->obsolete_backup = vp_xstrdup(old->backup);
    }
    vp_fileid_of(&en->patched, &tst, patched_b3);
    out->dev = st.st_dev;
    out->ino = st.st_ino;
    uint64_t written = cr.bytes_written;
    add_result(res, f->path, "patched", vp_write_method_name(f->choice.method), written);
    return 0;
}

static int stage_link(struct vp_txn *t, const struct vp_plan *p, const struct vp_plan_file *f,
                      struct vp_apply_result *res, struct staged *out)
{
    _cleanup_(freep) char *ondisk = vp_rooted(p->root, f->path);
    char *prev_target = NULL;
    int r = vp_txn_stage_link(t, ondisk, f->link_target, &prev_target);
    if (r < 0)
        return r;
    out->entry = (struct vp_entry){.kind = VP_ENTRY_LINK,
                                   .path = vp_xstrdup(f->path),
                                   .role = vp_xstrdup("link"),
                                   .target = vp_xstrdup(f->link_target),
                                   .prev_target = prev_target};
    add_result(res, f->path, "linked", "symlink", 0);
    return 0;
}

/* SIGINT, SIGTERM, SIGHUP and SIGQUIT wait while installed files are being replaced: a
 * stop request ends the run at the next safe point, with every original put back. */
static const int stop_signals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};

static void block_stops(sigset_t *old)
{
    sigset_t set;
    sigemptyset(&set);
    for (size_t i = 0; i < VP_ARRAY_SIZE(stop_signals); i++)
        sigaddset(&set, stop_signals[i]);
    pthread_sigmask(SIG_BLOCK, &set, old);
}

/* A stop signal that arrived while blocked, taken (so unblocking does not kill us
 * before the undo is reported); 0 when none. */
static int stop_requested(void)
{
    sigset_t pending;
    if (sigpending(&pending) < 0)
        return 0;
    for (size_t i = 0; i < VP_ARRAY_SIZE(stop_signals); i++)
        if (sigismember(&pending, stop_signals[i])) {
            sigset_t one;
            sigemptyset(&one);
            sigaddset(&one, stop_signals[i]);
            const struct timespec now = {0, 0};
            sigtimedwait(&one, NULL, &now);
            return stop_signals[i];
        }
    return 0;
}

static int check_stop(void)
{
    int sig = stop_requested();
    return sig ? vp_error(-EINTR, "stopped by signal %d (%s)", sig, strsignal(sig)) : 0;
}

/* Records how the shims reach the install; true when that changed. */
static bool record_mechanism(struct vp_manifest_install *mi, const struct vp_apply_opts *o)
{
    const char *mech = o->mechanism ? o->mechanism : "patch";
    const char *del = o->delivery ? o->delivery : "elf";
    if (vp_streq_null(mi->mechanism, mech) && vp_streq_null(mi->delivery, del) &&
        vp_streq_null(mi->requested, o->requested) && !mi->restored)
        return false;
    free(mi->mechanism);
    free(mi->delivery);
    free(mi->requested);
    free(mi->restored);
    mi->mechanism = vp_xstrdup(mech);
    mi->delivery = vp_xstrdup(del);
    mi->requested = o->requested ? vp_xstrdup(o->requested) : NULL;
    mi->restored = NULL;
    return true;
}

static void record_install(struct vp_manifest *m, struct vp_manifest_install *mi,
                           const struct vp_plan *p, const struct vp_apply_opts *o,
                           struct staged *staged, size_t n)
{
    for (size_t i = 0; i < n; i++)
        vp_manifest_put(mi, &staged[i].entry);
    free(mi->shim_dir);
    mi->shim_dir = vp_xstrdup(p->shims.dir);
    free(mi->version);
    mi->version = o->version ? vp_xstrdup(o->version) : NULL;
    free(mi->eras);
    mi->eras = o->eras ? vp_xstrdup(o->eras) : NULL;
    record_mechanism(mi, o);
    free(m->root);
    m->root = vp_xstrdup(p->root);
}

int vp_apply(const struct vp_plan *p, struct vp_state *st, const struct vp_apply_opts *o,
             struct vp_apply_result *ret)
{
    struct vp_apply_result res = {0};
    struct vp_manifest m;
    int r = vp_manifest_load(st->dir, &m);
    if (r < 0)
        return r;
    struct vp_manifest_install *mi = vp_manifest_install(&m, p->prefix);
    size_t n = 0;
    struct staged *staged = vp_xcalloc(p->n_files + 1, sizeof(*staged));
    double t0 = vp_now_ms();
    struct vp_txn t = {.jfd = -1};
    bool pending = vp_plan_pending(p) > 0;
    sigset_t old_mask;
    block_stops(&old_mask);
    if (pending && (r = vp_txn_begin(st, &t)) < 0)
        goto out;
    for (size_t i = 0; pending && i < p->n_files && r == 0; i++) {
        const struct vp_plan_file *f = &p->files[i];
        if (f->done || f->choice.method == VP_WRITE_IMPOSSIBLE)
            continue;
        if (f->role == VP_ROLE_LINK)
            r = stage_link(&t, p, f, &res, &staged[n]);
        else
            r = stage_elf(&t, p, f, mi, o->patchelf, &res, &staged[n], (unsigned)i);
        n++;
        if (r == 0)
            r = check_stop();
    }
    if (pending && r == 0)
        r = vp_txn_rename_all(&t);
    res.ms_write = vp_now_ms() - t0;
    if (r == 0 && o->verify) {
        double t1 = vp_now_ms();
        r = vp_verify_plan(p, o->verify, &res.verify);
        res.verified = r == 0;
        if (r == 0 && !res.verify.ok)
            r = vp_error(-EIO, "verification failed: the patched install does not load the "
                               "shims in every process");
        res.ms_verify = vp_now_ms() - t1;
    }
    if (r == 0)
        r = check_stop();
    if (r < 0) {
        if (pending) {
            char msg[1024];
            snprintf(msg, sizeof(msg), "%s", vp_last_error());
            if (vp_txn_abort(&t) < 0)
                snprintf(msg + strlen(msg), sizeof(msg) - strlen(msg),
                         "; undoing it failed too: %s", vp_last_error());
            vp_error(r, "%s", msg);
        }
        goto out;
    }
    if (!pending && (record_mechanism(mi, o) || !m.root)) {
        /* Nothing to write, but the manifest must say how the install is covered. */
        free(m.root);
        m.root = vp_xstrdup(p->root);
        if (!mi->shim_dir)
            mi->shim_dir = vp_xstrdup(p->shims.dir);
        if (!mi->version && o->version)
            mi->version = vp_xstrdup(o->version);
        if (!mi->eras && o->eras)
            mi->eras = vp_xstrdup(o->eras);
        r = vp_manifest_save(st->dir, &m);
    }
    if (pending) {
        record_install(&m, mi, p, o, staged, n);
        if ((r = vp_txn_commit(&t, &m)) < 0)
            goto out;
        for (size_t i = 0; i < n; i++)
            if (staged[i].obsolete_backup &&
                !vp_manifest_uses_backup(&m, staged[i].obsolete_backup))
                unlink(staged[i].obsolete_backup);
        uint64_t ids[2 * (n ? n : 1)];
        size_t k = 0;
        for (size_t i = 0; i < n; i++)
            if (staged[i].ino)
                ids[k++] = staged[i].dev, ids[k++] = staged[i].ino;
        vp_find_running(ids, k / 2, &res.running);
    }
out:
    stop_requested(); /* one that came during the commit: the work is done, exit normally */
    pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
    for (size_t i = 0; i < p->n_files; i++) {
        vp_entry_release(&staged[i].entry);
        free(staged[i].obsolete_backup);
    }
    free(staged);
    vp_manifest_release(&m);
    *ret = res;
    return r;
}

void vp_find_running(const uint64_t *dev_ino, size_t n, struct vp_strv *ret)
{
    DIR *d = n ? opendir("/proc") : NULL;
    if (!d)
        return;
    for (struct dirent *de; (de = readdir(d));) {
        if (de->d_name[0] < '1' || de->d_name[0] > '9')
            continue;
        _cleanup_(freep) char *exe = vp_xasprintf("/proc/%s/exe", de->d_name);
        struct stat st;
        if (stat(exe, &st) < 0)
            continue;
        for (size_t i = 0; i < n; i++) {
            if (st.st_dev != dev_ino[2 * i] || st.st_ino != dev_ino[2 * i + 1])
                continue;
            _cleanup_(freep) char *commf = vp_xasprintf("/proc/%s/comm", de->d_name);
            _cleanup_(freep) char *comm = NULL;
            if (vp_read_file(commf, 256, &comm, NULL) == 0)
                comm[strcspn(comm, "\n")] = '\0';
            vp_strv_push_take(ret, vp_xasprintf("%s (%s)", de->d_name, comm ? comm : "?"));
        }
    }
    closedir(d);
}

void vp_apply_result_release(struct vp_apply_result *r)
{
    for (size_t i = 0; i < r->n; i++)
        free(r->files[i].path);
    free(r->files);
    vp_verify_release(&r->verify);
    vp_strv_release(&r->running);
    *r = (struct vp_apply_result){0};
}
