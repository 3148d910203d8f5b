/* vgpu-patch ensure: the quick, idempotent check for every service start (DESIGN §7).
 * With nothing changed since the last run it only confirms: every recorded file is as
 * it was left (stat), the shims (and the audit module) still load, and the environment
 * file says what the mechanism needs. An upgrade that replaced patched files, or no
 * record at all, is handed to `vgpu-patch ollama`; shims that no longer load get the
 * originals back, so that Ollama starts — on the CPU — instead of failing to. */
#include "audit.h"
#include "cli.h"
#include "rollback.h"

#include <errno.h>
#include <getopt.h>
#include <string.h>
#include <time.h>

extern char **environ;

static const char help[] =
    "Usage: vgpu-patch ensure [--root DIR] [--state-dir DIR] [--settle SEC] [--json]\n"
    "Make sure the recorded installs still load the shims, for every service start: re-apply\n"
    "a patch an upgrade removed (with the options it was made with), restore the originals\n"
    "when the shims no longer load (exit 0, with a warning: Ollama must start) and patch\n"
    "again once they do, leave alone what was rolled back, and write\n"
    "<state-dir>/ollama.env (empty when the patch covers everything, the audit variables\n"
    "otherwise). Inherited LD_* variables are cleared first. Without any record it does\n"
    "what `vgpu-patch ollama` does.\n"
    "  --settle SEC  first wait until no recorded release's files changed for SEC seconds\n"
    "                (an upgrade still extracting; at most 30 minutes), as the path unit does\n";

/* The longest --settle waits in all: Ollama's installer downloads and extracts in one
 * stream, so a slow network keeps the files changing for minutes. */
#define SETTLE_MAX_MS (30 * 60 * 1000.0)

/* The service's environment file also reaches ExecStartPre=: nothing inherited may
 * steer the checks (or vgpu-patch's own children). */
static void clear_loader_env(void)
{
    for (bool again = true; again;) {
        again = false;
        for (char **e = environ; e && *e; e++)
            if (vp_startswith(*e, "LD_") || vp_startswith(*e, "VGPU_SHIM_DIR=")) {
                _cleanup_(freep) char *name = vp_xstrndup(*e, strcspn(*e, "="));
                unsetenv(name);
                again = true;
                break;
            }
    }
}

enum action { ACT_NONE, ACT_REAPPLY, ACT_RESTORE, ACT_RESUME };

struct install_check {
    enum action action;
    char *why;
    struct vp_shims shims;
    bool shims_open;
};

/* Whether the shims (and for the audit mechanism its module) load here; why not. */
static bool shims_load(const struct vp_manifest_install *in, const char *libexec, bool audit,
                       struct install_check *ic)
{
    if (vp_shims_open(in->shim_dir, &ic->shims) < 0) {
        ic->why = vp_xstrdup(vp_last_error());
        return false;
    }
    ic->shims_open = true;
    if (vp_verify_shims_load(libexec, &ic->shims) < 0 ||
        (audit && (vp_shims_check_audit(&ic->shims) < 0 ||
                   vp_verify_audit_loads(libexec, &ic->shims) < 0))) {
        ic->why = vp_xstrdup(vp_last_error());
        return false;
    }
    return true;
}

/* Whether the install still stands as recorded; what to do when it does not. */
static void check_install(const struct vp_common *c, const struct vp_manifest_install *in,
                          const char *libexec, struct install_check *ret)
{
    const char *mech = vp_install_mechanism(in);
    if (!strcmp(mech, "none")) {
        /* Rolled back by the operator: left so. Restored by ensure because the shims
         * stopped loading: patched again once they load. */
        if (in->restored && shims_load(in, libexec, vp_streq_null(in->requested, "audit"), ret))
            ret->action = ACT_RESUME;
        return;
    }
    if (!shims_load(in, libexec, !strcmp(mech, "audit"), ret)) {
        ret->action = ACT_RESTORE;
        return;
    }
    for (size_t k = 0; k < in->n; k++) {
        _cleanup_(freep) char *detail = NULL;
        enum vp_entry_state es = vp_entry_state(c->root, &in->entries[k], &detail);
        if (es != VP_STATE_PATCHED && es != VP_STATE_LINKED) {
            ret->action = ACT_REAPPLY;
            ret->why = vp_xasprintf("%s: %s%s%s", in->entries[k].path, vp_entry_state_name(es),
                                    detail ? ": " : "", detail ? detail : "");
            return;
        }
    }
    /* Files the recorded ones do not cover: an upgrade that added a runner after the
     * last patch (a path-unit run in the middle of an extraction patched what was there). */
    _cleanup_(freep) char *stamp = vp_tree_stamp(c->root, in->prefix);
    if (!vp_streq_null(stamp, in->tree_stamp)) {
        ret->action = ACT_REAPPLY;
        ret->why = vp_xstrdup(in->tree_stamp ? "files of the release were added, removed or "
                                               "replaced since it was patched"
                                             : "no record of the release's layout yet");
    }
}

static char *stamps(const struct vp_common *c, const struct vp_manifest *m)
{
    char *all = vp_xstrdup("");
    for (size_t i = 0; i < m->n; i++) {
        _cleanup_(freep) char *one = vp_tree_stamp(c->root, m->installs[i].prefix);
        char *next = vp_xasprintf("%s%s ", all, one);
        free(all);
        all = next;
    }
    return all;
}

/* --settle: waits until the files of every recorded release stayed as they are for sec
 * seconds (the path unit fires on an upgrade's first write). A note says how long it
 * waited; NULL when nothing changed meanwhile. Takes no lock: a service start goes on. */
static char *settle(const struct vp_common *c, unsigned sec)
{
    struct vp_manifest m;
    if (cli_load_manifest(c, &m, NULL) < 0 || !m.n) {
        vp_manifest_release(&m);
        return NULL;
    }
    char *last = stamps(c, &m);
    double start = vp_now_ms(), quiet_since = start, quiet_ms = sec * 1000.0;
    bool changed = false;
    unsigned step_us = sec ? (sec * 1000000u / 4 < 1000000u ? sec * 1000000u / 4 : 1000000u) : 0;
    while (vp_now_ms() - quiet_since < quiet_ms && vp_now_ms() - start < SETTLE_MAX_MS) {
        usleep(step_us);
        char *now = stamps(c, &m);
        if (strcmp(now, last)) {
            changed = true;
            quiet_since = vp_now_ms();
        }
        free(last);
        last = now;
    }
    free(last);
    vp_manifest_release(&m);
    double waited = (vp_now_ms() - start) / 1000.0;
    if (vp_now_ms() - quiet_since < quiet_ms)
        return vp_xasprintf("the files were still changing after %.0f s of --settle: "
                            "checking them as they are",
                            waited);
    return changed ? vp_xasprintf("waited %.1f s for the release's files to settle", waited)
                   : NULL;
}

static void report_restore(void *ctx, const struct vp_entry *e, enum vp_rollback_outcome out,
                           const char *msg)
{
    struct vp_strv *notes = ctx;
    vp_strv_push_take(notes, vp_xasprintf("%s %s%s%s", vp_rollback_outcome_name(out), e->path,
                                          msg ? ": " : "", msg ? msg : ""));
}

/* Hands an install to `vgpu-patch ollama` with the options it was patched with; that
 * prints the report (as command "ensure", with the action). in NULL: the first start,
 * with the defaults. */
static int hand_over(const struct vp_common *c, const struct vp_manifest_install *in,
                     const char *action)
{
    const char *argv[24];
    int n = 0;
    argv[n++] = "ollama";
    argv[n++] = "--root";
    argv[n++] = c->root;
    argv[n++] = "--state-dir";
    argv[n++] = c->state_dir;
    if (in) {
        argv[n++] = "--prefix";
        argv[n++] = in->prefix;
        argv[n++] = "--shim-dir";
        argv[n++] = in->shim_dir;
        if (in->requested) {
            argv[n++] = "--mechanism";
            argv[n++] = in->requested;
        }
        if (vp_streq_null(in->delivery, "launcher")) {
            argv[n++] = "--delivery";
            argv[n++] = "launcher";
        }
        if (in->systemd_dir) {
            argv[n++] = "--systemd-dir";
            argv[n++] = in->systemd_dir;
        } else {
            argv[n++] = "--no-wire";
        }
        if (in->keep_vulkan)
            argv[n++] = "--keep-vulkan";
    }
    if (c->json)
        argv[n++] = "--json";
    argv[n] = NULL;
    optind = 0; /* getopt starts afresh for the command's own options */
    return cli_ollama_run(n, (char **)argv, "ensure", action);
}

/* Restores an install whose shims no longer load; the record remembers it. */
static void restore(const struct vp_common *c, struct vp_manifest_install *in, const char *why,
                    struct vp_strv *notes, struct vp_strv *backups)
{
    enum vp_rollback_outcome worst;
    /* The tree alone: our drop-in keeps running ensure, which patches again once the
     * shims load. */
    vp_rollback_install(c->root, in, VP_UNDO_TREE, false, report_restore, notes, backups,
                        &worst);
    bool left = vp_install_tree_entries(in) > 0;
    if (!left) {
        free(in->restored);
        in->restored = vp_xstrdup("1");
    }
    vp_strv_push_take(notes,
                      vp_xasprintf("WARNING: the shims of %s do not load (%s): %s; Ollama runs "
                                   "without the vGPU until they load again",
                                   in->prefix, why,
                                   left ? "some files could not be restored"
                                        : "the originals are back"));
}

static void print_report(const struct vp_common *c, const struct vp_manifest *m, int code,
                         const char *action, const struct vp_strv *env, int written,
                         const struct vp_strv *notes, double ms)
{
    if (!c->json) {
        for (size_t i = 0; i < notes->n; i++)
            fprintf(stderr, "vgpu-patch ensure: %s\n", notes->v[i]);
        printf("ensure: mechanism %s%s%s; %s (%.1f ms)\n", vp_manifest_mechanism(m),
               vp_manifest_delivery(m) ? ", delivery " : "",
               vp_manifest_delivery(m) ? vp_manifest_delivery(m) : "",
               !strcmp(action, "none")       ? "nothing changed"
               : !strcmp(action, "restored") ? "the originals were restored (see above)"
                                             : "see above",
               ms);
        return;
    }
    struct vp_json j;
    cli_json_begin(&j, "ensure");
    vp_json_int(&j, "exit_code", code);
    vp_json_string(&j, "action", action);
    vp_json_string(&j, "mechanism", vp_manifest_mechanism(m));
    vp_json_string(&j, "delivery", vp_manifest_delivery(m));
    _cleanup_(freep) char *env_file = vp_path_join(c->state_dir, VP_ENV_FILE);
    vp_json_string(&j, "env_file", env_file);
    cli_json_strv(&j, "environment", env);
    vp_json_bool(&j, "env_file_changed", written > 0);
    vp_json_bool(&j, "changed", strcmp(action, "none") || written > 0);
    vp_json_double(&j, "ms", ms);
    cli_json_strv(&j, "notes", notes);
    vp_json_end_object(&j);
    vp_json_finish(&j);
}

int cmd_ensure(int argc, char **argv)
{
    double t0 = vp_now_ms();
    clear_loader_env();
    struct vp_common c = {0};
    const char *settle_arg = NULL;
    const struct cli_flag flags[] = {{"settle", NULL, &settle_arg}, {0}};
    int code = cli_parse(argc, argv, "ensure", help, &c, flags);
    if (code >= 0)
        return code;
    unsigned long settle_s = 0;
    if (settle_arg) {
        char *end;
        errno = 0;
        settle_s = strtoul(settle_arg, &end, 10);
        if (errno || end == settle_arg || *end || settle_arg[0] == '-' || settle_s > 1800) {
            cli_common_release(&c);
            return cli_fail(VP_EXIT_USAGE, "ensure: --settle wants seconds from 0 to 1800, "
                                           "not '%s'",
                            settle_arg);
        }
    }
    _cleanup_(freep) char *settled = settle_arg ? settle(&c, (unsigned)settle_s) : NULL;
    code = VP_EXIT_OK;
    struct vp_state st = {.lock_fd = -1};
    int r = vp_state_open(c.state_ondisk, VP_STATE_LOCK, 30000, &st);
    struct vp_manifest m = {0};
    if (r == 0)
        r = vp_manifest_load(st.dir, &m);
    if (r == -ENOENT || (r == 0 && !m.n)) {
        /* Never patched with this state dir: the first start. */
        if (st.dir)
            vp_state_close(&st);
        vp_manifest_release(&m);
        code = hand_over(&c, NULL, "first-start");
        cli_common_release(&c);
        return code;
    }
    if (r < 0) {
        if (st.dir)
            vp_state_close(&st);
        cli_common_release(&c);
        return cli_fail(VP_EXIT_ERROR, "%s", vp_last_error());
    }

    _cleanup_(freep) char *libexec = vp_verify_default_libexec();
    struct vp_strv notes = {0}, env = {0}, backups = {0};
    if (settled)
        vp_strv_push(&notes, settled);
    const char *action = "none";
    const struct vp_manifest_install *handed = NULL;
    bool save = false;
    for (size_t i = 0; i < m.n && !handed; i++) {
        struct vp_manifest_install *in = &m.installs[i];
        struct install_check ic = {0};
        check_install(&c, in, libexec, &ic);
        if (ic.action == ACT_REAPPLY) {
            vp_strv_push_take(&notes, vp_xasprintf("%s changed since it was patched (%s): "
                                                   "patching it again",
                                                   in->prefix, ic.why));
            handed = in;
            action = "reapplied";
        } else if (ic.action == ACT_RESUME) {
            vp_strv_push_take(&notes, vp_xasprintf("the shims of %s load again: patching it "
                                                   "again",
                                                   in->prefix));
            handed = in;
            action = "resumed";
        } else if (ic.action == ACT_RESTORE) {
            restore(&c, in, ic.why, &notes, &backups);
            action = "restored";
            save = true;
        } else if (!strcmp(vp_install_mechanism(in), "audit")) {
            vp_audit_env(&ic.shims, &env);
        }
        free(ic.why);
        if (ic.shims_open)
            vp_shims_release(&ic.shims);
    }
    if (save) {
        if (vp_manifest_save(st.dir, &m) < 0) {
            vp_strv_push(&notes, vp_last_error());
            code = VP_EXIT_ERROR;
        }
        for (size_t b = 0; b < backups.n; b++)
            if (!vp_manifest_uses_backup(&m, backups.v[b]))
                unlink(backups.v[b]);
    }
    int w = handed ? 0 : vp_env_file_write(st.dir, &env);
    if (w < 0) {
        vp_strv_push(&notes, vp_last_error());
        code = VP_EXIT_ERROR;
    }
    vp_state_close(&st);
    if (handed) {
        for (size_t i = 0; i < notes.n; i++)
            fprintf(stderr, "vgpu-patch ensure: %s\n", notes.v[i]);
        code = hand_over(&c, handed, action);
    } else {
        print_report(&c, &m, code, action, &env, w, &notes, vp_now_ms() - t0);
    }
    vp_strv_release(&notes);
    vp_strv_release(&env);
    vp_strv_release(&backups);
    vp_manifest_release(&m);
    cli_common_release(&c);
    return code;
}
