/* manifest: format -> parse round trips (hostile paths included), every kind of corrupt
 * input rejected with -EBADMSG and the line, the put/remove/uses_backup bookkeeping, and
 * save/load through a temporary state dir. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "manifest.h"
#include "testutil.h"

#define HASH_A "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
#define HASH_B "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static struct vp_entry file_entry(const char *path, const char *backup)
{
    struct vp_entry e = {
        .kind = VP_ENTRY_FILE,
        .path = vp_xstrdup(path),
        .role = vp_xstrdup("executable"),
        .orig = {.size = 123456789012ull, .mtime_ns = -1700000000123456789ll, .ino = 42,
                 .dev = 2049},
        .patched = {.size = 7, .mtime_ns = 5, .ino = UINT64_MAX, .dev = 0},
        .mode = 04755,
        .uid = 1000,
        .gid = 65534,
        .backup = vp_xstrdup(backup),
        .method = vp_xstrdup("segment"),
        .edits = vp_xstrdup("add DT_NEEDED /usr/lib/vgpu/libvgpu-cuda.so.1; replace a=b"),
    };
    memcpy(e.orig.b3, HASH_A, sizeof(HASH_A));
    memcpy(e.patched.b3, HASH_B, sizeof(HASH_B));
    return e;
}

static struct vp_entry link_entry(const char *path, const char *target)
{
    return (struct vp_entry){.kind = VP_ENTRY_LINK, .path = vp_xstrdup(path),
                             .role = vp_xstrdup("link"), .target = vp_xstrdup(target)};
}

static const char *const hostile = "/opt/my ollama/bin/olla=ma%20\nnext\t#x";

static void build(struct vp_manifest *m)
{
    *m = (struct vp_manifest){.root = vp_xstrdup("/fake root/%")};
    struct vp_manifest_install *in = vp_manifest_install(m, "/opt/my ollama");
    in->shim_dir = vp_xstrdup("/usr/lib/vgpu=x");
    in->version = vp_xstrdup("0.30.1");
    in->eras = vp_xstrdup("E");
    struct vp_entry e = file_entry(hostile, "/var/lib/vgpu-patch/backups/a b%");
    vp_manifest_put(in, &e);
    e = link_entry("/opt/my ollama/lib/ollama/libcuda.so.1", "/usr/lib/vgpu x/libvgpu-cuda.so.1");
    vp_manifest_put(in, &e);
    struct vp_manifest_install *in2 = vp_manifest_install(m, "/usr/local");
    in2->shim_dir = vp_xstrdup("/usr/lib/vgpu");
    e = file_entry("/usr/local/bin/ollama", "/var/lib/vgpu-patch/backups/1");
    vp_manifest_put(in2, &e);
}

static void assert_same_fileid(const struct vp_fileid *a, const struct vp_fileid *b)
{
    assert_string_equal(a->b3, b->b3);
    assert_int_equal(a->size, b->size);
    assert_int_equal(a->mtime_ns, b->mtime_ns);
    assert_int_equal(a->ino, b->ino);
    assert_int_equal(a->dev, b->dev);
}

static void format_then_parse_gives_back_every_field(void **state)
{
    (void)state;
    struct vp_manifest m, back;
    build(&m);
    _cleanup_(freep) char *text = vp_manifest_format(&m);
    /* One record per line, whatever the paths hold: magic, root, 2 installs, 3 entries, end. */
    size_t lines = 0;
    for (const char *p = text; *p; p++)
        lines += *p == '\n';
    assert_int_equal(lines, 8);
    assert_true(vp_startswith(text, VP_MANIFEST_MAGIC "\n"));
    assert_int_equal(vp_manifest_parse(text, strlen(text), &back), 0);
    assert_string_equal(back.root, m.root);
    assert_int_equal(back.n, 2);
    for (size_t i = 0; i < m.n; i++) {
        const struct vp_manifest_install *a = &m.installs[i], *b = &back.installs[i];
        assert_string_equal(b->prefix, a->prefix);
        assert_string_equal(b->shim_dir, a->shim_dir);
        assert_int_equal(b->n, a->n);
        for (size_t k = 0; k < a->n; k++) {
            const struct vp_entry *x = &a->entries[k], *y = &b->entries[k];
            assert_int_equal(y->kind, x->kind);
            assert_string_equal(y->path, x->path);
            assert_string_equal(y->role, x->role);
            if (x->kind == VP_ENTRY_LINK) {
                assert_string_equal(y->target, x->target);
                continue;
            }
            assert_same_fileid(&y->orig, &x->orig);
            assert_same_fileid(&y->patched, &x->patched);
            assert_int_equal(y->mode, x->mode);
            assert_int_equal(y->uid, x->uid);
            assert_int_equal(y->gid, x->gid);
            assert_string_equal(y->backup, x->backup);
            assert_string_equal(y->method, x->method);
            assert_string_equal(y->edits, x->edits);
        }
    }
    assert_string_equal(back.installs[0].entries[0].path, hostile);
    assert_string_equal(back.installs[0].version, "0.30.1");
    /* Formatting what was parsed gives the same text. */
    _cleanup_(freep) char *again = vp_manifest_format(&back);
    assert_string_equal(again, text);
    vp_manifest_release(&m);
    vp_manifest_release(&back);
}

static void installs_without_entries_are_not_written(void **state)
{
    (void)state;
    struct vp_manifest m;
    build(&m);
    struct vp_manifest_install *in = vp_manifest_install(&m, "/usr/local");
    vp_manifest_remove(in, "/usr/local/bin/ollama");
    assert_int_equal(in->n, 0);
    vp_manifest_install(&m, "/never/patched");
    _cleanup_(freep) char *text = vp_manifest_format(&m);
    assert_null(strstr(text, "prefix=/usr/local"));
    assert_null(strstr(text, "/never/patched"));
    struct vp_manifest back;
    assert_int_equal(vp_manifest_parse(text, strlen(text), &back), 0);
    assert_int_equal(back.n, 1);
    assert_int_equal(vp_manifest_count(&back), 2);
    vp_manifest_release(&back);
    vp_manifest_release(&m);
}

static void mechanism_records_survive_without_entries(void **state)
{
    (void)state;
    struct vp_manifest m = {0};
    struct vp_manifest_install *audit = vp_manifest_install(&m, "/opt/ollama");
    audit->shim_dir = vp_xstrdup("/usr/lib/vgpu");
    audit->mechanism = vp_xstrdup("audit");
    audit->delivery = vp_xstrdup("launcher");
    audit->requested = vp_xstrdup("audit");
    struct vp_manifest_install *gone = vp_manifest_install(&m, "/usr/local");
    gone->shim_dir = vp_xstrdup("/usr/lib/vgpu");
    gone->mechanism = vp_xstrdup("none");
    gone->restored = vp_xstrdup("1");
    assert_string_equal(vp_manifest_mechanism(&m), "audit");
    assert_string_equal(vp_manifest_delivery(&m), "launcher");
    _cleanup_(freep) char *text = vp_manifest_format(&m);
    struct vp_manifest back;
    assert_int_equal(vp_manifest_parse(text, strlen(text), &back), 0);
    assert_int_equal(back.n, 2);
    assert_int_equal(vp_manifest_count(&back), 0);
    assert_string_equal(vp_install_mechanism(&back.installs[0]), "audit");
    assert_string_equal(vp_install_delivery(&back.installs[0]), "launcher");
    assert_string_equal(back.installs[0].requested, "audit");
    assert_string_equal(vp_install_mechanism(&back.installs[1]), "none");
    assert_null(vp_install_delivery(&back.installs[1]));
    assert_string_equal(back.installs[1].restored, "1");
    vp_manifest_release(&back);
    vp_manifest_release(&m);
}

static void records_from_before_mechanisms_read_as_patch(void **state)
{
    (void)state;
    struct vp_manifest m;
    build(&m); /* entries, no mechanism recorded */
    assert_string_equal(vp_manifest_mechanism(&m), "patch");
    assert_string_equal(vp_manifest_delivery(&m), "elf");
    vp_manifest_release(&m);
    struct vp_manifest none = {0};
    assert_string_equal(vp_manifest_mechanism(&none), "none");
    assert_null(vp_manifest_delivery(&none));
}

/* Parses text that must be rejected; the message must name `where`. */
static void assert_corrupt(const char *text, size_t len, const char *where)
{
    struct vp_manifest m = {.n = 99}; /* must not be written */
    vp_clear_error();
    int r = vp_manifest_parse(text, len, &m);
    if (r != -EBADMSG || !strstr(vp_last_error(), where))
        print_message("input:\n%.*s\nr=%d message: %s (want '%s')\n", (int)len, text, r,
                      vp_last_error(), where);
    assert_int_equal(r, -EBADMSG);
    assert_non_null(strstr(vp_last_error(), where));
    assert_int_equal(m.n, 99);
}

#define GOOD_FILE                                                                           \
    "file path=/p/bin/ollama role=executable orig_blake3=" HASH_A " orig_size=1 "            \
    "orig_mtime_ns=2 orig_ino=3 orig_dev=4 patched_blake3=" HASH_B " patched_size=5 "        \
    "patched_mtime_ns=6 patched_ino=7 patched_dev=8 mode=0755 uid=0 gid=0 backup=/b "        \
    "method=segment edits=x\n"
#define HEAD VP_MANIFEST_MAGIC "\nroot path=/\ninstall prefix=/p shim_dir=/s version=1 eras=C\n"

static void corrupt_inputs_are_rejected_with_the_line(void **state)
{
    (void)state;
    /* The good text parses: each case below differs from it in one way. */
    static const char good[] = HEAD GOOD_FILE "end\n";
    struct vp_manifest m;
    assert_int_equal(vp_manifest_parse(good, strlen(good), &m), 0);
    assert_int_equal(vp_manifest_count(&m), 1);
    vp_manifest_release(&m);

    static const struct {
        const char *text, *where;
    } cases[] = {
        {"vgpu-patch-manifest 2\nroot path=/\nend\n", "not a version 1"},
        {"vgpu-patch-manifest 1 \nend\n", "not a version 1"},
        {"", "not a version 1"},
        {HEAD GOOD_FILE, "no end record"},
        {HEAD "file path=/p/bin/ollama role=executable", "line 4 is cut short"},
        {HEAD GOOD_FILE "link path=/p/l role=link target=/t bogus=1\nend\n", "line 5"},
        {HEAD "file path=/p/bin/ollama orig_blake3=XYZ backup=/b\nend\n", "line 4"},
        {HEAD "file path=/p/bin/ollama orig_blake3=" HASH_A "0 backup=/b\nend\n", "line 4"},
        {HEAD "file path=/p/bin/ollama orig_blake3=AF1349B9F5F9A1A6A0404DEA36DCC9499BCB25C9"
              "ADC112B7CC9A93CAE41F3262 backup=/b\nend\n",
         "line 4"},
        {VP_MANIFEST_MAGIC "\nroot path=/\n" GOOD_FILE "end\n", "line 3"},
        {HEAD "file path=relative backup=/b\nend\n", "line 4"},
        {HEAD "file path=/x\nend\n", "line 4"},           /* a file without its backup */
        {HEAD "link path=/x role=link\nend\n", "line 4"}, /* a link without its target */
        {HEAD "file path=/x%zz backup=/b\nend\n", "line 4"},
        {HEAD "file path=/x backup=/b orig_size=-1\nend\n", "line 4"},
        {HEAD "file path=/x backup=/b mode=0999\nend\n", "line 4"},
        {HEAD "file path=/x backup=/b mode=017777\nend\n", "line 4"},
        {HEAD "file path=/x backup=/b uid=\nend\n", "line 4"},
        {HEAD "file path=/x backup=/b noequals\nend\n", "line 4"},
        {HEAD "install prefix=/q colour=red\nend\n", "line 4"},
        {HEAD "frobnicate path=/x\nend\n", "line 4"},
    };
    for (size_t i = 0; i < VP_ARRAY_SIZE(cases); i++)
        assert_corrupt(cases[i].text, strlen(cases[i].text), cases[i].where);
    static const char nul[] = HEAD "file path=/x\0y backup=/b\nend\n";
    assert_corrupt(nul, sizeof(nul) - 1, "NUL byte");
}

static void put_replaces_the_entry_for_the_same_path(void **state)
{
    (void)state;
    struct vp_manifest m = {0};
    struct vp_manifest_install *in = vp_manifest_install(&m, "/p");
    assert_ptr_equal(vp_manifest_install(&m, "/p"), in); /* found, not added twice */
    assert_int_equal(m.n, 1);
    struct vp_entry e = file_entry("/p/bin/ollama", "/s/backups/old");
    vp_manifest_put(in, &e);
    assert_null(e.path); /* ownership taken */
    e = file_entry("/p/lib/ollama/llama-server", "/s/backups/other");
    vp_manifest_put(in, &e);
    e = file_entry("/p/bin/ollama", "/s/backups/new");
    free(e.method);
    e.method = vp_xstrdup("in-place");
    vp_manifest_put(in, &e);
    assert_int_equal(in->n, 2);
    struct vp_entry *got = vp_manifest_find(in, "/p/bin/ollama");
    assert_non_null(got);
    assert_string_equal(got->backup, "/s/backups/new");
    assert_string_equal(got->method, "in-place");
    assert_false(vp_manifest_uses_backup(&m, "/s/backups/old"));
    assert_true(vp_manifest_uses_backup(&m, "/s/backups/new"));
    assert_true(vp_manifest_uses_backup(&m, "/s/backups/other"));
    assert_null(vp_manifest_find(in, "/p/missing"));
    vp_manifest_release(&m);
}

static void remove_drops_only_that_entry(void **state)
{
    (void)state;
    struct vp_manifest m = {0};
    struct vp_manifest_install *in = vp_manifest_install(&m, "/p");
    const char *paths[] = {"/p/a", "/p/b", "/p/c"};
    for (size_t i = 0; i < 3; i++) {
        _cleanup_(freep) char *b = vp_xasprintf("/s/backups/%zu", i);
        struct vp_entry e = file_entry(paths[i], b);
        vp_manifest_put(in, &e);
    }
    struct vp_entry l = link_entry("/p/l", "/shim");
    vp_manifest_put(in, &l);
    vp_manifest_remove(in, "/p/b");
    vp_manifest_remove(in, "/p/not-there");
    assert_int_equal(in->n, 3);
    assert_string_equal(in->entries[0].path, "/p/a");
    assert_string_equal(in->entries[1].path, "/p/c");
    assert_string_equal(in->entries[2].path, "/p/l");
    assert_false(vp_manifest_uses_backup(&m, "/s/backups/1"));
    assert_true(vp_manifest_uses_backup(&m, "/s/backups/2"));
    assert_int_equal(vp_manifest_count(&m), 3);
    vp_manifest_release(&m);
}

static void save_and_load_round_trip_through_the_state_dir(void **state)
{
    (void)state;
    char *dir = tu_tmpdir(NULL);
    struct vp_manifest m, back;
    /* Nothing saved yet: an empty manifest, not an error. */
    assert_int_equal(vp_manifest_load(dir, &back), 0);
    assert_int_equal(back.n, 0);
    vp_manifest_release(&back);

    build(&m);
    assert_int_equal(vp_manifest_save(dir, &m), 0);
    _cleanup_(freep) char *path = vp_path_join(dir, "manifest");
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    assert_int_equal(vp_manifest_load(dir, &back), 0);
    assert_int_equal(vp_manifest_count(&back), 3);
    assert_string_equal(back.installs[0].entries[0].path, hostile);
    vp_manifest_release(&back);
    vp_manifest_release(&m);

    /* A damaged file: -EBADMSG naming the file. */
    static const char cut[] = VP_MANIFEST_MAGIC "\nroot path=/\n";
    assert_int_equal(vp_write_file_atomic(path, cut, sizeof(cut) - 1, 0600), 0);
    vp_clear_error();
    assert_int_equal(vp_manifest_load(dir, &back), -EBADMSG);
    assert_non_null(strstr(vp_last_error(), path));
    assert_non_null(strstr(vp_last_error(), "no end record"));
    tu_rmtree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(format_then_parse_gives_back_every_field),
        cmocka_unit_test(installs_without_entries_are_not_written),
        cmocka_unit_test(mechanism_records_survive_without_entries),
        cmocka_unit_test(records_from_before_mechanisms_read_as_patch),
        cmocka_unit_test(corrupt_inputs_are_rejected_with_the_line),
        cmocka_unit_test(put_replaces_the_entry_for_the_same_path),
        cmocka_unit_test(remove_drops_only_that_entry),
        cmocka_unit_test(save_and_load_round_trip_through_the_state_dir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
