/* vgpu-patch verify: proves again, for every install in the manifest, that the files
 * are the ones vgpu-patch wrote (full hashes) and that every process Ollama starts
 * ends in the shims (the same checks as after patching). */
#include "cli.h"
#include "rollback.h"

#include <errno.h>
#include <string.h>

static const char help[] =
    "Usage: vgpu-patch verify [--root DIR] [--state-dir DIR] [--json]\n"
    "Re-check every patched install: file hashes against the manifest, ld.so --list under\n"
    "Ollama's environment with a decoy driver first, and the load and start probes.\n"
    "Exit 0 when all hold, 4 when files differ from the manifest, 1 when a check fails.\n";

struct install_report {
    struct vp_discovery disc;
    struct vp_plan plan;
    bool have_plan;
    struct vp_verify v;
    struct vp_strv problems;
};

static int verify_install(const struct vp_common *c, const struct vp_manifest_install *mi,
                          const char *libexec, struct install_report *ir)
{
    for (size_t k = 0; k < mi->n; k++) {
        const struct vp_entry *e = &mi->entries[k];
        _cleanup_(freep) char *detail = NULL;
        enum vp_entry_state es = vp_entry_state(c->root, e, &detail);
        const char *state = vp_entry_state_name(es);
        if (es != VP_STATE_PATCHED && es != VP_STATE_LINKED) {
            vp_strv_push_take(&ir->problems, vp_xasprintf("%s: %s%s%s", e->path, state,
                                                          detail ? ": " : "", detail ? detail : ""));
            continue;
        }
        if (e->kind != VP_ENTRY_FILE)
            continue;
        _cleanup_(freep) char *ondisk = vp_rooted(c->root, e->path);
        char b3[VP_B3_HEX];
        if (vp_b3_file(ondisk, b3) < 0 || strcmp(b3, e->patched.b3))
            vp_strv_push_take(&ir->problems, vp_xasprintf("%s: content differs from what "
                                                          "vgpu-patch wrote",
                                                          e->path));
    }
    if (vp_discover(c->root, mi->prefix, NULL, &ir->disc) < 0)
        return -ENOENT;
    struct vp_install *in = &ir->disc.installs[ir->disc.chosen];
    struct vp_shims shims;
    if (vp_install_identify(c->root, in) < 0 || vp_shims_open(mi->shim_dir, &shims) < 0)
        return -EINVAL;
    int r = vp_plan_build(c->root, in, &shims, NULL, &ir->plan);
    vp_shims_release(&shims);
    if (r < 0)
        return r;
    ir->have_plan = true;
    bool audit = !strcmp(vp_install_mechanism(mi), "audit");
    if (audit) /* the patch where it helped (forced audit patched nothing) */
        vp_plan_use_audit(&ir->plan, mi->n > 0);
    for (size_t i = 0; i < ir->plan.n_files; i++)
        if (!ir->plan.files[i].done && ir->plan.files[i].choice.method != VP_WRITE_IMPOSSIBLE)
            vp_strv_push_take(&ir->problems, vp_xasprintf("%s is not patched (an upgrade "
                                                          "replaced it?)",
                                                          ir->plan.files[i].path));
    struct vp_verify_opts vo = {.libexec = libexec, .live = true, .audit = audit};
    return vp_verify_plan(&ir->plan, &vo, &ir->v);
}

/* Every recorded file with its state and the file that answered each driver soname. */
static void json_files(struct vp_json *j, const struct vp_common *c,
                       const struct vp_manifest_install *mi, const struct vp_verify *v)
{
    vp_json_begin_array(j, "files");
    for (size_t k = 0; k < mi->n; k++) {
        const struct vp_entry *e = &mi->entries[k];
        _cleanup_(freep) char *detail = NULL;
        vp_json_begin_object(j, NULL);
        vp_json_string(j, "path", e->path);
        vp_json_string(j, "role", e->role);
        vp_json_string(j, "state", vp_entry_state_name(vp_entry_state(c->root, e, &detail)));
        const struct vp_check *ck = cli_answer_for(v, e->path);
        vp_json_begin_object(j, "answered");
        vp_json_string(j, VP_SONAME_CUDA, ck ? ck->cuda : NULL);
        vp_json_string(j, VP_SONAME_NVML, ck ? ck->nvml : NULL);
        vp_json_end_object(j);
        vp_json_end_object(j);
    }
    vp_json_end_array(j);
}

int cmd_verify(int argc, char **argv)
{
    struct vp_common c = {0};
    int code = cli_parse(argc, argv, "verify", help, &c, NULL);
    if (code >= 0)
        return code;
    struct vp_manifest m;
    if (cli_load_manifest(&c, &m, NULL) < 0) {
        cli_common_release(&c);
        return cli_fail(VP_EXIT_ERROR, "%s", vp_last_error());
    }
    _cleanup_(freep) char *libexec = vp_verify_default_libexec();
    /* Verification proves nothing while a global hook can load things behind it. */
    struct vp_hooks hooks;
    cli_scan_hooks(&c, &m, &hooks);
    struct vp_json j;
    if (c.json) {
        cli_json_begin(&j, "verify");
        vp_json_string(&j, "mechanism", vp_manifest_mechanism(&m));
        vp_json_string(&j, "delivery", vp_manifest_delivery(&m));
        cli_json_hooks(&j, &hooks);
        vp_json_begin_array(&j, "installs");
    } else if (!strcmp(vp_manifest_mechanism(&m), "none")) {
        printf("nothing is patched (state dir %s)\n", c.state_dir);
    }
    if (hooks.n && !c.json) {
        printf("global loader hooks from an earlier method are present:\n");
        cli_print_hooks(&hooks);
    }
    code = hooks.n ? VP_EXIT_HOOKS : VP_EXIT_OK;
    for (size_t i = 0; i < m.n; i++) {
        if (!strcmp(vp_install_mechanism(&m.installs[i]), "none"))
            continue; /* rolled back, or restored by ensure: nothing to verify */
        struct install_report ir = {.disc = {.chosen = -1}};
        int r = verify_install(&c, &m.installs[i], libexec, &ir);
        if (r < 0)
            vp_strv_push_take(&ir.problems, vp_xasprintf("cannot verify: %s", vp_last_error()));
        if (ir.problems.n && code == VP_EXIT_OK)
            code = r < 0 ? VP_EXIT_ERROR : VP_EXIT_DRIFT;
        if (!ir.v.ok && ir.v.n && code != VP_EXIT_HOOKS)
            code = VP_EXIT_ERROR;
        if (c.json) {
            vp_json_begin_object(&j, NULL);
            vp_json_string(&j, "prefix", m.installs[i].prefix);
            cli_json_strv(&j, "problems", &ir.problems);
            json_files(&j, &c, &m.installs[i], &ir.v);
            cli_json_checks(&j, &ir.v);
            vp_json_end_object(&j);
        } else {
            printf("%s:\n", m.installs[i].prefix);
            for (size_t k = 0; k < ir.problems.n; k++)
                printf("  PROBLEM %s\n", ir.problems.v[k]);
            cli_print_checks(&ir.v);
        }
        vp_verify_release(&ir.v);
        if (ir.have_plan)
            vp_plan_release(&ir.plan);
        vp_discovery_release(&ir.disc);
        vp_strv_release(&ir.problems);
    }
    if (c.json) {
        vp_json_end_array(&j);
        vp_json_int(&j, "exit_code", code);
        vp_json_end_object(&j);
        vp_json_finish(&j);
    } else if (strcmp(vp_manifest_mechanism(&m), "none")) {
        printf("%s\n", code == VP_EXIT_OK ? "verified: every process ends in the shims"
                                          : "verification found problems");
    }
    vp_hooks_release(&hooks);
    vp_manifest_release(&m);
    cli_common_release(&c);
    return code;
}
