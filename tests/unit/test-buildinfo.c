/* buildinfo: Go's build information block, hand-built (inline layout, one- and two-byte
 * varints, no -ldflags, truncation, the old pointer layout) and as found in the fixture
 * binaries (the release in the C fakes' -ldflags line; none in the -trimpath e-go build).
 * Hand-built blocks are exact-size heap copies, so ASan sees any over-read. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "buildinfo.h"
#include "util.h"

#define MOD_HEAD                                                                            \
    "0w\xaf\x0c\x92t\b\x02\x41\xe1\xc1\x07\xe6\xd6\x18\xe6path\tgithub.com/ollama/ollama\n" \
    "mod\tgithub.com/ollama/ollama\t(devel)\t\nbuild\t-buildmode=pie\nbuild\t-compiler=gc\n"
#define MOD_LDFLAGS(v) "build\t-ldflags=\"-w -s -X=github.com/ollama/ollama/version.Version=" v "\"\n"
#define MOD_TAIL "build\tCGO_ENABLED=1\nbuild\tGOARCH=amd64\nbuild\tGOOS=linux\n"

static size_t put_uvarint(uint8_t *p, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

/* A block in Go's 1.18+ inline layout (flags bit 1), or the old pointer layout. */
static uint8_t *block(const char *toolchain, const char *modinfo, bool inline_strings,
                      size_t *ret_len)
{
    size_t tl = strlen(toolchain), ml = strlen(modinfo);
    uint8_t *p = vp_xcalloc(1, 32 + 20 + tl + ml);
    memcpy(p, VP_BUILDINFO_MAGIC, VP_BUILDINFO_MAGIC_LEN);
    p[14] = 8;
    p[15] = inline_strings ? 2 : 0;
    size_t n = 32;
    n += put_uvarint(p + n, tl);
    memcpy(p + n, toolchain, tl);
    n += tl;
    n += put_uvarint(p + n, ml);
    memcpy(p + n, modinfo, ml);
    n += ml;
    uint8_t *exact = vp_xmalloc(n);
    memcpy(exact, p, n);
    free(p);
    *ret_len = n;
    return exact;
}

static void inline_block_gives_toolchain_and_release(void **state)
{
    (void)state;
    size_t len;
    _cleanup_(freep) uint8_t *b =
        block("go1.22.1", MOD_HEAD MOD_LDFLAGS("0.5.7") MOD_TAIL, true, &len);
    struct vp_buildinfo bi;
    assert_int_equal(vp_buildinfo_parse(b, len, &bi), 0);
    assert_string_equal(bi.toolchain, "go1.22.1");
    assert_string_equal(bi.ollama_version, "0.5.7");
    free(bi.toolchain);
    free(bi.ollama_version);
}

static void two_byte_varints_are_decoded(void **state)
{
    (void)state;
    /* 200-byte toolchain string and a modinfo of several hundred bytes: both lengths take two
     * varint bytes, and the version sits past the first 128 bytes. */
    char tc[201];
    memset(tc, 'g', 200);
    tc[200] = '\0';
    memcpy(tc, "go1.26.0", 8);
    _cleanup_(freep) char *mod = vp_xasprintf("%s%0300d\n%s%s", MOD_HEAD, 0,
                                              MOD_LDFLAGS("0.30.0-rc32"), MOD_TAIL);
    size_t len;
    _cleanup_(freep) uint8_t *b = block(tc, mod, true, &len);
    assert_true(b[32] & 0x80);
    struct vp_buildinfo bi;
    assert_int_equal(vp_buildinfo_parse(b, len, &bi), 0);
    assert_int_equal(strlen(bi.toolchain), 200);
    assert_true(vp_startswith(bi.toolchain, "go1.26.0g"));
    assert_string_equal(bi.ollama_version, "0.30.0-rc32");
    free(bi.toolchain);
    free(bi.ollama_version);
}

static void missing_ldflags_gives_a_null_version(void **state)
{
    (void)state;
    size_t len;
    _cleanup_(freep) uint8_t *b =
        block("go1.24.0", MOD_HEAD "build\t-trimpath=true\n" MOD_TAIL, true, &len);
    struct vp_buildinfo bi;
    assert_int_equal(vp_buildinfo_parse(b, len, &bi), 0);
    assert_string_equal(bi.toolchain, "go1.24.0");
    assert_null(bi.ollama_version);
    free(bi.toolchain);
}

static void truncated_or_foreign_blocks_are_bad_messages(void **state)
{
    (void)state;
    size_t len;
    _cleanup_(freep) uint8_t *b =
        block("go1.22.1", MOD_HEAD MOD_LDFLAGS("0.5.7") MOD_TAIL, true, &len);
    struct vp_buildinfo bi = {.toolchain = (char *)0x1};
    /* Cut anywhere from the header to the last byte of the modinfo. */
    static const size_t cuts[] = {0, 13, 31, 32, 33, 40, 42, 100};
    for (size_t i = 0; i < VP_ARRAY_SIZE(cuts); i++) {
        uint8_t *cut = vp_xmalloc(cuts[i] ? cuts[i] : 1);
        memcpy(cut, b, cuts[i]);
        assert_int_equal(vp_buildinfo_parse(cut, cuts[i], &bi), -EBADMSG);
        assert_null(bi.toolchain);
        free(cut);
    }
    uint8_t *last = vp_xmalloc(len - 1);
    memcpy(last, b, len - 1);
    assert_int_equal(vp_buildinfo_parse(last, len - 1, &bi), -EBADMSG);
    free(last);
    /* A varint whose every byte says "more follows". */
    uint8_t endless[48];
    memcpy(endless, b, 32);
    memset(endless + 32, 0xff, sizeof(endless) - 32);
    assert_int_equal(vp_buildinfo_parse(endless, sizeof(endless), &bi), -EBADMSG);
    /* Not the magic. */
    b[1] = 'g';
    assert_int_equal(vp_buildinfo_parse(b, len, &bi), -EBADMSG);
}

static void pointer_layout_is_not_supported(void **state)
{
    (void)state;
    size_t len;
    _cleanup_(freep) uint8_t *b = block("go1.17", MOD_HEAD MOD_LDFLAGS("0.1.20"), false, &len);
    struct vp_buildinfo bi;
    assert_int_equal(vp_buildinfo_parse(b, len, &bi), -ENOTSUP);
    assert_null(bi.toolchain);
    assert_null(bi.ollama_version);
}

static void version_text_is_cut_at_the_end_of_the_value(void **state)
{
    (void)state;
    static const struct {
        const char *modinfo, *want;
    } cases[] = {
        {"-X=github.com/ollama/ollama/version.Version=0.3.14\"\n", "0.3.14"},
        {"-X github.com/ollama/ollama/version.Version=v0.30.1 -X other=1", "0.30.1"},
        {"-X=github.com/ollama/ollama/version.Version=0.30.0-rc32'", "0.30.0-rc32"},
        {"ollama/ollama/version.Version=0.5.7+dirty\t", "0.5.7+dirty"},
        {"ollama/ollama/version.Version=", NULL},
        {"ollama/ollama/version.Version=\"0.5.7\"", NULL},
        {"github.com/ollama/ollama/version.Verzion=0.5.7", NULL},
    };
    for (size_t i = 0; i < VP_ARRAY_SIZE(cases); i++) {
        size_t n = strlen(cases[i].modinfo);
        char *exact = vp_xmalloc(n); /* not NUL-terminated: the length bounds the scan */
        memcpy(exact, cases[i].modinfo, n);
        char *got = vp_buildinfo_ollama_version(exact, n);
        if (cases[i].want) {
            assert_non_null(got);
            assert_string_equal(got, cases[i].want);
        } else {
            assert_null(got);
        }
        free(got);
        free(exact);
    }
}

/* The first build info block in a file: Go aligns it to 16 bytes in its section. */
static int file_buildinfo(const char *rel, struct vp_buildinfo *bi)
{
    const char *fx = getenv("VGPU_TEST_FIXTURES");
    if (!fx)
        return -ENOENT;
    _cleanup_(freep) char *path = vp_path_join(fx, rel);
    _cleanup_(freep) char *data = NULL;
    size_t len;
    int r = vp_read_file(path, 64u << 20, &data, &len);
    if (r < 0)
        return r;
    for (size_t off = 0; off + 32 <= len; off += 16)
        if (memcmp(data + off, VP_BUILDINFO_MAGIC, VP_BUILDINFO_MAGIC_LEN) == 0)
            return vp_buildinfo_parse((const uint8_t *)data + off, len - off, bi);
    return -ESRCH;
}

static void fixture_binaries_carry_their_release(void **state)
{
    (void)state;
    static const struct {
        const char *tree, *version;
    } cases[] = {
        {"a0", "0.1.31"}, {"a", "0.3.14"}, {"b", "0.5.7"}, {"c", "0.12.3"},
        {"d", "0.24.0"},  {"e", "0.30.1"}, {"c-trim", NULL}, {"d-trim", NULL},
    };
    for (size_t i = 0; i < VP_ARRAY_SIZE(cases); i++) {
        _cleanup_(freep) char *rel = vp_xasprintf("trees/%s/bin/ollama", cases[i].tree);
        struct vp_buildinfo bi;
        int r = file_buildinfo(rel, &bi);
        if (r == -ENOENT)
            skip(); /* fixtures not built */
        assert_int_equal(r, 0);
        assert_true(vp_startswith(bi.toolchain, "go1."));
        if (cases[i].version) {
            assert_non_null(bi.ollama_version);
            assert_string_equal(bi.ollama_version, cases[i].version);
        } else {
            assert_null(bi.ollama_version);
        }
        free(bi.toolchain);
        free(bi.ollama_version);
    }
}

static void trimpath_go_build_has_no_release(void **state)
{
    (void)state;
    struct vp_buildinfo bi;
    int r = file_buildinfo("trees/e-go/bin/ollama", &bi);
    if (r == -ENOENT)
        skip(); /* built only where Go is installed */
    assert_int_equal(r, 0);
    assert_true(vp_startswith(bi.toolchain, "go1."));
    assert_null(bi.ollama_version);
    free(bi.toolchain);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(inline_block_gives_toolchain_and_release),
        cmocka_unit_test(two_byte_varints_are_decoded),
        cmocka_unit_test(missing_ldflags_gives_a_null_version),
        cmocka_unit_test(truncated_or_foreign_blocks_are_bad_messages),
        cmocka_unit_test(pointer_layout_is_not_supported),
        cmocka_unit_test(version_text_is_cut_at_the_end_of_the_value),
        cmocka_unit_test(fixture_binaries_carry_their_release),
        cmocka_unit_test(trimpath_go_build_has_no_release),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
