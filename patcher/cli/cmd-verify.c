/* vgpu-patch verify: proves again, for every install in the manifest, that the files
 * are the ones vgpu-patch wrote (full hashes) and that every process Ollama starts
 * ends in the shims (the same checks as after patching); with --e2e, that Ollama's own
 * server then uses CUDA through the shim (DESIGN §6.3). */
#include "audit.h"
#include "cli.h"
#include "e2e.h"
#include "rollback.h"

#include <errno.h>
#include <getopt.h>
#include <string.h>

static const char help[] =
    "Usage: vgpu-patch verify [--root DIR] [--state-dir DIR] [--e2e [--timeout SEC]] [--json]\n"
    "Re-check every patched install: file hashes against the manifest, ld.so --list under\n"
    "Ollama's environment with a decoy driver first, and the load and start probes.\n"
    "--e2e: then start the install's `ollama serve` on a free loopback port with a private\n"
    "home (and ollama.env's variables under the audit mechanism), wait up to SEC seconds\n"
    "(default 60) for its `inference compute` line, require library=cuda/CUDA with a device\n"
    "the shim reports, and stop it.\n"
    "Exit 0 when all hold, 4 when files differ from the manifest, 1 when a check fails.\n";

struct verify_args {
    bool e2e;
    int timeout_ms; /* 0: the default */
};

/* The common options, --e2e and --timeout SEC. Returns -1 to go on, else the exit code. */
static int parse(int argc, char **argv, struct vp_common *c, struct verify_args *a)
{
    enum { OPT_E2E = 2000, OPT_TIMEOUT };
    static const struct option longopts[] = {CLI_COMMON_LONGOPTS,
                                             {"e2e", no_argument, NULL, OPT_E2E},
                                             {"timeout", required_argument, NULL, OPT_TIMEOUT},
                                             {NULL, 0, NULL, 0}};
    const char *timeout = NULL;
    int opt;
    while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        if (cli_common_opt(c, opt, optarg))
            continue;
        if (opt == OPT_E2E) {
            a->e2e = true;
        } else if (opt == OPT_TIMEOUT) {
            timeout = optarg;
        } else if (opt == 'h') {
            fputs(help, stdout);
            return VP_EXIT_OK;
        } else {
            fputs(help, stderr);
            return VP_EXIT_USAGE;
        }
    }
    if (optind != argc)
        return cli_fail(VP_EXIT_USAGE, "verify: unexpected argument '%s'", argv[optind]);
    if (timeout) {
        char *end = NULL;
        errno = 0;
        double sec = strtod(timeout, &end);
        if (!a->e2e)
            return cli_fail(VP_EXIT_USAGE, "verify: --timeout goes with --e2e");
        if (end == timeout || *end || errno || !(sec > 0) || sec > 3600)
            return cli_fail(VP_EXIT_USAGE,
                            "verify: --timeout takes seconds, more than 0 and at most 3600 "
                            "(got '%s')",
                            timeout);
        a->timeout_ms = sec * 1000 < 1 ? 1 : (int)(sec * 1000 + 0.5);
    }
    int code = cli_common_finish(c);
    return code ? code : -1;
}

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

/* `ollama serve` of the install, with ollama.env's variables under the audit mechanism
 * (what the service gets through EnvironmentFile=, and vgpu-launch sets). */
static void run_e2e(const struct vp_common *c, const struct vp_manifest_install *mi,
                    const struct verify_args *a, struct vp_e2e *ret)
{
    _cleanup_(freep) char *env_file = strcmp(vp_install_mechanism(mi), "audit")
                                          ? NULL
                                          : vp_path_join(c->state_ondisk, VP_ENV_FILE);
    struct vp_e2e_opts o = {.root = c->root,
                            .prefix = mi->prefix,
                            .shim_dir = mi->shim_dir,
                            .env_file = env_file,
                            /* the service's environment: our drop-in's OLLAMA_VULKAN=0 */
                            .no_vulkan = mi->systemd_dir && !mi->keep_vulkan,
                            .timeout_ms = a->timeout_ms};
    vp_e2e_run(&o, ret);
}

static void print_strv_joined(const char *label, const struct vp_strv *sv)
{
    printf("         %s", label);
    for (size_t i = 0; i < sv->n; i++)
        printf("%s\"%s\"", i ? ", " : " ", sv->v[i]);
    printf("\n");
}

static void print_e2e(const struct vp_e2e *e)
{
    printf("  %-4s %-13s %-11s %s serve\n", e->ok ? "ok" : "FAIL", "serve", "e2e", e->binary);
    printf("         %s\n", e->message);
    if (e->address)
        printf("         ran on %s as %s (uid %u), %.1f s until the verdict\n", e->address,
               e->uid == 0    ? "root"
               : e->as_nobody ? "nobody"
                              : "the invoking user",
               (unsigned)e->uid, (double)e->elapsed_ms / 1000);
    if (e->as_nobody)
        printf("         ran as nobody: %s\n", e->as_nobody);
    if (e->env_keys.n)
        print_strv_joined("with these variables of ollama.env:", &e->env_keys);
    for (size_t i = 0; i < e->n_lines; i++)
        printf("       %s %s\n", i == e->chosen ? ">" : " ", e->lines[i].text);
    if (e->shim_devices.n)
        print_strv_joined("the shim reports:", &e->shim_devices);
    else if (e->shim_error && e->started)
        printf("         the shim reports no device: %s\n", e->shim_error);
    for (size_t i = 0; i < e->notes.n; i++)
        printf("         note: %s\n", e->notes.v[i]);
    if (!e->ok && e->tail.n) {
        printf("         its last lines:\n");
        for (size_t i = 0; i < e->tail.n; i++)
            printf("           %s\n", e->tail.v[i]);
    }
}

static void json_e2e(struct vp_json *j, const struct vp_e2e *e)
{
    const struct vp_e2e_line *l = e->chosen < e->n_lines ? &e->lines[e->chosen] : NULL;
    vp_json_begin_object(j, "e2e");
    vp_json_bool(j, "ok", e->ok);
    vp_json_string(j, "message", e->message);
    vp_json_string(j, "binary", e->binary);
    vp_json_string(j, "address", e->address);
    vp_json_uint(j, "uid", e->uid);
    vp_json_string(j, "ran_as_nobody", e->as_nobody);
    cli_json_strv(j, "env_file_variables", &e->env_keys);
    vp_json_string(j, "line", l ? l->text : NULL);
    vp_json_string(j, "library", l ? l->library : NULL);
    vp_json_string(j, "device", l ? vp_e2e_line_device(l) : NULL);
    cli_json_strv(j, "shim_devices", &e->shim_devices);
    vp_json_string(j, "shim_error", e->shim_error);
    vp_json_begin_array(j, "lines");
    for (size_t i = 0; i < e->n_lines; i++)
        vp_json_string(j, NULL, e->lines[i].text);
    vp_json_end_array(j);
    vp_json_bool(j, "timed_out", e->timed_out);
    vp_json_bool(j, "exited_early", e->exited);
    if (e->exited)
        vp_json_int(j, "wait_status", e->status);
    vp_json_double(j, "seconds", (double)e->elapsed_ms / 1000);
    cli_json_strv(j, "notes", &e->notes);
    cli_json_strv(j, "output_tail", &e->tail);
    vp_json_end_object(j);
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
    struct verify_args a = {0};
    int code = parse(argc, argv, &c, &a);
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
    size_t e2e_runs = 0;
    bool e2e_ok = true;
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
        struct vp_e2e e2e = {0};
        if (a.e2e) {
            run_e2e(&c, &m.installs[i], &a, &e2e);
            e2e_runs++;
            e2e_ok &= e2e.ok;
            if (!e2e.ok && code != VP_EXIT_HOOKS)
                code = VP_EXIT_ERROR;
        }
        if (c.json) {
            vp_json_begin_object(&j, NULL);
            vp_json_string(&j, "prefix", m.installs[i].prefix);
            cli_json_strv(&j, "problems", &ir.problems);
            json_files(&j, &c, &m.installs[i], &ir.v);
            cli_json_checks(&j, &ir.v);
            if (a.e2e)
                json_e2e(&j, &e2e);
            vp_json_end_object(&j);
        } else {
            printf("%s:\n", m.installs[i].prefix);
            for (size_t k = 0; k < ir.problems.n; k++)
                printf("  PROBLEM %s\n", ir.problems.v[k]);
            cli_print_checks(&ir.v);
            if (a.e2e)
                print_e2e(&e2e);
        }
        vp_e2e_release(&e2e);
        vp_verify_release(&ir.v);
        if (ir.have_plan)
            vp_plan_release(&ir.plan);
        vp_discovery_release(&ir.disc);
        vp_strv_release(&ir.problems);
    }
    /* Asked whether Ollama reaches the vGPU, with nothing patched: it does not. */
    const char *e2e_none = a.e2e && !e2e_runs ? "nothing is patched: no Ollama to start" : NULL;
    if (e2e_none && code == VP_EXIT_OK)
        code = VP_EXIT_ERROR;
    if (c.json) {
        vp_json_end_array(&j);
        if (a.e2e) {
            vp_json_bool(&j, "e2e_ok", e2e_runs && e2e_ok);
            if (e2e_none)
                vp_json_string(&j, "e2e_message", e2e_none);
        }
        vp_json_int(&j, "exit_code", code);
        vp_json_end_object(&j);
        vp_json_finish(&j);
    } else {
        if (strcmp(vp_manifest_mechanism(&m), "none"))
            printf("%s\n", code == VP_EXIT_OK ? "verified: every process ends in the shims"
                                              : "verification found problems");
        if (e2e_none)
            printf("end to end: %s\n", e2e_none);
        else if (a.e2e)
            printf("end to end: %s\n", e2e_ok ? "ollama serve uses CUDA through the shim"
                                              : "ollama serve does not use CUDA through the "
                                                "shim");
    }
    vp_hooks_release(&hooks);
    vp_manifest_release(&m);
    cli_common_release(&c);
    return code;
}
