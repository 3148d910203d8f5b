/* elfmodel: the facts of the fixture files (as readelf shows them), section-less copies made
 * by tools/elf-mangle, every bad input with the errno the header promises, and the .dynstr
 * helpers the in-place writer relies on. Mangled copies live in a mkdtemp directory. */
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

#include "elfmodel.h"
#include "testutil.h"

static char *tmp_dir;

/* The group's temp dir, removed by tu_teardown_tmpdir after the last test. */
static int setup(void **state)
{
    int r = tu_setup_tmpdir(state);
    tmp_dir = *state;
    return r;
}

/* tools/elf-mangle MODE fixture -> a file in the temp dir. */
static char *mangle(const char *mode, const char *rel)
{
    _cleanup_(freep) char *tool = tu_fixture("tools/elf-mangle");
    _cleanup_(freep) char *in = tu_fixture(rel);
    char *out = vp_xasprintf("%s/%s-%s", tmp_dir, mode, vp_basename(rel));
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        execl(tool, tool, mode, in, out, (char *)NULL);
        _exit(127);
    }
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    return out;
}

/* A copy of a fixture with bytes replaced at off. */
static char *patched_copy(const char *rel, uint64_t off, const void *bytes, size_t n)
{
    _cleanup_(freep) char *in = tu_fixture(rel);
    _cleanup_(freep) char *data = NULL;
    size_t len;
    assert_int_equal(vp_read_file(in, 64u << 20, &data, &len), 0);
    assert_true(off + n <= len);
    memcpy(data + off, bytes, n);
    char *out = vp_xasprintf("%s/copy-%llu-%s", tmp_dir, (unsigned long long)off, vp_basename(rel));
    assert_int_equal(vp_write_file_atomic(out, data, len, 0755), 0);
    return out;
}

static void assert_needed(const struct vp_elf *e, const char *const *want, size_t n)
{
    assert_int_equal(e->n_needed, n);
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(e->needed[i].name, want[i]);
        assert_string_equal(vp_elf_dynstr(e, e->needed[i].stroff), want[i]);
        assert_int_equal(vp_elf_needed_index(e, want[i]), (int)i);
        if (i)
            assert_true(e->needed[i].dynidx > e->needed[i - 1].dynidx);
    }
}

static void llama_server_is_a_pie_with_runpath_origin(void **state)
{
    (void)state;
    _cleanup_(vp_elf_freep) struct vp_elf *e = tu_open_fixture("trees/e/lib/ollama/llama-server");
    assert_int_equal(e->kind, VP_ELF_PIE);
    assert_true(vp_elf_is_executable(e));
    assert_string_equal(vp_elf_kind_name(e->kind), "pie-executable");
    assert_string_equal(e->interp, "/lib64/ld-linux-x86-64.so.2");
    static const char *const needed[] = {"libggml-base.so.0", "libc.so.6"};
    assert_needed(e, needed, 2);
    assert_int_equal(vp_elf_needed_index(e, VP_SONAME_CUDA), -1);
    assert_string_equal(e->runpath, "$ORIGIN");
    assert_int_not_equal(e->runpath_dynidx, SIZE_MAX);
    assert_null(e->rpath);
    assert_int_equal(e->rpath_dynidx, SIZE_MAX);
    assert_null(e->soname);
    assert_true(e->flags_1 & DF_1_PIE);
    assert_int_equal(e->n_verneed, 1);
    assert_string_equal(vp_elf_dynstr(e, e->verneed[0].vn_file), "libc.so.6");
    assert_true(e->imports_dlopen); /* the report code dlopen()s with RTLD_NOLOAD */
    assert_false(e->exports_marker);
    assert_true(e->has_dynamic);
    assert_true(e->has_init);
    assert_true(e->shnum > 0);
    assert_true(e->shidx_dynamic > 0 && e->shidx_dynstr > 0);
    assert_true(e->dyn_used + 1 + e->dyn_spare <= e->dyn_slots);
    assert_true(e->n_dynsym > 0);
    assert_false(e->go);
}

static void libggml_cuda_is_a_library_needing_the_driver_first(void **state)
{
    (void)state;
    _cleanup_(vp_elf_freep) struct vp_elf *e =
        tu_open_fixture("trees/e/lib/ollama/cuda_v13/libggml-cuda.so");
    assert_int_equal(e->kind, VP_ELF_LIB);
    assert_false(vp_elf_is_executable(e));
    assert_null(e->interp);
    assert_string_equal(e->soname, "libggml-cuda.so");
    static const char *const needed[] = {"libcuda.so.1", "libcudart.so.13", "libcublas.so.13",
                                         "libggml-base.so.0", "libc.so.6"};
    assert_needed(e, needed, VP_ARRAY_SIZE(needed));
    assert_string_equal(e->runpath, "$ORIGIN");
}

static void driver_stand_ins_are_told_apart_by_their_exports(void **state)
{
    (void)state;
    static const struct {
        const char *rel, *soname;
        bool marker, export_table;
        size_t cu, nvml;
    } cases[] = {
        {"standin/libvgpu-cuda.so.1", VP_SONAME_CUDA, true, true, 8, 0},
        {"standin/libvgpu-nvml.so.1", VP_SONAME_NVML, true, false, 0, 5},
        {"decoy/libcuda.so.580.65.06", VP_SONAME_CUDA, false, true, 637, 0},
        {"decoy/libnvidia-ml.so.580.65.06", VP_SONAME_NVML, false, false, 0, 394},
        {"legacy/libcuda.so.1", VP_SONAME_CUDA, false, false, 10, 0},
        {"legacy/libnvidia-ml.so.1", VP_SONAME_NVML, false, false, 0, 5},
    };
    for (size_t i = 0; i < VP_ARRAY_SIZE(cases); i++) {
        _cleanup_(vp_elf_freep) struct vp_elf *e = tu_open_fixture(cases[i].rel);
        assert_int_equal(e->kind, VP_ELF_LIB);
        assert_string_equal(e->soname, cases[i].soname);
        assert_int_equal(e->exports_marker, cases[i].marker);
        assert_int_equal(e->exports_cu_export_table, cases[i].export_table);
        assert_int_equal(e->n_cu_exports, cases[i].cu);
        assert_int_equal(e->n_nvml_exports, cases[i].nvml);
        assert_false(e->imports_dlopen);
    }
}

static void go_binaries_and_their_linker_are_recognised(void **state)
{
    (void)state;
    _cleanup_(vp_elf_freep) struct vp_elf *c = tu_open_fixture("trees/e/bin/ollama");
    assert_true(c->go); /* the C fake carries a .go.buildinfo section */
    assert_false(c->go_internal_link);
    assert_string_equal(c->ollama_version, "0.30.1");
    assert_true(vp_startswith(c->go_toolchain, "go1."));

    _cleanup_(vp_elf_freep) struct vp_elf *g = tu_open_fixture("go/ollama-internal-link");
    assert_int_equal(g->kind, VP_ELF_EXEC);
    assert_int_equal(g->ehdr.e_type, ET_EXEC);
    assert_true(g->go);
    assert_true(g->go_internal_link);
    assert_false(g->has_init);
    assert_true(vp_startswith(g->go_toolchain, "go1."));
    assert_null(g->ollama_version); /* -trimpath: no -ldflags in the build info */
    static const char *const needed[] = {"libc.so.6"};
    assert_needed(g, needed, 1);

    _cleanup_(vp_elf_freep) struct vp_elf *x = tu_open_fixture("trees/e-go/bin/ollama");
    assert_int_equal(x->kind, VP_ELF_PIE);
    assert_true(x->go);
    assert_false(x->go_internal_link); /* cgo: linked by gcc */
    assert_null(x->ollama_version);
}

static void static_executable_has_no_dynamic_section(void **state)
{
    (void)state;
    _cleanup_(vp_elf_freep) struct vp_elf *e = tu_open_fixture("bad/static-exe");
    assert_int_equal(e->kind, VP_ELF_STATIC);
    assert_false(e->has_dynamic);
    assert_int_equal(e->n_needed, 0);
    assert_false(vp_elf_is_executable(e));
}

static void expect_error(const char *path, int want)
{
    struct vp_elf *e = (struct vp_elf *)0x1;
    vp_clear_error();
    int r = vp_elf_open(path, &e);
    if (r != want)
        print_message("%s: got %d (%s), want %d\n", path, r, vp_last_error(), want);
    assert_int_equal(r, want);
    assert_ptr_equal(e, (struct vp_elf *)0x1); /* not written on failure */
    assert_non_null(strstr(vp_last_error(), path));
}

static void files_that_are_not_elf_are_refused(void **state)
{
    (void)state;
    _cleanup_(freep) char *notelf = tu_fixture("bad/notelf");
    expect_error(notelf, -ENOEXEC);
    expect_error(tmp_dir, -ENOEXEC); /* a directory */
    _cleanup_(freep) char *missing = vp_path_join(tmp_dir, "missing");
    expect_error(missing, -ENOENT);
    _cleanup_(freep) char *empty = vp_path_join(tmp_dir, "empty");
    assert_int_equal(vp_write_file_atomic(empty, "", 0, 0644), 0);
    expect_error(empty, -ENOEXEC);
}

static void every_elf_mangle_mode_gives_the_promised_errno(void **state)
{
    (void)state;
    static const struct {
        const char *mode;
        int err;
    } modes[] = {
        {"truncate-half", -EBADMSG},     {"truncate-headers", -EBADMSG},
        {"class32", -EPROTONOSUPPORT},   {"bigendian", -EPROTONOSUPPORT},
        {"corrupt-dynamic", -EBADMSG},   {"corrupt-needed", -EBADMSG},
    };
    static const char *const inputs[] = {"trees/e/lib/ollama/llama-server",
                                         "trees/e/lib/ollama/cuda_v13/libggml-cuda.so",
                                         "trees/b/bin/ollama"};
    for (size_t k = 0; k < VP_ARRAY_SIZE(inputs); k++)
        for (size_t i = 0; i < VP_ARRAY_SIZE(modes); i++) {
            _cleanup_(freep) char *out = mangle(modes[i].mode, inputs[k]);
            expect_error(out, modes[i].err);
        }
}

static void other_machines_types_and_classes_are_refused(void **state)
{
    (void)state;
    const char *rel = "trees/e/lib/ollama/llama-server";
    uint16_t aarch64 = EM_AARCH64, rel_type = ET_REL, core = ET_CORE;
    uint8_t class_bad = 7, data_bad = 9;
    _cleanup_(freep) char *arm = patched_copy(rel, offsetof(Elf64_Ehdr, e_machine), &aarch64, 2);
    expect_error(arm, -EPROTONOSUPPORT);
    _cleanup_(freep) char *obj = patched_copy(rel, offsetof(Elf64_Ehdr, e_type), &rel_type, 2);
    expect_error(obj, -ENOEXEC);
    _cleanup_(freep) char *dump = patched_copy(rel, offsetof(Elf64_Ehdr, e_type) + 0, &core, 2);
    expect_error(dump, -ENOEXEC);
    _cleanup_(freep) char *cls = patched_copy(rel, EI_CLASS, &class_bad, 1);
    expect_error(cls, -EBADMSG);
    _cleanup_(freep) char *dat = patched_copy(rel, EI_DATA, &data_bad, 1);
    expect_error(dat, -EBADMSG);
}

static bool has_route(const struct vp_elf *e, const char *text)
{
    for (size_t i = 0; i < e->n_routes; i++)
        if (strcmp(e->routes[i].text, text) == 0)
            return true;
    return false;
}

static void section_less_copies_keep_their_dynamic_facts(void **state)
{
    (void)state;
    static const char *const inputs[] = {"trees/e/lib/ollama/llama-server",
                                         "trees/e/lib/ollama/cuda_v13/libggml-cuda.so",
                                         "trees/e/bin/ollama"};
    for (size_t k = 0; k < VP_ARRAY_SIZE(inputs); k++) {
        _cleanup_(freep) char *orig_path = tu_fixture(inputs[k]);
        _cleanup_(freep) char *out = mangle("strip-sections", inputs[k]);
        _cleanup_(vp_elf_freep) struct vp_elf *o = tu_open_ok(orig_path);
        _cleanup_(vp_elf_freep) struct vp_elf *s = tu_open_ok(out);
        assert_int_equal(s->shnum, 0);
        assert_int_equal(s->shidx_dynamic, -1);
        assert_int_equal(s->shidx_dynstr, -1);
        assert_true(s->size < o->size);
        assert_int_equal(s->kind, o->kind);
        assert_int_equal(s->n_needed, o->n_needed);
        for (size_t i = 0; i < o->n_needed; i++)
            assert_string_equal(s->needed[i].name, o->needed[i].name);
        assert_true((!s->runpath && !o->runpath) || !strcmp(s->runpath, o->runpath));
        assert_true((!s->soname && !o->soname) || !strcmp(s->soname, o->soname));
        assert_int_equal(s->n_verneed, o->n_verneed);
        assert_int_equal(s->n_dynsym, o->n_dynsym); /* counted from DT_GNU_HASH */
        assert_int_equal(s->imports_dlopen, o->imports_dlopen);
        assert_int_equal(s->dyn_spare, o->dyn_spare);
        assert_int_equal(vp_elf_scan_strings(s), 0);
        assert_int_equal(vp_elf_scan_strings(o), 0);
        /* Without sections all read-only data is scanned (.dynstr too): at least what
         * the sectioned scan found. */
        for (size_t i = 0; i < o->n_routes; i++)
            assert_true(has_route(s, o->routes[i].text));
    }
    /* The build info is found without sections too. */
    _cleanup_(freep) char *out = mangle("strip-sections", "trees/e/bin/ollama");
    _cleanup_(vp_elf_freep) struct vp_elf *s = tu_open_ok(out);
    assert_true(s->go);
    assert_string_equal(s->ollama_version, "0.30.1");
    assert_int_equal(vp_elf_scan_strings(s), 0);
    assert_true(has_route(s, VP_SONAME_CUDA));
}

static void dynstr_find_does_not_return_a_tail_match(void **state)
{
    (void)state;
    _cleanup_(vp_elf_freep) struct vp_elf *e = tu_open_fixture("trees/e/lib/ollama/llama-server");
    assert_int_equal(vp_elf_dynstr_find(e, "libc.so.6"), e->needed[1].stroff);
    assert_int_equal(vp_elf_dynstr_find(e, "libggml-base.so.0"), e->needed[0].stroff);
    /* Tails of those names, and a prefix of one (not NUL-terminated there). */
    assert_int_equal(vp_elf_dynstr_find(e, "c.so.6"), UINT64_MAX);
    assert_int_equal(vp_elf_dynstr_find(e, "base.so.0"), UINT64_MAX);
    assert_int_equal(vp_elf_dynstr_find(e, "libggml-base.so"), UINT64_MAX);
    assert_int_equal(vp_elf_dynstr_find(e, "libcuda.so.1"), UINT64_MAX);
    uint64_t dl = vp_elf_dynstr_find(e, "dlopen");
    assert_int_not_equal(dl, UINT64_MAX);
    assert_string_equal(vp_elf_dynstr(e, dl), "dlopen");
    /* Offsets outside the table. */
    assert_null(vp_elf_dynstr(e, e->strsz));
    assert_null(vp_elf_dynstr(e, UINT64_MAX));
    assert_non_null(vp_elf_dynstr(e, e->strsz - 1));
}

static void dynstr_shared_sees_every_other_reference(void **state)
{
    (void)state;
    _cleanup_(vp_elf_freep) struct vp_elf *e = tu_open_fixture("trees/e/lib/ollama/llama-server");
    const struct vp_elf_needed *base = &e->needed[0], *libc = &e->needed[1];
    uint64_t blen = strlen(base->name) + 1, clen = strlen(libc->name) + 1;
    /* Only its own DT_NEEDED points at libggml-base.so.0. */
    assert_false(vp_elf_dynstr_shared(e, base->stroff, blen, base->dynidx));
    /* libc.so.6 is also the verneed's vn_file, which is renamed with it: not shared. */
    assert_false(vp_elf_dynstr_shared(e, libc->stroff, clen, libc->dynidx));
    /* Not skipping the entry itself: its own reference counts. */
    assert_true(vp_elf_dynstr_shared(e, libc->stroff, clen, base->dynidx));
    assert_true(vp_elf_dynstr_shared(e, base->stroff + blen - 5, 4, SIZE_MAX));
    /* A symbol name. */
    uint64_t dl = vp_elf_dynstr_find(e, "dlopen");
    assert_true(vp_elf_dynstr_shared(e, dl, 7, SIZE_MAX));
    /* RUNPATH's string is a reference too. */
    uint64_t rp = vp_elf_dynstr_find(e, "$ORIGIN");
    assert_int_not_equal(rp, UINT64_MAX);
    assert_true(vp_elf_dynstr_shared(e, rp, 8, base->dynidx));
}

static void vaddr_maps_to_file_offset_only_inside_one_segment(void **state)
{
    (void)state;
    _cleanup_(vp_elf_freep) struct vp_elf *e = tu_open_fixture("trees/e/lib/ollama/llama-server");
    uint64_t off = 0;
    assert_true(vp_elf_vaddr_to_off(e, e->dyn_vaddr, 16, &off));
    assert_int_equal(off, e->dyn_off);
    assert_true(vp_elf_vaddr_to_off(e, e->strtab_vaddr, e->strsz, &off));
    assert_int_equal(off, e->strtab_off);
    assert_false(vp_elf_vaddr_to_off(e, UINT64_MAX - 4, 16, &off));
    assert_false(vp_elf_vaddr_to_off(e, 1ull << 40, 1, &off));
    assert_false(vp_elf_vaddr_to_off(e, e->strtab_vaddr, UINT64_MAX, &off));
}

static void scan_strings_finds_the_dlopen_routes_of_each_era(void **state)
{
    (void)state;
    _cleanup_(vp_elf_freep) struct vp_elf *e =
        tu_open_fixture("trees/d/lib/ollama/libggml-base.so");
    assert_false(e->strings_scanned);
    assert_int_equal(vp_elf_scan_strings(e), 0);
    assert_int_equal(vp_elf_scan_strings(e), 0); /* a second call adds nothing */
    assert_int_equal(e->n_routes, 2);
    assert_string_equal(e->routes[0].text, "/usr/lib/wsl/lib/libnvidia-ml.so.1");
    assert_true(e->routes[0].absolute && e->routes[0].nvml && !e->routes[0].glob);
    assert_string_equal(e->routes[1].text, VP_SONAME_NVML);
    assert_true(!e->routes[1].absolute && e->routes[1].nvml);

    _cleanup_(vp_elf_freep) struct vp_elf *ce =
        tu_open_fixture("trees/c/lib/ollama/libggml-base.so");
    assert_int_equal(vp_elf_scan_strings(ce), 0);
    assert_int_equal(ce->n_routes, 0);

    _cleanup_(vp_elf_freep) struct vp_elf *ae = tu_open_fixture("trees/a0/bin/ollama");
    assert_int_equal(vp_elf_scan_strings(ae), 0);
    assert_true(has_route(ae, "/usr/lib/wsl/lib/libnvidia-ml.so*"));
    assert_true(has_route(ae, "libnvidia-ml.so"));
    for (size_t i = 0; i < ae->n_routes; i++)
        assert_true(ae->routes[i].nvml);
}

static void scan_strings_keeps_globs_with_wildcard_directories_whole(void **state)
{
    (void)state;
    struct vp_elf *e = tu_open_fixture("trees/a/bin/ollama");
    assert_int_equal(vp_elf_scan_strings(e), 0);
    assert_true(has_route(e, "/usr/lib/wsl/lib/libcuda.so*"));
    assert_true(has_route(e, "libcuda.so*"));
    bool whole = has_route(e, "/usr/lib/*-linux-gnu/libcuda.so*") &&
                 has_route(e, "/usr/local/cuda*/targets/*/lib/libcuda.so*");
    bool cut = has_route(e, "/libcuda.so*");
    vp_elf_free(e);
    /* A wildcard in a directory must not cut the glob short (several globs would
     * collapse into one misleading absolute-looking text in `inspect`). */
    assert_true(whole);
    assert_false(cut);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(llama_server_is_a_pie_with_runpath_origin),
        cmocka_unit_test(libggml_cuda_is_a_library_needing_the_driver_first),
        cmocka_unit_test(driver_stand_ins_are_told_apart_by_their_exports),
        cmocka_unit_test(go_binaries_and_their_linker_are_recognised),
        cmocka_unit_test(static_executable_has_no_dynamic_section),
        cmocka_unit_test(files_that_are_not_elf_are_refused),
        cmocka_unit_test(every_elf_mangle_mode_gives_the_promised_errno),
        cmocka_unit_test(other_machines_types_and_classes_are_refused),
        cmocka_unit_test(section_less_copies_keep_their_dynamic_facts),
        cmocka_unit_test(dynstr_find_does_not_return_a_tail_match),
        cmocka_unit_test(dynstr_shared_sees_every_other_reference),
        cmocka_unit_test(vaddr_maps_to_file_offset_only_inside_one_segment),
        cmocka_unit_test(scan_strings_finds_the_dlopen_routes_of_each_era),
        cmocka_unit_test(scan_strings_keeps_globs_with_wildcard_directories_whole),
    };
    return cmocka_run_group_tests(tests, setup, tu_teardown_tmpdir);
}
