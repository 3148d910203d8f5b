/* vgpu-patch rollback: puts the original files back — the very inodes that were
 * installed, kept by the backups — and removes the links vgpu-patch added. It refuses
 * to clobber a file that changed since it was patched (an upgrade replaced it). */
#include "audit.h"
#include "cli.h"
#include "rollback.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

static const char help[] =
    "Usage: vgpu-patch rollback [--root DIR] [--state-dir DIR] [--dry-run] [--json]\n"
    "Restore every file vgpu-patch changed, byte for byte. A file that changed since it\n"
    "was patched is left alone and reported (exit 4).\n";

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
                enum vp_rollback_outcome out = vp_rollback_entry(c.root, e, dry_run, &msg);
                if (out == VP_ROLLBACK_REFUSED && code == VP_EXIT_OK)
                    code = VP_EXIT_DRIFT;
                if (out == VP_ROLLBACK_FAILED)
                    code = VP_EXIT_ERROR;
                if (c.json) {
                    vp_json_begin_object(&j, NULL);
                    vp_json_string(&j, "path", e->path);
                    vp_json_string(&j, "state", vp_rollback_outcome_name(out));
                    if (msg)
                        vp_json_string(&j, "detail", msg);
                    vp_json_end_object(&j);
                } else {
                    printf("  %-16s %s%s%s\n", dry_run && out == VP_ROLLBACK_RESTORED
                                                    ? "would restore"
                                                    : vp_rollback_outcome_name(out),
                           e->path, msg ? ": " : "", msg ? msg : "");
                }
                if (out == VP_ROLLBACK_RESTORED || out == VP_ROLLBACK_ALREADY) {
                    vp_strv_push(&done, e->path);
                    if (e->backup)
                        vp_strv_push(&backups, e->backup);
                }
            }
        for (size_t d = 0; !dry_run && d < done.n; d++, removed++)
            vp_manifest_remove(in, done.v[d]);
        vp_strv_release(&done);
        /* Nothing of it left patched: neither is the audit mechanism delivered. */
        if (!dry_run && !in->n && in->mechanism) {
            free(in->mechanism);
            free(in->delivery);
            in->mechanism = in->delivery = NULL;
            removed++;
        }
    }
    if (!dry_run && !strcmp(vp_manifest_mechanism(&m), "none")) {
        struct vp_strv none = {0};
        if (vp_env_file_write(st.dir, &none) < 0)
            code = cli_fail(VP_EXIT_ERROR, "%s", vp_last_error());
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
        vp_json_string(&j, "mechanism", vp_manifest_mechanism(&m));
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
