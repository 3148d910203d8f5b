/* migrate: the byte-exact removal of hook words and lines (ld.so.preload entries in the
 * middle of lines, between comments, with ':' and blank separators; Environment=
 * assignments; whole lines), what counts as an empty drop-in, package ownership from a
 * fake dpkg database, the plan's choice per file, and the ldconfig decision from a cache
 * built by ldconfig itself when the machine has one. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>
#include <sys/wait.h>

#include "migrate.h"
#include "testutil.h"

/* Applies drops to text and checks the result byte for byte. */
static void expect_drop(const char *text, const struct vp_drop *d, size_t n, const char *want)
{
    char *out = NULL;
    size_t len = 0;
    assert_int_equal(vp_text_drop(text, strlen(text), d, n, &out, &len), 0);
    assert_int_equal(len, strlen(want));
    assert_memory_equal(out, want, len);
    free(out);
}

static void preload_word_alone_on_its_line_takes_the_line(void **state)
{
    (void)state;
    struct vp_drop d = {2, VP_DROP_PRELOAD_WORD, "/usr/lib64/libcuda.so.1"};
    expect_drop("/usr/lib/x86_64-linux-gnu/libjemalloc.so.2\n/usr/lib64/libcuda.so.1\n"
                "# keep me\n",
                &d, 1, "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2\n# keep me\n");
    /* Leading blanks and no final newline. */
    struct vp_drop e = {1, VP_DROP_PRELOAD_WORD, "/x/libvgpu-cuda.so"};
    expect_drop("  /x/libvgpu-cuda.so", &e, 1, "");
}

static void preload_words_in_the_middle_keep_their_neighbours(void **state)
{
    (void)state;
    struct vp_drop mid = {1, VP_DROP_PRELOAD_WORD, "/opt/shim/libcuda.so.1"};
    expect_drop("/a.so:/opt/shim/libcuda.so.1:/b.so\n", &mid, 1, "/a.so:/b.so\n");
    expect_drop("/a.so /opt/shim/libcuda.so.1\t/b.so\n", &mid, 1, "/a.so /b.so\n");
    /* Last word: the separator before it goes, the rest of the line stays. */
    expect_drop("/a.so\t/opt/shim/libcuda.so.1\n", &mid, 1, "/a.so\n");
    /* First word, then a comment: the comment stays where it was. */
    expect_drop("/opt/shim/libcuda.so.1 /a.so # why\n", &mid, 1, "/a.so # why\n");
    expect_drop("/a.so /opt/shim/libcuda.so.1 # why\n", &mid, 1, "/a.so # why\n");
}

static void preload_words_in_comments_are_not_entries(void **state)
{
    (void)state;
    /* The name in the comment is not the entry: the entry after it is not on that line. */
    struct vp_drop d = {1, VP_DROP_PRELOAD_WORD, "/opt/libcuda.so.1"};
    char *out = NULL;
    size_t len;
    const char *text = "# /opt/libcuda.so.1\n";
    assert_int_equal(vp_text_drop(text, strlen(text), &d, 1, &out, &len), -ESTALE);
    assert_null(out);
    /* A word that merely starts like the entry is another entry. */
    text = "/opt/libcuda.so.1.bak\n";
    assert_int_equal(vp_text_drop(text, strlen(text), &d, 1, &out, &len), -ESTALE);
}

static void two_hooks_on_one_line_and_a_repeated_entry(void **state)
{
    (void)state;
    const struct vp_drop d[] = {{1, VP_DROP_PRELOAD_WORD, "/s/libcuda.so.1"},
                                {1, VP_DROP_PRELOAD_WORD, "/s/libnvidia-ml.so.1"},
                                {3, VP_DROP_PRELOAD_WORD, "/s/libcuda.so.1"},
                                {3, VP_DROP_PRELOAD_WORD, "/s/libcuda.so.1"}};
    expect_drop("/s/libcuda.so.1 /keep.so:/s/libnvidia-ml.so.1\n\n"
                "/s/libcuda.so.1 /s/libcuda.so.1\n",
                d, 4, "/keep.so\n\n");
}

static void environment_assignments_go_word_by_word(void **state)
{
    (void)state;
    struct vp_drop d = {2, VP_DROP_ASSIGNMENT, "LD_PRELOAD"};
    expect_drop("[Service]\nEnvironment=\"LD_PRELOAD=/opt/vgpu/libcuda.so.1\"\nLimitNOFILE=1\n",
                &d, 1, "[Service]\nLimitNOFILE=1\n");
    expect_drop("[Service]\nEnvironment=OLLAMA_DEBUG=1 LD_PRELOAD=/x.so \"A=b c\"\n", &d, 1,
                "[Service]\nEnvironment=OLLAMA_DEBUG=1 \"A=b c\"\n");
    expect_drop("[Service]\n  Environment=LD_PRELOAD=/x.so OLLAMA_DEBUG=1\n", &d, 1,
                "[Service]\n  Environment=OLLAMA_DEBUG=1\n");
    expect_drop("[Service]\nEnvironment=\"A=1\" 'LD_PRELOAD=/x y.so'\n", &d, 1,
                "[Service]\nEnvironment=\"A=1\"\n");
    /* MY_LD_PRELOAD is another variable. */
    char *out = NULL;
    size_t len;
    const char *text = "x\nEnvironment=MY_LD_PRELOAD=/x.so\n";
    assert_int_equal(vp_text_drop(text, strlen(text), &d, 1, &out, &len), -ESTALE);
}

static void whole_lines_and_crlf_and_missing_lines(void **state)
{
    (void)state;
    const struct vp_drop d[] = {{1, VP_DROP_LINE, NULL}, {3, VP_DROP_LINE, NULL}};
    expect_drop("LD_PRELOAD=/x.so\r\nLANG=C\r\nexport LD_AUDIT=/a.so\r\n", d, 2, "LANG=C\r\n");
    char *out = NULL;
    size_t len;
    const struct vp_drop far = {9, VP_DROP_LINE, NULL};
    assert_int_equal(vp_text_drop("a\nb\n", 4, &far, 1, &out, &len), -ESTALE);
    /* No drop: the same bytes. */
    expect_drop("a\n\n  b", NULL, 0, "a\n\n  b");
}

static void sets_nothing_means_comments_headers_and_blanks(void **state)
{
    (void)state;
    const char *empty = "[Service]\n# the old vGPU hook\n; x\n\n   \n";
    assert_true(vp_text_sets_nothing(empty, strlen(empty)));
    assert_true(vp_text_sets_nothing("", 0));
    const char *full = "[Service]\nLimitNOFILE=65536\n";
    assert_false(vp_text_sets_nothing(full, strlen(full)));
}

/* A package installed in root's dpkg database, owning the paths of list. */
static void fake_package(const char *root, const char *name, const char *list)
{
    tu_put(root, "var/lib/dpkg/updates/.keep", "");
    _cleanup_(freep) char *status = vp_path_join(root, "var/lib/dpkg/status");
    FILE *f = fopen(status, "a");
    assert_non_null(f);
    fprintf(f,
            "Package: %s\nStatus: install ok installed\nVersion: 1.0\nArchitecture: amd64\n"
            "Maintainer: Nobody <nobody@example.org>\nDescription: a test package\n\n",
            name);
    fclose(f);
    _cleanup_(freep) char *rel = vp_xasprintf("var/lib/dpkg/info/%s.list", name);
    tu_put(root, rel, list);
}

static void dpkg_owner_from_the_package_database(void **state)
{
    const char *root = *state;
    if (access("/usr/bin/dpkg-query", X_OK) != 0)
        skip();
    fake_package(root, "libfoo1",
                 "/.\n/usr\n/usr/lib/x86_64-linux-gnu/libcuda.so.1\n/usr/lib/x86_64-linux-gnu/x\n");
    fake_package(root, "bar", "/lib/x86_64-linux-gnu/libnvidia-ml.so.1\n");
    char *o = vp_dpkg_owner(root, "/usr/lib/x86_64-linux-gnu/libcuda.so.1");
    assert_non_null(o);
    assert_string_equal(o, "libfoo1");
    free(o);
    /* Merged /usr: /usr/lib/... is the /lib/... the package lists. */
    o = vp_dpkg_owner(root, "/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.1");
    assert_non_null(o);
    assert_string_equal(o, "bar");
    free(o);
    assert_null(vp_dpkg_owner(root, "/usr/lib/x86_64-linux-gnu/libcuda.so"));
    assert_null(vp_dpkg_owner(root, "/usr/lib64/libcuda.so.1"));
}

static void plan_edits_disables_keeps_and_removes(void **state)
{
    const char *root = *state;
    tu_put(root, "etc/ld.so.preload", "/usr/lib/libjemalloc.so.2 /opt/old/libcuda.so.1\n");
    tu_put(root, "etc/systemd/system/ollama.service.d/vgpu.conf",
           "[Service]\nEnvironment=\"LD_PRELOAD=/opt/old/libcuda.so.1\"\n");
    tu_put(root, "etc/systemd/system/ollama.service.d/host.conf",
           "[Service]\nEnvironment=\"OLLAMA_HOST=0.0.0.0\" \"LD_AUDIT=/a.so\"\n");
    if (access("/usr/bin/dpkg-query", X_OK) != 0)
        skip();
    fake_package(root, "oldshim", "/usr/lib64/libcuda.so.1\n");
    struct vp_hooks h = {0};
    const struct {
        enum vp_hook_kind kind;
        const char *file;
        unsigned line;
        const char *arg;
        bool in_unit;
    } hooks[] = {
        {VP_HOOK_PRELOAD_FILE, "/etc/ld.so.preload", 1, "/opt/old/libcuda.so.1", false},
        {VP_HOOK_UNIT_ENV, "/etc/systemd/system/ollama.service.d/vgpu.conf", 2, "LD_PRELOAD",
         false},
        {VP_HOOK_UNIT_ENV, "/etc/systemd/system/ollama.service.d/host.conf", 2, "LD_AUDIT",
         false},
        {VP_HOOK_SYSTEM_LIB, "/usr/lib64/libcuda.so.1", 0, NULL, false},
        {VP_HOOK_SYSTEM_LIB, "/usr/lib64/libnvidia-ml.so.1", 0, NULL, false},
        {VP_HOOK_EXEC_WRAPPER, "/etc/systemd/system/ollama.service", 3, "/w", true},
    };
    h.v = vp_xcalloc(VP_ARRAY_SIZE(hooks), sizeof(*h.v));
    for (size_t i = 0; i < VP_ARRAY_SIZE(hooks); i++) {
        h.v[h.n++] = (struct vp_hook){.kind = hooks[i].kind, .file = vp_xstrdup(hooks[i].file),
                                      .line = hooks[i].line, .what = vp_xstrdup("x"),
                                      .why = vp_xstrdup("y"),
                                      .arg = hooks[i].arg ? vp_xstrdup(hooks[i].arg) : NULL,
                                      .in_unit = hooks[i].in_unit};
    }
    struct vp_migrate_plan p;
    assert_int_equal(vp_migrate_plan(root, &h, &p), 0);
    static const enum vp_migrate_action want[] = {
        VP_MIGRATE_EDIT, VP_MIGRATE_DISABLE, VP_MIGRATE_EDIT, VP_MIGRATE_KEEP_PACKAGE,
        VP_MIGRATE_REMOVE, VP_MIGRATE_KEEP_MANUAL};
    assert_int_equal(p.n, VP_ARRAY_SIZE(want));
    for (size_t i = 0; i < p.n; i++)
        assert_int_equal(p.files[p.of_hook[i]].action, want[i]);
    assert_string_equal(p.files[1].to,
                        "/etc/systemd/system/ollama.service.d/vgpu.conf.disabled-by-vgpu-patch");
    assert_string_equal(p.files[3].package, "oldshim");
    assert_int_equal(vp_migrate_kept(&p), 2);
    vp_migrate_plan_release(&p);
    vp_hooks_release(&h);
}

/* The cache ldconfig builds for a fake root names the library there: removing it needs
 * ldconfig, removing another file does not. */
static void ldconfig_only_when_the_cache_names_a_removed_file(void **state)
{
    const char *root = *state;
    if (access("/sbin/ldconfig", X_OK) != 0 || geteuid() != 0)
        skip(); /* ldconfig -r needs root (chroot) */
    tu_put_fixture(root, "usr/lib64/libcuda.so.1", "legacy/libcuda.so.1");
    tu_put(root, "etc/ld.so.conf", "/usr/lib64\n");
    char *msg = NULL;
    int r = vp_ldconfig_run(root, &msg);
    print_message("%s\n", msg);
    free(msg);
    assert_int_equal(r, 0);
    struct vp_strv paths = {0};
    vp_strv_push(&paths, "/usr/lib64/libnvidia-ml.so.1");
    assert_false(vp_migrate_cache_names(root, &paths));
    vp_strv_push(&paths, "/usr/lib64/libcuda.so.1");
    assert_true(vp_migrate_cache_names(root, &paths));
    vp_strv_release(&paths);
}

#define T(f) cmocka_unit_test_setup_teardown(f, tu_setup_tmpdir, tu_teardown_tmpdir)

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(preload_word_alone_on_its_line_takes_the_line),
        cmocka_unit_test(preload_words_in_the_middle_keep_their_neighbours),
        cmocka_unit_test(preload_words_in_comments_are_not_entries),
        cmocka_unit_test(two_hooks_on_one_line_and_a_repeated_entry),
        cmocka_unit_test(environment_assignments_go_word_by_word),
        cmocka_unit_test(whole_lines_and_crlf_and_missing_lines),
        cmocka_unit_test(sets_nothing_means_comments_headers_and_blanks),
        T(dpkg_owner_from_the_package_database),
        T(plan_edits_disables_keeps_and_removes),
        T(ldconfig_only_when_the_cache_names_a_removed_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
