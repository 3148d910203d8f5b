/* wiring: `vgpu-patch ollama`'s last step (DESIGN §3 "wire"): our drop-in and path units
 * for the service that runs the install, recorded in the manifest; where systemd runs
 * the machine, daemon-reload, the path unit enabled and (with --restart) Ollama
 * restarted; elsewhere the commands that do it. Also what rollback must do around the
 * removal of those files. */
#include "cli.h"
#include "rollback.h"
#include "spawn.h"
#include "wire.h"

#include <errno.h>
#include <string.h>

int cli_systemctl(const char *a, const char *b, const char *c)
{
    char *const argv[] = {"/usr/bin/systemctl", (char *)a, (char *)b, (char *)c, NULL};
    char *const env[] = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C", NULL};
    struct vp_spawn_result res;
    int r = vp_spawn(argv, env, false, 120000, &res);
    if (r < 0)
        return vp_error(r, "cannot run systemctl: %s", vp_last_error());
    bool ok = vp_spawn_ok(&res);
    if (!ok)
        vp_error(-EIO, "systemctl %s %s%s%s failed: %.300s", a, b ? b : "", c ? " " : "",
                 c ? c : "", res.err);
    vp_spawn_result_release(&res);
    return ok ? 0 : -EIO;
}

bool cli_drive_systemd(const struct vp_common *c)
{
    return !strcmp(c->root, "/") && vp_systemd_booted();
}

bool cli_wiring_changed(const struct cli_wiring *w)
{
    for (size_t i = 0; i < w->res.n; i++)
        if (w->res.files[i].written)
            return true;
    return false;
}

static void activate(const struct vp_common *c, const struct vp_wire_result *res, bool restart,
                     struct cli_wiring *ret)
{
    ret->activate_hint = vp_xasprintf("systemctl daemon-reload && systemctl enable --now %s "
                                      "&& systemctl restart %s",
                                      VP_PATH_UNIT, res->unit_name);
    if (!cli_wiring_changed(ret) && !restart) {
        ret->reason = "nothing of systemd changed";
        /* Files written under --root or in an image are enabled on the first run where
         * systemd runs the machine. */
        if (!cli_drive_systemd(c) || cli_systemctl("is-enabled", "--quiet", VP_PATH_UNIT) == 0) {
            ret->activated = cli_drive_systemd(c);
            return;
        }
    }
    if (!cli_drive_systemd(c)) {
        ret->reason = "systemd does not run this machine (or --root is given): the files are "
                      "written; activate them with the command shown";
        return;
    }
    if (cli_systemctl("daemon-reload", NULL, NULL) < 0 ||
        cli_systemctl("enable", "--now", VP_PATH_UNIT) < 0) {
        ret->error = vp_xstrdup(vp_last_error());
        return;
    }
    ret->activated = true;
    if (restart) {
        if (cli_systemctl("restart", res->unit_name, NULL) < 0)
            ret->error = vp_xstrdup(vp_last_error());
        else
            ret->restarted = true;
    }
}

static void note_unwired(void *ctx, const struct vp_entry *e, enum vp_rollback_outcome out,
                         const char *msg)
{
    struct cli_wiring *w = ctx;
    vp_strv_push_take(
        &w->removed,
        out == VP_ROLLBACK_RESTORED || out == VP_ROLLBACK_ALREADY
            ? vp_xstrdup(e->path)
            : vp_xasprintf("%s: %s (%s)", e->path, vp_rollback_outcome_name(out), msg ? msg : "?"));
}

/* --no-wire: an install wired by an earlier run loses our drop-in and units (they would
 * go on running ensure with the earlier wiring), and its record the systemd dir. */
static int unwire(const struct vp_common *c, const char *state_dir_ondisk,
                  const struct vp_install *in, struct cli_wiring *ret)
{
    ret->reason = "--no-wire";
    struct vp_manifest m;
    int r = vp_manifest_load(state_dir_ondisk, &m);
    if (r < 0)
        return r;
    struct vp_manifest_install *mi = vp_manifest_install(&m, in->prefix);
    size_t units = mi->n - vp_install_tree_entries(mi);
    if (!units && !mi->systemd_dir) {
        vp_manifest_release(&m);
        return 0;
    }
    if (units)
        cli_unwire_before(c);
    struct vp_strv backups = {0};
    enum vp_rollback_outcome worst;
    vp_rollback_install(c->root, mi, VP_UNDO_UNITS, false, note_unwired, ret, &backups, &worst);
    vp_strv_release(&backups); /* units have no backups */
    free(mi->systemd_dir);
    mi->systemd_dir = NULL;
    r = vp_manifest_save(state_dir_ondisk, &m);
    vp_manifest_release(&m);
    if (units)
        cli_unwire_after(c);
    if (r < 0)
        return r;
    ret->reason = worst == VP_ROLLBACK_RESTORED
                      ? "--no-wire: the drop-in and units of an earlier run are removed"
                      : "--no-wire: our earlier systemd files are removed, except an edited "
                        "one (see notes)";
    return 0;
}

int cli_wire_install(const struct vp_common *c, const char *state_dir_ondisk,
                     const struct vp_install *in, const struct cli_wire_args *a,
                     struct cli_wiring *ret)
{
    *ret = (struct cli_wiring){0};
    if (a->no_wire)
        return unwire(c, state_dir_ondisk, in, ret);
    if (!in->unit) {
        ret->reason = "no systemd unit runs this install: run `vgpu-patch ensure` after every "
                      "Ollama upgrade";
        return 0;
    }
    _cleanup_(freep) char *self = vp_self_relative(".");
    _cleanup_(freep) char *bindir = vp_path_normalize(self);
    struct vp_wire_opts wo = {
        .root = c->root,
        .systemd_dir = a->systemd_dir ? a->systemd_dir : VP_DEFAULT_SYSTEMD_DIR,
        .unit = in->unit,
        .prefix = in->prefix,
        .bindir = bindir,
        .state_dir = c->state_dir,
        .shim_dir = a->shim_dir,
        .keep_vulkan = a->keep_vulkan,
        .launcher = a->launcher,
    };
    struct vp_manifest m;
    int r = vp_manifest_load(state_dir_ondisk, &m);
    if (r < 0)
        return r;
    struct vp_manifest_install *mi = vp_manifest_install(&m, in->prefix);
    r = vp_wire(&wo, mi, &ret->res);
    free(mi->systemd_dir);
    mi->systemd_dir = vp_xstrdup(wo.systemd_dir);
    free(mi->keep_vulkan);
    mi->keep_vulkan = a->keep_vulkan ? vp_xstrdup("1") : NULL;
    int s = vp_manifest_save(state_dir_ondisk, &m); /* what was written is recorded */
    vp_manifest_release(&m);
    if (r < 0 || s < 0)
        return r < 0 ? r : s;
    ret->done = true;
    activate(c, &ret->res, a->restart, ret);
    return 0;
}

void cli_wiring_release(struct cli_wiring *w)
{
    vp_wire_result_release(&w->res);
    free(w->activate_hint);
    free(w->error);
    vp_strv_release(&w->removed);
    *w = (struct cli_wiring){0};
}

void cli_json_wiring(struct vp_json *j, const struct cli_wiring *w)
{
    vp_json_begin_object(j, "wiring");
    vp_json_bool(j, "done", w->done);
    vp_json_string(j, "reason", w->reason);
    vp_json_begin_array(j, "files");
    for (size_t i = 0; i < w->res.n; i++) {
        vp_json_begin_object(j, NULL);
        vp_json_string(j, "path", w->res.files[i].path);
        vp_json_string(j, "role", w->res.files[i].role);
        vp_json_bool(j, "written", w->res.files[i].written);
        vp_json_end_object(j);
    }
    vp_json_end_array(j);
    vp_json_bool(j, "activated", w->activated);
    vp_json_bool(j, "restarted", w->restarted);
    vp_json_string(j, "activate", w->activated ? NULL : w->activate_hint);
    vp_json_string(j, "error", w->error);
    cli_json_strv(j, "removed", &w->removed);
    vp_json_end_object(j);
}

void cli_print_wiring(const struct cli_wiring *w)
{
    if (!w->done) {
        printf("systemd: not wired (%s)\n", w->reason);
        for (size_t i = 0; i < w->removed.n; i++)
            printf("  removed  %s\n", w->removed.v[i]);
        return;
    }
    printf("systemd: wired\n");
    for (size_t i = 0; i < w->res.n; i++)
        printf("  %-12s %s%s\n", w->res.files[i].role, w->res.files[i].path,
               w->res.files[i].written ? "" : " (unchanged)");
    if (w->error)
        printf("  systemctl failed: %s\n", w->error);
    else if (w->restarted)
        printf("  activated; %s restarted\n", w->res.unit_name);
    else if (w->activated)
        printf("  activated; restart Ollama for it to take effect: systemctl restart %s (or "
               "--restart)\n",
               w->res.unit_name);
    else
        printf("  %s:\n    %s\n", w->reason, w->activate_hint);
}

void cli_unwire_before(const struct vp_common *c)
{
    if (cli_drive_systemd(c))
        cli_systemctl("disable", "--now", VP_PATH_UNIT); /* best effort: the files go next */
}

void cli_unwire_after(const struct vp_common *c)
{
    if (cli_drive_systemd(c))
        cli_systemctl("daemon-reload", NULL, NULL);
}
