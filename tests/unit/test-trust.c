/* trust: the shim dir rule (root-owned, not group/other writable, every ancestor too, a
 * root-owned sticky ancestor allowed, symlink targets followed) and vp_shims_open on good,
 * legacy, wrong-soname, missing and non-library shims. Every tree is built under a mkdtemp
 * directory in /tmp (a root-owned sticky ancestor); ownership cases need root and chown to
 * nobody. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>

#include "elfmodel.h"
#include "testutil.h"
#include "trust.h"

#define NOBODY 65534

/* A temp dir, 0755, per test (removed by tu_teardown_tmpdir). */
static int make_base(void **state)
{
    if (tu_setup_tmpdir(state) < 0 || chmod(*state, 0755) < 0)
        return -1;
    return 0;
}

/* mkdir base/rel with exactly mode (parents 0755). */
static char *dir_at(const char *base, const char *rel, mode_t mode)
{
    char *p = vp_path_join(base, rel);
    assert_int_equal(vp_mkdir_p(p, 0755), 0);
    assert_int_equal(chmod(p, mode), 0);
    return p;
}

static char *file_at(const char *base, const char *rel, mode_t mode)
{
    tu_write(base, rel, "x", 1, mode);
    return vp_path_join(base, rel);
}

/* vp_trust_check must refuse path with -EPERM, naming `culprit` and saying `why`. */
static void assert_refused(const char *path, const char *culprit, const char *why)
{
    vp_clear_error();
    int r = vp_trust_check(path);
    if (r != -EPERM || !strstr(vp_last_error(), culprit) || !strstr(vp_last_error(), why))
        print_message("%s: %d %s (want %s, %s)\n", path, r, vp_last_error(), culprit, why);
    assert_int_equal(r, -EPERM);
    assert_non_null(strstr(vp_last_error(), culprit));
    assert_non_null(strstr(vp_last_error(), why));
}

static void private_dirs_and_files_are_trusted(void **state)
{
    const char *base = *state;
    _cleanup_(freep) char *dir = dir_at(base, "usr/lib/vgpu", 0755);
    _cleanup_(freep) char *f = file_at(base, "usr/lib/vgpu/libvgpu-cuda.so.1", 0644);
    assert_int_equal(vp_trust_check(dir), 0);
    assert_int_equal(vp_trust_check(f), 0);
    _cleanup_(freep) char *ro = file_at(base, "usr/lib/vgpu/ro", 0444);
    assert_int_equal(vp_trust_check(ro), 0);
}

static void group_or_other_writable_paths_are_refused(void **state)
{
    const char *base = *state;
    _cleanup_(freep) char *g = dir_at(base, "g", 0775);
    assert_refused(g, g, "writable by its group");
    _cleanup_(freep) char *o = dir_at(base, "o", 0757);
    assert_refused(o, o, "writable by others");
    _cleanup_(freep) char *ok = dir_at(base, "ok", 0755);
    _cleanup_(freep) char *f = file_at(base, "ok/shim", 0646);
    assert_refused(f, f, "writable by others");
    /* A writable ancestor, even two levels up, makes the file untrusted. */
    _cleanup_(freep) char *up = dir_at(base, "up", 0777);
    _cleanup_(freep) char *mid = dir_at(base, "up/mid", 0755);
    _cleanup_(freep) char *deep = file_at(base, "up/mid/shim", 0644);
    assert_refused(deep, up, "(mode 0777)");
}

static void a_root_owned_sticky_ancestor_is_allowed_but_not_as_the_dir_itself(void **state)
{
    const char *base = *state;
    _cleanup_(freep) char *sticky = dir_at(base, "sticky", 01777);
    _cleanup_(freep) char *shims = dir_at(base, "sticky/shims", 0755);
    _cleanup_(freep) char *f = file_at(base, "sticky/shims/shim", 0644);
    assert_int_equal(vp_trust_check(f), 0);
    assert_int_equal(vp_trust_check(shims), 0);
    assert_refused(sticky, sticky, "writable by others");
    if (geteuid() != 0)
        return; /* a sticky dir owned by someone else: needs chown */
    assert_int_equal(chown(sticky, NOBODY, NOBODY), 0);
    assert_refused(f, sticky, "owned by uid 65534");
}

static void files_or_dirs_owned_by_another_user_are_refused(void **state)
{
    const char *base = *state;
    if (geteuid() != 0) {
        print_message("not root: ownership refusals need chown, skipped\n");
        skip();
    }
    _cleanup_(freep) char *dir = dir_at(base, "shims", 0755);
    _cleanup_(freep) char *f = file_at(base, "shims/shim", 0644);
    assert_int_equal(chown(f, NOBODY, NOBODY), 0);
    assert_refused(f, f, "owned by uid 65534, not root");
    assert_int_equal(chown(f, 0, 0), 0);
    assert_int_equal(vp_trust_check(f), 0);
    assert_int_equal(chown(dir, NOBODY, 0), 0);
    assert_refused(f, dir, "owned by uid 65534");
}

static void a_symlink_target_must_pass_too(void **state)
{
    const char *base = *state;
    _cleanup_(freep) char *bad = dir_at(base, "writable", 0777);
    _cleanup_(freep) char *good = dir_at(base, "good", 0755);
    _cleanup_(freep) char *l1 = vp_path_join(base, "abs-link");
    _cleanup_(freep) char *l2 = vp_path_join(base, "rel-link");
    _cleanup_(freep) char *l3 = vp_path_join(base, "good-link");
    assert_int_equal(symlink(bad, l1), 0);
    assert_int_equal(symlink("writable", l2), 0);
    assert_int_equal(symlink("good", l3), 0);
    assert_refused(l1, bad, "writable by others");
    assert_refused(l2, bad, "writable by others");
    assert_int_equal(vp_trust_check(l3), 0);
    _cleanup_(freep) char *loop = vp_path_join(base, "loop");
    assert_int_equal(symlink("loop", loop), 0);
    assert_int_equal(vp_trust_check(loop), -ELOOP);
}

static void a_symlinked_ancestor_target_must_pass_too(void **state)
{
    const char *base = *state;
    /* <base>/link -> <base>/real (world-writable), and the shims are under link/. */
    char *real = dir_at(base, "real", 0777);
    char *shims = dir_at(base, "real/shims", 0755);
    char *link = vp_path_join(base, "link");
    assert_int_equal(symlink(real, link), 0);
    char *via = vp_path_join(link, "shims");
    vp_clear_error();
    int r = vp_trust_check(via);
    free(real);
    free(shims);
    free(link);
    free(via);
    /* A root-owned link on the way must not hide the world-writable directory it leads
     * to: anyone could swap real/shims. */
    assert_int_equal(r, -EPERM);
}

static void relative_and_missing_paths_are_errors(void **state)
{
    const char *base = *state;
    assert_int_equal(vp_trust_check("usr/lib/vgpu"), -EINVAL);
    _cleanup_(freep) char *missing = vp_path_join(base, "missing/shim");
    vp_clear_error();
    assert_int_equal(vp_trust_check(missing), -ENOENT);
    assert_non_null(strstr(vp_last_error(), missing));
}

/* ---- shims ---- */

static char *shim_dir_with(const char *base, const char *name, const char *cuda_rel,
                           const char *nvml_rel)
{
    tu_fixtures(); /* skips without $VGPU_TEST_FIXTURES */
    char *dir = dir_at(base, name, 0755);
    const char *rels[] = {cuda_rel, nvml_rel};
    const char *names[] = {VP_SHIM_CUDA_FILE, VP_SHIM_NVML_FILE};
    for (size_t i = 0; i < 2; i++) {
        if (!rels[i])
            continue;
        size_t len;
        _cleanup_(freep) char *data = tu_read_fixture(rels[i], &len);
        tu_write(dir, names[i], data, len, 0644);
    }
    return dir;
}

static void shims_open_accepts_the_stand_ins(void **state)
{
    const char *base = *state;
    _cleanup_(freep) char *dir =
        shim_dir_with(base, "good", "standin/libvgpu-cuda.so.1", "standin/libvgpu-nvml.so.1");
    _cleanup_(freep) char *messy = vp_xasprintf("%s/../%s//good/", base, vp_basename(base));
    struct vp_shims s;
    assert_int_equal(vp_shims_open(messy, &s), 0);
    assert_string_equal(s.dir, dir);
    _cleanup_(freep) char *cuda = vp_path_join(dir, VP_SHIM_CUDA_FILE);
    _cleanup_(freep) char *nvml = vp_path_join(dir, VP_SHIM_NVML_FILE);
    assert_string_equal(s.cuda, cuda);
    assert_string_equal(s.nvml, nvml);
    vp_shims_release(&s);
    assert_null(s.dir);
}

static void assert_shims_refused(const char *dir, int err, const char *why)
{
    struct vp_shims s = {.dir = (char *)0x1};
    vp_clear_error();
    int r = vp_shims_open(dir, &s);
    if (r != err || !strstr(vp_last_error(), why))
        print_message("%s: %d %s (want %d, %s)\n", dir, r, vp_last_error(), err, why);
    assert_int_equal(r, err);
    assert_non_null(strstr(vp_last_error(), why));
    assert_ptr_equal(s.dir, (char *)0x1); /* not written */
}

static void shims_open_refuses_legacy_wrong_soname_missing_and_non_libraries(void **state)
{
    const char *base = *state;
    _cleanup_(freep) char *legacy =
        shim_dir_with(base, "legacy", "legacy/libcuda.so.1", "legacy/libnvidia-ml.so.1");
    assert_shims_refused(legacy, -EINVAL, "does not export " VP_SHIM_MARKER);
    _cleanup_(freep) char *swapped =
        shim_dir_with(base, "swapped", "standin/libvgpu-nvml.so.1", "standin/libvgpu-cuda.so.1");
    assert_shims_refused(swapped, -EINVAL, "DT_SONAME libnvidia-ml.so.1, not libcuda.so.1");
    _cleanup_(freep) char *half = shim_dir_with(base, "half", "standin/libvgpu-cuda.so.1", NULL);
    assert_shims_refused(half, -ENOENT, VP_SHIM_NVML_FILE);
    _cleanup_(freep) char *exe =
        shim_dir_with(base, "exe", "trees/e/bin/ollama", "standin/libvgpu-nvml.so.1");
    assert_shims_refused(exe, -EINVAL, "is not a shared library");
    _cleanup_(freep) char *text =
        shim_dir_with(base, "text", "bad/notelf", "standin/libvgpu-nvml.so.1");
    assert_shims_refused(text, -ENOEXEC, "not an ELF file");
    _cleanup_(freep) char *open =
        shim_dir_with(base, "open", "standin/libvgpu-cuda.so.1", "standin/libvgpu-nvml.so.1");
    _cleanup_(freep) char *nv = vp_path_join(open, VP_SHIM_NVML_FILE);
    assert_int_equal(chmod(nv, 0664), 0);
    assert_shims_refused(open, -EPERM, "writable by its group");
    assert_int_equal(chmod(open, 0777), 0);
    assert_shims_refused(open, -EPERM, "writable by others");
    assert_shims_refused("relative/dir", -EINVAL, "absolute path");
    assert_shims_refused(NULL, -EINVAL, "absolute path");
}

static void default_shim_dir_is_lib_vgpu_beside_the_executable(void **state)
{
    (void)state;
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    assert_true(n > 0);
    self[n] = '\0';
    _cleanup_(freep) char *bindir = vp_dirname(self);
    _cleanup_(freep) char *up = vp_dirname(bindir);
    _cleanup_(freep) char *want = vp_path_join(up, "lib/vgpu");
    _cleanup_(freep) char *got = vp_shims_default_dir();
    assert_non_null(got);
    assert_string_equal(got, want);
}

#define T(f) cmocka_unit_test_setup_teardown(f, make_base, tu_teardown_tmpdir)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(private_dirs_and_files_are_trusted),
        T(group_or_other_writable_paths_are_refused),
        T(a_root_owned_sticky_ancestor_is_allowed_but_not_as_the_dir_itself),
        T(files_or_dirs_owned_by_another_user_are_refused),
        T(a_symlink_target_must_pass_too),
        T(a_symlinked_ancestor_target_must_pass_too),
        T(relative_and_missing_paths_are_errors),
        T(shims_open_accepts_the_stand_ins),
        T(shims_open_refuses_legacy_wrong_soname_missing_and_non_libraries),
        cmocka_unit_test(default_shim_dir_is_lib_vgpu_beside_the_executable),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
