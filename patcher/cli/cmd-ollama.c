/* vgpu-patch ollama: discover → inspect → plan → apply → verify → record. */
#include "audit.h"
#include "cli.h"
#include "conf.h"
#include "rollback.h"

#include <errno.h>
#include <getopt.h>
#include <string.h>
#include <sys/statvfs.h>
#include <time.h>

static const char help[] =
    "Usage: vgpu-patch ollama [OPTIONS]\n"
    "Patch one Ollama install so that every process it starts loads the vGPU shims.\n\n"
    "  --root DIR          treat DIR as / for every system path (not for --shim-dir)\n"
    "  --prefix DIR        the Ollama install (DIR/bin/ollama); default: the one\n"
    "                      ollama.service runs, else the first on PATH\n"
    "  --shim-dir DIR      where the shims are at run time (default: shim_dir in\n"
    "                      /etc/vgpu/vgpu.conf, else lib/vgpu beside vgpu-patch)\n"
    "  --state-dir DIR     manifest, journal, lock, backups (default " VP_DEFAULT_STATE_DIR ")\n"
    "  --mechanism M       patch or audit (default: patch when every route can be covered\n"
    "                      on disk, else audit, with the patch still applied where it helps)\n"
    "  --dry-run           print the plan, write nothing\n"
    "  --migrate           first back up and remove the global loader hooks of an earlier\n"
    "                      deployment (as `vgpu-patch migrate`), then go on\n"
    "  --delivery D        for the audit mechanism: environment-file (default when a\n"
    "                      systemd unit runs Ollama) or launcher (the unit's command is\n"
    "                      run through vgpu-launch)\n"
    "  --systemd-dir DIR   where our drop-in and units go (default /etc/systemd/system,\n"
    "                      under --root)\n"
    "  --no-wire           do not write or touch anything of systemd\n"
    "  --keep-vulkan       do not set OLLAMA_VULKAN=0 in the drop-in\n"
    "  --restart           restart Ollama once wired (where systemd runs the machine)\n"
    "  --patchelf PATH     patchelf to use where a file has no free program header\n"
    "  --lock-timeout SEC  wait this long for another vgpu-patch (default 30)\n"
    "  --json              one JSON document on stdout\n";

struct opts {
    struct vp_common c;
    const char *prefix, *shim_dir, *patchelf;
    const char *mechanism; /* NULL: choose; "patch" or "audit": forced */
    const char *delivery;  /* NULL: by the unit; "environment-file" or "launcher" */
    const char *systemd_dir;
    bool keep_vulkan, restart;
    bool dry_run, no_wire, migrate;
    int lock_timeout;
};

static int parse(int argc, char **argv, struct opts *o)
{
    static const struct option longopts[] = {
        CLI_COMMON_LONGOPTS,
        {"prefix", required_argument, NULL, 'p'},
        {"shim-dir", required_argument, NULL, 's'},
        {"dry-run", no_argument, NULL, 'n'},
        {"no-wire", no_argument, NULL, 'W'},
        {"patchelf", required_argument, NULL, 'P'},
        {"lock-timeout", required_argument, NULL, 'L'},
        {"mechanism", required_argument, NULL, 'M'},
        {"delivery", required_argument, NULL, 'D'},
        {"systemd-dir", required_argument, NULL, 'S'},
        {"keep-vulkan", no_argument, NULL, 'K'},
        {"restart", no_argument, NULL, 'R'},
        {"migrate", no_argument, NULL, 'G'},
        {0},
    };
    int opt;
    o->lock_timeout = 30;
    while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        if (cli_common_opt(&o->c, opt, optarg))
            continue;
        switch (opt) {
        case 'p':
            o->prefix = optarg;
            break;
        case 's':
            o->shim_dir = optarg;
            break;
        case 'n':
            o->dry_run = true;
            break;
        case 'W':
            o->no_wire = true;
            break;
        case 'P':
            o->patchelf = optarg;
            break;
        case 'D':
            if (strcmp(optarg, "environment-file") && strcmp(optarg, "launcher"))
                return cli_fail(VP_EXIT_USAGE, "--delivery is environment-file or launcher, not "
                                               "'%s'",
                                optarg);
            o->delivery = optarg;
            break;
        case 'S':
            if (optarg[0] != '/')
                return cli_fail(VP_EXIT_USAGE, "--systemd-dir must be an absolute path");
            o->systemd_dir = optarg;
            break;
        case 'K':
            o->keep_vulkan = true;
            break;
        case 'R':
            o->restart = true;
            break;
        case 'G':
            o->migrate = true;
            break;
        case 'M':
            if (strcmp(optarg, "patch") && strcmp(optarg, "audit"))
                return cli_fail(VP_EXIT_USAGE, "--mechanism is patch or audit, not '%s'", optarg);
            o->mechanism = optarg;
            break;
        case 'L': {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (end == optarg || *end || v < 0 || v > 86400)
                return cli_fail(VP_EXIT_USAGE, "--lock-timeout takes seconds (0 to 86400), "
                                               "not '%s'",
                                optarg);
            o->lock_timeout = (int)v;
            break;
        }
        case 'h':
            fputs(help, stdout);
            exit(VP_EXIT_OK);
        default:
            fputs(help, stderr);
            return VP_EXIT_USAGE;
        }
    }
    if (optind != argc)
        return cli_fail(VP_EXIT_USAGE, "ollama: unexpected argument '%s'", argv[optind]);
    if (o->prefix && o->prefix[0] != '/')
        return cli_fail(VP_EXIT_USAGE, "--prefix must be an absolute path");
    if (o->patchelf && access(o->patchelf, X_OK) < 0)
        return cli_fail(VP_EXIT_USAGE, "--patchelf %s: not an executable file", o->patchelf);
    return cli_common_finish(&o->c);
}

static char *find_patchelf(const char *given)
{
    if (given)
        return access(given, X_OK) == 0 ? vp_xstrdup(given) : NULL;
    static const char *const dirs[] = {"/usr/local/bin", "/usr/bin", "/bin"};
    for (size_t i = 0; i < VP_ARRAY_SIZE(dirs); i++) {
        char *p = vp_path_join(dirs[i], "patchelf");
        if (access(p, X_OK) == 0)
            return p;
        free(p);
    }
    return NULL;
}

static char *era_names(unsigned eras)
{
    _cleanup_(freep) char *s = vp_xstrdup("");
    for (int e = 0; e < VP_ERA_COUNT; e++)
        if (eras & (1u << e)) {
            char *next = vp_xasprintf("%s%s%s", s, *s ? "|" : "", vp_era_name(e));
            free(s);
            s = next;
        }
    char *r = s;
    s = NULL;
    return r;
}

/* Everything the report needs, gathered as the command goes. */
struct run {
    struct opts *o;
    const char *as_command; /* "ollama", or "ensure" when ensure runs it */
    const char *libexec;    /* the verification helpers */
    const char *action;     /* ensure's reason, or NULL */
    struct vp_discovery disc;
    struct vp_install *in;
    struct vp_hooks hooks;
    struct cli_migration migration; /* --migrate */
    bool migrated;
    struct vp_plan plan;
    bool have_plan;
    struct vp_apply_result res;
    struct vp_strv notes;
    char *shim_dir;
    const char *mech;     /* the mechanism chosen: "patch" or "audit" */
    const char *delivery; /* elf, environment-file, launcher */
    struct vp_strv env;   /* the audit variables delivered */
    char *env_file;       /* the environment file written, runtime path */
    bool delivered;       /* environment-file: the unit reads it (EnvironmentFile=) */
    struct cli_wiring wiring;
    bool unpatched;       /* --mechanism audit rolled an earlier patch back */
    bool undone;          /* wiring failed: what this run changed was undone */
    struct vp_manifest_install before; /* the record before the apply (no entries), for that */
    char *error;
    int code;
    double ms_prepare; /* discovery, checks and planning */
};

static void json_install(struct vp_json *j, const char *key, const struct vp_install *in)
{
    vp_json_begin_object(j, key);
    vp_json_string(j, "prefix", in->prefix);
    vp_json_string(j, "binary", in->binary);
    vp_json_string(j, "version", in->version);
    _cleanup_(freep) char *eras = era_names(in->eras);
    vp_json_string(j, "era", eras);
    vp_json_string(j, "era_reason", in->era_reason);
    vp_json_string(j, "unit", in->unit);
    vp_json_end_object(j);
}

static const char *file_state(const struct run *r, const struct vp_plan_file *f)
{
    if (f->choice.method == VP_WRITE_IMPOSSIBLE)
        return "cannot-patch";
    if (f->done)
        return f->role == VP_ROLE_LINK ? "linked" : "patched";
    if (r->o->dry_run || r->code != VP_EXIT_OK)
        return "original";
    return f->role == VP_ROLE_LINK ? "linked" : "patched";
}

static void json_plan_files(struct vp_json *j, const struct run *r)
{
    vp_json_begin_array(j, "files");
    for (size_t i = 0; r->have_plan && i < r->plan.n_files; i++) {
        const struct vp_plan_file *f = &r->plan.files[i];
        vp_json_begin_object(j, NULL);
        vp_json_string(j, "path", f->path);
        vp_json_string(j, "role", vp_file_role_name(f->role));
        vp_json_string(j, "state", file_state(r, f));
        cli_json_strv(j, "processes", &f->processes);
        if (f->role == VP_ROLE_LINK) {
            vp_json_string(j, "target", f->link_target);
        } else {
            vp_json_string(j, "method", f->done ? "none" : vp_write_method_name(f->choice.method));
            vp_json_string(j, "method_reason", f->choice.reason);
            vp_json_begin_array(j, "edits");
            for (size_t k = 0; k < f->n_edits; k++) {
                _cleanup_(freep) char *d = vp_edit_describe(&f->edits[k]);
                vp_json_string(j, NULL, d);
            }
            vp_json_end_array(j);
        }
        uint64_t written = 0;
        for (size_t k = 0; k < r->res.n; k++)
            if (!strcmp(r->res.files[k].path, f->path))
                written = r->res.files[k].bytes_written;
        vp_json_uint(j, "bytes_written", written);
        const struct vp_check *c = cli_answer_for(&r->res.verify, f->path);
        vp_json_begin_object(j, "answered");
        vp_json_string(j, VP_SONAME_CUDA, c ? c->cuda : NULL);
        vp_json_string(j, VP_SONAME_NVML, c ? c->nvml : NULL);
        vp_json_end_object(j);
        vp_json_end_object(j);
    }
    vp_json_end_array(j);
}

static void json_routes(struct vp_json *j, const struct vp_plan *p)
{
    vp_json_begin_array(j, "routes");
    for (size_t i = 0; i < p->n_routes; i++) {
        const struct vp_plan_route *rt = &p->routes[i];
        vp_json_begin_object(j, NULL);
        vp_json_string(j, "process", rt->process);
        vp_json_string(j, "kind", vp_route_kind_name(rt->kind));
        vp_json_string(j, "target", rt->target);
        vp_json_bool(j, "covered", rt->covered);
        vp_json_string(j, "mechanism", rt->mechanism);
        vp_json_string(j, "how", rt->how);
        vp_json_end_object(j);
    }
    vp_json_end_array(j);
}

static void json_prediction(struct vp_json *j, const char *key, const struct vp_prediction *pd)
{
    static const char *const names[VP_PREDICT_N] = {VP_SONAME_CUDA, VP_SONAME_NVML};
    vp_json_begin_object(j, key);
    for (int k = 0; k < VP_PREDICT_N; k++) {
        vp_json_begin_object(j, names[k]);
        vp_json_string(j, "file", pd->file[k]);
        vp_json_string(j, "how", pd->how[k]);
        vp_json_end_object(j);
    }
    vp_json_end_object(j);
}

/* Each process Ollama starts, with what the loader model says answers the driver names
 * before and after the patch. */
static void json_processes(struct vp_json *j, const struct vp_plan *p)
{
    vp_json_begin_array(j, "processes");
    for (size_t i = 0; i < p->n_procs; i++) {
        const struct vp_plan_process *pr = &p->procs[i];
        vp_json_begin_object(j, NULL);
        vp_json_string(j, "role", pr->role);
        vp_json_string(j, "executable", pr->exe);
        cli_json_strv(j, "ld_library_path", &pr->libpath);
        cli_json_strv(j, "backends", &pr->backends);
        json_prediction(j, "before", &pr->today);
        json_prediction(j, "after", &pr->after);
        vp_json_end_object(j);
    }
    vp_json_end_array(j);
}

/* What is active after the run: the chosen mechanism once applied, else none. */
static const char *mechanism(const struct run *r)
{
    if (r->code == VP_EXIT_OK && !r->o->dry_run && r->have_plan && r->mech)
        return r->mech;
    return "none";
}

/* How to start Ollama under the launcher delivery. */
static char *launch_command(const struct run *r)
{
    return vp_xasprintf("vgpu-launch --shim-dir %s -- %s serve", r->plan.shims.dir,
                        r->in->binary);
}

static void report_json(struct run *r)
{
    struct vp_json j;
    cli_json_begin(&j, r->as_command);
    if (r->action)
        vp_json_string(&j, "action", r->action);
    vp_json_int(&j, "exit_code", r->code);
    vp_json_string(&j, "root", r->o->c.root);
    vp_json_string(&j, "state_dir", r->o->c.state_dir);
    vp_json_bool(&j, "dry_run", r->o->dry_run);
    vp_json_string(&j, "mechanism", mechanism(r));
    vp_json_string(&j, "delivery", strcmp(mechanism(r), "none") ? r->delivery : NULL);
    if (r->o->dry_run && r->code == VP_EXIT_OK)
        vp_json_string(&j, "planned_mechanism", r->mech);
    if (r->code == VP_EXIT_UNCOVERED)
        vp_json_string(&j, "fallback_mechanism", "audit");
    if (r->mech && !strcmp(r->mech, "audit") && r->code == VP_EXIT_OK) {
        cli_json_strv(&j, "environment", &r->env);
        vp_json_string(&j, "env_file", r->env_file);
        if (!strcmp(r->delivery, "environment-file"))
            vp_json_bool(&j, "delivered", r->delivered);
        if (!strcmp(r->delivery, "launcher")) {
            _cleanup_(freep) char *cmd = launch_command(r);
            vp_json_string(&j, "launch", cmd);
        }
    }
    if (r->error)
        vp_json_string(&j, "error", r->error);
    if (r->in)
        json_install(&j, "install", r->in);
    vp_json_begin_array(&j, "installs");
    for (size_t i = 0; i < r->disc.n; i++)
        json_install(&j, NULL, &r->disc.installs[i]);
    vp_json_end_array(&j);
    vp_json_string(&j, "shim_dir", r->shim_dir);
    cli_json_hooks(&j, &r->hooks);
    if (r->migrated) {
        vp_json_begin_object(&j, "migrate");
        vp_json_int(&j, "exit_code", r->migration.code);
        cli_json_migration(&j, &r->migration);
        vp_json_end_object(&j);
    }
    json_plan_files(&j, r);
    if (r->have_plan) {
        json_processes(&j, &r->plan);
        json_routes(&j, &r->plan);
    }
    /* For automation (Ansible's changed_when): did this run change any installed file,
     * link or systemd file. */
    vp_json_bool(&j, "changed",
                 !r->undone && (r->res.n > 0 || r->unpatched || cli_wiring_changed(&r->wiring) ||
                                r->wiring.removed.n > 0));
    vp_json_uint(&j, "bytes_written", r->res.bytes_written);
    vp_json_begin_object(&j, "timings_ms");
    vp_json_double(&j, "prepare", r->ms_prepare);
    vp_json_double(&j, "write", r->res.ms_write);
    vp_json_double(&j, "verify", r->res.ms_verify);
    vp_json_end_object(&j);
    if (r->res.verified)
        cli_json_checks(&j, &r->res.verify);
    cli_json_wiring(&j, &r->wiring);
    cli_json_strv(&j, "restart_needed", &r->res.running);
    cli_json_strv(&j, "notes", &r->notes);
    vp_json_end_object(&j);
    vp_json_finish(&j);
}

static void print_plan(const struct run *r)
{
    const struct vp_plan *p = &r->plan;
    printf("plan:\n");
    for (size_t i = 0; i < p->n_files; i++) {
        const struct vp_plan_file *f = &p->files[i];
        printf("  %s (%s; run by: ", f->path, vp_file_role_name(f->role));
        for (size_t k = 0; k < f->processes.n; k++)
            printf("%s%s", k ? ", " : "", f->processes.v[k]);
        printf(")\n");
        if (f->role == VP_ROLE_LINK) {
            printf("      %s -> %s\n", f->done ? "already links" : "link", f->link_target);
            continue;
        }
        if (f->done) {
            printf("      already carries the shims: nothing to write\n");
            continue;
        }
        for (size_t k = 0; k < f->n_edits; k++) {
            _cleanup_(freep) char *d = vp_edit_describe(&f->edits[k]);
            printf("      %s\n", d);
        }
        printf("      method: %s (%s)\n", vp_write_method_name(f->choice.method),
               f->choice.reason);
    }
    printf("processes (the loader model's answer for libcuda.so.1 before -> after the "
           "patch):\n");
    for (size_t i = 0; i < p->n_procs; i++) {
        const struct vp_plan_process *pr = &p->procs[i];
        printf("  %-13s %s\n      %s -> %s\n", pr->role, pr->exe,
               pr->today.file[VP_PREDICT_CUDA] ? pr->today.file[VP_PREDICT_CUDA] : "nothing",
               pr->after.file[VP_PREDICT_CUDA] ? pr->after.file[VP_PREDICT_CUDA] : "nothing");
    }
    printf("routes to libcuda / NVML:\n");
    for (size_t i = 0; i < p->n_routes; i++) {
        const struct vp_plan_route *rt = &p->routes[i];
        printf("  %-8s %-13s %-15s %s\n", rt->covered ? "covered" : "OPEN", rt->process,
               vp_route_kind_name(rt->kind), rt->target);
        printf("           %s\n", rt->how);
    }
}

/* Where the audit variables go, and what the operator does with them. */
static void print_audit_delivery(const struct run *r)
{
    printf("audit: every process Ollama starts needs these variables (some routes cannot be "
           "covered on disk):\n");
    for (size_t i = 0; i < r->env.n; i++)
        printf("  %s\n", r->env.v[i]);
    if (!strcmp(r->delivery, "environment-file") && r->delivered) {
        printf("delivery: written to %s, which %s reads (EnvironmentFile=)\n", r->env_file,
               r->in->unit);
    } else if (!strcmp(r->delivery, "environment-file")) {
        printf("delivery: written to %s, but NOT YET DELIVERED: %s does not read it. Run\n"
               "`vgpu-patch ollama` without --no-wire (our drop-in reads it), or add\n"
               "  EnvironmentFile=-%s\nto its [Service] section; until then the service runs "
               "these routes without the shims.\n",
               r->env_file, r->in->unit, r->env_file);
    } else {
        _cleanup_(freep) char *cmd = launch_command(r);
        printf("delivery: no systemd unit runs this install: start Ollama through the "
               "launcher, which sets them:\n  %s\n",
               cmd);
    }
}

static void report_text(struct run *r)
{
    if (r->in) {
        _cleanup_(freep) char *eras = era_names(r->in->eras);
        printf("Ollama: %s (release %s, era %s)\n  %s\n", r->in->prefix,
               r->in->version ? r->in->version : "unknown", eras, r->in->era_reason);
    }
    if (r->shim_dir)
        printf("shims: %s\n", r->shim_dir);
    if (r->migrated)
        cli_print_migration(&r->migration);
    if (r->hooks.n) {
        printf("global loader hooks from an earlier method (remove them first: `vgpu-patch "
               "migrate`, or `vgpu-patch ollama --migrate`):\n");
        cli_print_hooks(&r->hooks);
    }
    if (r->have_plan)
        print_plan(r);
    if (r->code == VP_EXIT_UNCOVERED)
        printf("result: nothing applied — some routes cannot be covered by patching files on "
               "disk; the LD_AUDIT fallback (mechanism audit) would cover them.\n");
    if (r->res.verified) {
        printf("verification:\n");
        cli_print_checks(&r->res.verify);
    }
    if (r->code == VP_EXIT_OK && !r->o->dry_run && r->have_plan) {
        _cleanup_(freep) char *b = cli_human_bytes(r->res.bytes_written);
        printf("result: mechanism %s, delivery %s; %zu file(s) written (%s)\n", r->mech,
               r->delivery, r->res.n, b);
        if (!strcmp(r->mech, "audit"))
            print_audit_delivery(r);
        cli_print_wiring(&r->wiring);
        for (size_t i = 0; i < r->res.running.n; i++)
            printf("restart needed: process %s runs a file that was replaced; restart Ollama "
                   "(systemctl restart ollama) to load the shims\n",
                   r->res.running.v[i]);
    } else if (r->code == VP_EXIT_OK && r->o->dry_run) {
        printf("result: dry run, nothing written (mechanism %s, delivery %s)\n", r->mech,
               r->delivery);
    }
    cli_print_notes(&r->notes);
}

static int fail_run(struct run *r, int code)
{
    r->code = code;
    r->error = vp_xstrdup(vp_last_error());
    return code;
}

/* A pending file on a read-only file system cannot be patched: the audit fallback. */
static void check_writable(struct run *r)
{
    for (size_t i = 0; i < r->plan.n_files; i++) {
        struct vp_plan_file *f = &r->plan.files[i];
        if (f->done || f->choice.method == VP_WRITE_IMPOSSIBLE)
            continue;
        _cleanup_(freep) char *ondisk = vp_rooted(r->o->c.root, f->path);
        _cleanup_(freep) char *dir = vp_dirname(ondisk);
        struct statvfs sv;
        if (statvfs(dir, &sv) == 0 && (sv.f_flag & ST_RDONLY)) {
            f->choice.method = VP_WRITE_IMPOSSIBLE;
            snprintf(f->choice.reason, sizeof(f->choice.reason),
                     "on a read-only file system");
            r->plan.all_covered = false;
            vp_strv_push_take(&r->notes,
                              vp_xasprintf("%s is on a read-only file system: it cannot be "
                                           "patched; the audit fallback covers read-only images",
                                           f->path));
        }
    }
}

static int build_plan(struct run *r, const struct vp_shims *shims, const char *patchelf)
{
    if (vp_plan_build(r->o->c.root, r->in, shims, patchelf, &r->plan) < 0)
        return fail_run(r, VP_EXIT_ERROR);
    r->have_plan = true;
    for (size_t i = 0; i < r->plan.notes.n; i++)
        if (!vp_strv_contains(&r->notes, r->plan.notes.v[i]))
            vp_strv_push(&r->notes, r->plan.notes.v[i]);
    check_writable(r);
    bool forced_audit = r->o->mechanism && !strcmp(r->o->mechanism, "audit");
    r->mech = "patch";
    r->delivery = "elf";
    if (r->plan.all_covered && !forced_audit)
        return VP_EXIT_OK;
    if (r->o->mechanism && !strcmp(r->o->mechanism, "patch")) {
        vp_error(-ENOTSUP, "some routes to the driver cannot be covered by patching files on "
                           "disk; the audit mechanism (LD_AUDIT) would cover them");
        return fail_run(r, VP_EXIT_UNCOVERED);
    }
    if (vp_shims_check_audit(&r->plan.shims) < 0 ||
        vp_verify_audit_loads(r->libexec, &r->plan.shims) < 0) {
        vp_error(-ENOTSUP, "%s some routes need the audit mechanism, but: %s",
                 forced_audit ? "--mechanism audit:" : "", vp_last_error());
        return fail_run(r, VP_EXIT_UNCOVERED);
    }
    /* Chosen: LD_AUDIT for the routes the patch cannot cover (and the patch where it
     * helps), or, forced, LD_AUDIT alone and no file written. */
    vp_plan_use_audit(&r->plan, !forced_audit);
    r->mech = "audit";
    r->delivery = r->o->delivery ? r->o->delivery : r->in->unit ? "environment-file" : "launcher";
    return VP_EXIT_OK;
}

static int lock_state(struct run *r, struct vp_state *st, unsigned flags, bool *locked)
{
    if (vp_state_open(r->o->c.state_ondisk, flags | VP_STATE_LOCK, r->o->lock_timeout * 1000,
                      st) < 0)
        return fail_run(r, VP_EXIT_ERROR);
    *locked = true;
    for (size_t i = 0; i < st->recovered.n; i++)
        vp_strv_push(&r->notes, st->recovered.v[i]);
    return VP_EXIT_OK;
}

static char *dup_null(const char *s)
{
    return s ? vp_xstrdup(s) : NULL;
}

static void note_undone(void *ctx, const struct vp_entry *e, enum vp_rollback_outcome out,
                        const char *msg)
{
    struct run *r = ctx;
    vp_strv_push_take(&r->notes, vp_xasprintf("undone: %s %s%s%s", vp_rollback_outcome_name(out),
                                              e->path, msg ? ": " : "", msg ? msg : ""));
}

/* Wiring failed after the apply: what this run changed — the files it patched, the
 * systemd files it wrote — is put back, so that exit 1 keeps its promise (no installed
 * file changed). Returns the error to report. */
static int undo_run(struct run *r, struct vp_state *st, const char *why)
{
    _cleanup_(freep) char *reason = vp_xstrdup(why);
    struct vp_manifest m;
    if (vp_manifest_load(st->dir, &m) == 0) {
        struct vp_manifest_install *in = vp_manifest_install(&m, r->in->prefix);
        struct vp_strv backups = {0};
        enum vp_rollback_outcome worst;
        if (cli_wiring_changed(&r->wiring)) {
            cli_unwire_before(&r->o->c);
            vp_rollback_install(r->o->c.root, in, VP_UNDO_UNITS, false, note_undone, r,
                                &backups, &worst);
            cli_unwire_after(&r->o->c);
        }
        if (r->res.n)
            vp_rollback_install(r->o->c.root, in, VP_UNDO_TREE, false, note_undone, r,
                                &backups, &worst);
        /* The record as it was (an install never recorded before: rolled back). */
        const struct vp_manifest_install *was_in = &r->before;
        char **fields[] = {&in->mechanism, &in->delivery, &in->requested,
                           &in->restored,  &in->systemd_dir, &in->keep_vulkan};
        char *const was[] = {was_in->mechanism ? was_in->mechanism : "none",
                             was_in->delivery,    was_in->requested, was_in->restored,
                             was_in->systemd_dir, was_in->keep_vulkan};
        for (size_t i = 0; i < VP_ARRAY_SIZE(fields); i++) {
            free(*fields[i]);
            *fields[i] = was[i] ? vp_xstrdup(was[i]) : NULL;
        }
        if (vp_manifest_save(st->dir, &m) == 0)
            for (size_t b = 0; b < backups.n; b++)
                if (!vp_manifest_uses_backup(&m, backups.v[b]))
                    unlink(backups.v[b]);
        vp_strv_release(&backups);
        vp_manifest_release(&m);
    }
    r->undone = true;
    return vp_error(-EIO, "wiring systemd failed: %s; everything this run changed is put "
                          "back (see notes)",
                    reason);
}

/* The release's layout as patched and verified, for ensure to compare with. */
static void record_stamp(struct run *r, struct vp_state *st)
{
    struct vp_manifest m;
    if (vp_manifest_load(st->dir, &m) < 0)
        return;
    struct vp_manifest_install *in = vp_manifest_install(&m, r->in->prefix);
    free(in->tree_stamp);
    in->tree_stamp = vp_tree_stamp(r->o->c.root, r->in->prefix);
    if (vp_manifest_save(st->dir, &m) < 0)
        vp_strv_push_take(&r->notes, vp_xasprintf("the patch is applied, but %s",
                                                  vp_last_error()));
    vp_manifest_release(&m);
}

/* The environment file says what the service needs: the audit variables, or nothing
 * (an earlier audit run may have left some). Audit variables are written before the
 * files are patched, and put back as they were if that fails, so the file never
 * claims what is not there; the empty file follows a successful patch. */
static int deliver_and_apply(struct run *r, struct vp_state *st, const struct vp_apply_opts *ao)
{
    bool audit = !strcmp(r->mech, "audit");
    _cleanup_(freep) char *path = vp_path_join(st->dir, VP_ENV_FILE);
    _cleanup_(freep) char *before = NULL;
    struct vp_strv old = {0};
    if (audit) {
        if (vp_read_file(path, 1 << 16, &before, NULL) == 0)
            vp_strv_split(&old, before, "\n");
        vp_audit_env(&r->plan.shims, &r->env);
        if (vp_env_file_write(st->dir, &r->env) < 0) {
            vp_strv_release(&old);
            return -EIO;
        }
        r->env_file = vp_path_join(r->o->c.state_dir, VP_ENV_FILE);
    }
    struct vp_manifest m0;
    if (vp_manifest_load(st->dir, &m0) == 0) {
        for (size_t i = 0; i < m0.n; i++)
            if (!strcmp(m0.installs[i].prefix, r->in->prefix)) {
                struct vp_manifest_install *b = &m0.installs[i];
                r->before = (struct vp_manifest_install){
                    .mechanism = dup_null(b->mechanism), .delivery = dup_null(b->delivery),
                    .requested = dup_null(b->requested), .restored = dup_null(b->restored),
                    .systemd_dir = dup_null(b->systemd_dir),
                    .keep_vulkan = dup_null(b->keep_vulkan)};
            }
        vp_manifest_release(&m0);
    }
    int rc = vp_apply(&r->plan, st, ao, &r->res);
    if (rc == 0) {
        struct cli_wire_args wa = {
            .no_wire = r->o->no_wire,
            .keep_vulkan = r->o->keep_vulkan,
            .restart = r->o->restart,
            .launcher = audit && !strcmp(r->delivery, "launcher"),
            .systemd_dir = r->o->systemd_dir,
            .shim_dir = r->plan.shims.dir,
        };
        if (cli_wire_install(&r->o->c, st->dir, r->in, &wa, &r->wiring) < 0 ||
            r->wiring.error)
            rc = undo_run(r, st, r->wiring.error ? r->wiring.error : vp_last_error());
    }
    if (rc == 0)
        record_stamp(r, st);
    if (rc == 0 && audit && !strcmp(r->delivery, "environment-file"))
        r->delivered = vp_env_file_delivered(r->o->c.root, r->env_file);
    if (rc < 0 && audit)
        vp_env_file_write(st->dir, &old);
    else if (rc == 0 && !audit && vp_env_file_write(st->dir, &r->env) < 0)
        vp_strv_push_take(&r->notes, vp_xasprintf("the patch is applied, but %s",
                                                  vp_last_error()));
    vp_strv_release(&old);
    return rc;
}

static void note_restored(void *ctx, const struct vp_entry *e, enum vp_rollback_outcome out,
                          const char *msg)
{
    struct run *r = ctx;
    r->unpatched = r->unpatched || out == VP_ROLLBACK_RESTORED;
    vp_strv_push_take(&r->notes, vp_xasprintf("--mechanism audit: %s %s%s%s",
                                              vp_rollback_outcome_name(out), e->path,
                                              msg ? ": " : "", msg ? msg : ""));
}

/* --mechanism audit alone: an earlier patch of the install is rolled back first (the
 * audit mechanism writes nothing into the tree). A file that changed since it was
 * patched is never clobbered: exit 4. */
static int unpatch(struct run *r, struct vp_state *st)
{
    struct vp_manifest m;
    if (vp_manifest_load(st->dir, &m) < 0)
        return fail_run(r, VP_EXIT_ERROR);
    int code = VP_EXIT_OK;
    struct vp_strv backups = {0};
    for (size_t i = 0; i < m.n && code == VP_EXIT_OK; i++) {
        struct vp_manifest_install *in = &m.installs[i];
        if (strcmp(in->prefix, r->in->prefix) || !vp_install_tree_entries(in))
            continue;
        enum vp_rollback_outcome worst; /* the tree: our systemd files stay */
        vp_rollback_install(r->o->c.root, in, VP_UNDO_TREE, false, note_restored, r, &backups,
                            &worst);
        if (worst == VP_ROLLBACK_REFUSED || worst == VP_ROLLBACK_FAILED) {
            vp_error(-EEXIST, "--mechanism audit: the earlier patch of %s could not be rolled "
                              "back completely (see the notes)",
                     in->prefix);
            code = fail_run(r, worst == VP_ROLLBACK_REFUSED ? VP_EXIT_DRIFT : VP_EXIT_ERROR);
        }
        if (vp_manifest_save(st->dir, &m) < 0 && code == VP_EXIT_OK)
            code = fail_run(r, VP_EXIT_ERROR);
    }
    for (size_t b = 0; b < backups.n; b++)
        if (!vp_manifest_uses_backup(&m, backups.v[b]))
            unlink(backups.v[b]);
    vp_strv_release(&backups);
    vp_manifest_release(&m);
    return code;
}

/* --migrate --dry-run: the hooks the migration would remove do not stop the plan. */
static void drop_migrated(struct run *r)
{
    const struct cli_migration *mg = &r->migration;
    size_t kept = 0;
    for (size_t i = 0; i < r->hooks.n; i++) {
        bool goes = false;
        for (size_t q = 0; q < mg->hooks.n && !goes; q++)
            goes = cli_migration_action(mg, q) < VP_MIGRATE_KEEP_PACKAGE &&
                   !strcmp(mg->hooks.v[q].file, r->hooks.v[i].file) &&
                   mg->hooks.v[q].line == r->hooks.v[i].line &&
                   !strcmp(mg->hooks.v[q].what, r->hooks.v[i].what);
        struct vp_hook *k = &r->hooks.v[i];
        if (!goes) {
            r->hooks.v[kept++] = *k;
            continue;
        }
        free(k->file);
        free(k->what);
        free(k->why);
        free(k->arg);
    }
    r->hooks.n = kept;
}

static int run(struct run *r)
{
    struct opts *o = r->o;
    struct vp_conf conf;
    if (vp_conf_load(&conf, o->c.root) < 0)
        return fail_run(r, VP_EXIT_ERROR);
    /* A bad value is never guessed around (a misspelled shim_dir would silently use
     * another shim dir): stop and name it. */
    if (conf.problems.n) {
        for (size_t i = 1; i < conf.problems.n; i++)
            vp_strv_push_take(&r->notes, vp_xasprintf("configuration: %s", conf.problems.v[i]));
        vp_error(-EINVAL, "configuration: %s%s", conf.problems.v[0],
                 conf.problems.n > 1 ? " (and more, see the notes)" : "");
        vp_conf_release(&conf);
        return fail_run(r, VP_EXIT_ERROR);
    }
    const char *sd = o->shim_dir ? o->shim_dir : vp_conf_get(&conf, VP_CONF_SHIM_DIR);
    r->shim_dir = sd ? vp_xstrdup(sd) : vp_shims_default_dir();
    vp_conf_release(&conf);

    const char *path_env = strcmp(o->c.root, "/") ? NULL : getenv("PATH");
    if (vp_discover(o->c.root, o->prefix, path_env, &r->disc) < 0)
        return fail_run(r, VP_EXIT_ERROR);
    for (size_t i = 0; i < r->disc.notes.n; i++)
        vp_strv_push(&r->notes, r->disc.notes.v[i]);
    r->in = &r->disc.installs[r->disc.chosen];
    if (vp_install_identify(o->c.root, r->in) < 0)
        return fail_run(r, VP_EXIT_ERROR);

    /* --migrate: the hooks go first (under the state lock, released again). */
    if (o->migrate) {
        r->migrated = true;
        int mc = cli_migrate(&o->c, r->in->prefix, r->shim_dir, o->dry_run,
                             o->lock_timeout * 1000, &r->migration);
        if (mc == VP_EXIT_ERROR || mc == VP_EXIT_DRIFT) {
            vp_error(-EIO, "migrate: %s", r->migration.error ? r->migration.error : "failed");
            return fail_run(r, mc);
        }
    }

    /* Our own in-tree links are not legacy hooks. */
    struct vp_strv owned = {0};
    struct vp_manifest m;
    if (vp_manifest_load(o->c.state_ondisk, &m) == 0) {
        for (size_t i = 0; i < m.n; i++)
            for (size_t k = 0; k < m.installs[i].n; k++)
                if (m.installs[i].entries[k].kind == VP_ENTRY_LINK)
                    vp_strv_push(&owned, m.installs[i].entries[k].path);
        vp_manifest_release(&m);
    }
    vp_hooks_scan(o->c.root, r->in->prefix, &owned, r->shim_dir, &r->hooks);
    vp_strv_release(&owned);
    if (o->migrate && o->dry_run)
        drop_migrated(r);
    if (r->hooks.n) {
        vp_error(-EEXIST, "%zu global loader hook(s) from an earlier method are present; "
                          "nothing was changed",
                 r->hooks.n);
        return fail_run(r, VP_EXIT_HOOKS);
    }

    struct vp_shims shims;
    if (vp_shims_open(r->shim_dir, &shims) < 0)
        return fail_run(r, VP_EXIT_ERROR);
    _cleanup_(freep) char *libexec = vp_verify_default_libexec();
    r->libexec = libexec;
    if (vp_verify_shims_load(libexec, &shims) < 0) {
        vp_shims_release(&shims);
        return fail_run(r, VP_EXIT_ERROR);
    }

    /* The plan is made under the lock (a recovered journal or another run may change
     * files); the state dir is only created once there is something to write. */
    _cleanup_(freep) char *patchelf = find_patchelf(o->patchelf);
    struct vp_state st = {.lock_fd = -1};
    bool locked = false;
    int rc = VP_EXIT_OK;
    if (!o->dry_run && access(o->c.state_ondisk, F_OK) == 0)
        rc = lock_state(r, &st, 0, &locked);
    if (rc == VP_EXIT_OK && locked && o->mechanism && !strcmp(o->mechanism, "audit"))
        rc = unpatch(r, &st);
    if (rc == VP_EXIT_OK)
        rc = build_plan(r, &shims, patchelf);
    if (rc == VP_EXIT_OK && !o->dry_run && !locked) {
        rc = lock_state(r, &st, VP_STATE_CREATE, &locked);
        vp_plan_release(&r->plan);
        r->have_plan = false;
        if (rc == VP_EXIT_OK)
            rc = build_plan(r, &shims, patchelf);
    }
    vp_shims_release(&shims);
    if (rc != VP_EXIT_OK || o->dry_run) {
        if (locked)
            vp_state_close(&st);
        return rc;
    }
    r->ms_prepare = vp_now_ms() - r->ms_prepare;
    bool audit = !strcmp(r->mech, "audit");
    struct vp_verify_opts vo = {.libexec = libexec, .live = true, .audit = audit};
    _cleanup_(freep) char *eras = era_names(r->in->eras);
    struct vp_apply_opts ao = {.patchelf = patchelf, .verify = &vo, .version = r->in->version,
                               .eras = eras, .mechanism = r->mech, .delivery = r->delivery,
                               .requested = o->mechanism};
    rc = deliver_and_apply(r, &st, &ao);
    vp_state_close(&st);
    if (rc < 0)
        return fail_run(r, VP_EXIT_ERROR);
    return VP_EXIT_OK;
}

int cmd_ollama(int argc, char **argv)
{
    return cli_ollama_run(argc, argv, "ollama", NULL);
}

int cli_ollama_run(int argc, char **argv, const char *as_command, const char *action)
{
    struct opts o = {0};
    int code = parse(argc, argv, &o);
    if (code)
        return code;
    struct run r = {.o = &o, .as_command = as_command, .action = action,
                    .disc = {.chosen = -1}, .ms_prepare = vp_now_ms()};
    r.code = run(&r);
    if (o.c.json)
        report_json(&r);
    else
        report_text(&r);
    if (r.error)
        cli_fail(r.code, "%s", r.error);
    code = r.code;
    free(r.error);
    free(r.shim_dir);
    free(r.env_file);
    vp_manifest_install_release(&r.before);
    vp_strv_release(&r.env);
    cli_wiring_release(&r.wiring);
    if (r.have_plan)
        vp_plan_release(&r.plan);
    vp_apply_result_release(&r.res);
    vp_hooks_release(&r.hooks);
    if (r.migrated)
        cli_migration_release(&r.migration);
    vp_discovery_release(&r.disc);
    vp_strv_release(&r.notes);
    cli_common_release(&o.c);
    return code;
}
