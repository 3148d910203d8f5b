/* sha256: portable SHA-256 plus a block function using the SHA-NI instructions. */
#include "sha256.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <immintrin.h>
#include <string.h>

static const uint32_t K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
    0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
    0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
    0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
    0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
    0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
    0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
    0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
    0xc67178f2,
};

#define ROR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void blocks_portable(uint32_t h[8], const uint8_t *p, size_t nblocks)
{
    for (; nblocks--; p += 64) {
        uint32_t w[64];
        for (int i = 0; i < 16; i++)
            w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
                   (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
        for (int i = 16; i < 64; i++) {
            uint32_t s0 = ROR(w[i - 15], 7) ^ ROR(w[i - 15], 18) ^ (w[i - 15] >> 3);
            uint32_t s1 = ROR(w[i - 2], 17) ^ ROR(w[i - 2], 19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16] + s0 + w[i - 7] + s1;
        }
        uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6],
                 hh = h[7];
        for (int i = 0; i < 64; i++) {
            uint32_t t1 = hh + (ROR(e, 6) ^ ROR(e, 11) ^ ROR(e, 25)) + ((e & f) ^ (~e & g)) +
                          K[i] + w[i];
            uint32_t t2 = (ROR(a, 2) ^ ROR(a, 13) ^ ROR(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
            hh = g, g = f, f = e, e = d + t1, d = c, c = b, b = a, a = t1 + t2;
        }
        h[0] += a, h[1] += b, h[2] += c, h[3] += d;
        h[4] += e, h[5] += f, h[6] += g, h[7] += hh;
    }
}

/* Four rounds with the SHA-NI instructions: msg holds W[i..i+3] + K[i..i+3]. */
#define ROUNDS4(msg)                                                                     \
    do {                                                                                 \
        s1 = _mm_sha256rnds2_epu32(s1, s0, msg);                                         \
        s0 = _mm_sha256rnds2_epu32(s0, s1, _mm_shuffle_epi32(msg, 0x0e));                \
    } while (0)

__attribute__((target("sha,sse4.1,ssse3"))) static void blocks_shani(uint32_t h[8],
                                                                       const uint8_t *p,
                                                                       size_t nblocks)
{
    const __m128i bswap = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
    /* State layout the instructions want: s0 = ABEF, s1 = CDGH. */
    __m128i t = _mm_loadu_si128((const __m128i *)&h[0]); /* DCBA */
    __m128i s1 = _mm_loadu_si128((const __m128i *)&h[4]); /* HGFE */
    t = _mm_shuffle_epi32(t, 0xb1);                        /* CDAB */
    s1 = _mm_shuffle_epi32(s1, 0x1b);                      /* EFGH */
    __m128i s0 = _mm_alignr_epi8(t, s1, 8);                /* ABEF */
    s1 = _mm_blend_epi16(s1, t, 0xf0);                     /* CDGH */

    for (; nblocks--; p += 64) {
        __m128i a0 = s0, c0 = s1, w[4];
        for (int i = 0; i < 4; i++)
            w[i] = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(p + 16 * i)), bswap);
        for (int r = 0; r < 16; r++) {
            __m128i cur = w[r & 3];
            __m128i msg = _mm_add_epi32(cur, _mm_loadu_si128((const __m128i *)&K[4 * r]));
            ROUNDS4(msg);
            if (r < 12) {
                /* W[t..t+3] for the group four ahead, from the last four groups. */
                __m128i next = _mm_sha256msg1_epu32(w[r & 3], w[(r + 1) & 3]);
                next = _mm_add_epi32(next, _mm_alignr_epi8(w[(r + 3) & 3], w[(r + 2) & 3], 4));
                w[r & 3] = _mm_sha256msg2_epu32(next, w[(r + 3) & 3]);
            }
        }
        s0 = _mm_add_epi32(s0, a0);
        s1 = _mm_add_epi32(s1, c0);
    }
    t = _mm_shuffle_epi32(s0, 0x1b);     /* FEBA */
    s1 = _mm_shuffle_epi32(s1, 0xb1);    /* DCHG */
    s0 = _mm_blend_epi16(t, s1, 0xf0);   /* DCBA */
    s1 = _mm_alignr_epi8(s1, t, 8);      /* HGFE */
    _mm_storeu_si128((__m128i *)&h[0], s0);
    _mm_storeu_si128((__m128i *)&h[4], s1);
}

static int force_portable;

void vp_sha256_force_portable(int on)
{
    force_portable = on;
}

static void blocks(uint32_t h[8], const uint8_t *p, size_t n)
{
    static int have_shani = -1;
    if (have_shani < 0) {
        __builtin_cpu_init();
        have_shani = __builtin_cpu_supports("sha") && __builtin_cpu_supports("sse4.1");
    }
    if (have_shani && !force_portable)
        blocks_shani(h, p, n);
    else
        blocks_portable(h, p, n);
}

void vp_sha256_init(struct vp_sha256 *c)
{
    static const uint32_t iv[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                   0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    memcpy(c->h, iv, sizeof(iv));
    c->total = 0;
    c->fill = 0;
}

void vp_sha256_update(struct vp_sha256 *c, const void *data, size_t len)
{
    const uint8_t *p = data;
    c->total += len;
    if (c->fill) {
        size_t take = 64 - c->fill < len ? 64 - c->fill : len;
        memcpy(c->buf + c->fill, p, take);
        c->fill += take, p += take, len -= take;
        if (c->fill < 64)
            return;
        blocks(c->h, c->buf, 1);
        c->fill = 0;
    }
    if (len >= 64) {
        blocks(c->h, p, len / 64);
        p += len & ~(size_t)63;
        len &= 63;
    }
    memcpy(c->buf, p, len);
    c->fill = len;
}

void vp_sha256_final(struct vp_sha256 *c, uint8_t out[32])
{
    uint64_t bits = c->total * 8;
    uint8_t pad[72] = {0x80};
    size_t padlen = (c->fill < 56 ? 56 : 120) - c->fill;
    for (int i = 0; i < 8; i++)
        pad[padlen + i] = (uint8_t)(bits >> (56 - 8 * i));
    vp_sha256_update(c, pad, padlen + 8);
    for (int i = 0; i < 8; i++) {
        out[4 * i] = (uint8_t)(c->h[i] >> 24);
        out[4 * i + 1] = (uint8_t)(c->h[i] >> 16);
        out[4 * i + 2] = (uint8_t)(c->h[i] >> 8);
        out[4 * i + 3] = (uint8_t)c->h[i];
    }
}

void vp_sha256_hex(const uint8_t d[32], char out[VP_SHA256_HEX])
{
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < 32; i++) {
        out[2 * i] = hex[d[i] >> 4];
        out[2 * i + 1] = hex[d[i] & 15];
    }
    out[64] = '\0';
}

int vp_sha256_file(const char *path, char out[VP_SHA256_HEX])
{
    _cleanup_(closep) int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return vp_error_errno(-errno, "cannot open %s", path);
    (void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    struct vp_sha256 c;
    vp_sha256_init(&c);
    size_t cap = 1 << 20;
    _cleanup_(freep) uint8_t *buf = vp_xmalloc(cap);
    for (;;) {
        ssize_t n = read(fd, buf, cap);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return vp_error_errno(-errno, "cannot read %s", path);
        if (n == 0)
            break;
        vp_sha256_update(&c, buf, (size_t)n);
    }
    uint8_t d[32];
    vp_sha256_final(&c, d);
    vp_sha256_hex(d, out);
    return 0;
}
