/* verify: static, loader-list and live checks of a patched install. */
#include "verify.h"
#include "spawn.h"

#include <errno.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>

#define PROBE_TIMEOUT_MS 20000
#define LDSO "/lib64/ld-linux-x86-64.so.2"

char *vp_verify_default_libexec(void)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n < 0)
        return NULL;
    self[n] = '\0';
    _cleanup_(freep) char *bindir = vp_dirname(self);
    _cleanup_(freep) char *rel = vp_path_join(bindir, "../libexec/vgpu-patch");
    return vp_path_normalize(rel);
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
                      const char *decoy, const char *audit, struct vp_strv *env)
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
    if (audit) {
        vp_strv_push_take(env, vp_xasprintf("LD_AUDIT=%s", audit));
        vp_strv_push(env, "VGPU_PROBE_FD=3");
    }
}

static bool is_shim(const struct vp_plan *p, const char *path)
{
    return !strcmp(path, p->shims.cuda) || !strcmp(path, p->shims.nvml);
}

/* The driver soname a loaded file answers to, or NULL (only files named like a driver
 * or a shim, or in the decoy dir, are opened). */
static char *driver_soname(const char *path, const char *decoy)
{
    const char *base = vp_basename(path);
    if (!vp_startswith(base, "libcuda") && !vp_startswith(base, "libnvidia-ml") &&
        !vp_startswith(base, "libvgpu") && !vp_startswith(path, decoy))
        return NULL;
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
        _cleanup_(freep) char *so = driver_soname(files->v[i], decoy);
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

static void run_list(struct vp_verify *v, struct vp_check *c, const struct vp_plan *p,
                     const struct vp_plan_process *pr, const char *decoy, const char *file,
                     const struct vp_strv *preload)
{
    struct vp_strv argv = {0}, env = {0}, files = {0}, missing = {0};
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
    build_env(p, pr, decoy, NULL, &env);
    struct vp_spawn_result res;
    if (vp_spawn(argv.v, env.v, false, PROBE_TIMEOUT_MS, &res) < 0) {
        fail(v, c, vp_xasprintf("cannot run %s: %s", LDSO, vp_last_error()));
    } else {
        parse_list(res.out, &files, &missing);
        if (!vp_spawn_ok(&res) && !missing.n)
            fail(v, c, vp_xasprintf("ld.so --list failed: %s", res.err));
        for (size_t i = 0; i < missing.n && c->ok; i++)
            if (!strcmp(missing.v[i], VP_SONAME_CUDA) || !strcmp(missing.v[i], VP_SONAME_NVML) ||
                vp_startswith(missing.v[i], "/"))
                fail(v, c, vp_xasprintf("%s is not found", missing.v[i]));
        if (c->ok)
            judge(v, c, p, &files, decoy, !preload);
        vp_spawn_result_release(&res);
    }
    vp_strv_release(&argv);
    vp_strv_release(&env);
    vp_strv_release(&files);
    vp_strv_release(&missing);
}

static void exec_probe(struct vp_verify *v, const struct vp_plan *p,
                       const struct vp_plan_process *pr, const char *decoy, const char *audit)
{
    struct vp_check *c = add_check(v, pr->role, pr->exe, "exec-probe");
    struct vp_strv argv = {0}, env = {0}, files = {0};
    vp_strv_push_take(&argv, vp_rooted(p->root, pr->exe));
    struct stat st;
    if (stat(argv.v[0], &st) == 0 && (st.st_mode & (S_ISUID | S_ISGID))) {
        /* The kernel starts it in secure mode, where LD_AUDIT is ignored: only the
         * loader list (which runs no set-id program) can speak for it. */
        c->message = vp_xstrdup("set-id executable: the start probe cannot observe it in "
                                "secure mode; the ld.so --list check stands for it");
        vp_strv_release(&argv);
        return;
    }
    build_env(p, pr, decoy, audit, &env);
    struct vp_spawn_result res;
    if (vp_spawn(argv.v, env.v, true, PROBE_TIMEOUT_MS, &res) < 0) {
        fail(v, c, vp_xasprintf("cannot start %s: %s", argv.v[0], vp_last_error()));
    } else {
        struct vp_strv lines = {0};
        vp_strv_split(&lines, res.report, "\n");
        bool preinit = false;
        for (size_t i = 0; i < lines.n; i++) {
            if (vp_startswith(lines.v[i], "obj "))
                vp_strv_push(&files, lines.v[i] + 4);
            preinit |= vp_startswith(lines.v[i], "preinit");
        }
        vp_strv_release(&lines);
        if (!preinit)
            fail(v, c, vp_xasprintf("%s did not reach its start under the probe (status %d%s): "
                                    "%.300s",
                                    pr->exe, res.status, res.timed_out ? ", timed out" : "",
                                    res.err));
        else
            judge(v, c, p, &files, decoy, true);
        vp_spawn_result_release(&res);
    }
    vp_strv_release(&argv);
    vp_strv_release(&env);
    vp_strv_release(&files);
}

static void load_probe(struct vp_verify *v, const struct vp_plan *p,
                       const struct vp_plan_process *pr, const char *decoy, const char *probe,
                       const char *lib, const struct vp_strv *preload)
{
    struct vp_check *c = add_check(v, pr->role, lib, "load-probe");
    struct vp_strv argv = {0}, env = {0}, files = {0};
    vp_strv_push(&argv, probe);
    vp_strv_push(&argv, "load");
    for (size_t i = 0; i < preload->n; i++) {
        vp_strv_push(&argv, "--preload");
        vp_strv_push(&argv, preload->v[i]);
    }
    vp_strv_push_take(&argv, vp_rooted(p->root, lib));
    build_env(p, pr, decoy, NULL, &env);
    struct vp_spawn_result res;
    if (vp_spawn(argv.v, env.v, false, PROBE_TIMEOUT_MS, &res) < 0) {
        fail(v, c, vp_xasprintf("cannot run %s: %s", probe, vp_last_error()));
    } else {
        struct vp_strv lines = {0};
        vp_strv_split(&lines, res.out, "\n");
        for (size_t i = 0; i < lines.n; i++)
            if (vp_startswith(lines.v[i], "obj "))
                vp_strv_push(&files, lines.v[i] + 4);
        if (!vp_spawn_ok(&res))
            fail(v, c, vp_xasprintf("%s does not load: %s", lib,
                                    lines.n ? lines.v[lines.n - 1] : res.err));
        else
            judge(v, c, p, &files, decoy, true);
        vp_strv_release(&lines);
        vp_spawn_result_release(&res);
    }
    vp_strv_release(&argv);
    vp_strv_release(&env);
    vp_strv_release(&files);
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
    for (size_t i = 0; i < p->n_procs; i++) {
        const struct vp_plan_process *pr = &p->procs[i];
        struct vp_check *c = add_check(&v, pr->role, pr->exe, "ld.so-list");
        run_list(&v, c, p, pr, decoy, pr->exe, NULL);
        if (o->live && c->ok)
            exec_probe(&v, p, pr, decoy, audit);
        struct vp_strv pre = {0};
        shim_needed(p, pr->exe, &pre);
        for (size_t k = 0; k < pr->backends.n; k++) {
            struct vp_check *b = add_check(&v, pr->role, pr->backends.v[k], "ld.so-list");
            run_list(&v, b, p, pr, decoy, pr->backends.v[k], &pre);
            /* Constructors run in the load probe: only once the list shows that no
             * route reaches a driver other than the shims. */
            if (o->live && b->ok)
                load_probe(&v, p, pr, decoy, probe, pr->backends.v[k], &pre);
        }
        vp_strv_release(&pre);
    }
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

int vp_verify_shim_loads(const char *libexec, const char *shim, const char *const *symbols)
{
    _cleanup_(freep) char *probe = vp_path_join(libexec, "vgpu-probe");
    struct vp_strv argv = {0};
    vp_strv_push(&argv, probe);
    vp_strv_push(&argv, "check-shim");
    vp_strv_push(&argv, shim);
    for (size_t i = 0; symbols[i]; i++)
        vp_strv_push(&argv, symbols[i]);
    char *env[] = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C", NULL};
    struct vp_spawn_result res;
    int r = vp_spawn(argv.v, env, false, PROBE_TIMEOUT_MS, &res);
    vp_strv_release(&argv);
    if (r < 0)
        return vp_error(r, "cannot run %s: %s", probe, vp_last_error());
    if (!vp_spawn_ok(&res)) {
        char *msg = vp_startswith(res.out, "error ") ? res.out + 6 : res.err;
        msg[strcspn(msg, "\n")] = '\0';
        r = vp_error(-ENOEXEC, "the shim %s does not load on this system: %s", shim, msg);
    }
    vp_spawn_result_release(&res);
    return r;
}
