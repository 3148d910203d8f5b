/* wiring: `vgpu-patch ollama`'s last step (DESIGN §3 "wire"): our drop-in and path units
 * for the service that runs the install, recorded in the manifest; where systemd runs
 * the machine, daemon-reload, the path unit enabled and (with --restart) Ollama
 * restarted; elsewhere the commands that do it. Also what rollback must do around the
 * removal of those files. */
#include "cli.h"
#include "spawn.h"
#include "wire.h"

#include <errno.h>
#include <string.h>

/* systemctl with the given arguments (nothing inherited); a message when it fails. */
static int systemctl(const char *a, const char *b, const char *c)
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

/* Whether this run may drive systemd: the real root, and systemd as PID 1. */
static bool drive_systemd(const struct vp_common *c)
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
        ret->activated = drive_systemd(c); /* as the run that wrote them left them */
        ret->reason = "nothing of systemd changed";
        return;
    }
    if (!drive_systemd(c)) {
        ret->reason = "systemd does not run this machine (or --root is given): the files are "
                      "written; activate them with the command shown";
        return;
    }
    if (systemctl("daemon-reload", NULL, NULL) < 0 ||
        systemctl("enable", "--now", VP_PATH_UNIT) < 0) {
        ret->error = vp_xstrdup(vp_last_error());
        return;
    }
    ret->activated = true;
    if (restart) {
        if (systemctl("restart", res->unit_name, NULL) < 0)
            ret->error = vp_xstrdup(vp_last_error());
        else
            ret->restarted = true;
    }
}

int cli_wire_install(const struct vp_common *c, const char *state_dir_ondisk,
                     const struct vp_install *in, const struct cli_wire_args *a,
                     struct cli_wiring *ret)
{
    *ret = (struct cli_wiring){0};
    if (a->no_wire) {
        ret->reason = "--no-wire";
        return 0;
    }
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
    vp_json_end_object(j);
}

void cli_print_wiring(const struct cli_wiring *w)
{
    if (!w->done) {
        printf("systemd: not wired (%s)\n", w->reason);
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
    if (drive_systemd(c))
        systemctl("disable", "--now", VP_PATH_UNIT); /* best effort: the files go next */
}

void cli_unwire_after(const struct vp_common *c)
{
    if (drive_systemd(c))
        systemctl("daemon-reload", NULL, NULL);
}
