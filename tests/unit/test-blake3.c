/* BLAKE3 against the official test-vector inputs (byte i is i % 251), whose digests
 * were taken from b3sum; the AVX2 and portable paths and the shared two-stream update
 * must all agree with it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "blake3.h"

static const struct {
    size_t len;
    const char *hex;
} vectors[] = {
    {0, "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"},
    {1, "2d3adedff11b61f14c886e35afa036736dcd87a74d27b5c1510225d0f592e213"},
    {1023, "10108970eeda3eb932baac1428c7a2163b0e924c9a9e25b35bba72b28f70bd11"},
    {1024, "42214739f095a406f3fc83deb889744ac00df831c10daa55189b5d121c855af7"},
    {1025, "d00278ae47eb27b34faecf67b4fe263f82d5412916c1ffd97c8cb7fb814b8444"},
    {2048, "e776b6028c7cd22a4d0ba182a8bf62205d2ef576467e838ed6f2529b85fba24a"},
    {2049, "5f4d72f40d7a5f82b15ca2b2e44b1de3c2ef86c426c95c1af0b6879522563030"},
    {8192, "aae792484c8efe4f19e2ca7d371d8c467ffb10748d8a5a1ae579948f718a2a63"},
    {8193, "bab6c09cb8ce8cf459261398d2e7aef35700bf488116ceb94a36d0f5f1b7bc3b"},
    {16385, "1dabe216be2578830263b049de1639f39f05a4da616b9b78c7a5e4e41662fd1f"},
    {102400, "bc3e3d41a1146b069abffad3c0d44860cf664390afce4d9661f7902e7943e085"},
    {1048577, "2f053cd7472cf0cd2f9adaf45c1180255b91b9a865404a63671a0ee5f792ed33"},
};

static uint8_t *input(size_t len)
{
    uint8_t *p = malloc(len ? len : 1);
    for (size_t i = 0; i < len; i++)
        p[i] = (uint8_t)(i % 251);
    return p;
}

static void hex_of(const uint8_t *p, size_t len, size_t step, char out[VP_B3_HEX])
{
    struct vp_b3 h;
    uint8_t d[32];
    vp_b3_init(&h);
    for (size_t off = 0; off < len; off += step)
        vp_b3_update(&h, p + off, len - off < step ? len - off : step);
    vp_b3_final(&h, d);
    vp_b3_hex(d, out);
}

static void official_vectors_match_in_one_update_and_in_odd_pieces(void **state)
{
    (void)state;
    for (int portable = 0; portable < 2; portable++) {
        vp_b3_force_portable(portable);
        for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
            uint8_t *p = input(vectors[i].len);
            char out[VP_B3_HEX];
            hex_of(p, vectors[i].len, vectors[i].len ? vectors[i].len : 1, out);
            assert_string_equal(out, vectors[i].hex);
            hex_of(p, vectors[i].len, 997, out); /* not a divisor of any block size */
            assert_string_equal(out, vectors[i].hex);
            free(p);
        }
    }
    vp_b3_force_portable(0);
}

/* Two streams that differ in a few places, fed through update2 where they agree. */
static void shared_update_gives_each_stream_its_own_hash(void **state)
{
    (void)state;
    size_t len = 3 * 1024 * 1024 + 4321;
    uint8_t *a = input(len), *b = input(len);
    b[10] ^= 1;
    b[len / 2] ^= 0x80;
    struct vp_b3 ha, hb;
    vp_b3_init(&ha);
    vp_b3_init(&hb);
    size_t cuts[] = {0, 64, 70000, len / 2, len / 2 + 1, len};
    for (size_t i = 0; i + 1 < sizeof(cuts) / sizeof(cuts[0]); i++) {
        size_t off = cuts[i], n = cuts[i + 1] - cuts[i];
        if (memcmp(a + off, b + off, n) == 0) {
            vp_b3_update2(&ha, &hb, a + off, n);
        } else {
            vp_b3_update(&ha, a + off, n);
            vp_b3_update(&hb, b + off, n);
        }
    }
    uint8_t da[32], db[32];
    char xa[VP_B3_HEX], xb[VP_B3_HEX], ya[VP_B3_HEX], yb[VP_B3_HEX];
    vp_b3_final(&ha, da);
    vp_b3_final(&hb, db);
    vp_b3_hex(da, xa);
    vp_b3_hex(db, xb);
    hex_of(a, len, len, ya);
    hex_of(b, len, len, yb);
    assert_string_equal(xa, ya);
    assert_string_equal(xb, yb);
    assert_string_not_equal(xa, xb);
    free(a);
    free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(official_vectors_match_in_one_update_and_in_odd_pieces),
        cmocka_unit_test(shared_update_gives_each_stream_its_own_hash),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
