/* vgpu-patch doctor: what an operator needs to know when Ollama does not use the vGPU,
 * in one report — the system (glibc, patchelf, systemd), the Ollama installs and their
 * duplicates, legacy global hooks, what vgpu-patch did (mechanism, delivery, wiring,
 * whether each file is still as left), whether the shims load, what the driver behind
 * them reports against Ollama's thresholds, and Ollama's own `inference compute` log
 * lines. Exit 0 when nothing is a problem, 5 when global hooks of an earlier method are
 * present, 1 for any other problem (warnings do not count). */
#include "audit.h"
#include "cli.h"
#include "conf.h"
#include "discover.h"
#include "e2e.h"
#include "rollback.h"
#include "spawn.h"

#include <errno.h>
#include <getopt.h>
#include <gnu/libc-version.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char help[] =
    "Usage: vgpu-patch doctor [--root DIR] [--prefix DIR] [--state-dir DIR] [--log FILE]\n"
    "                         [--json]\n"
    "Report everything that decides whether Ollama uses the vGPU: glibc and patchelf,\n"
    "the Ollama installs (and duplicates), legacy global loader hooks, mechanism,\n"
    "delivery and wiring, the shims' load check, the driver versions the backend\n"
    "reports against Ollama's thresholds, and the last `inference compute` lines of\n"
    "Ollama's log (journalctl -u ollama, or --log FILE). Exit 1 when a problem is found,\n"
    "5 when it is (also) a global loader hook of an earlier method.\n";

enum level { OK, INFO, WARN, PROBLEM };
static const char *const level_names[] = {"ok", "info", "warn", "problem"};

struct finding {
    const char *area;
    enum level level;
    char *text;
};

struct doctor {
    struct vp_common c;
    const char *prefix;
    const char *log;
    struct finding *f;
    size_t n;
};

static void say(struct doctor *d, const char *area, enum level l, char *text)
{
    d->f = vp_xrealloc(d->f, (d->n + 1) * sizeof(*d->f));
    d->f[d->n++] = (struct finding){area, l, text};
}

/* Runs a program with a plain environment; its stdout, or NULL when it did not run. */
static char *run_out(char *const argv[], char *const env[])
{
    struct vp_spawn_result res;
    if (vp_spawn(argv, env, false, 20000, &res) < 0)
        return NULL;
    char *out = vp_xstrdup(res.out);
    vp_spawn_result_release(&res);
    return out;
}

static void check_system(struct doctor *d)
{
    const char *g = gnu_get_libc_version();
    say(d, "system", INFO,
        vp_xasprintf("glibc %s%s", g,
                     vp_glibc_needs_bind_now(g)
                         ? ": older than 2.35, the audit mechanism adds LD_BIND_NOW=1 (bug 15533)"
                         : ""));
    static const char *const dirs[] = {"/usr/local/bin/patchelf", "/usr/bin/patchelf"};
    const char *pe = NULL;
    for (size_t i = 0; i < VP_ARRAY_SIZE(dirs) && !pe; i++)
        if (access(dirs[i], X_OK) == 0)
            pe = dirs[i];
    char *const argv[] = {(char *)pe, "--version", NULL};
    char *const env[] = {"PATH=/usr/bin:/bin", "LC_ALL=C", NULL};
    _cleanup_(freep) char *v = pe ? run_out(argv, env) : NULL;
    if (v)
        v[strcspn(v, "\n")] = '\0';
    say(d, "system", INFO,
        pe ? vp_xasprintf("%s: %s%s", pe, v ? v : "?",
                          v && strstr(v, "0.14.") ? " (vgpu-patch uses it only for a file with "
                                                    "no free program header, one edit per call)"
                                                  : "")
           : vp_xstrdup("patchelf is not installed: only needed for a file with no free "
                        "program header"));
    bool booted = !strcmp(d->c.root, "/") && vp_systemd_booted();
    say(d, "system", INFO,
        vp_xstrdup(booted ? "systemd runs this machine" : "systemd does not run this machine "
                                                           "(or --root is given)"));
}

static void check_installs(struct doctor *d)
{
    struct vp_discovery disc = {.chosen = -1};
    const char *path_env = strcmp(d->c.root, "/") ? NULL : getenv("PATH");
    if (vp_discover(d->c.root, d->prefix, path_env, &disc) < 0) {
        say(d, "ollama", PROBLEM, vp_xstrdup(vp_last_error()));
        vp_discovery_release(&disc);
        return;
    }
    for (size_t i = 0; i < disc.n; i++) {
        struct vp_install *in = &disc.installs[i];
        vp_install_identify(d->c.root, in);
        _cleanup_(freep) char *eras = vp_xstrdup("");
        for (int e = 0; e < VP_ERA_COUNT; e++)
            if (in->eras & (1u << e)) {
                char *next = vp_xasprintf("%s%s%s", eras, *eras ? "|" : "", vp_era_name(e));
                free(eras);
                eras = next;
            }
        say(d, "ollama", i == (size_t)disc.chosen ? OK : WARN,
            vp_xasprintf("%s: release %s, era %s%s%s", in->binary,
                         in->version ? in->version : "unknown", *eras ? eras : "?",
                         in->unit ? ", run by " : "", in->unit ? in->unit : ""));
    }
    for (size_t i = 0; i < disc.notes.n; i++)
        say(d, "ollama", WARN, vp_xstrdup(disc.notes.v[i]));
    vp_discovery_release(&disc);
}

/* Each legacy hook with its file, line, what it does and why it matters; the tree of the
 * install Ollama runs is looked at too, patched or not. */
static void check_hooks(struct doctor *d, const struct vp_manifest *m)
{
    struct vp_discovery disc = {.chosen = -1};
    const char *path_env = strcmp(d->c.root, "/") ? NULL : getenv("PATH");
    const char *prefix = d->prefix;
    if (!prefix && vp_discover(d->c.root, NULL, path_env, &disc) == 0 && disc.chosen >= 0)
        prefix = disc.installs[disc.chosen].prefix;
    struct vp_hooks h;
    cli_scan_hooks_with(&d->c, m, prefix, NULL, &h);
    vp_discovery_release(&disc);
    for (size_t i = 0; i < h.n; i++) {
        _cleanup_(freep) char *at = h.v[i].line ? vp_xasprintf(":%u", h.v[i].line) : NULL;
        say(d, "hooks", PROBLEM,
            vp_xasprintf("%s%s: %s (%s)%s", h.v[i].file, at ? at : "", h.v[i].what, h.v[i].why,
                         h.v[i].in_unit ? "" : "; `vgpu-patch migrate` removes it"));
    }
    if (!h.n)
        say(d, "hooks", OK, vp_xstrdup("no global loader hooks from an earlier method"));
    vp_hooks_release(&h);
}

static void check_record(struct doctor *d, const struct vp_manifest_install *in)
{
    const char *mech = vp_install_mechanism(in);
    if (!strcmp(mech, "none")) {
        say(d, "record", in->restored ? PROBLEM : INFO,
            vp_xasprintf("%s: %s", in->prefix,
                         in->restored ? "restored by ensure because its shims did not load"
                                      : "rolled back"));
        return;
    }
    say(d, "record", OK,
        vp_xasprintf("%s: mechanism %s, delivery %s%s%s", in->prefix, mech,
                     vp_install_delivery(in) ? vp_install_delivery(in) : "none",
                     in->systemd_dir ? ", wired in " : ", not wired",
                     in->systemd_dir ? in->systemd_dir : ""));
    if (vp_streq_null(vp_install_delivery(in), "environment-file")) {
        _cleanup_(freep) char *env_file = vp_path_join(d->c.state_dir, VP_ENV_FILE);
        bool ok = vp_env_file_delivered(d->c.root, env_file);
        say(d, "record", ok ? OK : PROBLEM,
            vp_xasprintf("%s %s", env_file,
                         ok ? "is read by the unit" : "is NOT read by the unit (EnvironmentFile=)"));
    } else if (vp_streq_null(vp_install_delivery(in), "launcher") && !in->systemd_dir) {
        say(d, "record", INFO,
            vp_xstrdup("no unit runs it: start Ollama through vgpu-launch (`vgpu-launch -- "
                       "ollama serve`)"));
    } else if (vp_streq_null(vp_install_delivery(in), "launcher")) {
        _cleanup_(freep) char *file = NULL;
        _cleanup_(freep) char *cmd = vp_service_exec_start(d->c.root, false, &file);
        bool ours = file && !strcmp(vp_basename(file), VP_DROPIN_FILE) && cmd &&
                    strstr(cmd, "vgpu-launch");
        say(d, "record", ours ? OK : PROBLEM,
            ours ? vp_xasprintf("the unit starts Ollama through vgpu-launch (%s)", file)
                 : vp_xasprintf("the unit's ExecStart= is %s%s%s, not vgpu-launch: the audit "
                                "variables do not reach Ollama; run `vgpu-patch ollama`",
                                cmd ? cmd : "(none)", file ? " from " : "", file ? file : ""));
    }
    for (size_t k = 0; k < in->n; k++) {
        const struct vp_entry *e = &in->entries[k];
        _cleanup_(freep) char *detail = NULL;
        enum vp_entry_state es = vp_entry_state(d->c.root, e, &detail);
        if (es == VP_STATE_PATCHED || es == VP_STATE_LINKED)
            continue;
        _cleanup_(freep) char *what = vp_xasprintf("%s: %s%s%s", e->path, vp_entry_state_name(es),
                                                   detail ? ": " : "", detail ? detail : "");
        if (e->kind == VP_ENTRY_UNIT) {
            /* Without our drop-in no start runs ensure; without the path unit only the
             * next start notices an upgrade. */
            bool dropin = vp_streq_null(e->role, "drop-in");
            say(d, "record", dropin ? PROBLEM : WARN,
                vp_xasprintf("%s — %s; run `vgpu-patch ensure` to write it again", what,
                             dropin ? "starts of the unit no longer run ensure"
                                    : "upgrades are patched only at the next start"));
        } else {
            /* Wired, the next start of the unit runs ensure; unwired, nothing will. */
            say(d, "record", in->systemd_dir ? WARN : PROBLEM,
                vp_xasprintf("%s — %s", what,
                             in->systemd_dir ? "the next start of the unit patches it again"
                                             : "run `vgpu-patch ensure`"));
        }
    }
}

/* /etc/vgpu/vgpu.conf and the VGPU_* environment, as the shims will read them; returns
 * the shim dir they name (or the default), NULL when the file cannot be read. */
static char *check_config(struct doctor *d)
{
    struct vp_conf conf;
    int r = vp_conf_load(&conf, d->c.root);
    if (r < 0) {
        say(d, "config", PROBLEM, vp_xstrdup(vp_last_error()));
        return NULL;
    }
    for (size_t i = 0; i < conf.problems.n; i++)
        say(d, "config", PROBLEM, vp_xasprintf("%s (the shims refuse every call)",
                                               conf.problems.v[i]));
    static const char *const sources[] = {"default", VP_CONF_PATH, "environment"};
    const char *backend = vp_conf_get(&conf, VP_CONF_BACKEND);
    if (!backend)
        backend = VGPU_CONF_DEFAULT_BACKEND;
    const char *limit = vp_conf_get(&conf, VP_CONF_MEMORY_LIMIT);
    const char *endpoint = vp_conf_get(&conf, VP_CONF_ENDPOINT);
    bool remote = !strcmp(backend, "remote");
    say(d, "config", strcmp(backend, "none") ? OK : WARN,
        vp_xasprintf("backend %s (%s)%s%s%s%s", backend, sources[conf.source[VP_CONF_BACKEND]],
                     remote ? ", endpoint " : "",
                     remote ? (endpoint ? endpoint : VGPU_CONF_DEFAULT_ENDPOINT) : "",
                     limit ? ", memory_limit " : "", limit ? limit : ""));
    const char *sd = vp_conf_get(&conf, VP_CONF_SHIM_DIR);
    char *shim_dir = sd ? vp_xstrdup(sd) : vp_shims_default_dir();
    vp_conf_release(&conf);
    return shim_dir;
}

/* What the release would do with the driver the shims report (reference §3): which
 * CUDA runner it picks, and whether it drops the device. */
struct release {
    int era;            /* the newest era of the record; -1: unknown (judged as the latest) */
    bool v11, v12, v13; /* lib/ollama/cuda_vNN present (all, when unknown) */
};

static void judge_driver(struct doctor *d, const char *out, const struct release *rel)
{
    int init = -1, version = 0, devices = 0, ninit = -1, major = 0, minor = 0;
    char name[256] = "", nver[96] = "";
    struct vp_strv lines = {0};
    vp_strv_split(&lines, out, "\n");
    for (size_t i = 0; i < lines.n; i++) {
        const char *l = lines.v[i];
        sscanf(l, "cuda init %d", &init);
        sscanf(l, "cuda driver_version %d", &version);
        sscanf(l, "cuda devices %d", &devices);
        sscanf(l, "cuda device0 %d.%d %255[^\n]", &major, &minor, name);
        sscanf(l, "nvml init %d", &ninit);
        sscanf(l, "nvml driver_version %95s", nver);
    }
    vp_strv_release(&lines);
    if (init != 0) {
        say(d, "driver", PROBLEM,
            vp_xasprintf("cuInit through the shim returns %d (%s; the shim's message above "
                         "says why)",
                         init, init == 100 ? "no device" : "an error"));
        return;
    }
    int vmaj = version / 1000, vmin = version % 1000 / 10;
    say(d, "driver", devices ? OK : PROBLEM,
        vp_xasprintf("%d CUDA device(s)%s%s (compute capability %d.%d); CUDA driver API %d.%d",
                     devices, *name ? ": " : "", name, major, minor, vmaj, vmin));
    bool v12_used = false;
    if (rel->era >= 0 && rel->era <= VP_ERA_C) {
        /* A–C pick the runner from the driver API: below 12.1 (or CC < 6) cuda_v11. */
        if (version < 12010 || major < 6)
            say(d, "driver", rel->v11 ? WARN : PROBLEM,
                vp_xasprintf("driver API %d.%d / compute capability %d.%d: Ollama %s takes its "
                             "cuda_v11 runner%s",
                             vmaj, vmin, major, minor, vp_era_name(rel->era),
                             rel->v11 ? "" : ", which this install does not have (CPU only)"));
    } else {
        /* D/E bootstrap every cuda_* dir; cuda_v13 wins when the driver API allows. */
        v12_used = !rel->v13 || version < 13000;
        if (rel->v13 && version < 13000)
            say(d, "driver", rel->v12 ? WARN : PROBLEM,
                vp_xasprintf("the driver API is %d.%d: Ollama's cuda_v13 runners need 13.0; "
                             "%s",
                             vmaj, vmin,
                             rel->v12 ? "cuda_v12 is used" : "there is no cuda_v12 (CPU only)"));
    }
    if (ninit != 0) {
        say(d, "driver", WARN, vp_xasprintf("nvmlInit_v2 through the shim returns %d", ninit));
        return;
    }
    /* Only the latest era reads the NVML driver major, and only for cuda_v12. */
    bool checked = (rel->era < 0 || rel->era == VP_ERA_E) && v12_used;
    int dmaj = atoi(nver);
    enum level l = !checked || dmaj >= 570 || (dmaj >= 550 && major >= 7) ? OK : PROBLEM;
    say(d, "driver", l,
        vp_xasprintf("NVML driver %s%s", nver,
                     l != OK ? dmaj < 550 ? ": Ollama drops CUDA devices below driver 550 for "
                                            "cuda_v12 (NVIDIA driver too old)"
                                          : ": Ollama drops devices of compute capability < 7 "
                                            "below driver 570 for cuda_v12"
                     : checked ? ""
                               : " (not checked by this release and runner)"));
}

static void release_of(const struct doctor *d, const struct vp_manifest_install *in,
                       struct release *ret)
{
    *ret = (struct release){.era = -1, .v11 = true, .v12 = true, .v13 = true};
    if (!in)
        return;
    struct vp_strv names = {0};
    vp_strv_split(&names, in->eras ? in->eras : "", "|, ");
    for (size_t i = 0; i < names.n; i++) {
        int e = vp_era_parse(names.v[i]);
        if (e > ret->era)
            ret->era = e;
    }
    vp_strv_release(&names);
    bool *has[] = {&ret->v11, &ret->v12, &ret->v13};
    for (int v = 0; v < 3; v++) {
        _cleanup_(freep) char *rt = vp_xasprintf("%s/lib/ollama/cuda_v%d", in->prefix, 11 + v);
        _cleanup_(freep) char *dir = vp_rooted(d->c.root, rt);
        struct stat st;
        *has[v] = stat(dir, &st) == 0 && S_ISDIR(st.st_mode);
    }
    if (ret->era >= 0 && ret->era <= VP_ERA_B)
        ret->v11 = true; /* A/B carry their CUDA 11 runner among the payloads or runners/ */
}

static void check_shims(struct doctor *d, const char *shim_dir, bool audit,
                        const struct release *rel)
{
    struct vp_shims s;
    _cleanup_(freep) char *libexec = vp_verify_default_libexec();
    if (vp_shims_open(shim_dir, &s) < 0) {
        say(d, "shims", PROBLEM, vp_xstrdup(vp_last_error()));
        return;
    }
    if (vp_verify_shims_load(libexec, &s) < 0 ||
        (audit && (vp_shims_check_audit(&s) < 0 || vp_verify_audit_loads(libexec, &s) < 0))) {
        say(d, "shims", PROBLEM, vp_xstrdup(vp_last_error()));
        vp_shims_release(&s);
        return;
    }
    say(d, "shims", OK, vp_xasprintf("%s: the shims%s load here", s.dir,
                                     audit ? " and the audit module" : ""));
    /* The backend as the service's configuration file sets it, with the caller's VGPU_*
     * overrides (as the shims read them); no loader variable of the caller's reaches the
     * probe, so what answers is the shims and what they forward to. */
    _cleanup_(freep) char *probe = vp_path_join(libexec, "vgpu-probe");
    _cleanup_(freep) char *conf = vp_rooted(d->c.root, "/etc/vgpu/vgpu.conf");
    struct vp_strv env = {0};
    extern char **environ;
    for (char **e = environ; *e; e++)
        if (!vp_startswith(*e, "LD_") && !vp_startswith(*e, "VGPU_CONFIG="))
            vp_strv_push(&env, *e);
    vp_strv_push_take(&env, vp_xasprintf("VGPU_CONFIG=%s", conf));
    char *const argv[] = {probe, "driver", s.cuda, s.nvml, NULL};
    struct vp_spawn_result res;
    if (vp_spawn(argv, env.v, false, 60000, &res) < 0) {
        say(d, "driver", PROBLEM, vp_xstrdup(vp_last_error()));
    } else {
        if (*res.err)
            say(d, "driver", INFO, vp_xasprintf("the shims say: %.*s",
                                                (int)strcspn(res.err, "\n"), res.err));
        judge_driver(d, res.out, rel);
        vp_spawn_result_release(&res);
    }
    vp_strv_release(&env);
    vp_shims_release(&s);
}

/* Lines of Ollama's log, other than the compute-library lines e2e.h parses, that say
 * why it did not use CUDA, or that a runner loaded it (reference §4). */
static const struct {
    const char *text;
    enum level level;
} log_signs[] = {
    {"loaded CUDA backend", OK},
    {"NVIDIA driver too old", PROBLEM},
    {"could not verify NVIDIA driver compatibility", PROBLEM},
    {"failure during GPU discovery", PROBLEM},
    {"failure during llama-server GPU discovery", PROBLEM},
    {"GPU discovery watchdog timed out", PROBLEM},
    {"skipping CUDA device", PROBLEM},
    {"CUDA GPU is too old", PROBLEM},
};

/* How a line of the log counts: -1 when it says nothing about compute. */
static int judge_log_line(const char *line)
{
    struct vp_e2e_line l;
    enum vp_e2e_kind kind = vp_e2e_parse_line(line, &l);
    bool cuda = vp_e2e_line_is_cuda(&l);
    vp_e2e_line_release(&l);
    switch (kind) {
    case VP_E2E_COMPUTE:
        return cuda ? OK : PROBLEM; /* cpu, or Vulkan: CUDA bypassed */
    case VP_E2E_GPU_DETECTED:
        return OK;
    case VP_E2E_CPU_FALLBACK:
        return PROBLEM;
    case VP_E2E_OTHER:
        break;
    }
    for (size_t k = 0; k < VP_ARRAY_SIZE(log_signs); k++)
        if (strstr(line, log_signs[k].text))
            return (int)log_signs[k].level;
    return -1;
}

/* What Ollama said about compute in its last start (after the last "Listening on"). */
static void check_log(struct doctor *d)
{
    _cleanup_(freep) char *text = NULL;
    const char *from = d->log;
    if (d->log) {
        int r = vp_read_file(d->log, 64 << 20, &text, NULL);
        if (r < 0) {
            say(d, "log", WARN,
                vp_xasprintf("%s: %s", d->log, r == -EFBIG ? vp_last_error() : strerror(-r)));
            return;
        }
    } else if (!strcmp(d->c.root, "/") && access("/usr/bin/journalctl", X_OK) == 0) {
        char *const argv[] = {"/usr/bin/journalctl", "-u", "ollama", "--no-pager", "-n",
                              "5000", NULL};
        char *const env[] = {"PATH=/usr/bin:/bin", "LC_ALL=C", NULL};
        text = run_out(argv, env);
        from = "journalctl -u ollama";
    }
    if (!text) {
        say(d, "log", INFO, vp_xstrdup("no Ollama log to read (journalctl, or --log FILE)"));
        return;
    }
    struct vp_strv lines = {0};
    vp_strv_split(&lines, text, "\n");
    size_t start = 0;
    for (size_t i = 0; i < lines.n; i++)
        if (strstr(lines.v[i], "Listening on"))
            start = i;
    size_t shown = 0;
    bool cuda = false;
    for (size_t i = start; i < lines.n && shown < 12; i++) {
        int l = judge_log_line(lines.v[i]);
        if (l < 0)
            continue;
        cuda |= l == OK;
        say(d, "log", (enum level)l, vp_xstrdup(lines.v[i]));
        shown++;
    }
    if (!cuda)
        say(d, "log", shown ? PROBLEM : WARN,
            vp_xasprintf("%s: %s", from,
                         shown ? "Ollama's last start chose no CUDA device"
                               : "no line about the compute library (has Ollama started "
                                 "since?)"));
    vp_strv_release(&lines);
}

static void report(const struct doctor *d, int code)
{
    if (d->c.json) {
        struct vp_json j;
        cli_json_begin(&j, "doctor");
        vp_json_int(&j, "exit_code", code);
        vp_json_begin_array(&j, "findings");
        for (size_t i = 0; i < d->n; i++) {
            vp_json_begin_object(&j, NULL);
            vp_json_string(&j, "area", d->f[i].area);
            vp_json_string(&j, "level", level_names[d->f[i].level]);
            vp_json_string(&j, "text", d->f[i].text);
            vp_json_end_object(&j);
        }
        vp_json_end_array(&j);
        vp_json_end_object(&j);
        vp_json_finish(&j);
        return;
    }
    const char *area = "";
    for (size_t i = 0; i < d->n; i++) {
        if (strcmp(area, d->f[i].area))
            printf("%s:\n", area = d->f[i].area);
        printf("  %-8s %s\n", level_names[d->f[i].level], d->f[i].text);
    }
    printf("%s\n", code ? "doctor: problems found (see above)" : "doctor: no problem found");
}

int cmd_doctor(int argc, char **argv)
{
    struct doctor d = {0};
    struct option longopts[] = {CLI_COMMON_LONGOPTS,
                                {"prefix", required_argument, NULL, 'p'},
                                {"log", required_argument, NULL, 'l'},
                                {0}};
    int opt;
    while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        if (cli_common_opt(&d.c, opt, optarg))
            continue;
        if (opt == 'l' || opt == 'p') {
            *(opt == 'l' ? &d.log : &d.prefix) = optarg;
            continue;
        }
        fputs(help, opt == 'h' ? stdout : stderr);
        return opt == 'h' ? VP_EXIT_OK : VP_EXIT_USAGE;
    }
    if (optind != argc)
        return cli_fail(VP_EXIT_USAGE, "doctor: unexpected argument '%s'", argv[optind]);
    int code = cli_common_finish(&d.c);
    if (code)
        return code;
    check_system(&d);
    check_installs(&d);
    struct vp_manifest m;
    if (cli_load_manifest(&d.c, &m, NULL) < 0) {
        say(&d, "record", PROBLEM, vp_xstrdup(vp_last_error()));
        m = (struct vp_manifest){0};
    }
    check_hooks(&d, &m);
    const struct vp_manifest_install *in = NULL;
    for (size_t i = 0; i < m.n; i++) {
        check_record(&d, &m.installs[i]);
        if (!in && strcmp(vp_install_mechanism(&m.installs[i]), "none"))
            in = &m.installs[i];
    }
    if (!m.n)
        say(&d, "record", INFO, vp_xasprintf("nothing patched (state dir %s)", d.c.state_dir));
    _cleanup_(freep) char *shim_dir = check_config(&d);
    if (in) { /* the shims the install was patched with */
        free(shim_dir);
        shim_dir = vp_xstrdup(in->shim_dir);
    }
    struct release rel;
    release_of(&d, in, &rel);
    if (shim_dir)
        check_shims(&d, shim_dir, in && !strcmp(vp_install_mechanism(in), "audit"), &rel);
    check_log(&d);
    /* Exit 5 for global hooks of an earlier method, as every command (DESIGN §7). */
    code = VP_EXIT_OK;
    for (size_t i = 0; i < d.n; i++)
        if (d.f[i].level == PROBLEM && code != VP_EXIT_HOOKS)
            code = !strcmp(d.f[i].area, "hooks") ? VP_EXIT_HOOKS : VP_EXIT_ERROR;
    report(&d, code);
    for (size_t i = 0; i < d.n; i++)
        free(d.f[i].text);
    free(d.f);
    vp_manifest_release(&m);
    cli_common_release(&d.c);
    return code;
}
