/* ld.so.cache reader: against this machine's cache and ldconfig -p, against caches ldconfig
 * writes in all three formats, and against hand-built corrupt images (each must be rejected
 * with -EBADMSG; buffers are exact-size heap copies so ASan sees any over-read). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "ldcache.h"
#include "util.h"

#define F64 VP_LDCACHE_FLAGS_X86_64

static int run(const char *cmd, char **out)
{
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t cap = 1 << 16, len = 0;
    char *buf = vp_xmalloc(cap);
    size_t n;
    while ((n = fread(buf + len, 1, cap - len - 1, p)) > 0) {
        len += n;
        if (len + 1 == cap)
            buf = vp_xrealloc(buf, cap *= 2);
    }
    buf[len] = '\0';
    *out = buf;
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* For every soname `ldconfig -C cache -p` lists as libc6,x86-64, its first path (file order)
 * must be what vp_ldcache_lookup returns; the entry count must match too. Returns the number
 * of sonames checked. */
static size_t check_against_ldconfig_p(const char *ldconfig_args, const struct vp_ldcache *c)
{
    _cleanup_(freep) char *cmd = vp_xasprintf("/sbin/ldconfig %s -p 2>&1", ldconfig_args);
    _cleanup_(freep) char *out = NULL;
    assert_int_equal(run(cmd, &out), 0);
    size_t listed = 0, checked = 0;
    assert_int_equal(sscanf(out, "%zu libs found", &listed), 1);
    assert_int_equal(listed, c->n);
    struct vp_strv seen = {0};
    for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
        char name[512], kind[512], path[1024];
        if (sscanf(line, " %511s (%511[^)]) => %1023s", name, kind, path) != 3)
            continue;
        if (!vp_startswith(kind, "libc6,x86-64") || vp_strv_contains(&seen, name))
            continue;
        vp_strv_push(&seen, name);
        if (strstr(kind, "hwcap"))
            continue; /* a glibc-hwcaps entry: ld.so may prefer it; not the plain lookup */
        const char *got = vp_ldcache_lookup(c, name);
        assert_non_null(got);
        assert_string_equal(got, path);
        checked++;
    }
    vp_strv_release(&seen);
    return checked;
}

static void system_cache_matches_ldconfig_p(void **state)
{
    (void)state;
    struct vp_ldcache *c = NULL;
    int r = vp_ldcache_load("/etc/ld.so.cache", &c);
    if (r == -ENOENT)
        skip();
    assert_int_equal(r, 0);
    assert_true(check_against_ldconfig_p("", c) > 10);
    const char *libc = vp_ldcache_lookup(c, "libc.so.6");
    assert_non_null(libc);
    assert_true(vp_endswith(libc, "/libc.so.6"));
    /* libelf-dev is a build dependency, so libelf.so.1 is in the cache. */
    assert_non_null(vp_ldcache_lookup(c, "libelf.so.1"));
    assert_null(vp_ldcache_lookup(c, "libdoes-not-exist.so.7"));
    vp_ldcache_free(c);
}

/* A private root for ldconfig -r: nothing outside it is written. */
static char *make_root(void)
{
    char tmpl[] = "/tmp/vgpu-ldcache-XXXXXX";
    assert_non_null(mkdtemp(tmpl));
    _cleanup_(freep) char *cmd = vp_xasprintf(
        "set -e; cd %s; mkdir -p etc libs; echo /libs > etc/ld.so.conf;"
        "cp -L /lib/x86_64-linux-gnu/libz.so.1 /lib/x86_64-linux-gnu/libelf.so.1 libs/",
        tmpl);
    assert_int_equal(system(cmd), 0);
    return vp_xstrdup(tmpl);
}

static void ldconfig_caches_in_every_format_parse(void **state)
{
    (void)state;
    if (geteuid() != 0)
        skip(); /* ldconfig -r chroots */
    _cleanup_(freep) char *root = make_root();
    static const char *const formats[] = {"new", "old", "compat"};
    for (size_t i = 0; i < VP_ARRAY_SIZE(formats); i++) {
        _cleanup_(freep) char *args =
            vp_xasprintf("-r %s -C /etc/c.%s -f /etc/ld.so.conf", root, formats[i]);
        _cleanup_(freep) char *cmd = vp_xasprintf("/sbin/ldconfig -X -c %s %s", formats[i], args);
        assert_int_equal(system(cmd), 0);
        _cleanup_(freep) char *file = vp_xasprintf("%s/etc/c.%s", root, formats[i]);
        struct vp_ldcache *c = NULL;
        assert_int_equal(vp_ldcache_load(file, &c), 0);
        assert_int_equal(c->old_format, strcmp(formats[i], "old") == 0);
        assert_int_equal(check_against_ldconfig_p(args, c), 2);
        assert_string_equal(vp_ldcache_lookup(c, "libz.so.1"), "/libs/libz.so.1");
        assert_string_equal(vp_ldcache_lookup(c, "libelf.so.1"), "/libs/libelf.so.1");
        vp_ldcache_free(c);
    }
    /* ldconfig over an empty directory: a valid cache with no entries. */
    _cleanup_(freep) char *empty = vp_xasprintf(
        "rm -f %s/libs/*; /sbin/ldconfig -X -r %s -C /etc/c.empty -f /etc/ld.so.conf", root, root);
    assert_int_equal(system(empty), 0);
    _cleanup_(freep) char *file = vp_xasprintf("%s/etc/c.empty", root);
    struct vp_ldcache *c = NULL;
    assert_int_equal(vp_ldcache_load(file, &c), 0);
    assert_int_equal(c->n, 0);
    assert_null(vp_ldcache_lookup(c, "libz.so.1"));
    vp_ldcache_free(c);
    _cleanup_(freep) char *rm = vp_xasprintf("rm -rf %s", root);
    assert_int_equal(system(rm), 0);
}

static void missing_file_is_enoent(void **state)
{
    (void)state;
    struct vp_ldcache *c = NULL;
    assert_int_equal(vp_ldcache_load("/nonexistent/ld.so.cache", &c), -ENOENT);
    assert_null(c);
}

/* ---- hand-built images ---- */

struct ent {
    int32_t flags;
    const char *key, *value;
    uint64_t hwcap;
};

struct img {
    uint8_t b[4096];
    size_t len;
};

static void put32(uint8_t *p, uint32_t v)
{
    memcpy(p, &v, 4);
}

static void put64(uint8_t *p, uint64_t v)
{
    memcpy(p, &v, 8);
}

/* A new-format image at offset base of im: header, entries, strings; optionally a glibc-hwcaps
 * extension naming hwcaps[]. */
static void build_new(struct img *im, size_t base, const struct ent *e, size_t n,
                      const char *const *hwcaps)
{
    uint8_t *h = im->b + base;
    memcpy(h, "glibc-ld.so.cache1.1", 20);
    put32(h + 20, (uint32_t)n);
    h[28] = 2; /* little endian */
    size_t str = 48 + n * 24, s = str;
    for (size_t i = 0; i < n; i++) {
        uint8_t *p = h + 48 + i * 24;
        put32(p, (uint32_t)e[i].flags);
        put32(p + 4, (uint32_t)s);
        s += (size_t)sprintf((char *)h + s, "%s", e[i].key) + 1;
        put32(p + 8, (uint32_t)s);
        s += (size_t)sprintf((char *)h + s, "%s", e[i].value) + 1;
        put64(p + 16, e[i].hwcap);
    }
    size_t names[8], nn = 0;
    for (; hwcaps && hwcaps[nn]; nn++) {
        names[nn] = s;
        s += (size_t)sprintf((char *)h + s, "%s", hwcaps[nn]) + 1;
    }
    put32(h + 24, (uint32_t)(s - str));
    im->len = base + s;
    if (nn) {
        size_t ext = (im->len + 7) & ~(size_t)7, data = ext + 8 + 16;
        put32(h + 32, (uint32_t)ext);
        put32(im->b + ext, 0xeaa42174u);
        put32(im->b + ext + 4, 1);
        put32(im->b + ext + 8, 1);                   /* tag: glibc-hwcaps */
        put32(im->b + ext + 16, (uint32_t)data);     /* offset */
        put32(im->b + ext + 20, (uint32_t)(nn * 4)); /* size */
        for (size_t i = 0; i < nn; i++)
            put32(im->b + data + i * 4, (uint32_t)names[i]);
        im->len = data + nn * 4;
    }
}

/* Parses an exact-size heap copy of the first len bytes. */
static int parse(const struct img *im, size_t len, struct vp_ldcache **ret)
{
    uint8_t *copy = vp_xmalloc(len);
    memcpy(copy, im->b, len);
    int r = vp_ldcache_parse(copy, len, ret);
    free(copy);
    return r;
}

static void expect_bad(const struct img *im, size_t len)
{
    struct vp_ldcache *c = NULL;
    assert_int_equal(parse(im, len, &c), -EBADMSG);
    assert_null(c);
    assert_true(strlen(vp_last_error()) > 0);
}

static const struct ent two[] = {
    {F64, "libcuda.so.1", "/usr/lib/x86_64-linux-gnu/libcuda.so.1", 0},
    {F64, "libc.so.6", "/lib/x86_64-linux-gnu/libc.so.6", 0},
};

static void valid_image_parses(void **state)
{
    (void)state;
    struct img im = {0};
    build_new(&im, 0, two, 2, NULL);
    struct vp_ldcache *c = NULL;
    assert_int_equal(parse(&im, im.len, &c), 0);
    assert_int_equal(c->n, 2);
    assert_false(c->old_format);
    assert_string_equal(vp_ldcache_lookup(c, "libc.so.6"), "/lib/x86_64-linux-gnu/libc.so.6");
    vp_ldcache_free(c);
}

static void every_truncation_is_rejected(void **state)
{
    (void)state;
    struct img im = {0};
    build_new(&im, 0, two, 2, NULL);
    for (size_t len = 0; len < im.len; len++)
        expect_bad(&im, len);
}

static void nlibs_overflowing_the_file_is_rejected(void **state)
{
    (void)state;
    static const uint32_t counts[] = {3, 1000, 0x0aaaaaab, 0xffffffffu};
    for (size_t i = 0; i < VP_ARRAY_SIZE(counts); i++) {
        struct img im = {0};
        build_new(&im, 0, two, 2, NULL);
        put32(im.b + 20, counts[i]);
        expect_bad(&im, im.len);
    }
    struct img im = {0};
    build_new(&im, 0, two, 2, NULL);
    put32(im.b + 24, 0xffffff00u); /* len_strings past the end */
    expect_bad(&im, im.len);
}

static void string_offsets_out_of_range_are_rejected(void **state)
{
    (void)state;
    /* key of entry 0, value of entry 1: past the end, at the end, into the header/entries. */
    static const size_t fields[] = {48 + 4, 48 + 24 + 8};
    for (size_t f = 0; f < VP_ARRAY_SIZE(fields); f++) {
        struct img im = {0};
        build_new(&im, 0, two, 2, NULL);
        const uint32_t bad[] = {0xffffffffu, (uint32_t)im.len, 0, 20, 48 + 24};
        for (size_t k = 0; k < VP_ARRAY_SIZE(bad); k++) {
            struct img x = im;
            put32(x.b + fields[f], bad[k]);
            expect_bad(&x, x.len);
        }
    }
}

static void unterminated_strings_are_rejected(void **state)
{
    (void)state;
    struct img im = {0};
    build_new(&im, 0, two, 2, NULL);
    im.b[im.len - 1] = 'X'; /* the last path loses its NUL; the string table ends there */
    expect_bad(&im, im.len);
    /* The same bytes with a NUL after the table but outside len_strings. */
    im.b[im.len] = '\0';
    expect_bad(&im, im.len + 1);
}

static void zero_entries(void **state)
{
    (void)state;
    /* Only a header: ld.so requires more than a header, and so do we. */
    struct img im = {0};
    build_new(&im, 0, NULL, 0, NULL);
    assert_int_equal(im.len, 48);
    expect_bad(&im, im.len);
    /* No entries but a (generator) string: a valid, empty cache, as ldconfig writes. */
    build_new(&im, 0, NULL, 0, (const char *const[]){"x86-64-v3", NULL});
    struct vp_ldcache *c = NULL;
    assert_int_equal(parse(&im, im.len, &c), 0);
    assert_int_equal(c->n, 0);
    vp_ldcache_free(c);
}

static void foreign_byte_order_and_garbage_are_rejected(void **state)
{
    (void)state;
    struct img im = {0};
    build_new(&im, 0, two, 2, NULL);
    im.b[28] = 3; /* big endian */
    expect_bad(&im, im.len);
    im.b[28] = 1; /* marked invalid */
    expect_bad(&im, im.len);
    struct img junk = {0};
    memset(junk.b, 'A', 200);
    expect_bad(&junk, 200);
    expect_bad(&junk, 0);
}

static void extension_directory_is_checked(void **state)
{
    (void)state;
    const char *const levels[] = {"x86-64-v2", "x86-64-v3", NULL};
    const struct ent e[] = {
        {F64, "libcuda.so.1", "/l/glibc-hwcaps/x86-64-v3/libcuda.so.1", (1ULL << 62) | 1},
        {F64, "libcuda.so.1", "/l/glibc-hwcaps/x86-64-v2/libcuda.so.1", (1ULL << 62) | 0},
        {F64, "libcuda.so.1", "/l/libcuda.so.1", 0},
    };
    struct img im = {0};
    build_new(&im, 0, e, 3, levels);
    struct vp_ldcache *c = NULL;
    assert_int_equal(parse(&im, im.len, &c), 0);
    assert_string_equal(c->entries[0].hwcaps, "x86-64-v3");
    assert_null(c->entries[2].hwcaps);
    /* Plain lookup ignores hwcaps entries; with levels the best supported one wins. */
    assert_string_equal(vp_ldcache_lookup(c, "libcuda.so.1"), "/l/libcuda.so.1");
    const char *v3v2[] = {"x86-64-v3", "x86-64-v2", NULL}, *v2[] = {"x86-64-v2", NULL};
    assert_string_equal(vp_ldcache_lookup_hwcaps(c, "libcuda.so.1", v3v2),
                        "/l/glibc-hwcaps/x86-64-v3/libcuda.so.1");
    assert_string_equal(vp_ldcache_lookup_hwcaps(c, "libcuda.so.1", v2),
                        "/l/glibc-hwcaps/x86-64-v2/libcuda.so.1");
    vp_ldcache_free(c);

    uint32_t ext;
    memcpy(&ext, im.b + 32, 4);
    struct img x = im;
    put32(x.b + ext, 0x12345678); /* magic */
    expect_bad(&x, x.len);
    x = im;
    put32(x.b + 32, (uint32_t)im.len); /* directory past the end */
    expect_bad(&x, x.len);
    x = im;
    put32(x.b + ext + 4, 0x10000000); /* section count */
    expect_bad(&x, x.len);
    x = im;
    put32(x.b + ext + 16, 0xfffffff0u); /* section offset */
    expect_bad(&x, x.len);
    x = im;
    put32(x.b + im.len - 4, 0xffff); /* a name outside the strings */
    expect_bad(&x, x.len);
    x = im;
    put64(x.b + 48 + 16, (1ULL << 62) | 7); /* hwcaps index past the section */
    expect_bad(&x, x.len);
}

/* The libc5-era table, alone and with the new table hidden after it (compat). */
static void build_old(struct img *im, const struct ent *e, size_t n, bool compat)
{
    memcpy(im->b, "ld.so-1.7.0", 11);
    put32(im->b + 12, (uint32_t)n);
    size_t tab = 16 + n * 12;
    if (compat) {
        /* As ldconfig does: the old entries point at the new table's strings. */
        size_t base = (tab + 7) & ~(size_t)7;
        build_new(im, base, e, n, NULL);
        for (size_t i = 0; i < n; i++) {
            uint32_t key, value;
            memcpy(&key, im->b + base + 48 + i * 24 + 4, 4);
            memcpy(&value, im->b + base + 48 + i * 24 + 8, 4);
            put32(im->b + 16 + i * 12, (uint32_t)e[i].flags);
            put32(im->b + 16 + i * 12 + 4, (uint32_t)(key + base - tab));
            put32(im->b + 16 + i * 12 + 8, (uint32_t)(value + base - tab));
        }
        return;
    }
    size_t s = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t *p = im->b + 16 + i * 12;
        put32(p, (uint32_t)e[i].flags);
        put32(p + 4, (uint32_t)s);
        s += (size_t)sprintf((char *)im->b + tab + s, "%s", e[i].key) + 1;
        put32(p + 8, (uint32_t)s);
        s += (size_t)sprintf((char *)im->b + tab + s, "%s", e[i].value) + 1;
    }
    im->len = tab + s;
}

static void old_and_compat_formats(void **state)
{
    (void)state;
    for (int compat = 0; compat < 2; compat++) {
        struct img im = {0};
        build_old(&im, two, 2, compat);
        struct vp_ldcache *c = NULL;
        assert_int_equal(parse(&im, im.len, &c), 0);
        assert_int_equal(c->old_format, !compat);
        assert_string_equal(vp_ldcache_lookup(c, "libcuda.so.1"),
                            "/usr/lib/x86_64-linux-gnu/libcuda.so.1");
        vp_ldcache_free(c);
        for (size_t len = 0; len < im.len; len++)
            expect_bad(&im, len);
        put32(im.b + 12, 0x7fffffff);
        expect_bad(&im, im.len);
    }
}

static void lookup_follows_ld_so(void **state)
{
    (void)state;
    const struct ent e[] = {
        {0x0003, "libfoo.so.1", "/lib32/libfoo.so.1", 0}, /* i386: never for x86_64 */
        {F64, "libfoo.so.1", "/first/libfoo.so.1", 0},
        {F64, "libfoo.so.1", "/second/libfoo.so.1", 0},
        {F64, "libbar.so.2", "/legacy/libbar.so.2", 1ULL << 5}, /* legacy hwcap: skipped */
    };
    struct img im = {0};
    build_new(&im, 0, e, 4, NULL);
    struct vp_ldcache *c = NULL;
    assert_int_equal(parse(&im, im.len, &c), 0);
    assert_string_equal(vp_ldcache_lookup(c, "libfoo.so.1"), "/first/libfoo.so.1");
    /* ld.so compares digit runs as numbers. */
    assert_string_equal(vp_ldcache_lookup(c, "libfoo.so.01"), "/first/libfoo.so.1");
    assert_null(vp_ldcache_lookup(c, "libfoo.so.10"));
    assert_null(vp_ldcache_lookup(c, "libbar.so.2"));
    assert_null(vp_ldcache_lookup(NULL, "libfoo.so.1"));
    vp_ldcache_free(c);
    assert_int_equal(vp_ldcache_libcmp("libx.so.9", "libx.so.10") < 0, 1);
    assert_int_equal(vp_ldcache_libcmp("libx.so.0010", "libx.so.10"), 0);
    assert_true(vp_ldcache_libcmp("libx.so.99999999999999999999", "libx.so.1") > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(system_cache_matches_ldconfig_p),
        cmocka_unit_test(ldconfig_caches_in_every_format_parse),
        cmocka_unit_test(missing_file_is_enoent),
        cmocka_unit_test(valid_image_parses),
        cmocka_unit_test(every_truncation_is_rejected),
        cmocka_unit_test(nlibs_overflowing_the_file_is_rejected),
        cmocka_unit_test(string_offsets_out_of_range_are_rejected),
        cmocka_unit_test(unterminated_strings_are_rejected),
        cmocka_unit_test(zero_entries),
        cmocka_unit_test(foreign_byte_order_and_garbage_are_rejected),
        cmocka_unit_test(extension_directory_is_checked),
        cmocka_unit_test(old_and_compat_formats),
        cmocka_unit_test(lookup_follows_ld_so),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
