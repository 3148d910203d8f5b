/* vgpu-patch migrate: backs up and removes the global loader hooks an earlier deployment
 * left (ld.so.preload, loader variables and wrappers for ollama.service, libraries posing
 * as the driver), recorded so that `rollback` puts them back byte for byte. */
#include "cli.h"
#include "discover.h"
#include "trust.h"

#include <errno.h>
#include <string.h>

static const char help[] =
    "Usage: vgpu-patch migrate [--root DIR] [--state-dir DIR] [--prefix DIR]\n"
    "                          [--shim-dir DIR] [--dry-run] [--json]\n"
    "Back up and remove the global loader hooks of an earlier deployment: entries of\n"
    "/etc/ld.so.preload, LD_PRELOAD/LD_AUDIT/LD_LIBRARY_PATH in ollama.service drop-ins and\n"
    "environment files, ExecStart= wrappers, libraries posing as the driver. Unrelated\n"
    "entries and settings stay byte for byte; `vgpu-patch rollback` restores what went.\n\n"
    "  --root DIR       treat DIR as / for every system path\n"
    "  --state-dir DIR  manifest, journal, lock, backups (default " VP_DEFAULT_STATE_DIR ")\n"
    "  --prefix DIR     also look in this Ollama install's tree (default: the installs\n"
    "                   the manifest names, and the one ollama.service runs)\n"
    "  --shim-dir DIR   where the shims are at run time (links into it are followed there)\n"
    "  --dry-run        print the plan, write nothing\n"
    "  --json           one JSON document on stdout\n\n"
    "Exit: 0 done or nothing to do, 1 error (nothing changed; or, after the change,\n"
    "ldconfig or a check of ls, cat, sh, lspci failed: `vgpu-patch rollback` undoes it),\n"
    "4 a file changed meanwhile (nothing changed), 5 hooks remain that migrate may not\n"
    "remove (listed).\n";

enum vp_migrate_action cli_migration_action(const struct cli_migration *mg, size_t i)
{
    if (!mg->planned || i >= mg->plan.n_hooks)
        return VP_MIGRATE_KEEP_MANUAL;
    return mg->plan.files[mg->plan.of_hook[i]].action;
}

static int failed(struct cli_migration *mg, int code)
{
    free(mg->error);
    mg->error = vp_xstrdup(vp_last_error());
    mg->code = code;
    return code;
}

/* The install ollama.service runs (or the first on PATH), when there is one. */
static char *discovered_prefix(const struct vp_common *c)
{
    struct vp_discovery disc = {.chosen = -1};
    const char *path_env = strcmp(c->root, "/") ? NULL : getenv("PATH");
    char *prefix = NULL;
    if (vp_discover(c->root, NULL, path_env, &disc) == 0 && disc.chosen >= 0)
        prefix = vp_xstrdup(disc.installs[disc.chosen].prefix);
    vp_discovery_release(&disc);
    vp_clear_error();
    return prefix;
}

static int migrate_locked(const struct vp_common *c, struct vp_state *st, struct vp_manifest *m,
                          struct cli_migration *mg)
{
    int r = vp_migrate_apply(c->root, st, m, &mg->plan, &mg->changed, &mg->removed);
    if (r == -EAGAIN || r == -ESTALE)
        return failed(mg, VP_EXIT_DRIFT);
    if (r < 0)
        return failed(mg, VP_EXIT_ERROR);
    mg->committed = true;
    mg->ldconfig_needed = vp_migrate_cache_names(c->root, &mg->removed);
    if (mg->ldconfig_needed) {
        r = vp_migrate_ldconfig(c->root, st, m, &mg->ldconfig_msg);
        mg->ldconfig_ran = r == 0;
        if (r < 0 && !mg->ldconfig_msg)
            mg->ldconfig_msg = vp_xstrdup(vp_last_error());
        if (r < 0) {
            vp_error(r,
                     "the hooks are removed, but ldconfig did not rebuild the loader cache, "
                     "which still names them (%s): fix ldconfig and run it, or "
                     "`vgpu-patch rollback` restores the previous state",
                     mg->ldconfig_msg);
            return failed(mg, VP_EXIT_ERROR);
        }
    }
    return VP_EXIT_OK;
}

/* After unit files changed: daemon-reload where systemd runs this root, and the restart
 * the running Ollama needs in any case. */
static void tell_systemd(const struct vp_common *c, struct cli_migration *mg)
{
    const char *restart = "restart Ollama (systemctl restart ollama) so that the running "
                          "service drops the hooks";
    if (!vp_migrate_changes_units(&mg->plan)) {
        mg->systemd_msg = vp_xasprintf("%s", restart);
    } else if (!cli_drive_systemd(c)) {
        mg->systemd_msg = vp_xasprintf("unit files changed: where this root runs, "
                                       "`systemctl daemon-reload`, then %s",
                                       restart);
    } else if (cli_systemctl("daemon-reload", NULL, NULL) < 0) {
        mg->systemd_msg =
            vp_xasprintf("%s: run `systemctl daemon-reload`, then %s", vp_last_error(), restart);
        vp_clear_error();
    } else {
        mg->systemd_msg = vp_xasprintf("systemctl daemon-reload done; %s", restart);
    }
}

/* The check of the same program before the migration (NULL: none). */
static const struct vp_migrate_check *before_of(const struct cli_migration *mg, const char *prog)
{
    for (size_t i = 0; i < mg->n_checks_before; i++)
        if (!strcmp(mg->checks_before[i].program, prog))
            return &mg->checks_before[i];
    return NULL;
}

/* Exit 1 when a program of this machine that ran cleanly before the migration no longer
 * does (or the loader complains anew); one already failing before is only reported. */
static int check_programs(struct cli_migration *mg)
{
    vp_migrate_checks(&mg->checks, &mg->n_checks);
    for (size_t i = 0; i < mg->n_checks; i++) {
        const struct vp_migrate_check *b = before_of(mg, mg->checks[i].program);
        if (!vp_migrate_check_regressed(b, &mg->checks[i]))
            continue;
        vp_error(-EIO,
                 "%s does not run cleanly after the migration (%s): "
                 "`vgpu-patch rollback` restores the previous state",
                 mg->checks[i].program, mg->checks[i].message);
        return failed(mg, VP_EXIT_ERROR);
    }
    return VP_EXIT_OK;
}

int cli_migrate(const struct vp_common *c, const char *prefix, const char *shim_dir, bool dry_run,
                int lock_timeout_ms, struct cli_migration *ret)
{
    struct cli_migration *mg = ret;
    *mg = (struct cli_migration){.dry_run = dry_run};
    struct vp_state st = {.lock_fd = -1};
    bool locked = false;
    struct vp_manifest m = {0};
    int code = VP_EXIT_OK;
    if (dry_run) {
        if (cli_load_manifest(c, &m, NULL) < 0)
            return failed(mg, VP_EXIT_ERROR);
    } else {
        if (vp_state_open(c->state_ondisk, VP_STATE_CREATE | VP_STATE_LOCK, lock_timeout_ms, &st) <
            0)
            return failed(mg, VP_EXIT_ERROR);
        locked = true;
        for (size_t i = 0; i < st.recovered.n; i++)
            vp_strv_push(&mg->notes, st.recovered.v[i]);
        if (vp_manifest_load(st.dir, &m) < 0) {
            vp_state_close(&st);
            return failed(mg, VP_EXIT_ERROR);
        }
    }
    _cleanup_(freep) char *found = prefix ? NULL : discovered_prefix(c);
    cli_scan_hooks_with(c, &m, prefix ? prefix : found, shim_dir, &mg->hooks);
    int r = vp_migrate_plan(c->root, &mg->hooks, &mg->plan);
    if (r < 0)
        code = failed(mg, r == -EAGAIN ? VP_EXIT_DRIFT : VP_EXIT_ERROR);
    else
        mg->planned = true;
    if (code == VP_EXIT_OK && dry_run) {
        for (size_t i = 0; i < mg->plan.n; i++)
            if (mg->plan.files[i].action == VP_MIGRATE_REMOVE)
                vp_strv_push(&mg->removed, mg->plan.files[i].path);
        mg->ldconfig_needed = vp_migrate_cache_names(c->root, &mg->removed);
    } else if (code == VP_EXIT_OK && mg->plan.n > vp_migrate_kept(&mg->plan)) {
        if (!strcmp(c->root, "/"))
            vp_migrate_checks(&mg->checks_before, &mg->n_checks_before);
        code = migrate_locked(c, &st, &m, mg);
    }
    vp_manifest_release(&m);
    if (locked)
        vp_state_close(&st);
    if (mg->committed && mg->changed.n)
        tell_systemd(c, mg);
    if (code == VP_EXIT_OK && !dry_run && mg->changed.n && !strcmp(c->root, "/"))
        code = check_programs(mg);
    if (code == VP_EXIT_OK && vp_migrate_kept(&mg->plan)) {
        vp_error(-EEXIST,
                 "%zu file(s) with loader hooks may not be changed by vgpu-patch "
                 "(see above): remove those hooks by hand",
                 vp_migrate_kept(&mg->plan));
        code = failed(mg, VP_EXIT_HOOKS);
    }
    mg->code = code;
    return code;
}

void cli_migration_release(struct cli_migration *mg)
{
    vp_hooks_release(&mg->hooks);
    if (mg->planned)
        vp_migrate_plan_release(&mg->plan);
    vp_strv_release(&mg->changed);
    vp_strv_release(&mg->removed);
    vp_strv_release(&mg->notes);
    free(mg->ldconfig_msg);
    free(mg->systemd_msg);
    vp_migrate_checks_release(mg->checks, mg->n_checks);
    vp_migrate_checks_release(mg->checks_before, mg->n_checks_before);
    free(mg->error);
    *mg = (struct cli_migration){0};
}

static const char *action_text(const struct cli_migration *mg, enum vp_migrate_action a)
{
    static const char *const would[] = {"would remove", "would edit", "would disable",
                                        "kept (package-owned)", "kept (edit by hand)"};
    return mg->dry_run ? would[a] : vp_migrate_action_name(a);
}

void cli_print_migration(const struct cli_migration *mg)
{
    cli_print_notes(&mg->notes);
    if (!mg->hooks.n) {
        printf("migrate: no global loader hooks from an earlier method\n");
        return;
    }
    printf("migrate: %zu global loader hook(s) from an earlier method%s:\n", mg->hooks.n,
           mg->dry_run ? " (dry run: nothing is changed)" : "");
    for (size_t i = 0; i < mg->hooks.n; i++) {
        const struct vp_hook *k = &mg->hooks.v[i];
        cli_print_hook(k, action_text(mg, cli_migration_action(mg, i)));
        const struct vp_migrate_file *f = mg->planned ? &mg->plan.files[mg->plan.of_hook[i]] : NULL;
        if (f && f->package)
            printf("      owned by the package %s: remove the hook through it\n", f->package);
        if (f && f->to)
            printf("      nothing else is set in it: renamed to %s\n", f->to);
        if (f && f->via)
            printf("      %s is a link: the file it points to, %s, is edited\n", f->via, f->path);
        if (f && f->reason)
            printf("      left to you: %s\n", f->reason);
    }
    if (mg->ldconfig_needed)
        printf("ldconfig: %s\n", mg->ldconfig_msg ? mg->ldconfig_msg
                                 : mg->dry_run    ? "the loader cache names a file that "
                                                    "would be removed: ldconfig would run"
                                                  : "needed");
    for (size_t i = 0; i < mg->n_checks; i++) {
        const struct vp_migrate_check *b = before_of(mg, mg->checks[i].program);
        printf("check: %-4s %s (%s)%s\n", mg->checks[i].ok ? "ok" : "FAIL", mg->checks[i].program,
               mg->checks[i].message,
               !mg->checks[i].ok && !vp_migrate_check_regressed(b, &mg->checks[i])
                   ? ", as before the migration"
                   : "");
    }
    if (mg->changed.n && mg->committed)
        printf("migrated: %zu file(s) changed, kept in the state dir; `vgpu-patch rollback` "
               "restores them\n",
               mg->changed.n);
    if (mg->systemd_msg)
        printf("systemd: %s\n", mg->systemd_msg);
}

void cli_json_migration(struct vp_json *j, const struct cli_migration *mg)
{
    vp_json_bool(j, "dry_run", mg->dry_run);
    vp_json_begin_array(j, "hooks");
    for (size_t i = 0; i < mg->hooks.n; i++) {
        const struct vp_hook *k = &mg->hooks.v[i];
        const struct vp_migrate_file *f = mg->planned ? &mg->plan.files[mg->plan.of_hook[i]] : NULL;
        vp_json_begin_object(j, NULL);
        cli_json_hook_fields(j, k);
        vp_json_string(j, "action", vp_migrate_action_name(cli_migration_action(mg, i)));
        if (f && f->package)
            vp_json_string(j, "package", f->package);
        if (f && f->to)
            vp_json_string(j, "renamed_to", f->to);
        if (f && f->via)
            vp_json_string(j, "via_link", f->via);
        if (f && f->reason)
            vp_json_string(j, "manual_reason", f->reason);
        vp_json_end_object(j);
    }
    vp_json_end_array(j);
    vp_json_bool(j, "changed", mg->changed.n > 0 && mg->committed);
    cli_json_strv(j, "files", &mg->changed);
    vp_json_begin_object(j, "ldconfig");
    vp_json_bool(j, "needed", mg->ldconfig_needed);
    vp_json_bool(j, "ran", mg->ldconfig_ran);
    if (mg->ldconfig_msg)
        vp_json_string(j, "message", mg->ldconfig_msg);
    vp_json_end_object(j);
    vp_json_begin_array(j, "checks");
    for (size_t i = 0; i < mg->n_checks; i++) {
        vp_json_begin_object(j, NULL);
        vp_json_string(j, "program", mg->checks[i].program);
        vp_json_bool(j, "ok", mg->checks[i].ok);
        vp_json_bool(
            j, "regressed",
            vp_migrate_check_regressed(before_of(mg, mg->checks[i].program), &mg->checks[i]));
        vp_json_string(j, "message", mg->checks[i].message);
        vp_json_end_object(j);
    }
    vp_json_end_array(j);
    if (mg->systemd_msg)
        vp_json_string(j, "systemd", mg->systemd_msg);
    cli_json_strv(j, "notes", &mg->notes);
    if (mg->error)
        vp_json_string(j, "error", mg->error);
}

int cmd_migrate(int argc, char **argv)
{
    struct vp_common c = {0};
    bool dry_run = false;
    const char *prefix = NULL, *shim_dir = NULL;
    const struct cli_flag flags[] = {
        {"dry-run", &dry_run}, {"prefix", NULL, &prefix}, {"shim-dir", NULL, &shim_dir}, {0}};
    int code = cli_parse(argc, argv, "migrate", help, &c, flags);
    if (code >= 0)
        return code;
    if ((prefix && prefix[0] != '/') || (shim_dir && shim_dir[0] != '/')) {
        cli_common_release(&c);
        return cli_fail(VP_EXIT_USAGE, "--prefix and --shim-dir take absolute paths");
    }
    _cleanup_(freep) char *sd = shim_dir ? vp_xstrdup(shim_dir) : vp_shims_default_dir();
    struct cli_migration mg;
    code = cli_migrate(&c, prefix, sd, dry_run, 30000, &mg);
    if (c.json) {
        struct vp_json j;
        cli_json_begin(&j, "migrate");
        vp_json_int(&j, "exit_code", code);
        vp_json_string(&j, "root", c.root);
        cli_json_migration(&j, &mg);
        vp_json_end_object(&j);
        vp_json_finish(&j);
    } else {
        cli_print_migration(&mg);
        if (code == VP_EXIT_OK && dry_run)
            printf("dry run: nothing changed\n");
    }
    if (mg.error)
        cli_fail(code, "%s", mg.error);
    cli_migration_release(&mg);
    cli_common_release(&c);
    return code;
}
