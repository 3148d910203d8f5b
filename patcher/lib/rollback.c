/* rollback: entry states and exact undo. */
#include "rollback.h"
#include "fileops.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>

const char *vp_entry_state_name(enum vp_entry_state s)
{
    static const char *const names[] = {"patched", "linked", "original", "changed", "missing"};
    return names[s];
}

const char *vp_rollback_outcome_name(enum vp_rollback_outcome o)
{
    static const char *const names[] = {"restored", "already-original", "refused", "failed"};
    return names[o];
}

static bool is(const struct stat *st, const struct vp_fileid *id)
{
    return (uint64_t)st->st_size == id->size && vp_mtime_ns(st) == id->mtime_ns &&
           st->st_ino == id->ino;
}

static bool hashes_to(const char *path, const char *b3);

/* A systemd file we wrote: ours while it has the content we wrote (a directory we
 * created: while it is there). */
static enum vp_entry_state unit_state(const char *ondisk, const struct stat *st,
                                      const struct vp_entry *e, char **ret_detail)
{
    if (!e->patched.b3[0])
        return S_ISDIR(st->st_mode) ? VP_STATE_PATCHED : VP_STATE_CHANGED;
    if (S_ISREG(st->st_mode) && hashes_to(ondisk, e->patched.b3))
        return VP_STATE_PATCHED;
    *ret_detail = vp_xasprintf("%s was edited since vgpu-patch wrote it", e->path);
    return VP_STATE_CHANGED;
}

enum vp_entry_state vp_entry_state(const char *root, const struct vp_entry *e, char **ret_detail)
{
    _cleanup_(freep) char *ondisk = vp_rooted(root, e->path);
    struct stat st;
    *ret_detail = NULL;
    if (lstat(ondisk, &st) < 0) {
        *ret_detail = vp_xasprintf("%s is gone", e->path);
        return VP_STATE_MISSING;
    }
    if (e->kind == VP_ENTRY_UNIT)
        return unit_state(ondisk, &st, e, ret_detail);
    if (e->kind == VP_ENTRY_LINK) {
        char cur[PATH_MAX];
        ssize_t n = readlink(ondisk, cur, sizeof(cur) - 1);
        cur[n > 0 ? n : 0] = '\0';
        if (n > 0 && !strcmp(cur, e->target))
            return VP_STATE_LINKED;
        if (n > 0 && e->prev_target && !strcmp(cur, e->prev_target)) {
            *ret_detail = vp_xstrdup("the link that was there before is back");
            return VP_STATE_ORIGINAL;
        }
        *ret_detail = vp_xasprintf("points at %s, not %s", n > 0 ? cur : "(not a link)", e->target);
        return VP_STATE_CHANGED;
    }
    if (is(&st, &e->patched))
        return VP_STATE_PATCHED;
    /* An original restored from a copy is another inode with the same size and mtime. */
    if (is(&st, &e->orig) ||
        ((uint64_t)st.st_size == e->orig.size && vp_mtime_ns(&st) == e->orig.mtime_ns)) {
        *ret_detail = vp_xstrdup("the original is back in place");
        return VP_STATE_ORIGINAL;
    }
    *ret_detail =
        vp_xasprintf("replaced or modified since it was patched (inode %llu, %llu "
                     "bytes; patched was inode %llu, %llu bytes)",
                     (unsigned long long)st.st_ino, (unsigned long long)st.st_size,
                     (unsigned long long)e->patched.ino, (unsigned long long)e->patched.size);
    return VP_STATE_CHANGED;
}

static bool hashes_to(const char *path, const char *b3)
{
    char got[VP_B3_HEX];
    return vp_b3_file(path, got) == 0 && strcmp(got, b3) == 0;
}

/* Our systemd files go as they came: a file we wrote, if nobody edited it since; a
 * directory we created, when nothing else is left in it. */
static enum vp_rollback_outcome remove_unit(const char *ondisk, const struct vp_entry *e,
                                            enum vp_entry_state s, bool dry_run, char **ret_msg)
{
    if (s == VP_STATE_MISSING)
        return VP_ROLLBACK_ALREADY;
    if (s != VP_STATE_PATCHED) {
        *ret_msg = vp_xasprintf("%s was edited since vgpu-patch wrote it; left alone", e->path);
        return VP_ROLLBACK_REFUSED;
    }
    if (dry_run)
        return VP_ROLLBACK_RESTORED;
    bool dir = !e->patched.b3[0];
    if ((dir ? rmdir(ondisk) : unlink(ondisk)) == 0)
        return VP_ROLLBACK_RESTORED;
    if (dir && (errno == ENOTEMPTY || errno == EEXIST)) {
        *ret_msg = vp_xasprintf("%s holds other files: left in place", e->path);
        return VP_ROLLBACK_ALREADY;
    }
    *ret_msg = vp_xasprintf("cannot remove %s: %s", e->path, strerror(errno));
    return VP_ROLLBACK_FAILED;
}

enum vp_rollback_outcome vp_rollback_entry(const char *root, const struct vp_entry *e, bool dry_run,
                                           char **ret_msg)
{
    _cleanup_(freep) char *ondisk = vp_rooted(root, e->path);
    _cleanup_(freep) char *detail = NULL;
    enum vp_entry_state s = vp_entry_state(root, e, &detail);
    *ret_msg = NULL;
    if (e->kind == VP_ENTRY_LINK &&
        (s == VP_STATE_ORIGINAL || (s == VP_STATE_MISSING && !e->prev_target)))
        return VP_ROLLBACK_ALREADY;
    if (e->kind == VP_ENTRY_UNIT)
        return remove_unit(ondisk, e, s, dry_run, ret_msg);
    if (e->kind == VP_ENTRY_FILE && s == VP_STATE_ORIGINAL && hashes_to(ondisk, e->orig.b3))
        return VP_ROLLBACK_ALREADY;
    if (s != VP_STATE_PATCHED && s != VP_STATE_LINKED) {
        *ret_msg = vp_xasprintf("%s is %s: %s; left alone (run `vgpu-patch ollama` to patch "
                                "the new file)",
                                e->path, vp_entry_state_name(s), detail ? detail : "");
        return VP_ROLLBACK_REFUSED;
    }
    if (e->kind == VP_ENTRY_FILE && !hashes_to(ondisk, e->patched.b3)) {
        *ret_msg =
            vp_xasprintf("%s was modified in place since it was patched; left alone", e->path);
        return VP_ROLLBACK_REFUSED;
    }
    if (e->kind == VP_ENTRY_FILE && !hashes_to(e->backup, e->orig.b3)) {
        *ret_msg = vp_xasprintf("the backup %s does not hash to the original of %s any more; "
                                "not restoring it",
                                e->backup, e->path);
        return VP_ROLLBACK_FAILED;
    }
    if (dry_run)
        return VP_ROLLBACK_RESTORED;
    int r = e->kind == VP_ENTRY_LINK ? vp_restore_link(ondisk, e->prev_target)
                                     : vp_restore_file(ondisk, e->backup);
    if (r < 0) {
        *ret_msg = vp_xstrdup(vp_last_error());
        return VP_ROLLBACK_FAILED;
    }
    return VP_ROLLBACK_RESTORED;
}

size_t vp_rollback_install(const char *root, struct vp_manifest_install *in, enum vp_undo what,
                           bool dry_run, vp_rollback_report_fn report, void *ctx,
                           struct vp_strv *backups, enum vp_rollback_outcome *ret_worst)
{
    enum vp_rollback_outcome worst = VP_ROLLBACK_RESTORED;
    struct vp_strv done = {0};
    /* Tree: links (they point at the shims), then files, last patched first. Units: our
     * systemd files, then the directory that held them. */
    int first = what == VP_UNDO_TREE ? 0 : 2;
    for (int pass = first; pass < first + 2; pass++)
        for (size_t k = in->n; k-- > 0;) {
            struct vp_entry *e = &in->entries[k];
            bool dir = e->kind == VP_ENTRY_UNIT && !e->patched.b3[0];
            int want = e->kind == VP_ENTRY_LINK ? 0 : e->kind == VP_ENTRY_FILE ? 1 : dir ? 3 : 2;
            if (want != pass)
                continue;
            _cleanup_(freep) char *msg = NULL;
            enum vp_rollback_outcome out = vp_rollback_entry(root, e, dry_run, &msg);
            if ((out == VP_ROLLBACK_REFUSED && worst != VP_ROLLBACK_FAILED) ||
                out == VP_ROLLBACK_FAILED)
                worst = out;
            report(ctx, e, out, msg);
            if (out == VP_ROLLBACK_RESTORED || out == VP_ROLLBACK_ALREADY) {
                vp_strv_push(&done, e->path);
                if (e->backup)
                    vp_strv_push(backups, e->backup);
            }
        }
    size_t removed = 0;
    for (size_t d = 0; !dry_run && d < done.n; d++, removed++)
        vp_manifest_remove(in, done.v[d]);
    vp_strv_release(&done);
    /* Nothing of it left patched, nor is the audit mechanism delivered: the record
     * stays, saying so (`ensure` must not patch again what the operator rolled back). */
    if (what == VP_UNDO_TREE && !dry_run && !vp_install_tree_entries(in) &&
        !vp_streq_null(in->mechanism, "none")) {
        free(in->mechanism);
        free(in->delivery);
        in->mechanism = vp_xstrdup("none");
        in->delivery = NULL;
        removed++;
    }
    *ret_worst = worst;
    return removed;
}

/* ---- migrated entries ---- */

/* Whether what is at ondisk is what id describes: a file with that content, or a link
 * with that target. */
static bool holds(const char *ondisk, const struct vp_fileid *id, const char *target)
{
    struct stat st;
    if (lstat(ondisk, &st) < 0)
        return false;
    if (S_ISLNK(st.st_mode)) {
        char cur[PATH_MAX];
        ssize_t n = readlink(ondisk, cur, sizeof(cur) - 1);
        cur[n > 0 ? n : 0] = '\0';
        return target && n > 0 && !strcmp(cur, target);
    }
    return S_ISREG(st.st_mode) && id->b3[0] && (uint64_t)st.st_size == id->size &&
           hashes_to(ondisk, id->b3);
}

static enum vp_rollback_outcome refuse(char **ret_msg, char *msg)
{
    *ret_msg = msg;
    return VP_ROLLBACK_REFUSED;
}

static enum vp_rollback_outcome restore_backup(const char *ondisk, const struct vp_entry *e,
                                               bool dry_run, char **ret_msg)
{
    if (!e->backup)
        return vp_restore_link(ondisk, e->target) < 0 ? VP_ROLLBACK_FAILED : VP_ROLLBACK_RESTORED;
    if (!holds(e->backup, &e->orig, e->target)) {
        *ret_msg = vp_xasprintf("the backup %s is not what was at %s any more; not restoring "
                                "it",
                                e->backup, e->path);
        return VP_ROLLBACK_FAILED;
    }
    if (dry_run)
        return VP_ROLLBACK_RESTORED;
    if (vp_restore_file(ondisk, e->backup) < 0) {
        *ret_msg = vp_xstrdup(vp_last_error());
        return VP_ROLLBACK_FAILED;
    }
    return VP_ROLLBACK_RESTORED;
}

static enum vp_rollback_outcome undo_disable(const char *root, const char *ondisk,
                                             const struct vp_entry *e, bool dry_run, char **ret_msg)
{
    _cleanup_(freep) char *to = NULL;
    if (vp_root_ondisk(root, e->target, &to) < 0)
        return refuse(ret_msg, vp_xasprintf("%s; left alone", vp_last_error()));
    struct stat st;
    bool here = lstat(ondisk, &st) == 0, there = lstat(to, &st) == 0;
    if (here && !there && holds(ondisk, &e->orig, NULL))
        return VP_ROLLBACK_ALREADY;
    if (here)
        return refuse(ret_msg,
                      vp_xasprintf("%s exists again: the disabled file is left as it is", e->path));
    struct stat lst;
    bool same_link = lstat(to, &lst) == 0 && S_ISLNK(lst.st_mode) && lst.st_ino == e->orig.ino &&
                     lst.st_dev == e->orig.dev;
    if (!same_link && !holds(to, &e->orig, NULL))
        return refuse(
            ret_msg,
            vp_xasprintf("%s is gone or was edited since it was disabled; left alone", e->target));
    if (dry_run)
        return VP_ROLLBACK_RESTORED;
    if (renameat2(AT_FDCWD, to, AT_FDCWD, ondisk, RENAME_NOREPLACE) < 0 ||
        vp_fsync_dir_of(ondisk) < 0) {
        *ret_msg = vp_xasprintf("cannot rename %s back: %s", e->target, strerror(errno));
        return VP_ROLLBACK_FAILED;
    }
    return VP_ROLLBACK_RESTORED;
}

enum vp_rollback_outcome vp_rollback_migrated(const char *root, const struct vp_entry *e,
                                              bool dry_run, bool *ret_ldconfig, char **ret_msg)
{
    _cleanup_(freep) char *ondisk = NULL;
    *ret_msg = NULL;
    /* As migrate did: the directory resolved inside the root, never out of it. */
    if (vp_root_ondisk(root, e->path, &ondisk) < 0)
        return refuse(ret_msg, vp_xasprintf("%s; left alone", vp_last_error()));
    struct stat st;
    bool present = lstat(ondisk, &st) == 0;
    const char *how = e->method;
    if (!strcmp(how, "disabled"))
        return undo_disable(root, ondisk, e, dry_run, ret_msg);
    if (!strcmp(how, "removed")) {
        if (present && holds(ondisk, &e->orig, e->target))
            return VP_ROLLBACK_ALREADY;
        if (present)
            return refuse(ret_msg,
                          vp_xasprintf("something else is at %s now; left alone", e->path));
        return restore_backup(ondisk, e, dry_run, ret_msg);
    }
    if (!strcmp(how, "regenerated")) {
        if (present && holds(ondisk, &e->patched, NULL)) {
            if (e->backup)
                return restore_backup(ondisk, e, dry_run, ret_msg);
            if (!dry_run && unlink(ondisk) < 0)
                return VP_ROLLBACK_FAILED;
            return VP_ROLLBACK_RESTORED;
        }
        *ret_ldconfig = true;
        *ret_msg = vp_xasprintf("%s was rebuilt since; ldconfig runs again instead", e->path);
        return VP_ROLLBACK_ALREADY;
    }
    /* edited */
    if (present && holds(ondisk, &e->orig, NULL))
        return VP_ROLLBACK_ALREADY;
    if (!present || !holds(ondisk, &e->patched, NULL))
        return refuse(
            ret_msg,
            vp_xasprintf("%s changed since vgpu-patch migrate edited it; left alone", e->path));
    return restore_backup(ondisk, e, dry_run, ret_msg);
}

size_t vp_rollback_migrations(const char *root, struct vp_manifest *m, bool dry_run,
                              vp_rollback_report_fn report, void *ctx, struct vp_strv *backups,
                              enum vp_rollback_outcome *ret_worst, bool *ret_ldconfig)
{
    enum vp_rollback_outcome worst = VP_ROLLBACK_RESTORED;
    size_t removed = 0;
    for (size_t k = m->n_migrated; k-- > 0;) {
        struct vp_entry *e = &m->migrated[k];
        _cleanup_(freep) char *msg = NULL;
        enum vp_rollback_outcome out = vp_rollback_migrated(root, e, dry_run, ret_ldconfig, &msg);
        if ((out == VP_ROLLBACK_REFUSED && worst != VP_ROLLBACK_FAILED) ||
            out == VP_ROLLBACK_FAILED)
            worst = out;
        report(ctx, e, out, msg);
        if (dry_run || (out != VP_ROLLBACK_RESTORED && out != VP_ROLLBACK_ALREADY))
            continue;
        if (e->backup)
            vp_strv_push(backups, e->backup);
        vp_entry_release(e);
        memmove(e, e + 1, (m->n_migrated - k - 1) * sizeof(*e));
        m->n_migrated--;
        removed++;
    }
    *ret_worst = worst;
    return removed;
}
