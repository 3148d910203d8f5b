/* verify: static, loader-list and live checks of a patched install. */
#include "verify.h"
#include "spawn.h"
#include "trust.h"

#include <errno.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>

#define PROBE_TIMEOUT_MS 20000
#define LDSO "/lib64/ld-linux-x86-64.so.2"

char *vp_verify_default_libexec(void)
{
    return vp_self_relative("../libexec/vgpu-patch");
}

static struct vp_check *add_check(struct vp_verify *v, const char *process, const char *subject,
                                  const char *kind)
{
    v->v = vp_xrealloc(v->v, (v->n + 1) * sizeof(*v->v));
    struct vp_check *c = &v->v[v->n++];
    *c = (struct vp_check){.process = vp_xstrdup(process ? process : "-"),
                           .subject = vp_xstrdup(subject), .kind = vp_xstrdup(kind), .ok = true};
    return c;
}

static void fail(struct vp_verify *v, struct vp_check *c, char *msg)
{
    c->ok = false;
    v->ok = false;
    free(c->message);
    c->message = msg;
}

/* Environment for a process of the plan: nothing inherited, the decoy first. */
static void build_env(const struct vp_plan *p, const struct vp_plan_process *pr,
                      const char *decoy, const char *audit, bool mechanism_audit,
                      struct vp_strv *env)
{
    vp_strv_push(env, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    vp_strv_push(env, "LC_ALL=C");
    _cleanup_(freep) char *lp = vp_xstrdup(decoy);
    for (size_t i = 0; pr && i < pr->libpath.n; i++) {
        _cleanup_(freep) char *d = vp_rooted(p->root, pr->libpath.v[i]);
        char *next = vp_xasprintf("%s:%s", lp, d);
        free(lp);
        lp = next;
    }
    vp_strv_push_take(env, vp_xasprintf("LD_LIBRARY_PATH=%s", lp));
    /* The audit mechanism's variables, as the environment file or vgpu-launch sets them;
     * a probe audit module comes after ours. */
    if (mechanism_audit)
        vp_strv_push_take(env, vp_xasprintf("VGPU_SHIM_DIR=%s", p->shims.dir));
    if (mechanism_audit || audit)
        vp_strv_push_take(env, vp_xasprintf("LD_AUDIT=%s%s%s",
                                            mechanism_audit ? p->shims.audit : "",
                                            mechanism_audit && audit ? ":" : "",
                                            audit ? audit : ""));
    if (audit)
        vp_strv_push(env, "VGPU_PROBE_FD=3");
}

static bool is_shim(const struct vp_plan *p, const char *path)
{
    return !strcmp(path, p->shims.cuda) || !strcmp(path, p->shims.nvml);
}

/* The driver soname a loaded file answers to, or NULL. Every loaded object is opened:
 * a driver under another file name answers by its soname all the same. */
static char *driver_soname(const char *path)
{
    _cleanup_(vp_elf_freep) struct vp_elf *e = NULL;
    if (vp_elf_open(path, &e) < 0 || !e->soname)
        return NULL;
    if (strcmp(e->soname, VP_SONAME_CUDA) && strcmp(e->soname, VP_SONAME_NVML))
        return NULL;
    return vp_xstrdup(e->soname);
}

/* Reads a list of loaded files (one path per entry) and records which file answers
 * each driver soname; any second file answering one, or a non-shim answer, fails. */
static void judge(struct vp_verify *v, struct vp_check *c, const struct vp_plan *p,
                  const struct vp_strv *files, const char *decoy, bool want_both)
{
    for (size_t i = 0; i < files->n && c->ok; i++) {
        _cleanup_(freep) char *so = driver_soname(files->v[i]);
        if (!so)
            continue;
        char **slot = !strcmp(so, VP_SONAME_CUDA) ? &c->cuda : &c->nvml;
        if (*slot) {
            fail(v, c, vp_xasprintf("two files answer %s: %s and %s", so, *slot, files->v[i]));
        } else {
            *slot = vp_xstrdup(files->v[i]);
            if (!is_shim(p, files->v[i]))
                fail(v, c,
                     vp_xasprintf("%s is answered by %s, not by the shim%s", so, files->v[i],
                                  vp_startswith(files->v[i], decoy)
                                      ? " (the verification decoy: the route is still open)"
                                      : ""));
        }
    }
    if (c->ok && want_both && (!c->cuda || !c->nvml))
        fail(v, c, vp_xasprintf("the shims are not loaded (libcuda.so.1: %s, libnvidia-ml.so.1: "
                                "%s)",
                                c->cuda ? c->cuda : "nothing", c->nvml ? c->nvml : "nothing"));
}

/* Lines of `ld.so --list`: "name => path (addr)", "path (addr)", "name => not found". */
static void parse_list(const char *out, struct vp_strv *files, struct vp_strv *missing)
{
    struct vp_strv lines = {0};
    vp_strv_split(&lines, out, "\n");
    for (size_t i = 0; i < lines.n; i++) {
        char *l = lines.v[i] + strspn(lines.v[i], " \t");
        char *arrow = strstr(l, " => ");
        char *path = arrow ? arrow + 4 : l;
        if (vp_startswith(path, "not found")) {
            if (arrow)
                vp_strv_push_take(missing, vp_xstrndup(l, (size_t)(arrow - l)));
            continue;
        }
        char *paren = strstr(path, " (0x");
        if (paren && path[0] == '/')
            vp_strv_push_take(files, vp_xstrndup(path, (size_t)(paren - path)));
    }
    vp_strv_release(&lines);
}

/* The probe programs to run, deduplicated: two processes with the same executable or
 * backend under the same environment need one run. */
struct jobset {
    struct vp_spawn_job *jobs;
    struct vp_strv *argv, *env; /* owned by the set, one per job */
    char **key;
    size_t n;
};

static size_t job_add(struct jobset *js, struct vp_strv *argv, struct vp_strv *env, bool report)
{
    _cleanup_(freep) char *key = vp_xstrdup(report ? "R" : "-");
    for (int pass = 0; pass < 2; pass++) {
        const struct vp_strv *sv = pass ? env : argv;
        for (size_t i = 0; i < sv->n; i++) {
            char *next = vp_xasprintf("%s\x1f%s", key, sv->v[i]);
            free(key);
            key = next;
        }
    }
    for (size_t i = 0; i < js->n; i++)
        if (!strcmp(js->key[i], key)) {
            vp_strv_release(argv);
            vp_strv_release(env);
            return i;
        }
    size_t i = js->n++;
    js->jobs = vp_xrealloc(js->jobs, js->n * sizeof(*js->jobs));
    js->argv = vp_xrealloc(js->argv, js->n * sizeof(*js->argv));
    js->env = vp_xrealloc(js->env, js->n * sizeof(*js->env));
    js->key = vp_xrealloc(js->key, js->n * sizeof(*js->key));
    js->argv[i] = *argv;
    js->env[i] = *env;
    js->key[i] = key;
    key = NULL;
    *argv = (struct vp_strv){0};
    *env = (struct vp_strv){0};
    js->jobs[i] = (struct vp_spawn_job){.report = report, .timeout_ms = PROBE_TIMEOUT_MS};
    return i;
}

static void jobs_run(struct jobset *js, size_t from)
{
    for (size_t i = from; i < js->n; i++) {
        js->jobs[i].argv = js->argv[i].v;
        js->jobs[i].envp = js->env[i].v;
    }
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    vp_spawn_all(js->jobs + from, js->n - from, cpus > 1 ? (unsigned)cpus : 1);
}

static void jobs_release(struct jobset *js)
{
    for (size_t i = 0; i < js->n; i++) {
        vp_spawn_result_release(&js->jobs[i].res);
        vp_strv_release(&js->argv[i]);
        vp_strv_release(&js->env[i]);
        free(js->key[i]);
    }
    free(js->jobs);
    free(js->argv);
    free(js->env);
    free(js->key);
}

static size_t list_job(struct jobset *js, const struct vp_plan *p,
                       const struct vp_plan_process *pr, const char *decoy, const char *file,
                       const struct vp_strv *preload, bool mechanism_audit)
{
    struct vp_strv argv = {0}, env = {0};
    vp_strv_push(&argv, LDSO);
    if (preload && preload->n) {
        vp_strv_push(&argv, "--preload");
        _cleanup_(freep) char *list = vp_xstrdup("");
        for (size_t i = 0; i < preload->n; i++) {
            char *next = vp_xasprintf("%s%s%s", list, i ? " " : "", preload->v[i]);
            free(list);
            list = next;
        }
        vp_strv_push(&argv, list);
    }
    vp_strv_push(&argv, "--list");
    vp_strv_push_take(&argv, vp_rooted(p->root, file));
    build_env(p, pr, decoy, NULL, mechanism_audit, &env);
    return job_add(js, &argv, &env, false);
}

static void judge_list(struct vp_verify *v, struct vp_check *c, const struct vp_plan *p,
                       const struct vp_spawn_job *j, const char *decoy, bool want_both)
{
    struct vp_strv files = {0}, missing = {0};
    if (j->rc < 0) {
        fail(v, c, vp_xasprintf("cannot run %s: %s", LDSO, j->error));
        return;
    }
    parse_list(j->res.out, &files, &missing);
    if (strstr(j->res.err, "cannot be loaded as audit interface"))
        fail(v, c, vp_xasprintf("the audit module does not load: %s", j->res.err));
    else if (!vp_spawn_ok(&j->res) && !missing.n)
        fail(v, c, vp_xasprintf("ld.so --list failed: %s", j->res.err));
    for (size_t i = 0; i < missing.n && c->ok; i++)
        if (!strcmp(missing.v[i], VP_SONAME_CUDA) || !strcmp(missing.v[i], VP_SONAME_NVML) ||
            vp_startswith(missing.v[i], "/"))
            fail(v, c, vp_xasprintf("%s is not found", missing.v[i]));
    if (c->ok)
        judge(v, c, p, &files, decoy, want_both);
    vp_strv_release(&files);
    vp_strv_release(&missing);
}

/* Returns the job, or SIZE_MAX when the executable cannot be probed (set-id). */
static size_t exec_job(struct jobset *js, struct vp_check *c, const struct vp_plan *p,
                       const struct vp_plan_process *pr, const char *decoy, const char *audit,
                       bool mechanism_audit)
{
    struct vp_strv argv = {0}, env = {0};
    vp_strv_push_take(&argv, vp_rooted(p->root, pr->exe));
    struct stat st;
    if (stat(argv.v[0], &st) == 0 && (st.st_mode & (S_ISUID | S_ISGID))) {
        /* The kernel starts it in secure mode, where LD_AUDIT is ignored: only the
         * loader list (which runs no set-id program) can speak for it. */
        c->message = vp_xstrdup("set-id executable: the start probe cannot observe it in "
                                "secure mode; the ld.so --list check stands for it");
        vp_strv_release(&argv);
        return SIZE_MAX;
    }
    build_env(p, pr, decoy, audit, mechanism_audit, &env);
    return job_add(js, &argv, &env, true);
}

static void judge_exec(struct vp_verify *v, struct vp_check *c, const struct vp_plan *p,
                       const struct vp_spawn_job *j, const char *decoy, bool want_both)
{
    if (j->rc < 0) {
        fail(v, c, vp_xasprintf("cannot start %s: %s", c->subject, j->error));
        return;
    }
    struct vp_strv lines = {0}, files = {0};
    vp_strv_split(&lines, j->res.report, "\n");
    bool preinit = false;
    for (size_t i = 0; i < lines.n; i++) {
        if (vp_startswith(lines.v[i], "obj "))
            vp_strv_push(&files, lines.v[i] + 4);
        preinit |= vp_startswith(lines.v[i], "preinit");
    }
    if (!preinit)
        fail(v, c, vp_xasprintf("%s did not reach its start under the probe (status %d%s): "
                                "%.300s",
                                c->subject, j->res.status, j->res.timed_out ? ", timed out" : "",
                                j->res.err));
    else
        judge(v, c, p, &files, decoy, want_both);
    vp_strv_release(&lines);
    vp_strv_release(&files);
}

static size_t load_job(struct jobset *js, const struct vp_plan *p,
                       const struct vp_plan_process *pr, const char *decoy, const char *probe,
                       const char *lib, const struct vp_strv *preload, bool mechanism_audit)
{
    struct vp_strv argv = {0}, env = {0};
    vp_strv_push(&argv, probe);
    vp_strv_push(&argv, "load");
    for (size_t i = 0; i < preload->n; i++) {
        vp_strv_push(&argv, "--preload");
        vp_strv_push(&argv, preload->v[i]);
    }
    vp_strv_push_take(&argv, vp_rooted(p->root, lib));
    build_env(p, pr, decoy, NULL, mechanism_audit, &env);
    return job_add(js, &argv, &env, false);
}

static void judge_load(struct vp_verify *v, struct vp_check *c, const struct vp_plan *p,
                       const struct vp_spawn_job *j, const char *decoy, bool want_both)
{
    if (j->rc < 0) {
        fail(v, c, vp_xasprintf("cannot run the load probe: %s", j->error));
        return;
    }
    struct vp_strv lines = {0}, files = {0};
    vp_strv_split(&lines, j->res.out, "\n");
    for (size_t i = 0; i < lines.n; i++)
        if (vp_startswith(lines.v[i], "obj "))
            vp_strv_push(&files, lines.v[i] + 4);
    if (!vp_spawn_ok(&j->res))
        fail(v, c, vp_xasprintf("%s does not load: %s", c->subject,
                                lines.n ? lines.v[lines.n - 1] : j->res.err));
    else
        judge(v, c, p, &files, decoy, want_both);
    /* What dlopen(name, RTLD_NOLOAD) itself answers must be the shims as well. */
    for (size_t i = 0; c->ok && i < lines.n; i++) {
        char so[64], path[4096];
        if (sscanf(lines.v[i], "answer %63s %4095[^\n]", so, path) == 2 && !is_shim(p, path) &&
            (want_both || strcmp(path, "none") != 0))
            fail(v, c, vp_xasprintf("dlopen(\"%s\") in the probe answers %s, not the shim", so,
                                    path));
    }
    vp_strv_release(&lines);
    vp_strv_release(&files);
}

/* Whether a file name asks for a driver library (libcuda.so*, libnvidia-ml.so*), and
 * which: 'c', 'n', or 0. */
static char driver_kind(const char *name)
{
    const char *b = vp_basename(name);
    return vp_startswith(b, "libcuda.so") ? 'c' : vp_startswith(b, "libnvidia-ml.so") ? 'n' : 0;
}

/* Every driver name the routes ask for — the sonames, the unversioned names, and by
 * absolute path (the decoy stands for a driver a glob finds; fixed paths as the era
 * names them) — for the audit probe. */
static void audit_names(const struct vp_plan *p, const char *decoy, struct vp_strv *out)
{
    /* The sonames, the unversioned names, and a driver's own file name (what the A0–C
     * globs find), each also by absolute path. */
    static const char *const bare[] = {VP_SONAME_CUDA,  "libcuda.so",
                                       "libcuda.so.580.65.06", VP_SONAME_NVML,
                                       "libnvidia-ml.so", "libnvidia-ml.so.580.65.06"};
    for (size_t i = 0; i < VP_ARRAY_SIZE(bare); i++) {
        vp_strv_push(out, bare[i]);
        vp_strv_push_take(out, vp_path_join(decoy, bare[i]));
    }
    for (size_t i = 0; i < p->n_routes; i++) {
        const char *t = p->routes[i].target;
        if (driver_kind(t) && !strchr(t, '*') && !vp_strv_contains(out, t))
            vp_strv_push(out, t);
    }
}

static size_t audit_job(struct jobset *js, const struct vp_plan *p,
                        const struct vp_plan_process *pr, const char *decoy, const char *probe)
{
    struct vp_strv argv = {0}, env = {0};
    vp_strv_push(&argv, probe);
    vp_strv_push(&argv, "request");
    audit_names(p, decoy, &argv);
    build_env(p, pr, decoy, NULL, true, &env);
    return job_add(js, &argv, &env, false);
}

/* Each name the probe requested must have been answered by the shim of its driver. */
static void judge_audit(struct vp_verify *v, struct vp_check *c, const struct vp_plan *p,
                        const struct vp_spawn_job *j)
{
    if (j->rc < 0) {
        fail(v, c, vp_xasprintf("cannot run the audit probe: %s", j->error));
        return;
    }
    struct vp_strv lines = {0};
    vp_strv_split(&lines, j->res.out, "\n");
    size_t answers = 0;
    for (size_t i = 0; c->ok && i < lines.n; i++) {
        char name[4096], path[4096];
        if (sscanf(lines.v[i], "answer %4095s %4095[^\n]", name, path) != 2)
            continue;
        answers++;
        bool cuda = driver_kind(name) == 'c';
        const char *want = cuda ? p->shims.cuda : p->shims.nvml;
        char **slot = cuda ? &c->cuda : &c->nvml;
        if (strcmp(path, want) != 0)
            fail(v, c, vp_xasprintf("under the audit module, dlopen(\"%s\") answers %s, not the "
                                    "shim %s",
                                    name, path, want));
        else if (!*slot)
            *slot = vp_xstrdup(path);
    }
    if (c->ok && (!vp_spawn_ok(&j->res) || !answers))
        fail(v, c, vp_xasprintf("the audit probe failed: %.300s", j->res.err));
    if (c->ok && !c->message)
        c->message = vp_xasprintf("%zu driver names requested, every one answered by a shim",
                                  answers);
    vp_strv_release(&lines);
}

static void check_files(struct vp_verify *v, const struct vp_plan *p)
{
    for (size_t i = 0; i < p->n_files; i++) {
        const struct vp_plan_file *f = &p->files[i];
        _cleanup_(freep) char *ondisk = vp_rooted(p->root, f->path);
        const char *proc = f->processes.n ? f->processes.v[0] : NULL;
        if (f->role == VP_ROLE_LINK) {
            struct vp_check *c = add_check(v, proc, f->path, "link");
            char cur[PATH_MAX];
            ssize_t n = readlink(ondisk, cur, sizeof(cur) - 1);
            cur[n > 0 ? n : 0] = '\0';
            if (n < 0 || strcmp(cur, f->link_target))
                fail(v, c, vp_xasprintf("%s should point at %s, points at %s", f->path,
                                        f->link_target, n < 0 ? "nothing" : cur));
            else
                c->cuda = vp_xstrdup(f->link_target);
            continue;
        }
        if (f->choice.method == VP_WRITE_IMPOSSIBLE)
            continue;
        struct vp_check *c = add_check(v, proc, f->path, "elf");
        _cleanup_(vp_elf_freep) struct vp_elf *e = NULL;
        if (vp_elf_open(ondisk, &e) < 0) {
            fail(v, c, vp_xstrdup(vp_last_error()));
            continue;
        }
        bool pending[f->n_edits ? f->n_edits : 1];
        if (vp_edits_pending(e, f->edits, f->n_edits, pending)) {
            for (size_t k = 0; k < f->n_edits; k++)
                if (pending[k]) {
                    _cleanup_(freep) char *d = vp_edit_describe(&f->edits[k]);
                    fail(v, c, vp_xasprintf("%s lacks the edit: %s", f->path, d));
                    break;
                }
        }
    }
}

/* The shim paths an executable loads as DT_NEEDED entries (to preload for its libs). */
static void shim_needed(const struct vp_plan *p, const char *exe, struct vp_strv *out)
{
    _cleanup_(freep) char *ondisk = vp_rooted(p->root, exe);
    _cleanup_(vp_elf_freep) struct vp_elf *e = NULL;
    if (vp_elf_open(ondisk, &e) < 0)
        return;
    for (size_t i = 0; i < e->n_needed; i++)
        if (is_shim(p, e->needed[i].name))
            vp_strv_push(out, e->needed[i].name);
}

/* Whether everything a probe may run code from is as trusted as the shims: each
 * executable and backend, and every entry of the directories their dependencies are
 * found in. Returns NULL, or the first path that is not (in the trust message). */
static char *untrusted_code(const struct vp_plan *p)
{
    struct vp_strv paths = {0};
    for (size_t i = 0; i < p->n_procs; i++) {
        const struct vp_plan_process *pr = &p->procs[i];
        vp_strv_push_take(&paths, vp_rooted(p->root, pr->exe));
        for (size_t k = 0; k < pr->backends.n; k++)
            vp_strv_push_take(&paths, vp_rooted(p->root, pr->backends.v[k]));
        for (size_t k = 0; k < pr->libpath.n; k++) {
            _cleanup_(freep) char *pat = vp_path_join(pr->libpath.v[k], "*");
            struct vp_strv entries = {0};
            vp_root_glob(p->root, pat, &entries);
            for (size_t e = 0; e < entries.n; e++)
                vp_strv_push_take(&paths, vp_rooted(p->root, entries.v[e]));
            vp_strv_release(&entries);
        }
    }
    char *why = NULL;
    for (size_t i = 0; i < paths.n && !why; i++) {
        struct stat st;
        if (lstat(paths.v[i], &st) < 0)
            continue;
        if (vp_trust_check(paths.v[i]) < 0)
            why = vp_xstrdup(vp_last_error());
    }
    vp_strv_release(&paths);
    return why;
}

/* A check waiting for its probe: the check index and the job that answers it. */
struct pending {
    size_t check, job;
    enum { P_LIST, P_LIST_PRELOAD, P_EXEC, P_LOAD, P_AUDIT } kind;
    size_t proc, backend;
};

int vp_verify_plan(const struct vp_plan *p, const struct vp_verify_opts *o, struct vp_verify *ret)
{
    struct vp_verify v = {.ok = true};
    _cleanup_(freep) char *decoy = vp_path_join(o->libexec, "decoy");
    _cleanup_(freep) char *audit = vp_path_join(o->libexec, "libvgpu-probe-audit.so");
    _cleanup_(freep) char *probe = vp_path_join(o->libexec, "vgpu-probe");
    if (access(decoy, R_OK) < 0 || access(probe, X_OK) < 0 || access(audit, R_OK) < 0) {
        *ret = v;
        return vp_error(-ENOENT, "the verification helpers are missing from %s", o->libexec);
    }
    check_files(&v, p);

    /* Round 1: the loader lists, which run no code of the files. */
    struct jobset js = {0};
    struct pending *pend = NULL;
    size_t np = 0;
    struct vp_strv *pre = vp_xcalloc(p->n_procs + 1, sizeof(*pre));
    for (size_t i = 0; i < p->n_procs; i++) {
        const struct vp_plan_process *pr = &p->procs[i];
        shim_needed(p, pr->exe, &pre[i]);
        pend = vp_xrealloc(pend, (np + 1 + pr->backends.n) * sizeof(*pend));
        add_check(&v, pr->role, pr->exe, "ld.so-list");
        pend[np++] = (struct pending){
            v.n - 1, list_job(&js, p, pr, decoy, pr->exe, NULL, o->audit), P_LIST, i, 0};
        for (size_t k = 0; k < pr->backends.n; k++) {
            add_check(&v, pr->role, pr->backends.v[k], "ld.so-list");
            pend[np++] = (struct pending){
                v.n - 1, list_job(&js, p, pr, decoy, pr->backends.v[k], &pre[i], o->audit),
                P_LIST_PRELOAD, i, k};
        }
    }
    jobs_run(&js, 0);
    /* Under the audit mechanism an executable that does not carry the shims loads
     * them only when it asks for a driver: the audit probe below shows that it would. */
    for (size_t i = 0; i < np; i++)
        judge_list(&v, &v.v[pend[i].check], p, &js.jobs[pend[i].job], decoy,
                   pend[i].kind == P_LIST && (!o->audit || pre[pend[i].proc].n));

    /* Round 2: probes that run code (constructors) — only where the list showed that no
     * route reaches a driver other than the shims. */
    /* Code from a tree another user can change never runs as root here. */
    _cleanup_(freep) char *why = geteuid() == 0 ? untrusted_code(p) : NULL;
    size_t first = js.n, nlists = np;
    for (size_t i = 0; o->live && i < nlists; i++) {
        if (!v.v[pend[i].check].ok)
            continue;
        const struct vp_plan_process *pr = &p->procs[pend[i].proc];
        pend = vp_xrealloc(pend, (np + 1) * sizeof(*pend));
        if (pend[i].kind == P_LIST) {
            struct vp_check *c = add_check(&v, pr->role, pr->exe, "exec-probe");
            size_t job = exec_job(&js, c, p, pr, decoy, audit, o->audit);
            if (job != SIZE_MAX)
                pend[np++] = (struct pending){v.n - 1, job, P_EXEC, pend[i].proc, 0};
        } else {
            const char *lib = pr->backends.v[pend[i].backend];
            add_check(&v, pr->role, lib, "load-probe");
            pend[np++] = (struct pending){
                v.n - 1,
                load_job(&js, p, pr, decoy, probe, lib, &pre[pend[i].proc], o->audit), P_LOAD,
                pend[i].proc, 0};
        }
    }
    /* The audit mechanism: the names every route asks for, in each process's environment
     * and once more for the processes that are not on disk (extracted at run time). */
    for (size_t i = 0; o->live && o->audit && i <= p->n_procs; i++) {
        const struct vp_plan_process *pr = i < p->n_procs ? &p->procs[i] : NULL;
        pend = vp_xrealloc(pend, (np + 1) * sizeof(*pend));
        add_check(&v, pr ? pr->role : "extracted", pr ? pr->exe : "(any process)",
                  "audit-probe");
        pend[np++] = (struct pending){v.n - 1, audit_job(&js, p, pr, decoy, probe), P_AUDIT,
                                      i, 0};
    }
    for (size_t i = first; why && i < js.n; i++)
        js.jobs[i] = (struct vp_spawn_job){.report = js.jobs[i].report,
                                           .timeout_ms = js.jobs[i].timeout_ms, .drop = true,
                                           .uid = 65534, .gid = 65534};
    jobs_run(&js, first);
    for (size_t i = nlists; i < np; i++) {
        struct vp_check *c = &v.v[pend[i].check];
        if (why && !c->message)
            c->message = vp_xasprintf("ran as nobody: %s", why);
        if (pend[i].kind == P_EXEC)
            judge_exec(&v, c, p, &js.jobs[pend[i].job], decoy,
                       !o->audit || pre[pend[i].proc].n);
        else if (pend[i].kind == P_AUDIT)
            judge_audit(&v, c, p, &js.jobs[pend[i].job]);
        else
            judge_load(&v, c, p, &js.jobs[pend[i].job], decoy,
                       !o->audit || pre[pend[i].proc].n);
    }
    for (size_t i = 0; i < p->n_procs; i++)
        vp_strv_release(&pre[i]);
    free(pre);
    free(pend);
    jobs_release(&js);
    *ret = v;
    return 0;
}

void vp_verify_release(struct vp_verify *v)
{
    for (size_t i = 0; i < v->n; i++) {
        free(v->v[i].process);
        free(v->v[i].subject);
        free(v->v[i].kind);
        free(v->v[i].cuda);
        free(v->v[i].nvml);
        free(v->v[i].message);
    }
    free(v->v);
    *v = (struct vp_verify){0};
}

/* Runs `vgpu-probe check-shim PATH SYMBOL...` for each of n argument lists at once. */
static int check_loads(const char *probe, char *const *argvs[], size_t n, const char *what)
{
    char *const env[] = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C", NULL};
    struct vp_spawn_job jobs[3];
    for (size_t i = 0; i < n; i++)
        jobs[i] = (struct vp_spawn_job){.argv = argvs[i], .envp = env,
                                        .timeout_ms = PROBE_TIMEOUT_MS};
    vp_spawn_all(jobs, n, (unsigned)n);
    int r = 0;
    for (size_t i = 0; i < n; i++) {
        struct vp_spawn_job *j = &jobs[i];
        if (r == 0 && j->rc < 0) {
            r = vp_error(j->rc, "cannot run %s: %s", probe, j->error);
        } else if (r == 0 && !vp_spawn_ok(&j->res)) {
            char *msg = vp_startswith(j->res.out, "error ") ? j->res.out + 6 : j->res.err;
            msg[strcspn(msg, "\n")] = '\0';
            r = vp_error(-ENOEXEC, "the %s %s does not load on this system: %s", what,
                         j->argv[2], msg);
        }
        if (j->rc == 0)
            vp_spawn_result_release(&j->res);
    }
    return r;
}

int vp_verify_shims_load(const char *libexec, const struct vp_shims *shims)
{
    _cleanup_(freep) char *probe = vp_path_join(libexec, "vgpu-probe");
    char *const cuda[] = {probe, "check-shim", shims->cuda, VP_SHIM_MARKER, "cuInit", NULL};
    char *const nvml[] = {probe, "check-shim", shims->nvml, VP_SHIM_MARKER, "nvmlInit_v2", NULL};
    char *const *argvs[] = {cuda, nvml};
    return check_loads(probe, argvs, 2, "shim");
}

int vp_verify_audit_loads(const char *libexec, const struct vp_shims *shims)
{
    _cleanup_(freep) char *probe = vp_path_join(libexec, "vgpu-probe");
    char *const audit[] = {probe, "check-shim", shims->audit, "la_version", "la_objsearch", NULL};
    char *const *argvs[] = {audit};
    return check_loads(probe, argvs, 1, "audit module");
}
