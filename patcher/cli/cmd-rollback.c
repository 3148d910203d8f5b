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
    "Restore every file vgpu-patch changed, byte for byte — the patched files, our\n"
    "systemd files, and the legacy hooks `vgpu-patch migrate` removed. A file that changed\n"
    "since is left alone and reported (exit 4).\n";

struct report_ctx {
    struct vp_json *json; /* NULL: text */
    bool dry_run;
    bool units; /* a unit file or drop-in migrate had changed is back */
};

/* Whether a migrated entry's path is a unit file or drop-in that systemd reads. */
static bool unit_path(const char *path)
{
    return strstr(path, ".service.d/") || vp_endswith(path, ".service");
}

static void report_entry(void *ctx, const struct vp_entry *e, enum vp_rollback_outcome out,
                         const char *msg)
{
    struct report_ctx *rc = ctx;
    if (e->kind == VP_ENTRY_MIGRATED && out == VP_ROLLBACK_RESTORED && unit_path(e->path))
        rc->units = true;
    if (rc->json) {
        vp_json_begin_object(rc->json, NULL);
        vp_json_string(rc->json, "path", e->path);
        vp_json_string(rc->json, "state", vp_rollback_outcome_name(out));
        if (msg)
            vp_json_string(rc->json, "detail", msg);
        vp_json_end_object(rc->json);
    } else {
        printf("  %-16s %s%s%s\n",
               rc->dry_run && out == VP_ROLLBACK_RESTORED ? "would restore"
                                                          : vp_rollback_outcome_name(out),
               e->path, msg ? ": " : "", msg ? msg : "");
    }
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
    struct vp_strv backups = {0};
    size_t removed = 0;
    struct report_ctx rc = {.json = c.json ? &j : NULL, .dry_run = dry_run};
    struct vp_strv kept = {0};
    bool unwired = false;
    for (size_t i = 0; i < m.n; i++) {
        struct vp_manifest_install *in = &m.installs[i];
        enum vp_rollback_outcome worst;
        removed += vp_rollback_install(c.root, in, VP_UNDO_TREE, dry_run, report_entry, &rc,
                                       &backups, &worst);
        if (worst == VP_ROLLBACK_FAILED)
            code = VP_EXIT_ERROR;
        else if (worst == VP_ROLLBACK_REFUSED && code == VP_EXIT_OK)
            code = VP_EXIT_DRIFT;
        if (in->n == vp_install_tree_entries(in))
            continue; /* no systemd file of ours */
        if (worst != VP_ROLLBACK_RESTORED) {
            /* The service keeps running ensure until the tree is back. */
            vp_strv_push_take(&kept, vp_xasprintf("%s: our systemd files are kept while files "
                                                  "of the install are not back (see above)",
                                                  in->prefix));
            continue;
        }
        if (!dry_run)
            cli_unwire_before(&c); /* the path unit is disabled while its file exists */
        removed += vp_rollback_install(c.root, in, VP_UNDO_UNITS, dry_run, report_entry, &rc,
                                       &backups, &worst);
        unwired = !dry_run;
        if (worst == VP_ROLLBACK_FAILED)
            code = VP_EXIT_ERROR;
        else if (worst == VP_ROLLBACK_REFUSED && code == VP_EXIT_OK)
            code = VP_EXIT_DRIFT;
        if (!in->n) {
            free(in->systemd_dir);
            in->systemd_dir = NULL;
        }
    }
    /* The legacy hooks migrate took away come back last (the patch is undone first). */
    enum vp_rollback_outcome mworst;
    bool ldconfig = false;
    removed += vp_rollback_migrations(c.root, &m, dry_run, report_entry, &rc, &backups, &mworst,
                                      &ldconfig);
    if (mworst == VP_ROLLBACK_FAILED)
        code = VP_EXIT_ERROR;
    else if (mworst == VP_ROLLBACK_REFUSED && code == VP_EXIT_OK)
        code = VP_EXIT_DRIFT;
    if (rc.units && !dry_run) {
        /* The restored drop-ins (or their names back from .disabled) apply only once
         * systemd reloads; the running Ollama gets the hooks back on its restart. */
        const char *restart = "restart Ollama (systemctl restart ollama) for the running "
                              "service to see them";
        if (!cli_drive_systemd(&c)) {
            vp_strv_push_take(&kept, vp_xasprintf("unit files came back: where this root "
                                                  "runs, `systemctl daemon-reload`, then %s",
                                                  restart));
        } else if (cli_systemctl("daemon-reload", NULL, NULL) < 0) {
            vp_strv_push_take(&kept, vp_xasprintf("unit files came back: %s: run `systemctl "
                                                  "daemon-reload`, then %s",
                                                  vp_last_error(), restart));
            vp_clear_error();
        } else {
            vp_strv_push_take(&kept, vp_xasprintf("unit files came back: systemctl "
                                                  "daemon-reload done; %s",
                                                  restart));
        }
    }
    if (ldconfig && !dry_run) {
        _cleanup_(freep) char *msg = NULL;
        vp_ldconfig_run(c.root, &msg);
        vp_strv_push(&kept, msg);
    }
    if (!dry_run && !strcmp(vp_manifest_mechanism(&m), "none")) {
        struct vp_strv none = {0};
        if (vp_env_file_write(st.dir, &none) < 0)
            code = cli_fail(VP_EXIT_ERROR, "%s", vp_last_error());
    }
    if (unwired)
        cli_unwire_after(&c);
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
        cli_json_strv(&j, "notes", &kept);
        vp_json_int(&j, "exit_code", code);
        vp_json_string(&j, "mechanism", vp_manifest_mechanism(&m));
        vp_json_end_object(&j);
        vp_json_finish(&j);
    } else {
        cli_print_notes(&kept);
    }
    vp_strv_release(&kept);
    if (!c.json && code == VP_EXIT_OK) {
        printf("%s\n",
               dry_run ? "dry run: nothing changed" : "rolled back: the originals are in place");
    }
    vp_manifest_release(&m);
    vp_state_close(&st);
    cli_common_release(&c);
    return code;
}
