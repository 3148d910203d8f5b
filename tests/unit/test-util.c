/* util: path helpers (lexical and inside a fake root), escaping, small-file I/O, mkdir -p,
 * globbing under a root and the per-thread error message. Everything that touches the file
 * system works in a mkdtemp directory that each test removes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

#include "testutil.h"
#include "util.h"

#define ASSERT_STR_FREE(expr, want)                                                          \
    do {                                                                                     \
        char *got_ = (expr);                                                                 \
        assert_string_equal(got_, want);                                                     \
        free(got_);                                                                          \
    } while (0)

static void path_join_puts_exactly_one_slash_between(void **state)
{
    (void)state;
    ASSERT_STR_FREE(vp_path_join("/a", "b"), "/a/b");
    ASSERT_STR_FREE(vp_path_join("/a/", "/b"), "/a/b");
    ASSERT_STR_FREE(vp_path_join("/a///", "//b/c"), "/a/b/c");
    ASSERT_STR_FREE(vp_path_join("/", "etc"), "/etc");
    ASSERT_STR_FREE(vp_path_join("/", "/etc"), "/etc");
    ASSERT_STR_FREE(vp_path_join("rel", "x"), "rel/x");
    ASSERT_STR_FREE(vp_path_join("/a", ""), "/a");
    ASSERT_STR_FREE(vp_rooted("/r", "/etc/x"), "/r/etc/x");
    ASSERT_STR_FREE(vp_rooted("/", "/etc/x"), "/etc/x");
    ASSERT_STR_FREE(vp_rooted(NULL, "/etc/x"), "/etc/x");
}

static void path_normalize_removes_dots_and_double_slashes(void **state)
{
    (void)state;
    ASSERT_STR_FREE(vp_path_normalize("/a/./b//c/../d"), "/a/b/d");
    ASSERT_STR_FREE(vp_path_normalize("//usr///lib/"), "/usr/lib");
    ASSERT_STR_FREE(vp_path_normalize("/a/."), "/a");
    ASSERT_STR_FREE(vp_path_normalize("/."), "/");
    ASSERT_STR_FREE(vp_path_normalize("/.."), "/");
    ASSERT_STR_FREE(vp_path_normalize("/a/b/../../../.."), "/");
    ASSERT_STR_FREE(vp_path_normalize("/a/../b/./../c"), "/c");
    ASSERT_STR_FREE(vp_path_normalize("/"), "/");
    ASSERT_STR_FREE(vp_path_normalize("/..a/b.."), "/..a/b..");
}

static void dirname_and_basename_split_at_the_last_slash(void **state)
{
    (void)state;
    ASSERT_STR_FREE(vp_dirname("/a/b/c"), "/a/b");
    ASSERT_STR_FREE(vp_dirname("/a"), "/");
    ASSERT_STR_FREE(vp_dirname("a"), ".");
    ASSERT_STR_FREE(vp_dirname("a/b"), "a");
    assert_string_equal(vp_basename("/a/b/c"), "c");
    assert_string_equal(vp_basename("c"), "c");
    assert_string_equal(vp_basename("/c"), "c");
}

static void escape_round_trips_hostile_strings(void **state)
{
    (void)state;
    static const char *const cases[] = {
        "",           "plain/path-1.2_x+y:z@h=v,w", "with space", "100%",   "%",
        "%25",        "line\nnext",                 "tab\there", "cr\rlf", "quote\"'",
        "\xc3\xa9t\xc3\xa9", "\x01\x7f\xff",         "#hash",     "a%b%c",  "back\\slash",
    };
    for (size_t i = 0; i < VP_ARRAY_SIZE(cases); i++) {
        _cleanup_(freep) char *e = vp_escape(cases[i]);
        /* One token of a line-oriented file: no blank, no line break, never empty. */
        assert_true(*e);
        assert_null(strpbrk(e, " \t\r\n"));
        _cleanup_(freep) char *u = NULL;
        assert_int_equal(vp_unescape(e, &u), 0);
        assert_string_equal(u, cases[i]);
    }
    ASSERT_STR_FREE(vp_escape("a b%"), "a%20b%25");
    ASSERT_STR_FREE(vp_escape(""), "%");
}

static void unescape_rejects_bad_escapes(void **state)
{
    (void)state;
    static const char *const bad[] = {"%G1", "%4", "abc%", "%%", "x%0", "%00", "a%zzb"};
    for (size_t i = 0; i < VP_ARRAY_SIZE(bad); i++) {
        char *u = (char *)0x1;
        vp_clear_error();
        assert_int_equal(vp_unescape(bad[i], &u), -EINVAL);
        assert_ptr_equal(u, (char *)0x1); /* not written on failure */
        assert_non_null(strstr(vp_last_error(), "bad escape"));
    }
    _cleanup_(freep) char *u = NULL;
    assert_int_equal(vp_unescape("%2f%2F", &u), 0);
    assert_string_equal(u, "//");
}

static void root_realpath_follows_links_inside_the_root(void **state)
{
    (void)state;
    char *root = tu_tmpdir(NULL);
    tu_put(root, "usr/lib/real/libx.so.1", "x");
    tu_lnk(root, "lib", "usr/lib");                    /* relative, at the top */
    tu_lnk(root, "abs", "/usr/lib/real");              /* absolute: from the root, not "/" */
    tu_lnk(root, "usr/lib/real/libx.so", "libx.so.1"); /* relative, beside its target */
    tu_lnk(root, "chain1", "chain2");
    tu_lnk(root, "chain2", "/abs/libx.so");
    tu_lnk(root, "escape", "../../../../../../usr/lib"); /* ".." stops at the root */
    tu_lnk(root, "usr/lib/up", "../../usr/lib/real");
    tu_lnk(root, "usr/share/deep/abs", "/usr/lib/real"); /* absolute, deep: restarts at root */
    static const struct {
        const char *in, *want;
    } cases[] = {
        {"/lib/real/libx.so.1", "/usr/lib/real/libx.so.1"},
        {"/abs/libx.so", "/usr/lib/real/libx.so.1"},
        {"/chain1", "/usr/lib/real/libx.so.1"},
        {"/escape/real", "/usr/lib/real"},
        {"/usr/lib/up/libx.so", "/usr/lib/real/libx.so.1"},
        {"/usr/share/deep/abs/libx.so", "/usr/lib/real/libx.so.1"},
        {"/lib/../etc", "/usr/etc"}, /* ".." after a link: the link's target's parent */
        {"/usr/./lib//real/", "/usr/lib/real"},
        {"/lib/missing/tail", "/usr/lib/missing/tail"},
        {"/../../usr", "/usr"},
        {"/", "/"},
    };
    for (size_t i = 0; i < VP_ARRAY_SIZE(cases); i++) {
        _cleanup_(freep) char *got = NULL;
        assert_int_equal(vp_root_realpath(root, cases[i].in, &got), 0);
        if (strcmp(got, cases[i].want) != 0)
            print_message("%s: got %s, want %s\n", cases[i].in, got, cases[i].want);
        assert_string_equal(got, cases[i].want);
    }
    tu_rmtree(root);
}

static void root_realpath_reports_loops_and_relative_input(void **state)
{
    (void)state;
    char *root = tu_tmpdir(NULL);
    tu_lnk(root, "loop1", "loop2");
    tu_lnk(root, "loop2", "/loop1");
    tu_lnk(root, "self", "self");
    char *got = (char *)0x1;
    assert_int_equal(vp_root_realpath(root, "/loop1/x", &got), -ELOOP);
    assert_int_equal(vp_root_realpath(root, "/self", &got), -ELOOP);
    assert_int_equal(vp_root_realpath(root, "relative/path", &got), -EINVAL);
    assert_ptr_equal(got, (char *)0x1);
    tu_rmtree(root);
}

static void read_file_reads_all_and_nul_terminates(void **state)
{
    (void)state;
    char *d = tu_tmpdir(NULL);
    _cleanup_(freep) char *p = vp_path_join(d, "f");
    char big[10000];
    for (size_t i = 0; i < sizeof(big); i++)
        big[i] = (char)('a' + i % 26);
    big[sizeof(big) - 1] = '\0';
    tu_put(d, "f", big);
    _cleanup_(freep) char *text = NULL;
    size_t len = 0;
    assert_int_equal(vp_read_file(p, sizeof(big), &text, &len), 0);
    assert_int_equal(len, sizeof(big) - 1);
    assert_string_equal(text, big);
    char *none = NULL;
    _cleanup_(freep) char *missing = vp_path_join(d, "missing");
    assert_int_equal(vp_read_file(missing, 100, &none, NULL), -ENOENT);
    assert_null(none);
    tu_rmtree(d);
}

static void read_file_refuses_a_file_larger_than_the_limit(void **state)
{
    (void)state;
    char *d = tu_tmpdir(NULL);
    char *p = vp_path_join(d, "f");
    char text[1001];
    memset(text, 'x', 1000);
    text[1000] = '\0';
    tu_put(d, "f", text);
    char *got = NULL;
    /* Exactly the limit is fine. */
    assert_int_equal(vp_read_file(p, 1000, &got, NULL), 0);
    free(got);
    got = NULL;
    int r = vp_read_file(p, 10, &got, NULL);
    free(got);
    free(p);
    tu_rmtree(d);
    /* The limit holds whatever the size of the read buffer. */
    assert_int_equal(r, -EFBIG);
}

static void write_file_atomic_replaces_content_and_mode_without_leftovers(void **state)
{
    (void)state;
    mode_t old = umask(022);
    char *d = tu_tmpdir(NULL);
    _cleanup_(freep) char *p = vp_path_join(d, "state");
    tu_put(d, "state", "old contents that are longer");
    struct stat before, after;
    assert_int_equal(stat(p, &before), 0);
    assert_int_equal(vp_write_file_atomic(p, "new\n", 4, 0640), 0);
    assert_int_equal(stat(p, &after), 0);
    assert_int_equal(after.st_mode & 07777, 0640);
    assert_int_equal(after.st_size, 4);
    assert_int_not_equal(after.st_ino, before.st_ino); /* renamed over, not rewritten */
    _cleanup_(freep) char *text = NULL;
    assert_int_equal(vp_read_file(p, 100, &text, NULL), 0);
    assert_string_equal(text, "new\n");
    _cleanup_(freep) char *tmp = vp_xasprintf("%s.tmp", p);
    assert_int_equal(access(tmp, F_OK), -1);
    /* A directory that does not exist: an error with a message, nothing created. */
    _cleanup_(freep) char *bad = vp_path_join(d, "no/such/file");
    vp_clear_error();
    assert_int_equal(vp_write_file_atomic(bad, "x", 1, 0600), -ENOENT);
    assert_non_null(strstr(vp_last_error(), "cannot create"));
    tu_rmtree(d);
    umask(old);
}

static void mkdir_p_gives_parents_0755_and_the_last_its_mode(void **state)
{
    (void)state;
    mode_t old = umask(022);
    char *d = tu_tmpdir(NULL);
    _cleanup_(freep) char *deep = vp_path_join(d, "a/b/c");
    assert_int_equal(vp_mkdir_p(deep, 0700), 0);
    static const struct {
        const char *rel;
        mode_t mode;
    } want[] = {{"a", 0755}, {"a/b", 0755}, {"a/b/c", 0700}};
    for (size_t i = 0; i < VP_ARRAY_SIZE(want); i++) {
        _cleanup_(freep) char *p = vp_path_join(d, want[i].rel);
        struct stat st;
        assert_int_equal(stat(p, &st), 0);
        assert_true(S_ISDIR(st.st_mode));
        assert_int_equal(st.st_mode & 07777, want[i].mode);
    }
    assert_int_equal(vp_mkdir_p(deep, 0700), 0); /* exists: fine */
    tu_put(d, "file", "x");
    _cleanup_(freep) char *file = vp_path_join(d, "file");
    assert_int_equal(vp_mkdir_p(file, 0700), -ENOTDIR);
    _cleanup_(freep) char *under = vp_path_join(d, "file/sub");
    assert_true(vp_mkdir_p(under, 0700) < 0);
    tu_rmtree(d);
    umask(old);
}

static void mkdir_p_gives_the_mode_to_a_last_component_with_a_trailing_slash(void **state)
{
    (void)state;
    mode_t old = umask(022);
    char *d = tu_tmpdir(NULL);
    char *p = vp_xasprintf("%s/private/", d);
    assert_int_equal(vp_mkdir_p(p, 0700), 0);
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    free(p);
    tu_rmtree(d);
    umask(old);
    /* With a trailing '/', the named directory still gets the mode asked for. */
    assert_int_equal(st.st_mode & 07777, 0700);
}

static void root_glob_returns_sorted_runtime_paths(void **state)
{
    (void)state;
    char *root = tu_tmpdir(NULL);
    tu_put(root, "etc/ld.so.conf.d/b.conf", "");
    tu_put(root, "etc/ld.so.conf.d/a.conf", "");
    tu_put(root, "etc/ld.so.conf.d/c.txt", "");
    struct vp_strv got = {0};
    vp_root_glob(root, "/etc/ld.so.conf.d/*.conf", &got);
    assert_int_equal(got.n, 2);
    assert_string_equal(got.v[0], "/etc/ld.so.conf.d/a.conf");
    assert_string_equal(got.v[1], "/etc/ld.so.conf.d/b.conf");
    vp_strv_release(&got);
    /* The same with a trailing slash on the root; no match appends nothing. */
    _cleanup_(freep) char *slashed = vp_xasprintf("%s/", root);
    vp_root_glob(slashed, "/etc/ld.so.conf.d/a.*", &got);
    assert_int_equal(got.n, 1);
    assert_string_equal(got.v[0], "/etc/ld.so.conf.d/a.conf");
    vp_root_glob(root, "/etc/nothing/*", &got);
    assert_int_equal(got.n, 1);
    vp_strv_release(&got);
    tu_rmtree(root);
}

static void error_can_wrap_its_own_previous_message(void **state)
{
    (void)state;
    assert_int_equal(vp_error(-EINVAL, "inner %d", 42), -EINVAL);
    assert_string_equal(vp_last_error(), "inner 42");
    assert_int_equal(vp_error(-EIO, "outer: %s", vp_last_error()), -EIO);
    assert_string_equal(vp_last_error(), "outer: inner 42");
    assert_int_equal(vp_error(-EIO, "%s / %s", vp_last_error(), vp_last_error()), -EIO);
    assert_string_equal(vp_last_error(), "outer: inner 42 / outer: inner 42");
    assert_int_equal(vp_error_errno(-ENOENT, "open %s", "x"), -ENOENT);
    assert_string_equal(vp_last_error(), "open x: No such file or directory");
    vp_clear_error();
    assert_string_equal(vp_last_error(), "");
    /* A message longer than the buffer is cut, not overflowed. */
    char longer[3000];
    memset(longer, 'm', sizeof(longer) - 1);
    longer[sizeof(longer) - 1] = '\0';
    vp_error(-EIO, "%s", longer);
    assert_true(strlen(vp_last_error()) < sizeof(longer) - 1);
    assert_true(vp_startswith(vp_last_error(), "mmmm"));
}

static void strv_split_skips_empty_fields(void **state)
{
    (void)state;
    struct vp_strv sv = {0};
    vp_strv_split(&sv, "::/a::/b c:", ": ");
    assert_int_equal(sv.n, 3);
    assert_string_equal(sv.v[0], "/a");
    assert_string_equal(sv.v[1], "/b");
    assert_string_equal(sv.v[2], "c");
    assert_null(sv.v[3]);
    assert_true(vp_strv_contains(&sv, "/b"));
    assert_false(vp_strv_contains(&sv, "/c"));
    vp_strv_release(&sv);
    assert_int_equal(sv.n, 0);
    assert_true(vp_startswith("libcuda.so.1", "libcuda"));
    assert_false(vp_startswith("lib", "libcuda"));
    assert_true(vp_endswith("x.conf", ".conf"));
    assert_false(vp_endswith("conf", ".conf"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(path_join_puts_exactly_one_slash_between),
        cmocka_unit_test(path_normalize_removes_dots_and_double_slashes),
        cmocka_unit_test(dirname_and_basename_split_at_the_last_slash),
        cmocka_unit_test(escape_round_trips_hostile_strings),
        cmocka_unit_test(unescape_rejects_bad_escapes),
        cmocka_unit_test(root_realpath_follows_links_inside_the_root),
        cmocka_unit_test(root_realpath_reports_loops_and_relative_input),
        cmocka_unit_test(read_file_reads_all_and_nul_terminates),
        cmocka_unit_test(read_file_refuses_a_file_larger_than_the_limit),
        cmocka_unit_test(write_file_atomic_replaces_content_and_mode_without_leftovers),
        cmocka_unit_test(mkdir_p_gives_parents_0755_and_the_last_its_mode),
        cmocka_unit_test(mkdir_p_gives_the_mode_to_a_last_component_with_a_trailing_slash),
        cmocka_unit_test(root_glob_returns_sorted_runtime_paths),
        cmocka_unit_test(error_can_wrap_its_own_previous_message),
        cmocka_unit_test(strv_split_skips_empty_fields),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
