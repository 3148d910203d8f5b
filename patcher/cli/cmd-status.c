/* vgpu-patch status: what the manifest says was changed, and whether each file is still
 * as vgpu-patch left it. Cheap by design (stat calls only): it runs at every start. */
#include "audit.h"
#include "cli.h"
#include "rollback.h"

#include <errno.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>

static const char help[] =
    "Usage: vgpu-patch status [--root DIR] [--state-dir DIR] [--json]\n"
    "Show what is patched and whether every file is still as vgpu-patch left it.\n"
    "Exit 0 when healthy, 4 when a file differs from the manifest (an upgrade replaced\n"
    "it), 1 when the shims are missing (or `ensure` restored the originals because they\n"
    "did not load) or the state cannot be read.\n";

/* The shims, and for the audit mechanism its module, are where the install needs them. */
static bool shims_present(const struct vp_manifest_install *in)
{
    if (!in->shim_dir)
        return false;
    _cleanup_(freep) char *c = vp_path_join(in->shim_dir, VP_SHIM_CUDA_FILE);
    _cleanup_(freep) char *n = vp_path_join(in->shim_dir, VP_SHIM_NVML_FILE);
    _cleanup_(freep) char *a = vp_path_join(in->shim_dir, VP_AUDIT_FILE);
    return access(c, R_OK) == 0 && access(n, R_OK) == 0 &&
           (strcmp(vp_install_mechanism(in), "audit") || access(a, R_OK) == 0);
}

int cmd_status(int argc, char **argv)
{
    struct vp_common c = {0};
    int code = cli_parse(argc, argv, "status", help, &c, NULL);
    if (code >= 0)
        return code;
    struct vp_manifest m;
    bool interrupted;
    if (cli_load_manifest(&c, &m, &interrupted) < 0) {
        cli_common_release(&c);
        return cli_fail(VP_EXIT_ERROR, "%s", vp_last_error());
    }

    struct vp_hooks hooks;
    cli_scan_hooks(&c, &m, &hooks);
    bool busy = false;
    if (interrupted) { /* a journal: a run in progress, or one that died */
        struct vp_state st;
        if (vp_state_open(c.state_ondisk, 0, 0, &st) == 0) {
            busy = vp_state_busy(&st);
            vp_state_close(&st);
        }
    }
    struct vp_json j;
    if (c.json) {
        cli_json_begin(&j, "status");
        vp_json_string(&j, "state_dir", c.state_dir);
        vp_json_bool(&j, "interrupted", interrupted && !busy);
        vp_json_bool(&j, "running", busy);
        cli_json_hooks(&j, &hooks);
        vp_json_string(&j, "mechanism", vp_manifest_mechanism(&m));
        vp_json_string(&j, "delivery", vp_manifest_delivery(&m));
        vp_json_begin_array(&j, "installs");
    } else if (!strcmp(vp_manifest_mechanism(&m), "none")) {
        printf("nothing is patched (state dir %s)\n", c.state_dir);
    }
    code = interrupted ? VP_EXIT_DRIFT : VP_EXIT_OK;
    if (interrupted && !c.json)
        printf("%s\n", busy ? "a vgpu-patch run is changing files right now"
                            : "an interrupted run left a journal: the next vgpu-patch ollama "
                              "or rollback undoes it");
    if (hooks.n) {
        code = VP_EXIT_HOOKS;
        if (!c.json) {
            printf("global loader hooks from an earlier method are present:\n");
            cli_print_hooks(&hooks);
        }
    }
    for (size_t i = 0; i < m.n; i++) {
        const struct vp_manifest_install *in = &m.installs[i];
        /* A record kept after a rollback (nothing to say) or a restore by ensure. */
        if (!strcmp(vp_install_mechanism(in), "none")) {
            if (!in->restored)
                continue;
            code = VP_EXIT_ERROR;
            if (c.json) {
                vp_json_begin_object(&j, NULL);
                vp_json_string(&j, "prefix", in->prefix);
                vp_json_string(&j, "mechanism", "none");
                vp_json_bool(&j, "restored", true);
                vp_json_end_object(&j);
            } else {
                printf("%s: restored by `vgpu-patch ensure` because its shims (%s) did not "
                       "load; the next ensure patches it again once they do\n",
                       in->prefix, in->shim_dir);
            }
            continue;
        }
        bool shims = shims_present(in);
        if (strcmp(vp_install_mechanism(in), "none") && !shims)
            code = VP_EXIT_ERROR;
        /* Whether the service reads the audit variables (-1: not that delivery). */
        int delivered = -1;
        if (vp_streq_null(vp_install_delivery(in), "environment-file")) {
            _cleanup_(freep) char *env_file = vp_path_join(c.state_dir, VP_ENV_FILE);
            delivered = vp_env_file_delivered(c.root, env_file);
        }
        if (c.json) {
            vp_json_begin_object(&j, NULL);
            vp_json_string(&j, "prefix", in->prefix);
            vp_json_string(&j, "version", in->version);
            vp_json_string(&j, "era", in->eras);
            vp_json_string(&j, "shim_dir", in->shim_dir);
            vp_json_string(&j, "mechanism", vp_install_mechanism(in));
            vp_json_string(&j, "delivery", vp_install_delivery(in));
            if (delivered >= 0)
                vp_json_bool(&j, "delivered", delivered);
            vp_json_bool(&j, "shims_present", shims);
            vp_json_begin_array(&j, "files");
        } else {
            printf("%s (release %s, era %s), shims %s%s\n", in->prefix,
                   in->version ? in->version : "unknown", in->eras ? in->eras : "?",
                   in->shim_dir, shims ? "" : " — MISSING: patched programs cannot start; "
                                              "restore them with `vgpu-patch rollback`");
            printf("  mechanism %s, delivery %s%s\n", vp_install_mechanism(in),
                   vp_install_delivery(in) ? vp_install_delivery(in) : "none",
                   delivered == 0 ? " — NOT YET DELIVERED: ollama.service does not read "
                                    "ollama.env (EnvironmentFile=)"
                                  : "");
        }
        for (size_t k = 0; k < in->n; k++) {
            const struct vp_entry *e = &in->entries[k];
            _cleanup_(freep) char *detail = NULL;
            enum vp_entry_state es = vp_entry_state(c.root, e, &detail);
            const char *state = vp_entry_state_name(es);
            if (es != VP_STATE_PATCHED && es != VP_STATE_LINKED && code == VP_EXIT_OK)
                code = VP_EXIT_DRIFT;
            if (c.json) {
                vp_json_begin_object(&j, NULL);
                vp_json_string(&j, "path", e->path);
                vp_json_string(&j, "role", e->role);
                vp_json_string(&j, "state", state);
                if (detail)
                    vp_json_string(&j, "detail", detail);
                vp_json_end_object(&j);
            } else {
                printf("  %-8s %s%s%s\n", state, e->path, detail ? ": " : "",
                       detail ? detail : "");
            }
        }
        if (c.json) {
            vp_json_end_array(&j);
            vp_json_end_object(&j);
        }
    }
    if (c.json) {
        vp_json_end_array(&j);
        vp_json_int(&j, "exit_code", code);
        vp_json_end_object(&j);
        vp_json_finish(&j);
    }
    vp_hooks_release(&hooks);
    vp_manifest_release(&m);
    cli_common_release(&c);
    return code;
}
