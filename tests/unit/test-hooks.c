/* hooks: global loader hooks of earlier deployment methods, found in a fake root built per
 * test in a mkdtemp directory: /etc/ld.so.preload, LD_PRELOAD/LD_AUDIT in the unit, its
 * drop-ins and EnvironmentFile=, /etc/environment and profile.d, and libraries answering to
 * the driver sonames in system dirs (including ld.so.conf includes) and in the Ollama tree.
 * Driver-like files are the fixtures' legacy shim, stand-in shims and NVIDIA-looking decoy. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "audit.h"
#include "discover.h"
#include "hooks.h"
#include "trust.h"
#include "testutil.h"

/* Copies a fixture file into the root; a fixture that was not built skips the test. */
static void put_fixture(const char *root, const char *rel, const char *fixture_rel)
{
    free(tu_fixture(fixture_rel));
    tu_put_fixture(root, rel, fixture_rel);
}

static size_t count(const struct vp_hooks *h, enum vp_hook_kind k)
{
    size_t n = 0;
    for (size_t i = 0; i < h->n; i++)
        n += h->v[i].kind == k;
    return n;
}

/* The hook of kind k whose file is `file` and whose description contains `what`. */
static const struct vp_hook *find(const struct vp_hooks *h, enum vp_hook_kind k, const char *file,
                                  const char *what)
{
    for (size_t i = 0; i < h->n; i++)
        if (h->v[i].kind == k && strcmp(h->v[i].file, file) == 0 && strstr(h->v[i].what, what))
            return &h->v[i];
    return NULL;
}

static void dump(const struct vp_hooks *h)
{
    for (size_t i = 0; i < h->n; i++)
        print_message("  %s %s:%u %s\n", vp_hook_kind_name(h->v[i].kind), h->v[i].file,
                      h->v[i].line, h->v[i].what);
}

static void scan(const char *root, const char *prefix, const struct vp_strv *owned,
                 struct vp_hooks *h)
{
    assert_int_equal(vp_hooks_scan(root, prefix, owned, NULL, h), 0);
}

/* Asserts the number of hooks found, listing them when it differs. */
#define ASSERT_HOOKS(h, want)                                                                      \
    do {                                                                                           \
        if ((h)->n != (want))                                                                      \
            dump(h);                                                                               \
        assert_int_equal((h)->n, (want));                                                          \
    } while (0)

static void clean_root_has_no_hooks(void **state)
{
    const char *root = *state;
    tu_put(root, "etc/ld.so.conf", "include /etc/ld.so.conf.d/*.conf\n");
    tu_put(root, "etc/environment", "PATH=/usr/bin\n# LD_PRELOAD=/old.so\nMY_LD_PRELOAD=x\n");
    tu_put(root, "etc/systemd/system/ollama.service",
           "[Service]\nEnvironment=OLLAMA_HOST=0.0.0.0\nExecStart=/usr/bin/ollama serve\n");
    put_fixture(root, "opt/ollama/bin/ollama", "trees/c/bin/ollama");
    struct vp_hooks h;
    scan(root, "/opt/ollama", NULL, &h);
    ASSERT_HOOKS(&h, 0);
    vp_hooks_release(&h);
}

static void preload_file_entries_are_reported_and_comments_ignored(void **state)
{
    const char *root = *state;
    /* Driver and shim names, a hand-made shim under another name; an allocator, a file
     * that is not there and NVIDIA's driver under another name are not ours to judge. */
    put_fixture(root, "opt/hand.so", "legacy/libcuda.so.1");
    put_fixture(root, "opt/nv/libcuda.so.580.65.06", "decoy/libcuda.so.580.65.06");
    tu_lnk(root, "opt/nv.so", "nv/libcuda.so.580.65.06");
    tu_put(root, "etc/ld.so.preload",
           "# the old method\n/usr/lib/libvgpu-cuda.so.1\n\n   /opt/a.so:/opt/libcuda.so.1\t"
           "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2\n/opt/nv.so /opt/hand.so\n");
    struct vp_hooks h;
    scan(root, NULL, NULL, &h);
    ASSERT_HOOKS(&h, 3);
    assert_int_equal(count(&h, VP_HOOK_PRELOAD_FILE), 3);
    const struct vp_hook *k =
        find(&h, VP_HOOK_PRELOAD_FILE, "/etc/ld.so.preload", "preloads /usr/lib/libvgpu-cuda.so.1");
    assert_non_null(k);
    assert_int_equal(k->line, 2);
    k = find(&h, VP_HOOK_PRELOAD_FILE, "/etc/ld.so.preload", "preloads /opt/libcuda.so.1");
    assert_non_null(k);
    assert_int_equal(k->line, 4);
    assert_string_equal(k->arg, "/opt/libcuda.so.1");
    assert_non_null(k->why);
    assert_string_equal(vp_hook_kind_name(k->kind), "ld.so.preload");
    k = find(&h, VP_HOOK_PRELOAD_FILE, "/etc/ld.so.preload", "preloads /opt/hand.so");
    assert_non_null(k);
    assert_int_equal(k->line, 5);
    vp_hooks_release(&h);
}

static void library_path_is_a_hook_only_with_a_hand_made_driver(void **state)
{
    const char *root = *state;
    put_fixture(root, "opt/old/libcuda.so.1", "legacy/libcuda.so.1");
    put_fixture(root, "opt/nv/libcuda.so.580.65.06", "decoy/libcuda.so.580.65.06");
    tu_lnk(root, "opt/nv/libcuda.so.1", "libcuda.so.580.65.06");
    tu_put(root, "etc/systemd/system/ollama.service.d/10-path.conf",
           "[Service]\nEnvironment=\"LD_LIBRARY_PATH=/usr/lib:/opt/old\"\n"
           "Environment=LD_LIBRARY_PATH=/opt/nv:/usr/lib\n");
    tu_put(root, "etc/environment", "LD_LIBRARY_PATH=/opt/nv\n");
    struct vp_hooks h;
    scan(root, NULL, NULL, &h);
    ASSERT_HOOKS(&h, 1);
    assert_int_equal(h.v[0].line, 2);
    assert_string_equal(h.v[0].arg, "LD_LIBRARY_PATH");
    vp_hooks_release(&h);
}

static void exec_start_wrapper_scripts_are_hooks(void **state)
{
    const char *root = *state;
    tu_put(root, "usr/local/bin/force_load_shim",
           "#!/bin/sh\nexport LD_PRELOAD=/opt/vgpu/libcuda.so.1\nexec \"$@\"\n");
    tu_put(root, "usr/local/bin/plain", "#!/bin/sh\nexec \"$@\"\n");
    put_fixture(root, "usr/local/bin/ollama", "trees/c/bin/ollama");
    tu_put(root, "etc/systemd/system/ollama.service",
           "[Service]\nExecStart=/usr/local/bin/plain /usr/local/bin/ollama serve\n");
    tu_put(root, "etc/systemd/system/ollama.service.d/vgpu.conf",
           "[Service]\nExecStart=\nExecStart=-/usr/local/bin/force_load_shim "
           "/usr/local/bin/ollama serve\n");
    struct vp_hooks h;
    scan(root, NULL, NULL, &h);
    ASSERT_HOOKS(&h, 1);
    assert_int_equal(h.v[0].kind, VP_HOOK_EXEC_WRAPPER);
    assert_int_equal(h.v[0].line, 3);
    assert_int_equal(h.v[0].reset_line, 2);
    assert_false(h.v[0].in_unit);
    assert_string_equal(h.v[0].arg, "/usr/local/bin/force_load_shim");
    vp_hooks_release(&h);
    /* In the unit itself: reported as such (migrate leaves it to the operator). */
    tu_put(root, "etc/systemd/system/ollama.service",
           "[Service]\nExecStart=/usr/local/bin/force_load_shim /usr/local/bin/ollama serve\n");
    tu_put(root, "etc/systemd/system/ollama.service.d/vgpu.conf", "[Service]\n");
    scan(root, NULL, NULL, &h);
    ASSERT_HOOKS(&h, 1);
    assert_true(h.v[0].in_unit);
    vp_hooks_release(&h);
}

static void preload_file_trailing_comments_are_ignored(void **state)
{
    const char *root = *state;
    /* glibc's rtld blanks everything from '#' to the end of the line in ld.so.preload. */
    tu_put(root, "etc/ld.so.preload", "/usr/lib/libvgpu-cuda.so.1 # added by hand\n");
    struct vp_hooks h;
    scan(root, NULL, NULL, &h);
    size_t n = h.n;
    vp_hooks_release(&h);
    /* glibc blanks a comment from '#' to the end of the line: its words are no names. */
    assert_int_equal(n, 1);
}

static void loader_variables_in_unit_drop_ins_and_environment_files(void **state)
{
    const char *root = *state;
    tu_put(
        root, "lib/systemd/system/ollama.service",
        "[Unit]\nDescription=Ollama\n[Service]\nEnvironment=\"LD_PRELOAD=/usr/lib/libvgpu-x.so\"\n"
        "EnvironmentFile=-/etc/default/ollama\nEnvironmentFile=/etc/vgpu/ollama.env\n"
        "ExecStart=/usr/bin/ollama serve\n");
    tu_put(root, "etc/systemd/system/ollama.service.d/10-audit.conf",
           "[Service]\n  Environment=OLLAMA_DEBUG=1 LD_AUDIT=/usr/lib/libvgpu-audit.so\n");
    tu_put(root, "etc/systemd/system/ollama.service.d/" VP_DROPIN_FILE,
           "[Service]\nEnvironment=\"LD_AUDIT=/usr/lib/vgpu/audit.so\"\n");
    tu_put(root, "etc/systemd/system/ollama.service.d/20-note.txt",
           "[Service]\nEnvironment=LD_PRELOAD=/not/a/drop-in.so\n");
    tu_put(root, "etc/default/ollama",
           "OLLAMA_HOST=0.0.0.0\nLD_PRELOAD='/opt/shim/libcuda.so.1'\n");
    tu_put(root, "etc/vgpu/" VP_ENV_FILE, "LD_AUDIT=/usr/lib/vgpu/audit.so\n");
    tu_put(root, "etc/environment", "LANG=C\nLD_PRELOAD=/usr/lib/global/libcuda.so.1\n");
    tu_put(root, "etc/profile.d/vgpu.sh",
           "# set by the old installer\nexport LD_AUDIT=/x/libvgpu-audit.so\n");
    struct vp_hooks h;
    scan(root, NULL, NULL, &h);
    const struct vp_hook *k;
    k = find(&h, VP_HOOK_UNIT_ENV, "/lib/systemd/system/ollama.service", "LD_PRELOAD");
    assert_non_null(k);
    assert_int_equal(k->line, 4);
    k = find(&h, VP_HOOK_UNIT_ENV, "/etc/systemd/system/ollama.service.d/10-audit.conf",
             "LD_AUDIT");
    assert_non_null(k);
    assert_int_equal(k->line, 2);
    k = find(&h, VP_HOOK_ENV_FILE, "/etc/default/ollama", "LD_PRELOAD");
    assert_non_null(k);
    assert_int_equal(k->line, 2);
    k = find(&h, VP_HOOK_GLOBAL_ENV, "/etc/environment", "LD_PRELOAD");
    assert_non_null(k);
    assert_int_equal(k->line, 2);
    k = find(&h, VP_HOOK_GLOBAL_ENV, "/etc/profile.d/vgpu.sh", "LD_AUDIT");
    assert_non_null(k);
    assert_int_equal(k->line, 2);
    /* Our own drop-in and environment file, and a file that is no drop-in, are not hooks. */
    assert_int_equal(count(&h, VP_HOOK_UNIT_ENV), 2);
    assert_int_equal(count(&h, VP_HOOK_ENV_FILE), 1);
    ASSERT_HOOKS(&h, 5);
    vp_hooks_release(&h);
}

static void unquoted_environment_assignment_in_a_unit_is_reported(void **state)
{
    const char *root = *state;
    tu_put(root, "etc/systemd/system/ollama.service",
           "[Service]\nEnvironment=LD_PRELOAD=/usr/lib/libvgpu-cuda.so.1\n"
           "ExecStart=/usr/bin/ollama serve\n");
    struct vp_hooks h;
    scan(root, NULL, NULL, &h);
    size_t n = count(&h, VP_HOOK_UNIT_ENV);
    vp_hooks_release(&h);
    /* systemd's plain form "Environment=LD_PRELOAD=..." puts the name right after '='. */
    assert_int_equal(n, 1);
}

static void driver_names_in_system_dirs_unless_nvidia(void **state)
{
    const char *root = *state;
    put_fixture(root, "usr/lib/x86_64-linux-gnu/libcuda.so.1", "legacy/libcuda.so.1");
    put_fixture(root, "usr/lib/x86_64-linux-gnu/libcuda.so.580.65.06",
                "decoy/libcuda.so.580.65.06");
    put_fixture(root, "usr/lib/x86_64-linux-gnu/libnvidia-ml.so.580.65.06",
                "decoy/libnvidia-ml.so.580.65.06");
    tu_lnk(root, "usr/lib/x86_64-linux-gnu/libnvidia-ml.so.1", "libnvidia-ml.so.580.65.06");
    put_fixture(root, "usr/local/lib/libnvidia-ml.so.1", "standin/libvgpu-nvml.so.1");
    tu_lnk(root, "lib64/libcuda.so", "/usr/lib/x86_64-linux-gnu/libcuda.so.580.65.06");
    tu_lnk(root, "usr/lib64/libcuda.so.1", "/nowhere/libcuda.so.1");
    put_fixture(root, "usr/lib/libcudart.so.12", "legacy/libcuda.so.1"); /* not a driver name */
    /* A directory listed only through an ld.so.conf include, and a comment. */
    tu_put(root, "etc/ld.so.conf", "# system\ninclude /etc/ld.so.conf.d/*.conf\n");
    tu_put(root, "etc/ld.so.conf.d/vgpu.conf", "/opt/vgpu/lib # old shim dir\n");
    tu_put(root, "etc/ld.so.conf.d/cuda.conf", "/usr/local/cuda/lib64\n");
    put_fixture(root, "opt/vgpu/lib/libnvidia-ml.so.1", "legacy/libnvidia-ml.so.1");
    put_fixture(root, "usr/local/cuda/lib64/libcuda.so.580.65.06", "decoy/libcuda.so.580.65.06");
    tu_lnk(root, "usr/local/cuda/lib64/libcuda.so.1", "libcuda.so.580.65.06");
    struct vp_hooks h;
    scan(root, NULL, NULL, &h);
    assert_non_null(
        find(&h, VP_HOOK_SYSTEM_LIB, "/usr/lib/x86_64-linux-gnu/libcuda.so.1", "hand-made-shim"));
    assert_non_null(
        find(&h, VP_HOOK_SYSTEM_LIB, "/usr/local/lib/libnvidia-ml.so.1", "vgpu-patch-shim"));
    assert_non_null(
        find(&h, VP_HOOK_SYSTEM_LIB, "/opt/vgpu/lib/libnvidia-ml.so.1", "hand-made-shim"));
    assert_non_null(find(&h, VP_HOOK_SYSTEM_LIB, "/usr/lib64/libcuda.so.1",
                         "does not lead to a readable library"));
    ASSERT_HOOKS(&h, 4); /* the decoys, their link and libcudart are not hooks */
    vp_hooks_release(&h);
}

/* NVIDIA's 32-bit (or other-architecture) driver is out of scope: not a hook; a file named
 * like the driver that is no ELF at all is a leftover. */
static void other_architectures_are_left_alone(void **state)
{
    const char *root = *state;
    unsigned char elf32[64] = {0x7f, 'E', 'L', 'F', 1 /* ELFCLASS32 */, 1, 1};
    unsigned char arm64[64] = {0x7f, 'E', 'L', 'F', 2, 1, 1};
    arm64[16] = 3;   /* ET_DYN */
    arm64[18] = 183; /* EM_AARCH64 */
    arm64[20] = 1;
    arm64[52] = 64; /* e_ehsize */
    tu_put(root, "etc/ld.so.conf", "/usr/lib/i386-linux-gnu\n/usr/lib/aarch64-linux-gnu\n");
    tu_write(root, "usr/lib/i386-linux-gnu/libcuda.so.525.1", elf32, sizeof(elf32), 0644);
    tu_lnk(root, "usr/lib/i386-linux-gnu/libcuda.so.1", "libcuda.so.525.1");
    tu_write(root, "usr/lib/aarch64-linux-gnu/libcuda.so.1", arm64, sizeof(arm64), 0644);
    tu_put(root, "usr/local/lib/libcuda.so", "not a library\n");
    tu_put(root, "etc/ld.so.preload", "/usr/lib/i386-linux-gnu/libcuda.so.1\n");
    struct vp_hooks h;
    scan(root, NULL, NULL, &h);
    ASSERT_HOOKS(&h, 1);
    assert_string_equal(h.v[0].file, "/usr/local/lib/libcuda.so");
    vp_hooks_release(&h);
}

/* A merged /usr: /lib64 and /usr/lib64 are one directory, its shim one hook (two would
 * make migrate remove one file twice and fail on every run). */
static void a_merged_usr_reports_each_file_once(void **state)
{
    const char *root = *state;
    put_fixture(root, "usr/lib64/libcuda.so.1", "legacy/libcuda.so.1");
    tu_lnk(root, "lib64", "usr/lib64");
    struct vp_hooks h;
    scan(root, NULL, NULL, &h);
    ASSERT_HOOKS(&h, 1);
    vp_hooks_release(&h);
}

/* A copy of legacy/libcuda.so.1 renamed to soname (same length as libcuda.so.1) whose
 * driver entry points cuXxx became cuxxx: what libcurl (curl_*) and libcudart (cuda*)
 * export. */
static void put_cu_library(const char *root, const char *rel, const char *soname)
{
    size_t len;
    _cleanup_(freep) char *data = tu_read_fixture("legacy/libcuda.so.1", &len);
    assert_int_equal(strlen(soname), strlen("libcuda.so.1"));
    for (char *p = data; (p = memmem(p, len - (size_t)(p - data), "libcuda.so.1", 12)); p += 12)
        memcpy(p, soname, 12);
    for (size_t i = 1; i + 3 < len; i++)
        if (data[i - 1] == '\0' && data[i] == 'c' && data[i + 1] == 'u' && data[i + 2] >= 'A' &&
            data[i + 2] <= 'Z')
            data[i + 2] = (char)(data[i + 2] - 'A' + 'a');
    tu_write(root, rel, data, len, 0755);
}

static void preloaded_cuda_runtime_and_curl_are_not_hooks(void **state)
{
    const char *root = *state;
    put_cu_library(root, "usr/lib/x86_64-linux-gnu/libcurl.so.4", "libcurl.so.4");
    put_cu_library(root, "usr/local/cuda/lib64/libcudart.so.13", "libcudart.so");
    _cleanup_(freep) char *curl = vp_path_join(root, "usr/lib/x86_64-linux-gnu/libcurl.so.4");
    struct vp_elf *e = tu_open_ok(curl);
    size_t n_cu = e->n_cu_exports;
    vp_elf_free(e);
    assert_int_equal(n_cu, 0);
    tu_put(root, "etc/ld.so.preload",
           "/usr/lib/x86_64-linux-gnu/libcurl.so.4 /usr/local/cuda/lib64/libcudart.so.13\n");
    struct vp_hooks h;
    scan(root, NULL, NULL, &h);
    ASSERT_HOOKS(&h, 0);
    vp_hooks_release(&h);
}

static void driver_names_inside_the_ollama_tree(void **state)
{
    const char *root = *state;
    put_fixture(root, "opt/ollama/bin/ollama", "trees/c/bin/ollama");
    put_fixture(root, "usr/lib/old/libcuda.so.1", "legacy/libcuda.so.1");
    put_fixture(root, "usr/lib/vgpu/libvgpu-cuda.so.1", "standin/libvgpu-cuda.so.1");
    tu_lnk(root, "opt/ollama/lib/ollama/libcuda.so.1", "/usr/lib/old/libcuda.so.1");
    tu_lnk(root, "opt/ollama/lib/ollama/cuda_v12/libcuda.so", "../libcuda.so.1");
    tu_lnk(root, "opt/ollama/lib/ollama/cuda_v13/libcuda.so.1", "/usr/lib/vgpu/libvgpu-cuda.so.1");
    put_fixture(root, "opt/ollama/lib/ollama/a/b/c/libcuda.so.1", "legacy/libcuda.so.1");
    struct vp_hooks h;
    scan(root, "/opt/ollama", NULL, &h);
    const struct vp_hook *k =
        find(&h, VP_HOOK_TREE_LIB, "/opt/ollama/lib/ollama/libcuda.so.1", "hand-made-shim");
    assert_non_null(k);
    assert_non_null(strstr(k->what, "-> /usr/lib/old/libcuda.so.1"));
    assert_non_null(
        find(&h, VP_HOOK_TREE_LIB, "/opt/ollama/lib/ollama/cuda_v12/libcuda.so", "hand-made-shim"));
    /* Our shim inside the tree is what a patched tree has; three levels down is too deep. */
    ASSERT_HOOKS(&h, 2);
    assert_int_equal(count(&h, VP_HOOK_TREE_LIB), 2);
    vp_hooks_release(&h);

    /* Without a prefix the tree is not looked at. */
    scan(root, NULL, NULL, &h);
    ASSERT_HOOKS(&h, 0);
    vp_hooks_release(&h);
}

static void owned_paths_are_never_reported(void **state)
{
    const char *root = *state;
    put_fixture(root, "usr/lib/old/libcuda.so.1", "legacy/libcuda.so.1");
    tu_lnk(root, "opt/ollama/lib/ollama/libcuda.so.1", "/usr/lib/old/libcuda.so.1");
    put_fixture(root, "usr/local/lib/libcuda.so.1", "legacy/libcuda.so.1");
    struct vp_strv owned = {0};
    vp_strv_push(&owned, "/opt/ollama/lib/ollama/libcuda.so.1");
    struct vp_hooks h;
    scan(root, "/opt/ollama", &owned, &h);
    ASSERT_HOOKS(&h, 1);
    assert_string_equal(h.v[0].file, "/usr/local/lib/libcuda.so.1");
    vp_hooks_release(&h);
    vp_strv_push(&owned, "/usr/local/lib/libcuda.so.1");
    scan(root, "/opt/ollama", &owned, &h);
    ASSERT_HOOKS(&h, 0);
    vp_hooks_release(&h);
    vp_strv_release(&owned);
}

static void root_with_a_trailing_slash_reports_the_same_runtime_paths(void **state)
{
    const char *root = *state;
    tu_put(root, "etc/profile.d/vgpu.sh", "export LD_PRELOAD=/x/libcuda.so.1\n");
    tu_put(root, "etc/environment", "LD_AUDIT=/y/libvgpu-audit.so\n");
    char *slashed = vp_xasprintf("%s/", root);
    struct vp_hooks h;
    scan(slashed, NULL, NULL, &h);
    free(slashed);
    ASSERT_HOOKS(&h, 2);
    bool env = find(&h, VP_HOOK_GLOBAL_ENV, "/etc/environment", "LD_AUDIT") != NULL;
    bool profile = find(&h, VP_HOOK_GLOBAL_ENV, "/etc/profile.d/vgpu.sh", "LD_PRELOAD") != NULL;
    vp_hooks_release(&h);
    assert_true(env);
    /* A root given with a trailing slash must still give runtime paths starting at '/'. */
    assert_true(profile);
}

static void driver_identity_follows_marker_and_exports(void **state)
{
    (void)state;
    const char *fx = tu_fixtures();
    static const struct {
        const char *rel;
        bool nvml;
        enum vp_driver_identity want;
    } cases[] = {
        {"decoy/libcuda.so.580.65.06", false, VP_DRIVER_NVIDIA},
        {"decoy/libnvidia-ml.so.580.65.06", true, VP_DRIVER_NVIDIA},
        {"standin/libvgpu-cuda.so.1", false, VP_DRIVER_OURS},
        {"standin/libvgpu-nvml.so.1", true, VP_DRIVER_OURS},
        {"legacy/libcuda.so.1", false, VP_DRIVER_HANDMADE},
        {"legacy/libnvidia-ml.so.1", true, VP_DRIVER_HANDMADE},
        {"decoy/libcuda.so.580.65.06", true, VP_DRIVER_HANDMADE}, /* no NVML exports */
    };
    for (size_t i = 0; i < VP_ARRAY_SIZE(cases); i++) {
        _cleanup_(freep) char *p = vp_path_join(fx, cases[i].rel);
        struct vp_elf *e = tu_open_ok(p);
        assert_int_equal(vp_driver_identify(e, cases[i].nvml), cases[i].want);
        vp_elf_free(e);
    }
    assert_string_equal(vp_driver_identity_name(VP_DRIVER_OURS), "vgpu-patch-shim");

    /* The CUDA stand-in with its marker renamed: cuGetExportTable, but only a handful of
     * entry points, is a hand-made shim, not NVIDIA's driver. */
    size_t len;
    _cleanup_(freep) char *data = tu_read_fixture("standin/libvgpu-cuda.so.1", &len);
    char *m = memmem(data, len, VP_SHIM_MARKER, sizeof(VP_SHIM_MARKER));
    assert_non_null(m);
    m[sizeof(VP_SHIM_MARKER) - 2] = 'X';
    char *dir = tu_tmpdir("id");
    tu_write(dir, "libcuda.so.1", data, len, 0644);
    _cleanup_(freep) char *copy = vp_path_join(dir, "libcuda.so.1");
    struct vp_elf *e = tu_open_ok(copy);
    tu_rmtree(dir);
    assert_false(e->exports_marker);
    assert_true(e->exports_cu_export_table);
    enum vp_driver_identity id = vp_driver_identify(e, false);
    vp_elf_free(e);
    assert_int_equal(id, VP_DRIVER_HANDMADE);

    /* NVIDIA's driver copied under an unversioned name (WSL's plain libcuda.so.1, a copy
     * made with cp -L) is still NVIDIA's: exports decide, not the name. A full-API
     * interposer is indistinguishable by its exports alone and is judged the same; one
     * without cuGetExportTable is hand-made. */
    free(data);
    data = tu_read_fixture("decoy/libcuda.so.580.65.06", &len);
    dir = tu_tmpdir("id");
    tu_write(dir, "libcuda.so.1", data, len, 0644);
    m = memmem(data, len, "cuGetExportTable", sizeof("cuGetExportTable"));
    assert_non_null(m);
    m[sizeof("cuGetExportTable") - 2] = 'X';
    tu_write(dir, "libcuda-no-table.so.1", data, len, 0644);
    _cleanup_(freep) char *full = vp_path_join(dir, "libcuda.so.1");
    _cleanup_(freep) char *partial = vp_path_join(dir, "libcuda-no-table.so.1");
    e = tu_open_ok(full);
    id = vp_driver_identify(e, false);
    vp_elf_free(e);
    e = tu_open_ok(partial);
    enum vp_driver_identity pid = vp_driver_identify(e, false);
    bool table = e->exports_cu_export_table;
    vp_elf_free(e);
    tu_rmtree(dir);
    assert_int_equal(id, VP_DRIVER_NVIDIA);
    assert_false(table);
    assert_int_equal(pid, VP_DRIVER_HANDMADE);
}

static void wsl_driver_in_plain_files_is_not_a_hook(void **state)
{
    const char *root = *state;
    tu_put(root, "etc/ld.so.conf", "include /etc/ld.so.conf.d/*.conf\n");
    tu_put(root, "etc/ld.so.conf.d/ld.wsl.conf", "/usr/lib/wsl/lib\n");
    put_fixture(root, "usr/lib/wsl/lib/libcuda.so.1", "decoy/libcuda.so.580.65.06");
    put_fixture(root, "usr/lib/wsl/lib/libnvidia-ml.so.1", "decoy/libnvidia-ml.so.580.65.06");
    tu_put(root, "etc/ld.so.preload", "/usr/lib/wsl/lib/libcuda.so.1\n");
    struct vp_hooks h;
    scan(root, NULL, NULL, &h);
    ASSERT_HOOKS(&h, 0);
    vp_hooks_release(&h);
}

/* The legacy shim with its driver names taken out and the symbol cuInit renamed to `sym`
 * (6 characters): a library that is not driver-like by name or exports. */
static void put_renamed_library(const char *root, const char *rel, const char *sym)
{
    size_t len;
    _cleanup_(freep) char *data = tu_read_fixture("legacy/libcuda.so.1", &len);
    for (char *p = data; (p = memmem(p, len - (size_t)(p - data), "libcuda.so.1", 12)); p += 12)
        memcpy(p, "libforce.so1", 12);
    for (size_t i = 1; i + 3 < len; i++)
        if (data[i - 1] == '\0' && data[i] == 'c' && data[i + 1] == 'u' && data[i + 2] >= 'A' &&
            data[i + 2] <= 'Z')
            data[i + 2] = (char)(data[i + 2] - 'A' + 'a');
    char *p = memmem(data, len, "\0cuinit\0", 8);
    assert_non_null(p);
    memcpy(p + 1, sym, 6);
    tu_write(root, rel, data, len, 0755);
}

static void audit_modules_and_dlopen_interposers_are_hooks(void **state)
{
    const char *root = *state;
    put_renamed_library(root, "opt/old/libforce.so", "dlopen");
    put_renamed_library(root, "opt/old/libaudit.so", "la_obj");
    put_renamed_library(root, "opt/old/libplain.so", "cuhelp");
    put_fixture(root, "opt/old/libnames.so", "trees/c/lib/ollama/cuda_v12/libcudart.so.12");
    put_fixture(root, "usr/lib/vgpu/" VP_AUDIT_FILE, "trees/c/lib/ollama/libggml-base.so");
    tu_put(root, "etc/systemd/system/ollama.service.d/a.conf",
           "[Service]\nEnvironment=LD_PRELOAD=/opt/old/libforce.so\n"
           "Environment=LD_AUDIT=/opt/old/libplain.so\n"
           "Environment=LD_PRELOAD=/opt/old/libaudit.so\n"
           "Environment=LD_PRELOAD=/opt/old/libnames.so\n"
           "Environment=LD_PRELOAD=/opt/old/gone.so\n"
           "Environment=LD_PRELOAD=/opt/old/libplain.so\n"
           "Environment=LD_AUDIT=/usr/lib/vgpu/" VP_AUDIT_FILE "\n");
    struct vp_hooks h;
    assert_int_equal(vp_hooks_scan(root, NULL, NULL, "/usr/lib/vgpu", &h), 0);
    const char *f = "/etc/systemd/system/ollama.service.d/a.conf";
    const struct vp_hook *k;
    assert_non_null(k = find(&h, VP_HOOK_UNIT_ENV, f, "libforce.so"));
    assert_null(k->manual);
    assert_non_null(find(&h, VP_HOOK_UNIT_ENV, f, "LD_AUDIT=/opt/old/libplain.so"));
    assert_non_null(find(&h, VP_HOOK_UNIT_ENV, f, "libaudit.so"));
    assert_non_null(find(&h, VP_HOOK_UNIT_ENV, f, "libnames.so"));
    assert_non_null(k = find(&h, VP_HOOK_UNIT_ENV, f, "gone.so"));
    assert_non_null(k->manual);
    assert_non_null(strstr(k->manual, "does not exist"));
    /* A plain library preloaded, and our own audit module, are not hooks. */
    ASSERT_HOOKS(&h, 5);
    vp_hooks_release(&h);
}

static void continued_script_and_environment_file_lines_are_manual(void **state)
{
    const char *root = *state;
    put_fixture(root, "opt/old/libcuda.so.1", "legacy/libcuda.so.1");
    tu_put(root, "etc/profile.d/a.sh",
           "export FOO=1 \\\nLD_PRELOAD=/opt/old/libcuda.so.1\n"
           "echo 'open\nLD_PRELOAD=/opt/old/libcuda.so.1\n'\n"
           "cat <<EOF >/tmp/x\nLD_PRELOAD=/opt/old/libcuda.so.1\nEOF\n"
           "echo '\\' # done\nLD_PRELOAD=/opt/old/libcuda.so.1\n");
    tu_put(root, "etc/systemd/system/ollama.service",
           "[Service]\nEnvironmentFile=/etc/default/ollama\nExecStart=/usr/bin/ollama serve\n");
    tu_put(root, "etc/default/ollama",
           "A=\"x\nLD_PRELOAD=/opt/old/libcuda.so.1\"\n# it's\nLD_PRELOAD=/opt/old/libcuda.so.1\n");
    struct vp_hooks h;
    scan(root, NULL, NULL, &h);
    ASSERT_HOOKS(&h, 6);
    unsigned manual_lines[] = {2, 4, 7, 2};
    const char *files[] = {"/etc/profile.d/a.sh", "/etc/profile.d/a.sh", "/etc/profile.d/a.sh",
                           "/etc/default/ollama"};
    for (size_t i = 0; i < h.n; i++) {
        bool want_manual = false;
        for (size_t j = 0; j < VP_ARRAY_SIZE(files); j++)
            want_manual |= !strcmp(h.v[i].file, files[j]) && h.v[i].line == manual_lines[j];
        if (want_manual != (h.v[i].manual != NULL))
            dump(&h);
        assert_int_equal(want_manual, h.v[i].manual != NULL);
    }
    vp_hooks_release(&h);
}

static void env_and_sh_c_wrappers_in_exec_start_are_hooks(void **state)
{
    const char *root = *state;
    put_fixture(root, "opt/old/libcuda.so.1", "legacy/libcuda.so.1");
    const char *d = "etc/systemd/system/ollama.service.d/";
    static const struct {
        const char *name, *exec;
        int want; /* 0 no hook, 1 a hook migrate may take, 2 one left to the operator */
    } cases[] = {
        {"a.conf", "/usr/bin/env LD_PRELOAD=/opt/old/libcuda.so.1 /usr/bin/ollama serve", 1},
        {"b.conf", "/bin/sh -c \"LD_PRELOAD=/opt/old/libcuda.so.1 exec /usr/bin/ollama serve\"", 1},
        {"c.conf", "/usr/bin/env OLLAMA_X=1 LD_PRELOAD=/opt/old/libcuda.so.1 /usr/bin/ollama", 2},
        {"d.conf", "/bin/sh -c 'cd /tmp; export LD_PRELOAD=/opt/old/libcuda.so.1; exec ollama'", 2},
        {"e.conf", "/usr/bin/env OLLAMA_X=1 /usr/bin/ollama serve", 0},
    };
    for (size_t i = 0; i < VP_ARRAY_SIZE(cases); i++) {
        _cleanup_(freep) char *rel = vp_xasprintf("%s%s", d, cases[i].name);
        _cleanup_(freep) char *text =
            vp_xasprintf("[Service]\nExecStart=\nExecStart=%s\n", cases[i].exec);
        tu_put(root, rel, text);
    }
    struct vp_hooks h;
    scan(root, NULL, NULL, &h);
    ASSERT_HOOKS(&h, 4);
    for (size_t i = 0; i < VP_ARRAY_SIZE(cases); i++) {
        _cleanup_(freep) char *file = vp_xasprintf("/%s%s", d, cases[i].name);
        const struct vp_hook *k = find(&h, VP_HOOK_EXEC_WRAPPER, file, "sets LD_PRELOAD=");
        assert_int_equal(k ? 1 + (k->manual != NULL) : 0, cases[i].want);
        if (k)
            assert_int_equal(k->reset_line, 2);
    }
    vp_hooks_release(&h);
}

#define T(f) cmocka_unit_test_setup_teardown(f, tu_setup_tmpdir, tu_teardown_tmpdir)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(clean_root_has_no_hooks),
        T(preload_file_entries_are_reported_and_comments_ignored),
        T(preload_file_trailing_comments_are_ignored),
        T(library_path_is_a_hook_only_with_a_hand_made_driver),
        T(exec_start_wrapper_scripts_are_hooks),
        T(loader_variables_in_unit_drop_ins_and_environment_files),
        T(unquoted_environment_assignment_in_a_unit_is_reported),
        T(driver_names_in_system_dirs_unless_nvidia),
        T(other_architectures_are_left_alone),
        T(a_merged_usr_reports_each_file_once),
        T(preloaded_cuda_runtime_and_curl_are_not_hooks),
        T(wsl_driver_in_plain_files_is_not_a_hook),
        T(audit_modules_and_dlopen_interposers_are_hooks),
        T(continued_script_and_environment_file_lines_are_manual),
        T(env_and_sh_c_wrappers_in_exec_start_are_hooks),
        T(driver_names_inside_the_ollama_tree),
        T(owned_paths_are_never_reported),
        T(root_with_a_trailing_slash_reports_the_same_runtime_paths),
        cmocka_unit_test(driver_identity_follows_marker_and_exports),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
