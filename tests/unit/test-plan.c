/* plan: for each fixture era, the files, edits, links, processes and route coverage the
 * planner derives from the era table and the ELF facts; the WSL NVML route of D with and
 * without the file; a library rewritten only for a spelling the soname rule misses; and a
 * tree patched as planned that plans nothing more. The shims are the stand-ins copied into a
 * root-owned 0755 temp dir; trees are read in place (root = the fixtures dir) or copied
 * into a temp root when a test changes them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "copy.h"
#include "plan.h"
#include "testutil.h"

static char *shim_dir, *tmp_root;
static struct vp_shims shims;
static const char *fx;

static int copy_file(const char *src, const char *dst, mode_t mode)
{
    _cleanup_(freep) char *data = NULL;
    size_t len;
    int r = vp_read_file(src, 64u << 20, &data, &len);
    return r < 0 ? r : vp_write_file_atomic(dst, data, len, mode);
}

static int setup(void **state)
{
    (void)state;
    fx = getenv("VGPU_TEST_FIXTURES");
    shim_dir = tu_mkdtemp("shims");
    tmp_root = tu_mkdtemp("root");
    if (!shim_dir || !tmp_root || chmod(shim_dir, 0755) < 0)
        return -1;
    if (!fx)
        return 0;
    static const char *const names[] = {VP_SHIM_CUDA_FILE, VP_SHIM_NVML_FILE};
    for (size_t i = 0; i < 2; i++) {
        _cleanup_(freep) char *src = vp_xasprintf("%s/standin/%s", fx, names[i]);
        _cleanup_(freep) char *dst = vp_path_join(shim_dir, names[i]);
        if (copy_file(src, dst, 0755) < 0)
            fx = NULL; /* not built: every test skips */
    }
    if (fx && vp_shims_open(shim_dir, &shims) < 0) {
        fprintf(stderr, "shim dir %s: %s\n", shim_dir, vp_last_error());
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    vp_shims_release(&shims);
    tu_rmtree(shim_dir);
    tu_rmtree(tmp_root);
    return 0;
}

/* Identifies <root><prefix> and builds its plan. */
static void plan_for(const char *root, const char *prefix, struct vp_plan *p)
{
    if (!fx)
        skip();
    _cleanup_(freep) char *bin = vp_path_join(prefix, "bin/ollama");
    struct vp_install in = {.prefix = vp_xstrdup(prefix), .binary = vp_xstrdup(bin)};
    assert_int_equal(vp_install_identify(root, &in), 0);
    int r = vp_plan_build(root, &in, &shims, NULL, p);
    if (r < 0)
        print_message("plan %s: %s\n", prefix, vp_last_error());
    assert_int_equal(r, 0);
    free(in.prefix);
    free(in.binary);
    free(in.version);
    free(in.toolchain);
    free(in.era_reason);
}

static const struct vp_plan_file *file(const struct vp_plan *p, const char *path)
{
    for (size_t i = 0; i < p->n_files; i++)
        if (strcmp(p->files[i].path, path) == 0)
            return &p->files[i];
    return NULL;
}

static const struct vp_plan_route *route(const struct vp_plan *p, const char *process,
                                         enum vp_route_kind kind, const char *target)
{
    for (size_t i = 0; i < p->n_routes; i++)
        if (!strcmp(p->routes[i].process, process) && p->routes[i].kind == kind &&
            (!target || !strcmp(p->routes[i].target, target)))
            return &p->routes[i];
    return NULL;
}

static const struct vp_plan_process *proc(const struct vp_plan *p, const char *role)
{
    for (size_t i = 0; i < p->n_procs; i++)
        if (!strcmp(p->procs[i].role, role))
            return &p->procs[i];
    return NULL;
}

/* An executable that gets both shims added by the segment method. */
static void assert_shims_added(const struct vp_plan *p, const char *path)
{
    const struct vp_plan_file *f = file(p, path);
    if (!f)
        print_message("no plan for %s\n", path);
    assert_non_null(f);
    assert_int_equal(f->role, VP_ROLE_EXECUTABLE);
    assert_int_equal(f->n_edits, 2);
    assert_int_equal(f->edits[0].kind, VP_EDIT_ADD_NEEDED);
    assert_string_equal(f->edits[0].new_name, shims.cuda);
    assert_int_equal(f->edits[1].kind, VP_EDIT_ADD_NEEDED);
    assert_string_equal(f->edits[1].new_name, shims.nvml);
    assert_int_equal(f->choice.method, VP_WRITE_SEGMENT);
    assert_false(f->done);
    assert_true(f->size > 0);
}

static void assert_covered(const struct vp_plan_route *r, bool covered)
{
    assert_non_null(r);
    assert_int_equal(r->covered, covered);
    assert_string_equal(r->mechanism, covered ? "patch" : "audit");
    assert_non_null(r->how);
}

static void a0_patches_serve_but_its_routes_need_audit(void **state)
{
    (void)state;
    struct vp_plan p;
    plan_for(fx, "/trees/a0", &p);
    assert_int_equal(p.n_files, 1);
    assert_shims_added(&p, "/trees/a0/bin/ollama");
    assert_false(p.all_covered);
    assert_covered(route(&p, "serve", VP_ROUTE_EXTRACTED, NULL), false);
    const struct vp_plan_route *g = route(&p, "serve", VP_ROUTE_GLOB, NULL);
    assert_covered(g, false);
    assert_non_null(strstr(g->how, "only LD_AUDIT"));
    assert_int_equal(p.n_procs, 1);
    assert_int_equal(vp_plan_pending(&p), 1);
    vp_plan_release(&p);
}

static void a_links_the_shim_for_serve_but_its_extracted_runner_needs_audit(void **state)
{
    (void)state;
    struct vp_plan p;
    plan_for(fx, "/trees/a", &p);
    assert_int_equal(p.n_files, 2);
    assert_shims_added(&p, "/trees/a/bin/ollama");
    const struct vp_plan_file *l = file(&p, "/trees/a/lib/ollama/libcuda.so.1");
    assert_non_null(l);
    assert_int_equal(l->role, VP_ROLE_LINK);
    assert_string_equal(l->link_target, shims.cuda);
    assert_false(l->done);
    assert_covered(route(&p, "serve", VP_ROUTE_GLOB, NULL), true);
    assert_covered(route(&p, "serve", VP_ROUTE_DLOPEN_BARE, VP_SONAME_CUDA), true);
    assert_covered(route(&p, "runner", VP_ROUTE_EXTRACTED, NULL), false);
    assert_false(p.all_covered);
    assert_int_equal(vp_plan_pending(&p), 2);
    vp_plan_release(&p);
}

static void b_runner_gets_replace_needed_and_the_cpu_runner_is_left_alone(void **state)
{
    (void)state;
    struct vp_plan p;
    plan_for(fx, "/trees/b", &p);
    const char *runner = "/trees/b/lib/ollama/runners/cuda_v12_avx/ollama_llama_server";
    const struct vp_plan_file *f = file(&p, runner);
    assert_non_null(f);
    assert_int_equal(f->n_edits, 2);
    assert_int_equal(f->edits[0].kind, VP_EDIT_REPLACE_NEEDED);
    assert_string_equal(f->edits[0].old_name, VP_SONAME_CUDA);
    assert_string_equal(f->edits[0].new_name, shims.cuda);
    _cleanup_(freep) char *d0 = vp_edit_describe(&f->edits[0]);
    _cleanup_(freep) char *want = vp_xasprintf("replace DT_NEEDED libcuda.so.1 with %s", shims.cuda);
    assert_string_equal(d0, want);
    assert_int_equal(f->edits[1].kind, VP_EDIT_ADD_NEEDED);
    assert_string_equal(f->edits[1].new_name, shims.nvml);
    assert_true(vp_strv_contains(&f->processes, "ollama_llama_server"));
    assert_null(file(&p, "/trees/b/lib/ollama/runners/cpu_avx2/ollama_llama_server"));
    /* The runner's backend needs libcuda.so.1 by soname: covered once the shim is in. */
    assert_null(file(&p, "/trees/b/lib/ollama/runners/cuda_v12_avx/libggml_cuda_v12.so"));
    assert_true(tu_strv_mentions(&p.notes, "cpu_avx2/ollama_llama_server does not reach libcuda"));
    assert_non_null(file(&p, "/trees/b/lib/ollama/libcuda.so.1"));
    assert_covered(route(&p, "ollama_llama_server", VP_ROUTE_NEEDED, VP_SONAME_CUDA), true);
    assert_true(p.all_covered);
    /* The runner's LD_LIBRARY_PATH, as Ollama sets it: lib/ollama, then its own dir. */
    const struct vp_plan_process *pr = proc(&p, "ollama_llama_server");
    assert_non_null(pr);
    assert_string_equal(pr->exe, runner);
    assert_int_equal(pr->libpath.n, 2);
    assert_string_equal(pr->libpath.v[0], "/trees/b/lib/ollama");
    assert_string_equal(pr->libpath.v[1], "/trees/b/lib/ollama/runners/cuda_v12_avx");
    vp_plan_release(&p);
}

static void c_gets_the_in_tree_link_and_leaves_its_backends_alone(void **state)
{
    (void)state;
    struct vp_plan p;
    plan_for(fx, "/trees/c", &p);
    assert_int_equal(p.n_files, 2);
    assert_shims_added(&p, "/trees/c/bin/ollama");
    const struct vp_plan_file *f = file(&p, "/trees/c/bin/ollama");
    assert_true(vp_strv_contains(&f->processes, "serve"));
    assert_true(vp_strv_contains(&f->processes, "runner"));
    const struct vp_plan_file *l = file(&p, "/trees/c/lib/ollama/libcuda.so.1");
    assert_non_null(l);
    assert_string_equal(l->link_target, shims.cuda);
    assert_true(p.all_covered);
    assert_covered(route(&p, "serve", VP_ROUTE_GLOB, NULL), true);
    assert_covered(route(&p, "runner", VP_ROUTE_NEEDED, VP_SONAME_CUDA), true);
    const struct vp_plan_process *r = proc(&p, "runner");
    assert_non_null(r);
    assert_int_equal(r->backends.n, 2);
    assert_string_equal(r->backends.v[0], "/trees/c/lib/ollama/cuda_v12/libggml-cuda.so");
    assert_string_equal(r->backends.v[1], "/trees/c/lib/ollama/cuda_v13/libggml-cuda.so");
    assert_int_equal(r->libpath.n, 3);
    assert_string_equal(r->libpath.v[2], "/trees/c/lib/ollama");
    vp_plan_release(&p);
}

static void d_wsl_nvml_route_is_covered_only_while_the_file_is_absent(void **state)
{
    (void)state;
    struct vp_plan p;
    plan_for(fx, "/trees/d", &p);
    assert_int_equal(p.n_files, 1); /* no link: D's discovery does not glob lib/ollama */
    assert_shims_added(&p, "/trees/d/bin/ollama");
    const char *wsl = "/usr/lib/wsl/lib/libnvidia-ml.so.1";
    const struct vp_plan_route *r = route(&p, "runner", VP_ROUTE_DLOPEN_ABS, wsl);
    assert_covered(r, true);
    assert_non_null(strstr(r->how, "does not exist here"));
    assert_covered(route(&p, "runner", VP_ROUTE_DLOPEN_BARE, VP_SONAME_NVML), true);
    assert_true(p.all_covered);
    vp_plan_release(&p);

    /* The same tree in a root where the WSL driver file exists. */
    _cleanup_(freep) char *tree = vp_path_join(fx, "trees/d");
    _cleanup_(freep) char *at = vp_path_join(tmp_root, "d");
    assert_int_equal(symlink(tree, at), 0);
    _cleanup_(freep) char *wsl_dir = vp_path_join(tmp_root, "usr/lib/wsl/lib");
    assert_int_equal(vp_mkdir_p(wsl_dir, 0755), 0);
    _cleanup_(freep) char *wsl_file = vp_path_join(tmp_root, wsl);
    assert_int_equal(vp_write_file_atomic(wsl_file, "", 0, 0644), 0);
    plan_for(tmp_root, "/d", &p);
    r = route(&p, "runner", VP_ROUTE_DLOPEN_ABS, wsl);
    assert_covered(r, false);
    assert_non_null(strstr(r->how, "only LD_AUDIT"));
    assert_false(p.all_covered);
    vp_plan_release(&p);
}

static void e_patches_both_executables_and_needs_no_link(void **state)
{
    (void)state;
    struct vp_plan p;
    plan_for(fx, "/trees/e", &p);
    assert_int_equal(p.n_files, 2);
    assert_shims_added(&p, "/trees/e/bin/ollama");
    assert_shims_added(&p, "/trees/e/lib/ollama/llama-server");
    assert_true(vp_strv_contains(&file(&p, "/trees/e/bin/ollama")->processes, "gpu-discover"));
    assert_covered(route(&p, "gpu-discover", VP_ROUTE_DLOPEN_BARE, VP_SONAME_NVML), true);
    assert_covered(route(&p, "llama-server", VP_ROUTE_NEEDED, VP_SONAME_CUDA), true);
    assert_true(p.all_covered);
    assert_int_equal(vp_plan_pending(&p), 2);
    assert_string_equal(vp_file_role_name(VP_ROLE_LINK), "link");
    vp_plan_release(&p);
}

static int cp_tree(const char *src, const char *dst)
{
    pid_t pid = fork();
    if (pid == 0) {
        execl("/bin/cp", "cp", "-a", src, dst, (char *)NULL);
        _exit(127);
    }
    int st;
    return waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

/* Copies the fixture tree `tree` to <tmp_root>/<name> (cp -a); skips without the fixtures. */
static void copy_tree(const char *tree, const char *name)
{
    if (!fx)
        skip();
    _cleanup_(freep) char *src = vp_path_join(fx, tree);
    _cleanup_(freep) char *dst = vp_path_join(tmp_root, name);
    assert_int_equal(cp_tree(src, dst), 0);
}

/* Writes edits over the ELF file at <root><path> (a patched copy renamed over it). */
static void patch_in_place(const char *root, const char *rt_path, const struct vp_edit *ed,
                           size_t n)
{
    _cleanup_(freep) char *path = vp_rooted(root, rt_path);
    _cleanup_(freep) char *tmp = vp_xasprintf("%s.new", path);
    struct vp_elf *e = tu_open_ok(path);
    struct vp_write_choice c;
    vp_elfwrite_choose(e, ed, n, NULL, &c);
    assert_true(c.method == VP_WRITE_INPLACE || c.method == VP_WRITE_SEGMENT);
    struct vp_patchset ps;
    assert_int_equal(vp_elfwrite_prepare(e, ed, n, &c, &ps), 0);
    int dst = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0755);
    assert_true(dst >= 0);
    struct vp_copy_result res;
    assert_int_equal(vp_copy_patched(e->fd, e->size, dst, &ps, &res), 0);
    close(dst);
    assert_int_equal(vp_elfwrite_check(e, tmp, ed, n), 0);
    assert_int_equal(rename(tmp, path), 0);
    vp_patchset_release(&ps);
    vp_elf_free(e);
}

static void a_tree_patched_as_planned_plans_nothing_more(void **state)
{
    (void)state;
    copy_tree("trees/c", "c");
    struct vp_plan p;
    plan_for(tmp_root, "/c", &p);
    assert_int_equal(vp_plan_pending(&p), 2);
    for (size_t i = 0; i < p.n_files; i++) {
        const struct vp_plan_file *f = &p.files[i];
        if (f->role == VP_ROLE_LINK) {
            _cleanup_(freep) char *l = vp_rooted(tmp_root, f->path);
            assert_int_equal(symlink(f->link_target, l), 0);
        } else {
            patch_in_place(tmp_root, f->path, f->edits, f->n_edits);
        }
    }
    vp_plan_release(&p);
    plan_for(tmp_root, "/c", &p);
    assert_int_equal(p.n_files, 2);
    for (size_t i = 0; i < p.n_files; i++)
        assert_true(p.files[i].done);
    assert_int_equal(file(&p, "/c/bin/ollama")->choice.method, VP_WRITE_NONE);
    assert_int_equal(vp_plan_pending(&p), 0);
    assert_true(p.all_covered);
    vp_plan_release(&p);
}

static void a_backend_needing_the_unversioned_name_is_rewritten(void **state)
{
    (void)state;
    copy_tree("trees/c", "c2");
    /* cuda_v12's backend now needs "libcuda.so", which no soname answers. */
    const char *path = "/c2/lib/ollama/cuda_v12/libggml-cuda.so";
    struct vp_edit unversioned = {VP_EDIT_REPLACE_NEEDED, "libcuda.so.1", "libcuda.so"};
    patch_in_place(tmp_root, path, &unversioned, 1);
    struct vp_plan p;
    plan_for(tmp_root, "/c2", &p);
    const struct vp_plan_file *lib = file(&p, path);
    assert_non_null(lib);
    assert_int_equal(lib->role, VP_ROLE_LIBRARY);
    assert_int_equal(lib->n_edits, 1);
    assert_int_equal(lib->edits[0].kind, VP_EDIT_REPLACE_NEEDED);
    assert_string_equal(lib->edits[0].old_name, "libcuda.so");
    assert_string_equal(lib->edits[0].new_name, shims.cuda);
    assert_true(vp_strv_contains(&lib->processes, "runner"));
    assert_null(file(&p, "/c2/lib/ollama/cuda_v13/libggml-cuda.so")); /* untouched one */
    assert_true(p.all_covered);
    vp_plan_release(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a0_patches_serve_but_its_routes_need_audit),
        cmocka_unit_test(a_links_the_shim_for_serve_but_its_extracted_runner_needs_audit),
        cmocka_unit_test(b_runner_gets_replace_needed_and_the_cpu_runner_is_left_alone),
        cmocka_unit_test(c_gets_the_in_tree_link_and_leaves_its_backends_alone),
        cmocka_unit_test(d_wsl_nvml_route_is_covered_only_while_the_file_is_absent),
        cmocka_unit_test(e_patches_both_executables_and_needs_no_link),
        cmocka_unit_test(a_tree_patched_as_planned_plans_nothing_more),
        cmocka_unit_test(a_backend_needing_the_unversioned_name_is_rewritten),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
