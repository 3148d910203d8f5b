/* vgpu-patch rollback: puts the original files back — the very inodes that were
 * installed, kept by the backups — and removes the links vgpu-patch added. It refuses
 * to clobber a file that changed since it was patched (an upgrade replaced it). */
#include "cli.h"
#include "copy.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

static const char help[] =
    "Usage: vgpu-patch rollback [--root DIR] [--state-dir DIR] [--dry-run] [--json]\n"
    "Restore every file vgpu-patch changed, byte for byte. A file that changed since it\n"
    "was patched is left alone and reported (exit 4).\n";

enum outcome { RESTORED, ALREADY, REFUSED, FAILED };
static const char *const outcome_names[] = {"restored", "already-original", "refused", "failed"};

static int restore_file(const char *ondisk, const struct vp_entry *e)
{
    _cleanup_(freep) char *tmp = vp_xasprintf("%s.vgpu-restore", ondisk);
    unlink(tmp);
    if (link(e->backup, tmp) < 0) {
        /* A copy on another file system: copy it back with the original's attributes. */
        _cleanup_(closep) int in = open(e->backup, O_RDONLY | O_CLOEXEC);
        struct stat st;
        if (in < 0 || fstat(in, &st) < 0)
            return vp_error_errno(-errno, "the backup %s is unreadable", e->backup);
        _cleanup_(closep) int out = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        struct vp_copy_result cr;
        if (out < 0 || vp_copy_patched(in, (uint64_t)st.st_size, out, NULL, &cr) < 0 ||
            fchown(out, e->uid, e->gid) < 0 || fchmod(out, e->mode) < 0 || fsync(out) < 0) {
            int err = -errno;
            unlink(tmp);
            return vp_error_errno(err ? err : -EIO, "cannot copy back %s", e->backup);
        }
        struct timespec ts[2] = {{0, UTIME_OMIT},
                                 {e->orig.mtime_ns / 1000000000, e->orig.mtime_ns % 1000000000}};
        futimens(out, ts);
    }
    char b3[VP_B3_HEX];
    int r = vp_b3_file(tmp, b3);
    if (r == 0 && strcmp(b3, e->orig.b3) != 0)
        r = vp_error(-EIO, "the backup %s does not hash to the original any more (%s, "
                           "expected %s): not restoring %s",
                     e->backup, b3, e->orig.b3, e->path);
    if (r == 0 && rename(tmp, ondisk) < 0)
        r = vp_error_errno(-errno, "cannot put %s back", e->path);
    if (r < 0) {
        unlink(tmp);
        return r;
    }
    return vp_fsync_dir_of(ondisk);
}

static enum outcome roll_entry(const char *root, const struct vp_entry *e, bool dry_run,
                               char **msg)
{
    _cleanup_(freep) char *ondisk = vp_rooted(root, e->path);
    _cleanup_(freep) char *detail = NULL;
    const char *state = cli_entry_state(root, e, &detail);
    if (!strcmp(state, "original") || (e->kind == VP_ENTRY_LINK && !strcmp(state, "missing")))
        return ALREADY;
    if (strcmp(state, "patched") && strcmp(state, "linked")) {
        *msg = vp_xasprintf("%s %s: %s; left alone (run `vgpu-patch ollama` to patch the new "
                            "file)",
                            e->path, state, detail ? detail : "");
        return REFUSED;
    }
    if (e->kind == VP_ENTRY_FILE) {
        char b3[VP_B3_HEX];
        if (vp_b3_file(ondisk, b3) < 0 || strcmp(b3, e->patched.b3) != 0) {
            *msg = vp_xasprintf("%s was modified in place since it was patched; left alone",
                                e->path);
            return REFUSED;
        }
    }
    if (dry_run)
        return RESTORED;
    int r = e->kind == VP_ENTRY_LINK ? (unlink(ondisk) < 0 ? -errno : vp_fsync_dir_of(ondisk))
                                     : restore_file(ondisk, e);
    if (r < 0) {
        *msg = vp_xstrdup(vp_last_error()[0] ? vp_last_error() : strerror(-r));
        return FAILED;
    }
    return RESTORED;
}

int cmd_rollback(int argc, char **argv)
{
    struct vp_common c = {0};
    bool dry_run = false;
    const struct cli_flag flags[] = {{"dry-run", &dry_run}, {0}};
    int code = cli_parse(argc, argv, "rollback", help, &c, flags);
    if (code >= 0)
        return code;

    struct vp_state st;
    int r = vp_state_open(c.state_ondisk, dry_run ? 0 : VP_STATE_LOCK, 30000, &st);
    if (r == -ENOENT) {
        if (c.json) {
            struct vp_json j;
            cli_json_begin(&j, "rollback");
            vp_json_int(&j, "exit_code", 0);
            vp_json_string(&j, "mechanism", "none");
            vp_json_begin_array(&j, "files");
            vp_json_end_array(&j);
            vp_json_end_object(&j);
            vp_json_finish(&j);
        } else {
            printf("nothing to roll back (no state in %s)\n", c.state_dir);
        }
        cli_common_release(&c);
        return VP_EXIT_OK;
    }
    if (r < 0) {
        cli_common_release(&c);
        return cli_fail(VP_EXIT_ERROR, "%s", vp_last_error());
    }
    struct vp_manifest m;
    if (vp_manifest_load(st.dir, &m) < 0) {
        vp_state_close(&st);
        cli_common_release(&c);
        return cli_fail(VP_EXIT_ERROR, "%s", vp_last_error());
    }
    struct vp_json j;
    if (c.json) {
        cli_json_begin(&j, "rollback");
        vp_json_bool(&j, "dry_run", dry_run);
        cli_json_strv(&j, "recovered", &st.recovered);
        vp_json_begin_array(&j, "files");
    } else {
        cli_print_notes(&st.recovered);
    }
    code = VP_EXIT_OK;
    struct vp_strv done = {0}, backups = {0};
    size_t removed = 0;
    for (size_t i = 0; i < m.n; i++) {
        struct vp_manifest_install *in = &m.installs[i];
        /* Links first (they point at the shims), then files, last patched first. */
        for (int pass = 0; pass < 2; pass++)
            for (size_t k = in->n; k-- > 0;) {
                struct vp_entry *e = &in->entries[k];
                if ((e->kind == VP_ENTRY_LINK) != (pass == 0))
                    continue;
                _cleanup_(freep) char *msg = NULL;
                enum outcome out = roll_entry(c.root, e, dry_run, &msg);
                if (out == REFUSED && code == VP_EXIT_OK)
                    code = VP_EXIT_DRIFT;
                if (out == FAILED)
                    code = VP_EXIT_ERROR;
                if (c.json) {
                    vp_json_begin_object(&j, NULL);
                    vp_json_string(&j, "path", e->path);
                    vp_json_string(&j, "state", outcome_names[out]);
                    if (msg)
                        vp_json_string(&j, "detail", msg);
                    vp_json_end_object(&j);
                } else {
                    printf("  %-16s %s%s%s\n", dry_run && out == RESTORED ? "would restore"
                                                                           : outcome_names[out],
                           e->path, msg ? ": " : "", msg ? msg : "");
                }
                if (out == RESTORED || out == ALREADY) {
                    vp_strv_push(&done, e->path);
                    if (e->backup)
                        vp_strv_push(&backups, e->backup);
                }
            }
        for (size_t d = 0; !dry_run && d < done.n; d++, removed++)
            vp_manifest_remove(in, done.v[d]);
        vp_strv_release(&done);
    }
    if (removed) {
        if (vp_manifest_save(st.dir, &m) < 0)
            code = cli_fail(VP_EXIT_ERROR, "%s", vp_last_error());
        for (size_t b = 0; b < backups.n; b++)
            if (!vp_manifest_uses_backup(&m, backups.v[b]))
                unlink(backups.v[b]);
    }
    vp_strv_release(&backups);
    if (c.json) {
        vp_json_end_array(&j);
        vp_json_int(&j, "exit_code", code);
        vp_json_string(&j, "mechanism", vp_manifest_count(&m) ? "patch" : "none");
        vp_json_end_object(&j);
        vp_json_finish(&j);
    } else if (code == VP_EXIT_OK) {
        printf("%s\n", dry_run ? "dry run: nothing changed" : "rolled back: the originals are in place");
    }
    vp_manifest_release(&m);
    vp_state_close(&st);
    cli_common_release(&c);
    return code;
}
