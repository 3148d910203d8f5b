/* plan: edits per file, derived from the era table's routes and ELF facts. */
#include "plan.h"
#include "predict.h"

#include <errno.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>

const char *vp_file_role_name(enum vp_file_role r)
{
    static const char *const names[] = {"executable", "library", "link"};
    return names[r];
}

char *vp_edit_describe(const struct vp_edit *e)
{
    if (e->kind == VP_EDIT_ADD_NEEDED)
        return vp_xasprintf("add DT_NEEDED %s", e->new_name);
    return vp_xasprintf("replace DT_NEEDED %s with %s", e->old_name, e->new_name);
}

static struct vp_plan_file *find_file(struct vp_plan *p, const char *path)
{
    for (size_t i = 0; i < p->n_files; i++)
        if (strcmp(p->files[i].path, path) == 0)
            return &p->files[i];
    return NULL;
}

static struct vp_plan_file *add_file(struct vp_plan *p, const char *path, enum vp_file_role r)
{
    p->files = vp_xrealloc(p->files, (p->n_files + 1) * sizeof(*p->files));
    struct vp_plan_file *f = &p->files[p->n_files++];
    *f = (struct vp_plan_file){.path = vp_xstrdup(path), .role = r};
    return f;
}

static void add_route(struct vp_plan *p, const char *process, enum vp_route_kind kind,
                      const char *target, bool covered, char *how)
{
    p->routes = vp_xrealloc(p->routes, (p->n_routes + 1) * sizeof(*p->routes));
    p->routes[p->n_routes++] = (struct vp_plan_route){
        .process = vp_xstrdup(process),
        .kind = kind,
        .target = vp_xstrdup(target),
        .covered = covered,
        .how = how,
        .mechanism = vp_xstrdup(covered ? "patch" : "audit"),
    };
    if (!covered)
        p->all_covered = false;
}

static void push_edit(struct vp_plan_file *f, enum vp_edit_kind k, const char *old,
                      const char *new)
{
    f->edits = vp_xrealloc(f->edits, (f->n_edits + 1) * sizeof(*f->edits));
    f->edits[f->n_edits++] = (struct vp_edit){k, old ? vp_xstrdup(old) : NULL, vp_xstrdup(new)};
}

/* A DT_NEEDED spelling that the shim must take over in this object: the soname itself
 * (only in executables: it would be searched before the shim is known), the
 * unversioned name, or a shim from another shim dir. */
static bool takes_over(const char *needed, const char *soname, const char *shim, bool exe)
{
    if (strcmp(needed, shim) == 0)
        return false;
    if (exe && strcmp(needed, soname) == 0)
        return true;
    size_t base = strlen(soname) - 2; /* "libcuda.so" of "libcuda.so.1" */
    if (strlen(needed) == base && strncmp(needed, soname, base) == 0)
        return true;
    return needed[0] == '/' && strcmp(vp_basename(needed), vp_basename(shim)) == 0;
}

static void plan_shim_edits(struct vp_plan_file *f, const struct vp_elf *e, const char *soname,
                            const char *shim, bool exe)
{
    bool replaced = false;
    for (size_t i = 0; i < e->n_needed; i++)
        if (takes_over(e->needed[i].name, soname, shim, exe)) {
            push_edit(f, VP_EDIT_REPLACE_NEEDED, e->needed[i].name, shim);
            replaced = true;
        }
    if (exe && !replaced)
        push_edit(f, VP_EDIT_ADD_NEEDED, NULL, shim);
}

static int open_in_root(const char *root, const char *path, struct vp_elf **ret)
{
    _cleanup_(freep) char *ondisk = vp_rooted(root, path);
    return vp_elf_open(ondisk, ret);
}

static void finish_file(struct vp_plan_file *f, const struct vp_elf *e, const char *patchelf)
{
    vp_elfwrite_choose(e, f->edits, f->n_edits, patchelf, &f->choice);
    f->done = f->choice.method == VP_WRITE_NONE;
    f->size = e->size;
    struct stat st;
    if (fstat(e->fd, &st) == 0) {
        f->dev = st.st_dev;
        f->ino = st.st_ino;
        f->mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
    }
}

/* Plans the executable of one process. Returns 1 when it can carry the shims, 0 when
 * it cannot (the reason is in a route), or a negative errno. */
/* A path Ollama uses may be a symbolic link: the file to patch is its target (the link
 * stays, and keeps leading to the patched file). */
static char *real_file(struct vp_plan *p, const char *root, const char *path, bool note)
{
    char *real = NULL;
    struct stat st;
    if (vp_root_realpath(root, path, &real) < 0)
        return vp_xstrdup(path);
    _cleanup_(freep) char *ondisk = vp_rooted(root, real);
    if (lstat(ondisk, &st) < 0) { /* a link that leaves the root: open it as named */
        free(real);
        return vp_xstrdup(path);
    }
    if (note && strcmp(real, path) != 0)
        vp_strv_push_take(&p->notes, vp_xasprintf("%s is a link to %s: the target is patched "
                                                  "and the link left as it is",
                                                  path, real));
    return real;
}

static int plan_exe(struct vp_plan *p, const char *root, const char *exe_path, const char *role,
                    const char *patchelf)
{
    _cleanup_(freep) char *exe = real_file(p, root, exe_path, true);
    struct vp_plan_file *f = find_file(p, exe);
    if (f) {
        if (!vp_strv_contains(&f->processes, role))
            vp_strv_push(&f->processes, role);
        return f->choice.method != VP_WRITE_IMPOSSIBLE;
    }
    _cleanup_(vp_elf_freep) struct vp_elf *e = NULL;
    int r = open_in_root(root, exe, &e);
    if (r < 0)
        return r;
    f = add_file(p, exe, VP_ROLE_EXECUTABLE);
    vp_strv_push(&f->processes, role);
    if (!vp_elf_is_executable(e)) {
        f->choice.method = VP_WRITE_IMPOSSIBLE;
        snprintf(f->choice.reason, sizeof(f->choice.reason),
                 "%s: the dynamic loader never runs for it, and it cannot dlopen a driver",
                 vp_elf_kind_name(e->kind));
        return 0;
    }
    plan_shim_edits(f, e, VP_SONAME_CUDA, p->shims.cuda, true);
    plan_shim_edits(f, e, VP_SONAME_NVML, p->shims.nvml, true);
    finish_file(f, e, patchelf);
    return f->choice.method != VP_WRITE_IMPOSSIBLE;
}

/* Libraries a process loads: rewritten only when their DT_NEEDED names the driver in a
 * spelling the soname rule does not answer. */
static int plan_library(struct vp_plan *p, const char *root, const char *lib_path,
                        const char *role, const char *patchelf)
{
    _cleanup_(freep) char *lib = real_file(p, root, lib_path, true);
    struct vp_plan_file *f = find_file(p, lib);
    if (f) {
        if (!vp_strv_contains(&f->processes, role))
            vp_strv_push(&f->processes, role);
        return 0;
    }
    _cleanup_(vp_elf_freep) struct vp_elf *e = NULL;
    int r = open_in_root(root, lib, &e);
    if (r < 0)
        return r;
    struct vp_plan_file tmp = {0};
    plan_shim_edits(&tmp, e, VP_SONAME_CUDA, p->shims.cuda, false);
    plan_shim_edits(&tmp, e, VP_SONAME_NVML, p->shims.nvml, false);
    if (!tmp.n_edits)
        return 0;
    f = add_file(p, lib, VP_ROLE_LIBRARY);
    vp_strv_push(&f->processes, role);
    f->edits = tmp.edits;
    f->n_edits = tmp.n_edits;
    finish_file(f, e, patchelf);
    if (f->choice.method == VP_WRITE_IMPOSSIBLE)
        add_route(p, role, VP_ROUTE_NEEDED, lib, false,
                  vp_xasprintf("%s names the driver in a spelling the shim's soname does not "
                               "answer and cannot be rewritten: %s",
                               lib, f->choice.reason));
    return 0;
}

static void expand(const char *root, const char *prefix, const char *pattern, const char *exe,
                   struct vp_strv *out)
{
    if (strcmp(pattern, "$EXEDIR") == 0) {
        vp_strv_push_take(out, vp_dirname(exe));
        return;
    }
    _cleanup_(freep) char *pat = vp_path_join(prefix, pattern);
    if (!strchr(pat, '*')) {
        vp_strv_push(out, pat);
        return;
    }
    vp_root_glob(root, pat, out);
}

/* Whether an executable reaches the driver at all: a direct DT_NEEDED, or one level
 * through a library beside it (era B runners; CPU variants do not). */
static bool reaches_driver(const char *root, const struct vp_elf *e, const char *dir)
{
    for (size_t i = 0; i < e->n_needed; i++) {
        const char *n = e->needed[i].name;
        if (vp_startswith(vp_basename(n), "libcuda.so") ||
            vp_startswith(vp_basename(n), "libvgpu-cuda"))
            return true;
        _cleanup_(freep) char *lib = vp_path_join(dir, n);
        _cleanup_(vp_elf_freep) struct vp_elf *l = NULL;
        if (n[0] != '/' && open_in_root(root, lib, &l) == 0)
            for (size_t k = 0; k < l->n_needed; k++)
                if (vp_startswith(l->needed[k].name, "libcuda.so"))
                    return true;
    }
    return false;
}

static bool path_exists(const char *root, const char *path)
{
    _cleanup_(freep) char *p = vp_rooted(root, path);
    struct stat st;
    return lstat(p, &st) == 0;
}

/* The in-tree link that answers the glob; false when a file that is not a link is in
 * its place (it is never replaced: the glob would keep finding it). */
static bool plan_link(struct vp_plan *p, const char *root, const char *role)
{
    _cleanup_(freep) char *link = vp_path_join(p->prefix, "lib/ollama/" VP_SONAME_CUDA);
    struct vp_plan_file *f = find_file(p, link);
    _cleanup_(freep) char *ondisk = vp_rooted(root, link);
    struct stat st;
    if (!f && lstat(ondisk, &st) == 0 && !S_ISLNK(st.st_mode))
        return false;
    if (!f) {
        f = add_file(p, link, VP_ROLE_LINK);
        f->link_target = vp_xstrdup(p->shims.cuda);
        char cur[PATH_MAX];
        ssize_t n = readlink(ondisk, cur, sizeof(cur) - 1);
        if (n >= 0) {
            cur[n] = '\0';
            f->done = strcmp(cur, f->link_target) == 0;
        }
    }
    if (!vp_strv_contains(&f->processes, role))
        vp_strv_push(&f->processes, role);
    return true;
}

static void plan_routes(struct vp_plan *p, const char *root, const struct vp_era_spec *era,
                        const struct vp_proc_spec *ps, const char *exe, const char *why_not,
                        bool has_lib_ollama)
{
    bool exe_ok = !why_not;
    for (size_t i = 0; i < VP_MAX_ROUTES && ps->routes[i].target; i++) {
        const struct vp_route_spec *rs = &ps->routes[i];
        const char *shim = rs->nvml ? p->shims.nvml : p->shims.cuda;
        switch (rs->kind) {
        case VP_ROUTE_NEEDED:
        case VP_ROUTE_DLOPEN_BARE:
            if (exe_ok)
                add_route(p, ps->role, rs->kind, rs->target, true,
                          vp_xasprintf("%s loads %s first; a later lookup of %s matches it by "
                                       "soname without any search (%s)",
                                       exe, shim, rs->target, rs->note));
            else
                add_route(p, ps->role, rs->kind, rs->target, false,
                          vp_xasprintf("%s cannot carry the shims (%s)", exe, why_not));
            break;
        case VP_ROUTE_DLOPEN_ABS:
            if (!path_exists(root, rs->target))
                add_route(p, ps->role, rs->kind, rs->target, true,
                          vp_xasprintf("%s does not exist here, so the dlopen fails and %s "
                                       "falls back to the bare name (%s)",
                                       rs->target, ps->role, rs->note));
            else
                add_route(p, ps->role, rs->kind, rs->target, false,
                          vp_xasprintf("%s exists and is opened by absolute path before the "
                                       "bare name: only LD_AUDIT redirects that (%s)",
                                       rs->target, rs->note));
            break;
        case VP_ROUTE_GLOB:
            if (!rs->nvml && era->glob_lib_ollama_first && has_lib_ollama && exe_ok &&
                plan_link(p, root, ps->role)) {
                add_route(p, ps->role, rs->kind, rs->target, true,
                          vp_xasprintf("the glob looks in lib/ollama first: the link "
                                       "lib/ollama/%s -> %s answers it, and the resolved path "
                                       "is the shim %s already loaded",
                                       VP_SONAME_CUDA, shim, exe));
            } else {
                add_route(p, ps->role, rs->kind, rs->target, false,
                          vp_xasprintf("%s: the glob reaches a file vgpu-patch may not replace "
                                       "(a system directory, or a lib/ollama/%s that is not a "
                                       "link) and dlopen()s it by absolute path; only LD_AUDIT "
                                       "redirects that",
                                       rs->note, VP_SONAME_CUDA));
            }
            break;
        case VP_ROUTE_EXTRACTED:
            add_route(p, ps->role, rs->kind, rs->target, false,
                      vp_xasprintf("%s is %s: nothing on disk to patch; LD_AUDIT covers it",
                                   rs->target, rs->note));
            break;
        }
    }
}

/* The loader model's view of the process today and with the shims loaded as the patch
 * loads them; the second must name the shims, or the route is not covered. */
static void predict(struct vp_plan *p, const char *root, struct vp_plan_process *pr,
                    bool exe_ok)
{
    const char *const shims[] = {p->shims.cuda, p->shims.nvml, NULL};
    vp_predict_process(root, pr, p->shims.dir, NULL, &pr->today);
    if (!exe_ok)
        return;
    vp_predict_process(root, pr, p->shims.dir, shims, &pr->after);
    for (int k = 0; k < VP_PREDICT_N; k++)
        if (!pr->after.file[k] || strcmp(pr->after.file[k], shims[k]) != 0)
            add_route(p, pr->role, VP_ROUTE_NEEDED, k ? VP_SONAME_NVML : VP_SONAME_CUDA, false,
                      vp_xasprintf("the loader model predicts %s even with the shims loaded "
                                   "first: %s",
                                   pr->after.file[k] ? pr->after.file[k] : "nothing",
                                   pr->after.how[k]));
}

static int plan_proc(struct vp_plan *p, const char *root, const struct vp_era_spec *era,
                     const struct vp_proc_spec *ps, const struct vp_install *in,
                     const char *patchelf)
{
    if (ps->extracted) {
        plan_routes(p, root, era, ps, ps->exe, "it is extracted at run time", in->has_lib_ollama);
        return 0;
    }
    struct vp_strv exes = {0};
    if (strcmp(ps->exe, "bin/ollama") == 0)
        vp_strv_push(&exes, in->binary); /* the binary discovery identified, by any name */
    else
        expand(root, in->prefix, ps->exe, NULL, &exes);
    int r = 0;
    for (size_t x = 0; x < exes.n && r >= 0; x++) {
        const char *exe = exes.v[x];
        if (!path_exists(root, exe)) {
            vp_strv_push_take(&p->notes, vp_xasprintf("era %s runs %s, which is not installed "
                                                      "here: nothing to patch for %s",
                                                      era->name, exe, ps->role));
            continue;
        }
        _cleanup_(vp_elf_freep) struct vp_elf *e = NULL;
        if ((r = open_in_root(root, exe, &e)) < 0)
            break;
        if (!vp_elf_is_executable(e)) {
            /* No dynamic loader runs for it: it cannot load a driver by any route. */
            vp_strv_push_take(&p->notes,
                              vp_xasprintf("%s is a %s: it cannot load libcuda or NVML at all, "
                                           "so the %s process has no GPU route to redirect "
                                           "(a cgo build is needed for GPU support)",
                                           exe, vp_elf_kind_name(e->kind), ps->role));
            continue;
        }
        _cleanup_(freep) char *dir = vp_dirname(exe);
        /* Runner variants (era B) that never reach the driver are left alone; a process
         * that dlopen()s GPU backends always can. */
        if (!ps->backends && strcmp(ps->exe, "bin/ollama") != 0 &&
            !reaches_driver(root, e, dir)) {
            vp_strv_push_take(&p->notes, vp_xasprintf("%s does not reach libcuda (a CPU "
                                                      "variant): left alone",
                                                      exe));
            continue;
        }
        int ok = plan_exe(p, root, exe, ps->role, patchelf);
        if ((r = ok) < 0)
            break;
        /* The process as the verifier will reproduce it. */
        p->procs = vp_xrealloc(p->procs, (p->n_procs + 1) * sizeof(*p->procs));
        struct vp_plan_process *pr = &p->procs[p->n_procs++];
        *pr = (struct vp_plan_process){.role = vp_xstrdup(ps->role), .exe = vp_xstrdup(exe)};
        for (size_t k = 0; k < VP_MAX_LIBPATH && ps->libpath[k]; k++)
            expand(root, in->prefix, ps->libpath[k], exe, &pr->libpath);
        if (ps->backends)
            expand(root, in->prefix, ps->backends, exe, &pr->backends);
        for (size_t k = 0; k < pr->backends.n && r >= 0; k++)
            r = plan_library(p, root, pr->backends.v[k], ps->role, patchelf);
        /* Libraries the executable needs from its own directory (era B). */
        for (size_t k = 0; k < e->n_needed && r >= 0; k++) {
            _cleanup_(freep) char *lib = vp_path_join(dir, e->needed[k].name);
            if (e->needed[k].name[0] != '/' && path_exists(root, lib))
                r = plan_library(p, root, lib, ps->role, patchelf);
        }
        _cleanup_(freep) char *exe_file = real_file(p, root, exe, false);
        const struct vp_plan_file *ef = find_file(p, exe_file);
        plan_routes(p, root, era, ps, exe, ok == 1 ? NULL : ef ? ef->choice.reason : "unknown",
                    in->has_lib_ollama);
        predict(p, root, pr, ok == 1);
    }
    vp_strv_release(&exes);
    return r < 0 ? r : 0;
}

int vp_plan_build(const char *root, const struct vp_install *in, const struct vp_shims *shims,
                  const char *patchelf, struct vp_plan *ret)
{
    struct vp_plan p = {
        .root = vp_xstrdup(root),
        .prefix = vp_xstrdup(in->prefix),
        .eras = in->eras,
        .all_covered = true,
    };
    vp_shims_copy(shims, &p.shims);
    int r = 0;
    for (int era = 0; era < VP_ERA_COUNT && r >= 0; era++) {
        if (!(in->eras & (1u << era)))
            continue;
        const struct vp_era_spec *es = vp_era_get(era);
        for (size_t i = 0; i < VP_MAX_PROCS && es->procs[i].role && r >= 0; i++)
            r = plan_proc(&p, root, es, &es->procs[i], in, patchelf);
    }
    if (r < 0) {
        vp_plan_release(&p);
        return r;
    }
    *ret = p;
    return 0;
}

size_t vp_plan_pending(const struct vp_plan *p)
{
    size_t n = 0;
    for (size_t i = 0; i < p->n_files; i++)
        n += !p->files[i].done && p->files[i].choice.method != VP_WRITE_IMPOSSIBLE;
    return n;
}

static void file_release(struct vp_plan_file *f)
{
    free(f->path);
    vp_strv_release(&f->processes);
    for (size_t k = 0; k < f->n_edits; k++) {
        free(f->edits[k].old_name);
        free(f->edits[k].new_name);
    }
    free(f->edits);
    free(f->link_target);
}

void vp_plan_use_audit(struct vp_plan *p, bool patch_too)
{
    for (size_t i = 0; i < p->n_routes; i++) {
        struct vp_plan_route *rt = &p->routes[i];
        if (rt->covered && patch_too)
            continue;
        free(rt->mechanism);
        rt->mechanism = vp_xstrdup("audit");
        rt->covered = true;
    }
    if (!patch_too) {
        for (size_t i = 0; i < p->n_files; i++)
            file_release(&p->files[i]);
        p->n_files = 0;
    }
    p->all_covered = true;
}

void vp_plan_release(struct vp_plan *p)
{
    for (size_t i = 0; i < p->n_files; i++)
        file_release(&p->files[i]);
    for (size_t i = 0; i < p->n_routes; i++) {
        free(p->routes[i].process);
        free(p->routes[i].target);
        free(p->routes[i].how);
        free(p->routes[i].mechanism);
    }
    for (size_t i = 0; i < p->n_procs; i++) {
        free(p->procs[i].role);
        free(p->procs[i].exe);
        vp_strv_release(&p->procs[i].libpath);
        vp_strv_release(&p->procs[i].backends);
        vp_prediction_release(&p->procs[i].today);
        vp_prediction_release(&p->procs[i].after);
    }
    free(p->files);
    free(p->routes);
    free(p->procs);
    free(p->root);
    free(p->prefix);
    vp_shims_release(&p->shims);
    vp_strv_release(&p->notes);
    *p = (struct vp_plan){0};
}
