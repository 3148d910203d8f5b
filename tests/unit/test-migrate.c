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
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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
    expect_drop("[Service]\nEnvironment=\"LD_PRELOAD=/opt/vgpu/libcuda.so.1\"\nLimitNOFILE=1\n", &d,
                1, "[Service]\nLimitNOFILE=1\n");
    expect_drop("[Service]\nEnvironment=OLLAMA_DEBUG=1 LD_PRELOAD=/x.so \"A=b c\"\n", &d, 1,
                "[Service]\nEnvironment=OLLAMA_DEBUG=1 \"A=b c\"\n");
    expect_drop("[Service]\n  Environment=LD_PRELOAD=/x.so OLLAMA_DEBUG=1\n", &d, 1,
                "[Service]\n  Environment=OLLAMA_DEBUG=1\n");
    expect_drop("[Service]\nEnvironment=\"A=1\" 'LD_PRELOAD=/x y.so'\n", &d, 1,
                "[Service]\nEnvironment=\"A=1\"\n");
    /* Blanks around the key's '=' are systemd's too. */
    expect_drop("[Service]\nEnvironment = LD_PRELOAD=/x.so A=1\n", &d, 1,
                "[Service]\nEnvironment = A=1\n");
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
    assert_true(vp_text_sets_nothing(empty, strlen(empty), true));
    assert_true(vp_text_sets_nothing("", 0, true));
    const char *full = "[Service]\nLimitNOFILE=65536\n";
    assert_false(vp_text_sets_nothing(full, strlen(full), true));
    /* In a script, `[ -d x ] && ...` is a command, not a section header. */
    const char *test = "# old\n[ -d /opt/old ] && export OLLAMA_MODELS=/data\n";
    assert_false(vp_text_sets_nothing(test, strlen(test), false));
    const char *noop = "# old\n  " VP_SHELL_NOOP "\n";
    assert_true(vp_text_sets_nothing(noop, strlen(noop), false));
    /* A NUL byte is content, not a blank. */
    assert_false(vp_text_sets_nothing("  \0x\n", 5, true));
}

static void script_lines_become_a_no_op(void **state)
{
    (void)state;
    const struct vp_drop d = {2, VP_DROP_SHELL_LINE, NULL};
    expect_drop("if [ -d /opt/old ]; then\n  export LD_PRELOAD=/opt/old/libcuda.so.1\nfi\n", &d, 1,
                "if [ -d /opt/old ]; then\n  " VP_SHELL_NOOP "\nfi\n");
    expect_drop("a\nLD_AUDIT=/x.so", &d, 1, "a\n" VP_SHELL_NOOP);
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

/* The owner of path (NULL: none); the query itself must succeed. */
static char *owner_of(const char *root, const char *path)
{
    char *o = NULL;
    assert_int_equal(vp_dpkg_owner(root, path, &o), 0);
    return o;
}

/* A fake dpkg-query: an old one that knows no --root, answering "pkg: PATH" for -S
 * (exit `rc` and `err` on stderr when rc is not 0). */
static char *fake_dpkg_query(const char *root, int rc, const char *err)
{
    _cleanup_(freep) char *text = vp_xasprintf(
        "#!/bin/sh\ncase $1 in --root=*) echo \"dpkg-query: unknown option $1\" >&2; exit 2 ;; "
        "esac\n[ %d -eq 0 ] || { echo '%s' >&2; exit %d; }\necho \"pkg: $2\"\n",
        rc, err, rc);
    tu_write(root, "bin/dpkg-query", text, strlen(text), 0755);
    return vp_path_join(root, "bin/dpkg-query");
}

static void dpkg_protection_fails_closed(void **state)
{
    const char *root = *state;
    char *o = NULL;
    /* An old dpkg-query (no --root): "/" asks without it. */
    _cleanup_(freep) char *bin = fake_dpkg_query(root, 0, "");
    assert_int_equal(vp_dpkg_owner_by(bin, "/", "/etc/environment", &o), 0);
    assert_non_null(o);
    assert_string_equal(o, "pkg");
    free(o);
    /* Another root needs --root: refused, it is an error, not "not owned". */
    assert_true(vp_dpkg_owner_by(bin, root, "/etc/environment", &o) < 0);
    vp_clear_error();
    /* Only exit 1 with "no path found" means not owned. */
    free(fake_dpkg_query(root, 1, "dpkg-query: no path found matching pattern /x"));
    assert_int_equal(vp_dpkg_owner_by(bin, "/", "/x", &o), 0);
    assert_null(o);
    free(fake_dpkg_query(root, 1, "dpkg-query: database is locked"));
    assert_true(vp_dpkg_owner_by(bin, "/", "/x", &o) < 0);
    vp_clear_error();
    free(fake_dpkg_query(root, 2, "dpkg-query: error"));
    assert_true(vp_dpkg_owner_by(bin, "/", "/x", &o) < 0);
    vp_clear_error();
    /* No dpkg-query: not owned only where there is no dpkg database. */
    assert_int_equal(vp_dpkg_owner_by(NULL, root, "/x", &o), 0);
    assert_null(o);
    tu_put(root, "var/lib/dpkg/status", "");
    assert_true(vp_dpkg_owner_by(NULL, root, "/x", &o) < 0);
    vp_clear_error();
}

static void dpkg_owner_from_the_package_database(void **state)
{
    const char *root = *state;
    if (access("/usr/bin/dpkg-query", X_OK) != 0)
        skip();
    fake_package(root, "libfoo1",
                 "/.\n/usr\n/usr/lib/x86_64-linux-gnu/libcuda.so.1\n/usr/lib/x86_64-linux-gnu/x\n");
    fake_package(root, "bar", "/lib/x86_64-linux-gnu/libnvidia-ml.so.1\n");
    char *o = owner_of(root, "/usr/lib/x86_64-linux-gnu/libcuda.so.1");
    assert_non_null(o);
    assert_string_equal(o, "libfoo1");
    free(o);
    /* Merged /usr: /usr/lib/... is the /lib/... the package lists. */
    o = owner_of(root, "/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.1");
    assert_non_null(o);
    assert_string_equal(o, "bar");
    free(o);
    assert_null(owner_of(root, "/usr/lib/x86_64-linux-gnu/libcuda.so"));
    assert_null(owner_of(root, "/usr/lib64/libcuda.so.1"));
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
        {VP_HOOK_UNIT_ENV, "/etc/systemd/system/ollama.service.d/host.conf", 2, "LD_AUDIT", false},
        {VP_HOOK_SYSTEM_LIB, "/usr/lib64/libcuda.so.1", 0, NULL, false},
        {VP_HOOK_SYSTEM_LIB, "/usr/lib64/libnvidia-ml.so.1", 0, NULL, false},
        {VP_HOOK_EXEC_WRAPPER, "/etc/systemd/system/ollama.service", 3, "/w", true},
    };
    h.v = vp_xcalloc(VP_ARRAY_SIZE(hooks), sizeof(*h.v));
    for (size_t i = 0; i < VP_ARRAY_SIZE(hooks); i++) {
        h.v[h.n++] = (struct vp_hook){.kind = hooks[i].kind,
                                      .file = vp_xstrdup(hooks[i].file),
                                      .line = hooks[i].line,
                                      .what = vp_xstrdup("x"),
                                      .why = vp_xstrdup("y"),
                                      .arg = hooks[i].arg ? vp_xstrdup(hooks[i].arg) : NULL,
                                      .in_unit = hooks[i].in_unit};
    }
    struct vp_migrate_plan p;
    assert_int_equal(vp_migrate_plan(root, &h, &p), 0);
    static const enum vp_migrate_action want[] = {VP_MIGRATE_EDIT,   VP_MIGRATE_DISABLE,
                                                  VP_MIGRATE_EDIT,   VP_MIGRATE_KEEP_PACKAGE,
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

/* ---- scan, plan and apply on a fake root ---- */

static void scan_plan(const char *root, struct vp_hooks *h, struct vp_migrate_plan *p)
{
    assert_int_equal(vp_hooks_scan(root, NULL, NULL, NULL, h), 0);
    for (size_t i = 0; i < h->n; i++)
        print_message("  hook %s:%u %s%s%s\n", h->v[i].file, h->v[i].line, h->v[i].what,
                      h->v[i].manual ? " manual: " : "", h->v[i].manual ? h->v[i].manual : "");
    assert_int_equal(vp_migrate_plan(root, h, p), 0);
}

/* Scans, plans and applies under root with its own state dir; returns apply's result. */
static int apply_plan(const char *root, struct vp_hooks *h, struct vp_migrate_plan *p);

static int migrate_root(const char *root)
{
    struct vp_hooks h;
    struct vp_migrate_plan p;
    scan_plan(root, &h, &p);
    return apply_plan(root, &h, &p);
}

/* Applies p (of the hooks h) under root with its own state dir; releases both. */
static int apply_plan(const char *root, struct vp_hooks *h, struct vp_migrate_plan *p)
{
    _cleanup_(freep) char *sd = vp_path_join(root, "var/lib/vgpu-patch");
    struct vp_state st;
    assert_int_equal(vp_state_open(sd, VP_STATE_CREATE | VP_STATE_LOCK, 1000, &st), 0);
    struct vp_manifest m;
    assert_int_equal(vp_manifest_load(st.dir, &m), 0);
    struct vp_strv changed = {0}, removed = {0};
    int r = vp_migrate_apply(root, &st, &m, p, &changed, &removed);
    vp_strv_release(&changed);
    vp_strv_release(&removed);
    vp_manifest_release(&m);
    vp_state_close(&st);
    vp_migrate_plan_release(p);
    vp_hooks_release(h);
    return r;
}

static char *slurp(const char *root, const char *rel)
{
    _cleanup_(freep) char *f = vp_path_join(root, rel);
    char *text = NULL;
    assert_int_equal(vp_read_file(f, 1 << 20, &text, NULL), 0);
    return text;
}

static void expect_file(const char *root, const char *rel, const char *want)
{
    _cleanup_(freep) char *text = slurp(root, rel);
    assert_string_equal(text, want);
}

/* The action planned for the file of the hook whose description contains what. */
static enum vp_migrate_action action_of(const struct vp_hooks *h, const struct vp_migrate_plan *p,
                                        const char *what)
{
    for (size_t i = 0; i < h->n; i++)
        if (strstr(h->v[i].what, what))
            return p->files[p->of_hook[i]].action;
    fail_msg("no hook '%s'", what);
    return VP_MIGRATE_REMOVE;
}

/* ROOT/usr/lib64 -> a host directory: the dangling driver link there is the host's. */
static void directory_links_never_lead_out_of_the_root(void **state)
{
    const char *root = *state;
    char *host = tu_tmpdir("host");
    tu_lnk(host, "libcuda.so.1", "/nowhere/libcuda.so.1");
    tu_lnk(root, "usr/lib64", host);
    tu_lnk(root, "etc/systemd/system/ollama.service.d", host);
    tu_put(host, "vgpu.conf", "[Service]\nEnvironment=LD_PRELOAD=/opt/old/libcuda.so.1\n");
    /* The scan does not look there. */
    struct vp_hooks h;
    assert_int_equal(vp_hooks_scan(root, NULL, NULL, NULL, &h), 0);
    assert_int_equal(h.n, 0);
    vp_hooks_release(&h);
    /* Nor do the plan and its transaction act there on the hooks a scan through the links
     * reported. */
    h = (struct vp_hooks){.v = vp_xcalloc(2, sizeof(struct vp_hook)), .n = 2};
    h.v[0] = (struct vp_hook){.kind = VP_HOOK_SYSTEM_LIB,
                              .file = vp_xstrdup("/usr/lib64/libcuda.so.1"),
                              .what = vp_xstrdup("x"),
                              .why = vp_xstrdup("y")};
    h.v[1] = (struct vp_hook){.kind = VP_HOOK_UNIT_ENV,
                              .file = vp_xstrdup("/etc/systemd/system/ollama.service.d/vgpu.conf"),
                              .line = 2,
                              .what = vp_xstrdup("x"),
                              .why = vp_xstrdup("y"),
                              .arg = vp_xstrdup("LD_PRELOAD")};
    struct vp_migrate_plan p;
    if (vp_migrate_plan(root, &h, &p) == 0) {
        _cleanup_(freep) char *sd = vp_path_join(root, "var/lib/vgpu-patch");
        struct vp_state st;
        assert_int_equal(vp_state_open(sd, VP_STATE_CREATE | VP_STATE_LOCK, 1000, &st), 0);
        struct vp_manifest m;
        assert_int_equal(vp_manifest_load(st.dir, &m), 0);
        struct vp_strv changed = {0}, removed = {0};
        vp_migrate_apply(root, &st, &m, &p, &changed, &removed);
        vp_strv_release(&changed);
        vp_strv_release(&removed);
        vp_manifest_release(&m);
        vp_state_close(&st);
        vp_migrate_plan_release(&p);
    }
    vp_hooks_release(&h);
    struct stat st;
    _cleanup_(freep) char *lib = vp_path_join(host, "libcuda.so.1");
    bool kept = lstat(lib, &st) == 0;
    _cleanup_(freep) char *conf = slurp(host, "vgpu.conf");
    tu_rmtree(host);
    assert_true(kept);
    assert_string_equal(conf, "[Service]\nEnvironment=LD_PRELOAD=/opt/old/libcuda.so.1\n");
}

static void scripts_keep_their_syntax_and_compound_lines_stay(void **state)
{
    const char *root = *state;
    tu_put(root, "etc/profile.d/old.sh",
           "if [ -d /opt/old ]; then\n    export LD_PRELOAD=/opt/old/libcuda.so.1\nfi\n"
           "[ -d /data ] && export OLLAMA_MODELS=/data\n");
    tu_put(root, "etc/profile.d/only.sh", "# old vgpu\nexport LD_PRELOAD=/opt/old/libcuda.so.1\n");
    tu_put(root, "etc/profile.d/both.sh",
           "export LD_PRELOAD=/opt/old/libcuda.so.1; export OLLAMA_MODELS=/data\n");
    tu_put(root, "etc/environment", "LANG=C\nLD_PRELOAD=/opt/old/libcuda.so.1\n");
    struct vp_hooks h;
    struct vp_migrate_plan p;
    scan_plan(root, &h, &p);
    assert_int_equal(h.n, 4);
    assert_int_equal(action_of(&h, &p, "OLLAMA_MODELS"), VP_MIGRATE_KEEP_MANUAL);
    vp_migrate_plan_release(&p);
    vp_hooks_release(&h);
    assert_int_equal(migrate_root(root), 0);
    expect_file(root, "etc/profile.d/old.sh",
                "if [ -d /opt/old ]; then\n    " VP_SHELL_NOOP "\nfi\n"
                "[ -d /data ] && export OLLAMA_MODELS=/data\n");
    expect_file(root, "etc/profile.d/only.sh.disabled-by-vgpu-patch",
                "# old vgpu\nexport LD_PRELOAD=/opt/old/libcuda.so.1\n");
    expect_file(root, "etc/profile.d/both.sh",
                "export LD_PRELOAD=/opt/old/libcuda.so.1; export OLLAMA_MODELS=/data\n");
    expect_file(root, "etc/environment", "LANG=C\n");
    _cleanup_(freep) char *sh = vp_path_join(root, "etc/profile.d/old.sh");
    _cleanup_(freep) char *cmd = vp_xasprintf("sh -n '%s'", sh);
    assert_int_equal(system(cmd), 0);
}

static void continued_unit_lines_are_read_whole_and_left_to_the_operator(void **state)
{
    const char *root = *state;
    tu_put(root, "etc/systemd/system/ollama.service.d/a.conf",
           "[Service]\nEnvironment=LD_PRELOAD=/opt/old/libcuda.so.1 \\\n  OLLAMA_HOST=0.0.0.0\n");
    tu_put(root, "etc/systemd/system/ollama.service.d/b.conf",
           "[Service]\nEnvironment=OLLAMA_HOST=0.0.0.0 \\\n  LD_PRELOAD=/opt/old/libcuda.so.1\n");
    tu_put(root, "etc/systemd/system/ollama.service.d/c.conf",
           "[Service]\nEnvironment = LD_PRELOAD=/opt/old/libcuda.so.1\n");
    struct vp_hooks h;
    struct vp_migrate_plan p;
    scan_plan(root, &h, &p);
    assert_int_equal(h.n, 3);
    for (size_t i = 0; i < h.n; i++) {
        assert_int_equal(h.v[i].line, 2);
        enum vp_migrate_action a = p.files[p.of_hook[i]].action;
        assert_int_equal(a, strstr(h.v[i].file, "c.conf") ? VP_MIGRATE_DISABLE
                                                          : VP_MIGRATE_KEEP_MANUAL);
    }
    assert_non_null(strstr(p.files[p.of_hook[0]].reason, "lines 2-3"));
    vp_migrate_plan_release(&p);
    vp_hooks_release(&h);
}

static void assignments_are_whole_words_and_a_mismatch_is_an_error(void **state)
{
    const char *root = *state;
    tu_put(root, "etc/systemd/system/ollama.service.d/flags.conf",
           "[Service]\nEnvironment=\"OLLAMA_FLAGS=--x LD_PRELOAD=/opt/old/libcuda.so.1\"\n");
    tu_put(root, "etc/default/ollama", "OLLAMA_FLAGS=\"--x LD_PRELOAD=/opt/old/libcuda.so.1\"\n");
    tu_put(root, "etc/systemd/system/ollama.service",
           "[Service]\nEnvironmentFile=/etc/default/ollama\nExecStart=/usr/bin/ollama serve\n");
    struct vp_hooks h;
    assert_int_equal(vp_hooks_scan(root, NULL, NULL, NULL, &h), 0);
    assert_int_equal(h.n, 0);
    vp_hooks_release(&h);
    /* A hook the edit cannot find: an error that says so, not "changed meanwhile". */
    h = (struct vp_hooks){.v = vp_xcalloc(1, sizeof(struct vp_hook)), .n = 1};
    h.v[0] = (struct vp_hook){.kind = VP_HOOK_UNIT_ENV,
                              .file = vp_xstrdup("/etc/systemd/system/ollama.service.d/flags.conf"),
                              .line = 2,
                              .what = vp_xstrdup("x"),
                              .why = vp_xstrdup("y"),
                              .arg = vp_xstrdup("LD_PRELOAD")};
    struct vp_migrate_plan p;
    int r = vp_migrate_plan(root, &h, &p);
    vp_hooks_release(&h);
    assert_int_not_equal(r, 0);
    assert_int_not_equal(r, -EAGAIN);
    assert_non_null(strstr(vp_last_error(), "by hand"));
}

static void loader_variables_are_judged_by_their_entries(void **state)
{
    const char *root = *state;
    tu_put_fixture(root, "opt/shim/libcuda.so.1", "legacy/libcuda.so.1");
    /* An allocator (any library that neither names nor interposes the driver). */
    tu_put_fixture(root, "usr/lib/x86_64-linux-gnu/libjemalloc.so.2",
                   "trees/c/lib/ollama/libggml-base.so");
    tu_put_fixture(root, "usr/lib/libjemalloc.so.2", "trees/c/lib/ollama/libggml-base.so");
    tu_put(root, "etc/systemd/system/ollama.service.d/jemalloc.conf",
           "[Service]\nEnvironment=LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2\n");
    tu_put(root, "etc/systemd/system/ollama.service.d/mixed.conf",
           "[Service]\nEnvironment=LD_LIBRARY_PATH=/opt/other/lib:/opt/shim\n");
    tu_put(root, "etc/systemd/system/ollama.service.d/shim.conf",
           "[Service]\nEnvironment=LD_LIBRARY_PATH=/opt/shim OLLAMA_DEBUG=1\n");
    tu_put(root, "etc/environment", "LD_PRELOAD=/opt/old/libcuda.so.1:/usr/lib/libjemalloc.so.2\n");
    struct vp_hooks h;
    struct vp_migrate_plan p;
    scan_plan(root, &h, &p);
    assert_int_equal(h.n, 3); /* jemalloc alone is no hook */
    assert_int_equal(action_of(&h, &p, "/opt/other/lib:/opt/shim"), VP_MIGRATE_KEEP_MANUAL);
    assert_int_equal(action_of(&h, &p, "OLLAMA_DEBUG"), VP_MIGRATE_EDIT);
    assert_int_equal(action_of(&h, &p, ":/usr/lib/libjemalloc.so.2"), VP_MIGRATE_KEEP_MANUAL);
    for (size_t i = 0; i < p.n; i++)
        if (p.files[i].action == VP_MIGRATE_KEEP_MANUAL)
            assert_non_null(strstr(p.files[i].reason, "/opt/"));
    vp_migrate_plan_release(&p);
    vp_hooks_release(&h);
}

static void reruns_find_a_free_name_and_follow_links(void **state)
{
    const char *root = *state;
    tu_put(root, "etc/systemd/system/ollama.service.d/old.conf",
           "[Service]\nEnvironment=LD_PRELOAD=/opt/old/libcuda.so.1\n");
    tu_put(root, "etc/systemd/system/ollama.service.d/old.conf.disabled-by-vgpu-patch", "x\n");
    tu_put(root, "opt/conf/link.conf",
           "[Service]\nEnvironment=LD_AUDIT=/opt/old/libvgpu-audit.so\n");
    tu_lnk(root, "etc/systemd/system/ollama.service.d/link.conf", "/opt/conf/link.conf");
    tu_put(root, "etc/vgpu-preload", "/usr/lib/libjemalloc.so.2 /opt/old/libcuda.so.1\n");
    tu_lnk(root, "etc/ld.so.preload", "vgpu-preload");
    assert_int_equal(migrate_root(root), 0);
    expect_file(root, "etc/systemd/system/ollama.service.d/old.conf.disabled-by-vgpu-patch.1",
                "[Service]\nEnvironment=LD_PRELOAD=/opt/old/libcuda.so.1\n");
    struct stat st;
    _cleanup_(freep) char *link =
        vp_path_join(root, "etc/systemd/system/ollama.service.d/link.conf.disabled-by-vgpu-patch");
    assert_int_equal(lstat(link, &st), 0);
    assert_true(S_ISLNK(st.st_mode));
    expect_file(root, "etc/vgpu-preload", "/usr/lib/libjemalloc.so.2\n");
    _cleanup_(freep) char *pre = vp_path_join(root, "etc/ld.so.preload");
    assert_int_equal(lstat(pre, &st), 0);
    assert_true(S_ISLNK(st.st_mode));
}

static void dpkg_diversions_and_the_lib64_spelling(void **state)
{
    const char *root = *state;
    if (access("/usr/bin/dpkg-query", X_OK) != 0)
        skip();
    fake_package(root, "libfoo1",
                 "/lib64/libcuda.so.1\n/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.1\n");
    tu_put(root, "var/lib/dpkg/diversions",
           "/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.1\n"
           "/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.1.distrib\n:\n");
    char *o = owner_of(root, "/usr/lib64/libcuda.so.1");
    assert_non_null(o);
    assert_string_equal(o, "libfoo1");
    free(o);
    o = owner_of(root, "/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.1");
    assert_non_null(o);
    assert_string_equal(o, "libfoo1");
    free(o);
}

static void a_variable_assigned_twice_is_kept_and_edits_are_checked(void **state)
{
    const char *root = *state;
    tu_put_fixture(root, "opt/old/libcuda.so.1", "legacy/libcuda.so.1");
    tu_put_fixture(root, "usr/lib/x86_64-linux-gnu/libjemalloc.so.2",
                   "trees/c/lib/ollama/libggml-base.so");
    const char *text = "[Service]\nEnvironment=LD_PRELOAD=/usr/lib/x86_64-linux-gnu/"
                       "libjemalloc.so.2 OLLAMA_X=1 LD_PRELOAD=/opt/old/libcuda.so.1\n";
    tu_put(root, "etc/systemd/system/ollama.service.d/twice.conf", text);
    struct vp_hooks h;
    struct vp_migrate_plan p;
    scan_plan(root, &h, &p);
    assert_int_equal(h.n, 1);
    assert_non_null(strstr(h.v[0].manual, "2 times"));
    assert_int_equal(p.files[0].action, VP_MIGRATE_KEEP_MANUAL);
    vp_migrate_plan_release(&p);
    vp_hooks_release(&h);
    /* Were it planned by name all the same, the staged edit still holds the hook: the
     * check after the edit stops the whole transaction. */
    h = (struct vp_hooks){.v = vp_xcalloc(1, sizeof(struct vp_hook)), .n = 1};
    h.v[0] = (struct vp_hook){.kind = VP_HOOK_UNIT_ENV,
                              .file = vp_xstrdup("/etc/systemd/system/ollama.service.d/twice.conf"),
                              .line = 2,
                              .what = vp_xstrdup("x"),
                              .why = vp_xstrdup("y"),
                              .arg = vp_xstrdup("LD_PRELOAD")};
    assert_int_equal(vp_migrate_plan(root, &h, &p), 0);
    assert_int_equal(p.files[0].action, VP_MIGRATE_EDIT);
    assert_int_equal(apply_plan(root, &h, &p), -EPROTO);
    vp_clear_error();
    expect_file(root, "etc/systemd/system/ollama.service.d/twice.conf", text);
}

static void a_failed_commit_puts_the_tree_back(void **state)
{
    const char *root = *state;
    tu_put_fixture(root, "opt/old/libcuda.so.1", "legacy/libcuda.so.1");
    const char *text = "LANG=C\nLD_PRELOAD=/opt/old/libcuda.so.1\n";
    tu_put(root, "etc/environment", text);
    tu_lnk(root, "usr/lib64/libcuda.so.1", "/opt/old/libcuda.so.1");
    struct vp_hooks h;
    struct vp_migrate_plan p;
    scan_plan(root, &h, &p);
    assert_int_equal(h.n, 2);
    _cleanup_(freep) char *sd = vp_path_join(root, "var/lib/vgpu-patch");
    struct vp_state st;
    assert_int_equal(vp_state_open(sd, VP_STATE_CREATE | VP_STATE_LOCK, 1000, &st), 0);
    /* The manifest cannot be written (as on a full disk): the commit fails before its
     * record. */
    _cleanup_(freep) char *mnew = vp_path_join(st.dir, "manifest.new");
    assert_int_equal(mkdir(mnew, 0700), 0);
    tu_put(mnew, "x", "x\n");
    struct vp_manifest m;
    assert_int_equal(vp_manifest_load(st.dir, &m), 0);
    struct vp_strv changed = {0}, removed = {0};
    int r = vp_migrate_apply(root, &st, &m, &p, &changed, &removed);
    vp_clear_error();
    size_t nc = changed.n, nr = removed.n;
    vp_strv_release(&changed);
    vp_strv_release(&removed);
    vp_manifest_release(&m);
    vp_state_close(&st);
    vp_migrate_plan_release(&p);
    vp_hooks_release(&h);
    assert_true(r < 0);
    assert_int_equal(nc, 0);
    assert_int_equal(nr, 0);
    expect_file(root, "etc/environment", text);
    struct stat sb;
    _cleanup_(freep) char *lnk = vp_path_join(root, "usr/lib64/libcuda.so.1");
    assert_int_equal(lstat(lnk, &sb), 0);
    assert_true(S_ISLNK(sb.st_mode));
}

static void a_file_changed_after_the_plan_is_not_edited(void **state)
{
    const char *root = *state;
    tu_put(root, "usr/local/bin/force_load_shim",
           "#!/bin/sh\nLD_PRELOAD=/opt/old/libcuda.so.1 exec \"$@\"\n");
    const char *rel = "etc/systemd/system/ollama.service.d/30-wrapper.conf";
    tu_put(root, rel,
           "[Service]\nExecStart=\nExecStart=/usr/local/bin/force_load_shim /usr/bin/ollama "
           "serve\nRestart=always\n");
    struct vp_hooks h;
    struct vp_migrate_plan p;
    scan_plan(root, &h, &p);
    assert_int_equal(h.n, 1);
    assert_int_equal(p.files[0].action, VP_MIGRATE_EDIT);
    /* A line comes in at the top: the planned line numbers now name other lines. */
    const char *now = "# edited\n[Service]\nExecStart=\nExecStart=/usr/local/bin/force_load_shim "
                      "/usr/bin/ollama serve\nRestart=always\n";
    tu_put(root, rel, now);
    assert_int_equal(apply_plan(root, &h, &p), -ESTALE);
    vp_clear_error();
    expect_file(root, rel, now);
}

static void a_check_failing_before_the_migration_is_no_regression(void **state)
{
    (void)state;
    struct vp_migrate_check ok = {.ok = true}, failing = {.message = "exit 1"},
                            complaint = {.loader_complaint = true};
    assert_false(vp_migrate_check_regressed(&ok, &ok));
    assert_true(vp_migrate_check_regressed(&ok, &failing));
    assert_true(vp_migrate_check_regressed(NULL, &failing));
    assert_false(vp_migrate_check_regressed(&failing, &failing));
    assert_true(vp_migrate_check_regressed(&failing, &complaint));
    assert_false(vp_migrate_check_regressed(&complaint, &complaint));
}

static void an_env_wrapper_goes_with_its_reset(void **state)
{
    const char *root = *state;
    tu_put_fixture(root, "opt/old/libcuda.so.1", "legacy/libcuda.so.1");
    const char *rel = "etc/systemd/system/ollama.service.d/env.conf";
    tu_put(root, rel,
           "[Service]\nExecStart=\nExecStart=/usr/bin/env LD_PRELOAD=/opt/old/libcuda.so.1 "
           "/usr/bin/ollama serve\nRestart=always\n");
    assert_int_equal(migrate_root(root), 0);
    expect_file(root, rel, "[Service]\nRestart=always\n");
}

static void an_edit_through_a_link_checks_the_owner_of_the_file_it_leads_to(void **state)
{
    const char *root = *state;
    if (access("/usr/bin/dpkg-query", X_OK) != 0)
        skip();
    fake_package(root, "oldconf", "/opt/conf/40-link.conf\n");
    tu_put(root, "opt/conf/40-link.conf",
           "[Service]\nEnvironment=LD_PRELOAD=/opt/old/libcuda.so.1\nRestart=always\n");
    tu_lnk(root, "etc/systemd/system/ollama.service.d/40-link.conf", "/opt/conf/40-link.conf");
    struct vp_hooks h;
    struct vp_migrate_plan p;
    scan_plan(root, &h, &p);
    assert_int_equal(p.n, 1);
    assert_int_equal(p.files[0].action, VP_MIGRATE_KEEP_PACKAGE);
    assert_string_equal(p.files[0].package, "oldconf");
    vp_migrate_plan_release(&p);
    vp_hooks_release(&h);
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
        T(dpkg_protection_fails_closed),
        T(plan_edits_disables_keeps_and_removes),
        T(ldconfig_only_when_the_cache_names_a_removed_file),
        cmocka_unit_test(script_lines_become_a_no_op),
        T(directory_links_never_lead_out_of_the_root),
        T(scripts_keep_their_syntax_and_compound_lines_stay),
        T(continued_unit_lines_are_read_whole_and_left_to_the_operator),
        T(assignments_are_whole_words_and_a_mismatch_is_an_error),
        T(loader_variables_are_judged_by_their_entries),
        T(reruns_find_a_free_name_and_follow_links),
        T(dpkg_diversions_and_the_lib64_spelling),
        T(a_variable_assigned_twice_is_kept_and_edits_are_checked),
        T(a_failed_commit_puts_the_tree_back),
        T(a_file_changed_after_the_plan_is_not_edited),
        cmocka_unit_test(a_check_failing_before_the_migration_is_no_regression),
        T(an_env_wrapper_goes_with_its_reset),
        T(an_edit_through_a_link_checks_the_owner_of_the_file_it_leads_to),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
