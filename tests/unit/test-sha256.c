/* SHA-256 against the FIPS 180-4 examples, and the SHA-NI path against the portable one. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "sha256.h"

static void hex_of(const void *data, size_t len, char out[VP_SHA256_HEX])
{
    struct vp_sha256 c;
    uint8_t d[32];
    vp_sha256_init(&c);
    vp_sha256_update(&c, data, len);
    vp_sha256_final(&c, d);
    vp_sha256_hex(d, out);
}

static void known_answers_match_fips_examples(void **state)
{
    (void)state;
    char out[VP_SHA256_HEX];
    for (int portable = 0; portable < 2; portable++) {
        vp_sha256_force_portable(portable);
        hex_of("", 0, out);
        assert_string_equal(out,
                            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        hex_of("abc", 3, out);
        assert_string_equal(out,
                            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
        hex_of(two, strlen(two), out);
        assert_string_equal(out,
                            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    }
    vp_sha256_force_portable(0);
}

static void million_a_in_odd_chunks(void **state)
{
    (void)state;
    static char buf[1000000];
    memset(buf, 'a', sizeof(buf));
    for (int portable = 0; portable < 2; portable++) {
        vp_sha256_force_portable(portable);
        struct vp_sha256 c;
        uint8_t d[32];
        char out[VP_SHA256_HEX];
        vp_sha256_init(&c);
        size_t off = 0, step = 1;
        while (off < sizeof(buf)) {
            size_t n = step < sizeof(buf) - off ? step : sizeof(buf) - off;
            vp_sha256_update(&c, buf + off, n);
            off += n;
            step = step * 3 + 1; /* 1, 4, 13, 40 ... crosses block boundaries oddly */
            if (step > 70000)
                step = 7;
        }
        vp_sha256_final(&c, d);
        vp_sha256_hex(d, out);
        assert_string_equal(out,
                            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    }
    vp_sha256_force_portable(0);
}

static void accelerated_and_portable_agree_on_every_length(void **state)
{
    (void)state;
    uint8_t data[300];
    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (uint8_t)(i * 131 + 7);
    for (size_t len = 0; len <= sizeof(data); len++) {
        char a[VP_SHA256_HEX], b[VP_SHA256_HEX];
        vp_sha256_force_portable(0);
        hex_of(data, len, a);
        vp_sha256_force_portable(1);
        hex_of(data, len, b);
        assert_string_equal(a, b);
    }
    vp_sha256_force_portable(0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(known_answers_match_fips_examples),
        cmocka_unit_test(million_a_in_odd_chunks),
        cmocka_unit_test(accelerated_and_portable_agree_on_every_length),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
