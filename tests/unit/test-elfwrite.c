/* elfwrite: which method vp_elfwrite_choose picks (none, in place, segment, patchelf,
 * impossible), and patched copies that are proven, not assumed: each is written with
 * vp_copy_patched into a temp dir, passes vp_elfwrite_check, changes only the bytes its
 * method may change, and runs — `ld.so --list` shows the added DT_NEEDED and the fixture's
 * own report line shows which file answers libcuda.so.1. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "copy.h"
#include "elfwrite.h"
#include "testutil.h"

#define LDSO "/lib64/ld-linux-x86-64.so.2"
#define PATCHELF "/usr/bin/patchelf"

static char *tmp_dir;

/* The group's temp dir, removed by tu_teardown_tmpdir after the last test. */
static int setup(void **state)
{
    int r = tu_setup_tmpdir(state);
    tmp_dir = *state;
    return r;
}

/* Runs argv with exactly env; stdout and stderr together in *out. Returns the exit status,
 * or 128 + the signal that ended it. */
static int run(char *const argv[], char *const env[], char **out)
{
    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(p[1], 1);
        dup2(p[1], 2);
        close(p[0]);
        alarm(20);
        execve(argv[0], argv, env);
        _exit(127);
    }
    close(p[1]);
    size_t cap = 1 << 16, len = 0;
    char *buf = vp_xmalloc(cap);
    ssize_t n;
    while ((n = read(p[0], buf + len, cap - 1 - len)) > 0)
        len += (size_t)n;
    buf[len] = '\0';
    close(p[0]);
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    *out = buf;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* The loader's view: `ld.so --list FILE`. */
static char *ldso_list(const char *file, const char *llp)
{
    _cleanup_(freep) char *e1 = vp_xasprintf("LD_LIBRARY_PATH=%s", llp ? llp : "");
    char *argv[] = {LDSO, "--list", (char *)file, NULL};
    char *env[] = {e1, NULL};
    char *out;
    int rc = run(argv, env, &out);
    if (rc != 0)
        print_message("ld.so --list %s: %d\n%s", file, rc, out);
    assert_int_equal(rc, 0);
    return out;
}

/* Applies the edits to a copy of e's file (must choose `want`); returns the copy's path. */
static char *apply(const struct vp_elf *e, const struct vp_edit *ed, size_t n,
                   enum vp_write_method want, const char *name)
{
    struct vp_write_choice c;
    vp_elfwrite_choose(e, ed, n, NULL, &c);
    if (c.method != want)
        print_message("%s: chose %s (%s)\n", e->path, vp_write_method_name(c.method), c.reason);
    assert_int_equal(c.method, want);
    struct vp_patchset ps;
    assert_int_equal(vp_elfwrite_prepare(e, ed, n, &c, &ps), 0);
    char *out = vp_path_join(tmp_dir, name);
    int src = open(e->path, O_RDONLY | O_CLOEXEC);
    int dst = open(out, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0755);
    assert_true(src >= 0 && dst >= 0);
    struct vp_copy_result res;
    assert_int_equal(vp_copy_patched(src, e->size, dst, &ps, &res), 0);
    assert_int_equal(res.size, ps.new_size > e->size ? ps.new_size : e->size);
    assert_string_not_equal(res.orig_b3, res.patched_b3);
    close(src);
    close(dst);
    vp_patchset_release(&ps);
    int r = vp_elfwrite_check(e, out, ed, n);
    if (r < 0)
        print_message("check %s: %s\n", out, vp_last_error());
    assert_int_equal(r, 0);
    return out;
}

struct range {
    uint64_t off, len;
};

/* Bytes of the first min(size) bytes that differ outside the allowed ranges. */
static size_t changed_outside(const char *a_path, const char *b_path, const struct range *ok,
                              size_t n_ok)
{
    _cleanup_(freep) char *a = NULL, *b = NULL;
    size_t la, lb, bad = 0;
    assert_int_equal(vp_read_file(a_path, 64u << 20, &a, &la), 0);
    assert_int_equal(vp_read_file(b_path, 64u << 20, &b, &lb), 0);
    for (size_t i = 0; i < la && i < lb; i++) {
        if (a[i] == b[i])
            continue;
        bool allowed = false;
        for (size_t k = 0; k < n_ok && !allowed; k++)
            allowed = i >= ok[k].off && i < ok[k].off + ok[k].len;
        bad += !allowed;
    }
    return bad;
}

static void choose_none_when_every_edit_is_already_there(void **state)
{
    (void)state;
    _cleanup_(vp_elf_freep) struct vp_elf *e = tu_open_fixture("trees/e/lib/ollama/llama-server");
    struct vp_edit ed[] = {{VP_EDIT_ADD_NEEDED, NULL, "libc.so.6"},
                           {VP_EDIT_REPLACE_NEEDED, VP_SONAME_CUDA, "/x/libvgpu-cuda.so.1"}};
    bool pending[2];
    assert_int_equal(vp_edits_pending(e, ed, 2, pending), 0);
    struct vp_write_choice c;
    vp_elfwrite_choose(e, ed, 2, PATCHELF, &c);
    assert_int_equal(c.method, VP_WRITE_NONE);
    assert_string_equal(vp_write_method_name(c.method), "none");
    struct vp_edit add = {VP_EDIT_ADD_NEEDED, NULL, "/x/libvgpu-cuda.so.1"};
    assert_int_equal(vp_edits_pending(e, &add, 1, pending), 1);
    assert_true(pending[0]);
}

/* Names of .dynstr that start a string, are not needed yet, and are not the empty string. */
static size_t existing_names(const struct vp_elf *e, struct vp_edit *out, size_t max)
{
    size_t n = 0;
    for (uint64_t off = 1; off < e->strsz && n < max; off++) {
        const char *s = vp_elf_dynstr(e, off);
        if (s && *s && (off == 0 || s[-1] == '\0') && vp_elf_needed_index(e, s) < 0 &&
            !strchr(s, '$'))
            out[n++] = (struct vp_edit){VP_EDIT_ADD_NEEDED, NULL, (char *)s};
    }
    return n;
}

static void in_place_add_needs_an_existing_name_and_a_spare_slot_each(void **state)
{
    (void)state;
    _cleanup_(vp_elf_freep) struct vp_elf *e = tu_open_fixture("trees/e/lib/ollama/llama-server");
    assert_true(e->dyn_spare >= 1);
    struct vp_edit ed[16];
    size_t n = existing_names(e, ed, e->dyn_spare + 1);
    assert_int_equal(n, e->dyn_spare + 1);
    struct vp_write_choice c;
    vp_elfwrite_choose(e, ed, e->dyn_spare, NULL, &c);
    assert_int_equal(c.method, VP_WRITE_INPLACE);
    vp_elfwrite_choose(e, ed, e->dyn_spare + 1, NULL, &c); /* one slot short */
    assert_int_equal(c.method, VP_WRITE_SEGMENT);
    struct vp_edit fresh = {VP_EDIT_ADD_NEEDED, NULL, "libnot-in-dynstr.so.1"};
    vp_elfwrite_choose(e, &fresh, 1, NULL, &c);
    assert_int_equal(c.method, VP_WRITE_SEGMENT);
}

static void in_place_add_of_an_existing_string_uses_a_spare_slot(void **state)
{
    (void)state;
    /* The decoy's .dynstr holds its own soname: adding it costs no new byte. */
    _cleanup_(freep) char *p = tu_fixture("decoy/libcuda.so.580.65.06");
    _cleanup_(vp_elf_freep) struct vp_elf *e = tu_open_ok(p);
    struct vp_edit ed = {VP_EDIT_ADD_NEEDED, NULL, VP_SONAME_CUDA};
    _cleanup_(freep) char *out = apply(e, &ed, 1, VP_WRITE_INPLACE, "inplace-add.so");
    _cleanup_(vp_elf_freep) struct vp_elf *r = tu_open_ok(out);
    assert_int_equal(r->size, e->size);
    assert_int_equal(r->n_needed, e->n_needed + 1);
    assert_string_equal(r->needed[r->n_needed - 1].name, VP_SONAME_CUDA);
    assert_int_equal(r->dyn_spare, e->dyn_spare - 1);
    struct range ok[] = {{e->dyn_off, e->dyn_slots * sizeof(Elf64_Dyn)}};
    assert_int_equal(changed_outside(p, out, ok, 1), 0);
}

static void in_place_replace_by_an_existing_name(void **state)
{
    (void)state;
    _cleanup_(freep) char *p = tu_fixture("trees/e/lib/ollama/llama-server");
    _cleanup_(vp_elf_freep) struct vp_elf *e = tu_open_ok(p);
    struct vp_edit ed = {VP_EDIT_REPLACE_NEEDED, "libggml-base.so.0", "libc.so.6"};
    _cleanup_(freep) char *out = apply(e, &ed, 1, VP_WRITE_INPLACE, "inplace-existing");
    _cleanup_(vp_elf_freep) struct vp_elf *r = tu_open_ok(out);
    assert_int_equal(r->n_needed, 2);
    assert_int_equal(r->needed[0].stroff, e->needed[1].stroff);
    struct range ok[] = {{e->dyn_off, e->dyn_slots * sizeof(Elf64_Dyn)}};
    assert_int_equal(changed_outside(p, out, ok, 1), 0);
}

static void in_place_shorter_name_over_the_old_bytes_runs(void **state)
{
    (void)state;
    _cleanup_(freep) char *p = tu_fixture("trees/e/lib/ollama/llama-server");
    _cleanup_(freep) char *libdir = tu_fixture("trees/e/lib/ollama");
    _cleanup_(vp_elf_freep) struct vp_elf *e = tu_open_ok(p);
    /* "libggml-base.so" is no string of its own there (only a prefix of the old name), is
     * shorter, and the old bytes are not shared: written over them. */
    struct vp_edit ed = {VP_EDIT_REPLACE_NEEDED, "libggml-base.so.0", "libggml-base.so"};
    _cleanup_(freep) char *out = apply(e, &ed, 1, VP_WRITE_INPLACE, "llama-server-inplace");
    _cleanup_(vp_elf_freep) struct vp_elf *r = tu_open_ok(out);
    assert_string_equal(r->needed[0].name, "libggml-base.so");
    assert_int_equal(r->needed[0].stroff, e->needed[0].stroff);
    struct range ok[] = {{e->strtab_off + e->needed[0].stroff, strlen(e->needed[0].name) + 1},
                         {e->dyn_off, e->dyn_slots * sizeof(Elf64_Dyn)}};
    assert_int_equal(changed_outside(p, out, ok, 2), 0);
    _cleanup_(freep) char *list = ldso_list(out, libdir);
    assert_non_null(strstr(list, "libggml-base.so => "));
    assert_null(strstr(list, "libggml-base.so.0 => "));
}

static void segment_add_of_the_shims_runs_and_loads_them_first(void **state)
{
    (void)state;
    _cleanup_(freep) char *p = tu_fixture("trees/e/lib/ollama/llama-server");
    _cleanup_(freep) char *libdir = tu_fixture("trees/e/lib/ollama");
    _cleanup_(freep) char *cuda = tu_fixture("standin/libvgpu-cuda.so.1");
    _cleanup_(freep) char *nvml = tu_fixture("standin/libvgpu-nvml.so.1");
    _cleanup_(vp_elf_freep) struct vp_elf *e = tu_open_ok(p);
    struct vp_edit ed[] = {{VP_EDIT_ADD_NEEDED, NULL, cuda}, {VP_EDIT_ADD_NEEDED, NULL, nvml}};
    struct vp_write_choice c;
    vp_elfwrite_choose(e, ed, 2, NULL, &c);
    assert_int_equal(c.method, VP_WRITE_SEGMENT);
    assert_true(c.slot >= 0 && (size_t)c.slot < e->phnum);
    assert_true(e->ph[c.slot].p_type == PT_NOTE || e->ph[c.slot].p_type == PT_NULL);
    _cleanup_(freep) char *out = apply(e, ed, 2, VP_WRITE_SEGMENT, "llama-server-segment");

    _cleanup_(vp_elf_freep) struct vp_elf *r = tu_open_ok(out);
    assert_true(r->size > e->size);
    assert_int_equal(r->phnum, e->phnum); /* the program header table did not move */
    assert_string_equal(r->needed[2].name, cuda);
    assert_string_equal(r->needed[3].name, nvml);
    /* Below the old end only the headers and the moved tables' pointers changed. */
    struct range ok[] = {{e->ehdr.e_phoff, e->phnum * sizeof(Elf64_Phdr)},
                         {e->ehdr.e_shoff, e->shnum * sizeof(Elf64_Shdr)}};
    assert_int_equal(changed_outside(p, out, ok, 2), 0);
    /* Already patched: nothing more to do. */
    struct vp_write_choice again;
    vp_elfwrite_choose(r, ed, 2, NULL, &again);
    assert_int_equal(again.method, VP_WRITE_NONE);

    _cleanup_(freep) char *list = ldso_list(out, libdir);
    assert_non_null(strstr(list, cuda));
    assert_non_null(strstr(list, nvml));
    /* It runs, and the shims answer the driver sonames in it. */
    _cleanup_(freep) char *llp = vp_xasprintf("LD_LIBRARY_PATH=%s", libdir);
    char *argv[] = {out, "--list-devices", NULL};
    char *env[] = {llp, NULL};
    _cleanup_(freep) char *log = NULL;
    int rc = run(argv, env, &log);
    if (rc != 0)
        print_message("%s", log);
    assert_int_equal(rc, 0);
    _cleanup_(freep) char *want_cuda = vp_xasprintf("libcuda.so.1=%s ", cuda);
    _cleanup_(freep) char *want_nvml = vp_xasprintf("libnvidia-ml.so.1=%s ", nvml);
    assert_non_null(strstr(log, want_cuda));
    assert_non_null(strstr(log, want_nvml));
}

static void replace_renames_the_version_requirement_too(void **state)
{
    (void)state;
    _cleanup_(freep) char *p = tu_fixture("trees/e/lib/ollama/llama-server");
    _cleanup_(freep) char *libdir = tu_fixture("trees/e/lib/ollama");
    _cleanup_(vp_elf_freep) struct vp_elf *e = tu_open_ok(p);
    assert_string_equal(vp_elf_dynstr(e, e->verneed[0].vn_file), "libc.so.6");
    /* libc.so.6 by its absolute path: a new string, so a new segment, and the verneed
     * record that names libc.so.6 must follow (ld.so matches versions by that name). */
    const char *libc = "/lib/x86_64-linux-gnu/libc.so.6";
    if (access(libc, F_OK) != 0)
        skip();
    struct vp_edit ed = {VP_EDIT_REPLACE_NEEDED, "libc.so.6", (char *)libc};
    _cleanup_(freep) char *out = apply(e, &ed, 1, VP_WRITE_SEGMENT, "llama-server-libc");
    _cleanup_(vp_elf_freep) struct vp_elf *r = tu_open_ok(out);
    assert_string_equal(r->needed[1].name, libc);
    assert_string_equal(vp_elf_dynstr(r, r->verneed[0].vn_file), libc);
    _cleanup_(freep) char *llp = vp_xasprintf("LD_LIBRARY_PATH=%s", libdir);
    char *argv[] = {out, NULL};
    char *env[] = {llp, NULL};
    _cleanup_(freep) char *log = NULL;
    int rc = run(argv, env, &log);
    if (rc != 0)
        print_message("%s", log);
    assert_int_equal(rc, 0);
    /* In place: a shorter name over the old bytes, which vn_file shares. */
    struct vp_edit shorter = {VP_EDIT_REPLACE_NEEDED, "libc.so.6", "libc.so"};
    _cleanup_(freep) char *out2 = apply(e, &shorter, 1, VP_WRITE_INPLACE, "llama-server-libc2");
    _cleanup_(vp_elf_freep) struct vp_elf *r2 = tu_open_ok(out2);
    assert_string_equal(vp_elf_dynstr(r2, r2->verneed[0].vn_file), "libc.so");
}

static void segment_add_works_on_a_c_and_a_section_less_executable(void **state)
{
    (void)state;
    _cleanup_(freep) char *cuda = tu_fixture("standin/libvgpu-cuda.so.1");
    _cleanup_(freep) char *bin = tu_fixture("trees/e/bin/ollama");
    _cleanup_(freep) char *tool = tu_fixture("tools/elf-mangle");
    _cleanup_(freep) char *stripped = vp_path_join(tmp_dir, "ollama-stripped");
    char *margv[] = {tool, "strip-sections", bin, stripped, NULL};
    _cleanup_(freep) char *mlog = NULL;
    assert_int_equal(run(margv, (char *[]){NULL}, &mlog), 0);
    const char *inputs[] = {bin, stripped};
    for (size_t i = 0; i < 2; i++) {
        _cleanup_(vp_elf_freep) struct vp_elf *e = tu_open_ok(inputs[i]);
        struct vp_edit ed = {VP_EDIT_ADD_NEEDED, NULL, cuda};
        _cleanup_(freep) char *name = vp_xasprintf("ollama-%zu", i);
        _cleanup_(freep) char *out = apply(e, &ed, 1, VP_WRITE_SEGMENT, name);
        _cleanup_(freep) char *list = ldso_list(out, NULL);
        assert_non_null(strstr(list, cuda));
        char *argv[] = {out, "--version", NULL};
        _cleanup_(freep) char *log = NULL;
        assert_int_equal(run(argv, (char *[]){NULL}, &log), 0);
        assert_non_null(strstr(log, "ollama version is 0.30.1"));
    }
}

static void segment_works_on_go_internal_link_where_patchelf_breaks_it(void **state)
{
    (void)state;
    _cleanup_(freep) char *p = tu_fixture("go/ollama-internal-link");
    _cleanup_(freep) char *cuda = tu_fixture("standin/libvgpu-cuda.so.1");
    _cleanup_(vp_elf_freep) struct vp_elf *e = tu_open_ok(p);
    assert_true(e->go_internal_link);
    struct vp_edit ed = {VP_EDIT_ADD_NEEDED, NULL, cuda};
    _cleanup_(freep) char *out = apply(e, &ed, 1, VP_WRITE_SEGMENT, "go-segment");
    _cleanup_(freep) char *list = ldso_list(out, NULL);
    assert_non_null(strstr(list, cuda));
    char *argv[] = {out, "--version", NULL};
    _cleanup_(freep) char *log = NULL;
    int rc = run(argv, (char *[]){NULL}, &log);
    if (rc != 0)
        print_message("%s", log);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(log, "ollama version is 0.30.1"));

    /* The contrast is a fact about Debian 12's patchelf 0.14.3. */
    char *vargv[] = {PATCHELF, "--version", NULL};
    _cleanup_(freep) char *version = NULL;
    if (access(PATCHELF, X_OK) != 0 || run(vargv, (char *[]){NULL}, &version) != 0 ||
        !strstr(version, "0.14.3"))
        return;
    _cleanup_(freep) char *pe = vp_path_join(tmp_dir, "go-patchelf");
    char *cp[] = {"/bin/cp", p, pe, NULL};
    _cleanup_(freep) char *cplog = NULL;
    assert_int_equal(run(cp, (char *[]){NULL}, &cplog), 0);
    struct vp_write_stats st = {0};
    assert_int_equal(vp_elfwrite_patchelf(e, pe, &ed, 1, PATCHELF, &st), 0);
    assert_int_equal(st.patchelf_runs, 1);
    char *argv2[] = {pe, "--version", NULL};
    _cleanup_(freep) char *log2 = NULL;
    int rc2 = run(argv2, (char *[]){NULL}, &log2);
    print_message("patchelf's copy of the internal-link Go program: status %d\n", rc2);
    assert_true(rc2 > 128); /* killed by a signal (SIGSEGV on start) */
}

/* A copy whose PT_NOTE and PT_NULL program headers are retyped (PT_LOOS + 0x1234), so no
 * program header is free for a new PT_LOAD. */
static char *without_free_phdr(const char *in, const char *name)
{
    _cleanup_(freep) char *data = NULL;
    size_t len;
    assert_int_equal(vp_read_file(in, 64u << 20, &data, &len), 0);
    Elf64_Ehdr eh;
    memcpy(&eh, data, sizeof(eh));
    for (size_t i = 0; i < eh.e_phnum; i++) {
        Elf64_Phdr ph;
        memcpy(&ph, data + eh.e_phoff + i * sizeof(ph), sizeof(ph));
        if (ph.p_type == PT_NOTE || ph.p_type == PT_NULL)
            ph.p_type = PT_LOOS + 0x1234;
        memcpy(data + eh.e_phoff + i * sizeof(ph), &ph, sizeof(ph));
    }
    char *out = vp_path_join(tmp_dir, name);
    assert_int_equal(vp_write_file_atomic(out, data, len, 0755), 0);
    return out;
}

static void without_a_free_program_header_patchelf_or_impossible(void **state)
{
    (void)state;
    _cleanup_(freep) char *p = tu_fixture("trees/e/lib/ollama/llama-server");
    _cleanup_(freep) char *libdir = tu_fixture("trees/e/lib/ollama");
    _cleanup_(freep) char *cuda = tu_fixture("standin/libvgpu-cuda.so.1");
    _cleanup_(freep) char *noslot = without_free_phdr(p, "llama-server-noslot");
    _cleanup_(vp_elf_freep) struct vp_elf *e = tu_open_ok(noslot);
    struct vp_edit ed = {VP_EDIT_ADD_NEEDED, NULL, cuda};
    struct vp_write_choice c;
    vp_elfwrite_choose(e, &ed, 1, NULL, &c);
    assert_int_equal(c.method, VP_WRITE_IMPOSSIBLE);
    assert_non_null(strstr(c.reason, "no patchelf"));
    vp_elfwrite_choose(e, &ed, 1, PATCHELF, &c);
    assert_int_equal(c.method, VP_WRITE_PATCHELF);
    struct vp_patchset ps;
    assert_int_equal(vp_elfwrite_prepare(e, &ed, 1, &c, &ps), -ENOTSUP);

    /* Go's internal linker output and section-less files are never given to patchelf. */
    _cleanup_(freep) char *go = tu_fixture("go/ollama-internal-link");
    _cleanup_(freep) char *go_noslot = without_free_phdr(go, "go-noslot");
    _cleanup_(vp_elf_freep) struct vp_elf *g = tu_open_ok(go_noslot);
    vp_elfwrite_choose(g, &ed, 1, PATCHELF, &c);
    assert_int_equal(c.method, VP_WRITE_IMPOSSIBLE);
    assert_non_null(strstr(c.reason, "Go"));
    _cleanup_(freep) char *tool = tu_fixture("tools/elf-mangle");
    _cleanup_(freep) char *stripped = vp_path_join(tmp_dir, "noslot-stripped");
    char *margv[] = {tool, "strip-sections", noslot, stripped, NULL};
    _cleanup_(freep) char *mlog = NULL;
    assert_int_equal(run(margv, (char *[]){NULL}, &mlog), 0);
    _cleanup_(vp_elf_freep) struct vp_elf *s = tu_open_ok(stripped);
    vp_elfwrite_choose(s, &ed, 1, PATCHELF, &c);
    assert_int_equal(c.method, VP_WRITE_IMPOSSIBLE);
    assert_non_null(strstr(c.reason, "section headers"));
    _cleanup_(vp_elf_freep) struct vp_elf *x = tu_open_fixture("bad/static-exe");
    vp_elfwrite_choose(x, &ed, 1, PATCHELF, &c);
    assert_int_equal(c.method, VP_WRITE_IMPOSSIBLE);
    assert_non_null(strstr(c.reason, "statically linked"));

    /* patchelf itself, one invocation per edit, gives a copy that checks and runs. */
    if (access(PATCHELF, X_OK) != 0)
        return;
    _cleanup_(freep) char *copy = vp_path_join(tmp_dir, "llama-server-patchelf");
    char *cp[] = {"/bin/cp", noslot, copy, NULL};
    _cleanup_(freep) char *cplog = NULL;
    assert_int_equal(run(cp, (char *[]){NULL}, &cplog), 0);
    struct vp_edit two[] = {{VP_EDIT_ADD_NEEDED, NULL, cuda},
                            {VP_EDIT_REPLACE_NEEDED, "libggml-base.so.0", "libggml-base.so"}};
    struct vp_write_stats st = {0};
    assert_int_equal(vp_elfwrite_patchelf(e, copy, two, 2, PATCHELF, &st), 0);
    assert_int_equal(st.patchelf_runs, 2);
    assert_int_equal(vp_elfwrite_check(e, copy, two, 2), 0);
    _cleanup_(freep) char *list = ldso_list(copy, libdir);
    assert_non_null(strstr(list, cuda));
    assert_non_null(strstr(list, "libggml-base.so => "));
}

static void check_fails_when_the_result_lacks_an_edit(void **state)
{
    (void)state;
    _cleanup_(freep) char *p = tu_fixture("trees/e/lib/ollama/llama-server");
    _cleanup_(vp_elf_freep) struct vp_elf *e = tu_open_ok(p);
    struct vp_edit add = {VP_EDIT_ADD_NEEDED, NULL, "/x/libvgpu-cuda.so.1"};
    struct vp_edit rep = {VP_EDIT_REPLACE_NEEDED, "libggml-base.so.0", "libggml-base.so"};
    /* The original itself carries neither edit. */
    vp_clear_error();
    assert_int_equal(vp_elfwrite_check(e, p, &add, 1), -EIO);
    assert_non_null(strstr(vp_last_error(), "expected 3 DT_NEEDED"));
    assert_int_equal(vp_elfwrite_check(e, p, &rep, 1), -EIO);
    assert_non_null(strstr(vp_last_error(), "libggml-base.so missing"));
    /* Patched with one of the two edits: the other is still missing. */
    _cleanup_(freep) char *out = apply(e, &rep, 1, VP_WRITE_INPLACE, "half");
    struct vp_edit both[] = {rep, add};
    assert_int_equal(vp_elfwrite_check(e, out, both, 2), -EIO);
    /* Not an ELF file at all. */
    _cleanup_(freep) char *notelf = tu_fixture("bad/notelf");
    assert_int_equal(vp_elfwrite_check(e, notelf, &add, 1), -ENOEXEC);
    assert_non_null(strstr(vp_last_error(), "does not read back"));
    assert_string_equal(vp_edit_kind_name(VP_EDIT_ADD_NEEDED), "add-needed");
    assert_string_equal(vp_edit_kind_name(VP_EDIT_REPLACE_NEEDED), "replace-needed");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(choose_none_when_every_edit_is_already_there),
        cmocka_unit_test(in_place_add_needs_an_existing_name_and_a_spare_slot_each),
        cmocka_unit_test(in_place_add_of_an_existing_string_uses_a_spare_slot),
        cmocka_unit_test(in_place_replace_by_an_existing_name),
        cmocka_unit_test(in_place_shorter_name_over_the_old_bytes_runs),
        cmocka_unit_test(segment_add_of_the_shims_runs_and_loads_them_first),
        cmocka_unit_test(replace_renames_the_version_requirement_too),
        cmocka_unit_test(segment_add_works_on_a_c_and_a_section_less_executable),
        cmocka_unit_test(segment_works_on_go_internal_link_where_patchelf_breaks_it),
        cmocka_unit_test(without_a_free_program_header_patchelf_or_impossible),
        cmocka_unit_test(check_fails_when_the_result_lacks_an_edit),
    };
    return cmocka_run_group_tests(tests, setup, tu_teardown_tmpdir);
}
