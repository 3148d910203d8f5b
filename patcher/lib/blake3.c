/* blake3: portable compression function plus an AVX2 path that compresses eight
 * chunks in parallel (one per 32-bit lane). */
#include "blake3.h"
#include "util.h"

#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <immintrin.h>
#include <string.h>

#define CHUNK_LEN 1024
enum { CHUNK_START = 1, CHUNK_END = 2, PARENT = 4, ROOT = 8 };

static const uint32_t IV[8] = {0x6A09E667, 0xBB67AE85, 0x3C6EF372, 0xA54FF53A,
                               0x510E527F, 0x9B05688C, 0x1F83D9AB, 0x5BE0CD19};

static const uint8_t SCHEDULE[7][16] = {
    {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
    {2, 6, 3, 10, 7, 0, 4, 13, 1, 11, 12, 5, 9, 14, 15, 8},
    {3, 4, 10, 12, 13, 2, 7, 14, 6, 5, 9, 0, 11, 15, 8, 1},
    {10, 7, 12, 9, 14, 3, 13, 15, 4, 0, 11, 2, 5, 8, 1, 6},
    {12, 13, 9, 11, 15, 10, 14, 8, 7, 2, 5, 3, 0, 1, 6, 4},
    {9, 14, 11, 5, 8, 12, 15, 1, 13, 3, 0, 10, 2, 6, 4, 7},
    {11, 15, 5, 0, 1, 9, 8, 6, 14, 10, 2, 12, 3, 4, 7, 13},
};

static inline uint32_t rotr(uint32_t x, int n)
{
    return (x >> n) | (x << (32 - n));
}

static inline uint32_t load32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

#define G(a, b, c, d, x, y)                                                              \
    do {                                                                                 \
        s[a] = s[a] + s[b] + (x);                                                        \
        s[d] = rotr(s[d] ^ s[a], 16);                                                    \
        s[c] = s[c] + s[d];                                                              \
        s[b] = rotr(s[b] ^ s[c], 12);                                                    \
        s[a] = s[a] + s[b] + (y);                                                        \
        s[d] = rotr(s[d] ^ s[a], 8);                                                     \
        s[c] = s[c] + s[d];                                                              \
        s[b] = rotr(s[b] ^ s[c], 7);                                                     \
    } while (0)

/* The compression function; writes the 16 output words. */
static void compress(const uint32_t cv[8], const uint8_t block[64], uint8_t len, uint64_t ctr,
                     uint8_t flags, uint32_t out[16])
{
    uint32_t m[16], s[16];
    for (int i = 0; i < 16; i++)
        m[i] = load32(block + 4 * i);
    memcpy(s, cv, 32);
    memcpy(s + 8, IV, 16);
    s[12] = (uint32_t)ctr;
    s[13] = (uint32_t)(ctr >> 32);
    s[14] = len;
    s[15] = flags;
    for (int r = 0; r < 7; r++) {
        const uint8_t *k = SCHEDULE[r];
        G(0, 4, 8, 12, m[k[0]], m[k[1]]);
        G(1, 5, 9, 13, m[k[2]], m[k[3]]);
        G(2, 6, 10, 14, m[k[4]], m[k[5]]);
        G(3, 7, 11, 15, m[k[6]], m[k[7]]);
        G(0, 5, 10, 15, m[k[8]], m[k[9]]);
        G(1, 6, 11, 12, m[k[10]], m[k[11]]);
        G(2, 7, 8, 13, m[k[12]], m[k[13]]);
        G(3, 4, 9, 14, m[k[14]], m[k[15]]);
    }
    for (int i = 0; i < 8; i++) {
        out[i] = s[i] ^ s[i + 8];
        out[i + 8] = s[i + 8] ^ cv[i];
    }
}

/* Chaining value of one whole chunk (not the root). */
static void chunk_cv(const uint8_t *p, uint64_t ctr, uint32_t cv[8])
{
    uint32_t out[16];
    memcpy(cv, IV, 32);
    for (int b = 0; b < 16; b++) {
        uint8_t flags = (b == 0 ? CHUNK_START : 0) | (b == 15 ? CHUNK_END : 0);
        compress(cv, p + 64 * b, 64, ctr, flags, out);
        memcpy(cv, out, 32);
    }
}

/* ---- AVX2: eight chunks at once ---- */

#define AVX2 __attribute__((target("avx2")))

#define ROTV(x, n) _mm256_or_si256(_mm256_srli_epi32(x, n), _mm256_slli_epi32(x, 32 - (n)))

#define GV(a, b, c, d, x, y)                                                             \
    do {                                                                                 \
        v[a] = _mm256_add_epi32(_mm256_add_epi32(v[a], v[b]), x);                        \
        v[d] = _mm256_shuffle_epi8(_mm256_xor_si256(v[d], v[a]), r16);                                      \
        v[c] = _mm256_add_epi32(v[c], v[d]);                                             \
        v[b] = ROTV(_mm256_xor_si256(v[b], v[c]), 12);                                   \
        v[a] = _mm256_add_epi32(_mm256_add_epi32(v[a], v[b]), y);                        \
        v[d] = _mm256_shuffle_epi8(_mm256_xor_si256(v[d], v[a]), r8);                                       \
        v[c] = _mm256_add_epi32(v[c], v[d]);                                             \
        v[b] = ROTV(_mm256_xor_si256(v[b], v[c]), 7);                                    \
    } while (0)

/* Transposes an 8x8 matrix of 32-bit words held in eight registers. */
AVX2 static void transpose8(__m256i r[8])
{
    __m256i a0 = _mm256_unpacklo_epi32(r[0], r[1]), a1 = _mm256_unpackhi_epi32(r[0], r[1]);
    __m256i a2 = _mm256_unpacklo_epi32(r[2], r[3]), a3 = _mm256_unpackhi_epi32(r[2], r[3]);
    __m256i a4 = _mm256_unpacklo_epi32(r[4], r[5]), a5 = _mm256_unpackhi_epi32(r[4], r[5]);
    __m256i a6 = _mm256_unpacklo_epi32(r[6], r[7]), a7 = _mm256_unpackhi_epi32(r[6], r[7]);
    __m256i b0 = _mm256_unpacklo_epi64(a0, a2), b1 = _mm256_unpackhi_epi64(a0, a2);
    __m256i b2 = _mm256_unpacklo_epi64(a1, a3), b3 = _mm256_unpackhi_epi64(a1, a3);
    __m256i b4 = _mm256_unpacklo_epi64(a4, a6), b5 = _mm256_unpackhi_epi64(a4, a6);
    __m256i b6 = _mm256_unpacklo_epi64(a5, a7), b7 = _mm256_unpackhi_epi64(a5, a7);
    r[0] = _mm256_permute2x128_si256(b0, b4, 0x20);
    r[1] = _mm256_permute2x128_si256(b1, b5, 0x20);
    r[2] = _mm256_permute2x128_si256(b2, b6, 0x20);
    r[3] = _mm256_permute2x128_si256(b3, b7, 0x20);
    r[4] = _mm256_permute2x128_si256(b0, b4, 0x31);
    r[5] = _mm256_permute2x128_si256(b1, b5, 0x31);
    r[6] = _mm256_permute2x128_si256(b2, b6, 0x31);
    r[7] = _mm256_permute2x128_si256(b3, b7, 0x31);
}

/* Compresses eight inputs of nblocks blocks each in parallel (lane l reads in[l]):
 * chunks (counter ctr+l, CHUNK_START/CHUNK_END on the first/last block) or, with
 * flags PARENT, one-block parent nodes (counter 0). Writes eight chaining values. */
AVX2 static void hash8(const uint8_t *const in[8], int nblocks, uint64_t ctr, bool parent,
                       uint32_t cvs[8][8])
{
    const __m256i r16 = _mm256_set_epi8(13, 12, 15, 14, 9, 8, 11, 10, 5, 4, 7, 6, 1, 0, 3, 2,
                                        13, 12, 15, 14, 9, 8, 11, 10, 5, 4, 7, 6, 1, 0, 3, 2);
    const __m256i r8 = _mm256_set_epi8(12, 15, 14, 13, 8, 11, 10, 9, 4, 7, 6, 5, 0, 3, 2, 1,
                                       12, 15, 14, 13, 8, 11, 10, 9, 4, 7, 6, 5, 0, 3, 2, 1);
    __m256i h[8], m[16];
    for (int i = 0; i < 8; i++)
        h[i] = _mm256_set1_epi32((int)IV[i]);
    __m256i lo = _mm256_setzero_si256(), hi = _mm256_setzero_si256();
    if (!parent) {
        lo = _mm256_setr_epi32((int)ctr, (int)(ctr + 1), (int)(ctr + 2), (int)(ctr + 3),
                               (int)(ctr + 4), (int)(ctr + 5), (int)(ctr + 6), (int)(ctr + 7));
        /* The high word carries where the low word wrapped within the group. */
        __m256i carry =
            _mm256_cmpgt_epi32(_mm256_set1_epi32((int)((uint32_t)ctr ^ 0x80000000u)),
                               _mm256_xor_si256(lo, _mm256_set1_epi32(INT32_MIN)));
        hi = _mm256_sub_epi32(_mm256_set1_epi32((int)(ctr >> 32)), carry);
    }
    for (int b = 0; b < nblocks; b++) {
        for (int half = 0; half < 2; half++) {
            __m256i r[8];
            for (int l = 0; l < 8; l++)
                r[l] = _mm256_loadu_si256((const __m256i *)(in[l] + 64 * b + 32 * half));
            transpose8(r);
            for (int l = 0; l < 8; l++)
                m[8 * half + l] = r[l];
        }
        int flags = parent ? PARENT
                           : (b == 0 ? CHUNK_START : 0) | (b == nblocks - 1 ? CHUNK_END : 0);
        __m256i v[16];
        for (int i = 0; i < 8; i++)
            v[i] = h[i];
        for (int i = 0; i < 4; i++)
            v[8 + i] = _mm256_set1_epi32((int)IV[i]);
        v[12] = lo;
        v[13] = hi;
        v[14] = _mm256_set1_epi32(64);
        v[15] = _mm256_set1_epi32(flags);
        for (int rd = 0; rd < 7; rd++) {
            const uint8_t *k = SCHEDULE[rd];
            GV(0, 4, 8, 12, m[k[0]], m[k[1]]);
            GV(1, 5, 9, 13, m[k[2]], m[k[3]]);
            GV(2, 6, 10, 14, m[k[4]], m[k[5]]);
            GV(3, 7, 11, 15, m[k[6]], m[k[7]]);
            GV(0, 5, 10, 15, m[k[8]], m[k[9]]);
            GV(1, 6, 11, 12, m[k[10]], m[k[11]]);
            GV(2, 7, 8, 13, m[k[12]], m[k[13]]);
            GV(3, 4, 9, 14, m[k[14]], m[k[15]]);
        }
        for (int i = 0; i < 8; i++)
            h[i] = _mm256_xor_si256(v[i], v[i + 8]);
    }
    transpose8(h);
    for (int l = 0; l < 8; l++)
        _mm256_storeu_si256((__m256i *)cvs[l], h[l]);
}

static int force_portable;

void vp_b3_force_portable(int on)
{
    force_portable = on;
}

static bool use_avx2(void)
{
    static int have = -1;
    if (have < 0) {
        __builtin_cpu_init();
        have = __builtin_cpu_supports("avx2");
    }
    return have && !force_portable;
}

/* ---- the tree ---- */

static void parent_cv(const uint32_t l[8], const uint32_t r[8], uint8_t flags, uint32_t out[16])
{
    uint8_t block[64];
    for (int i = 0; i < 8; i++) {
        for (int k = 0; k < 4; k++) {
            block[4 * i + k] = (uint8_t)(l[i] >> (8 * k));
            block[32 + 4 * i + k] = (uint8_t)(r[i] >> (8 * k));
        }
    }
    compress(IV, block, 64, 0, PARENT | flags, out);
}

/* Adds the chaining value of a complete subtree; total counts subtrees of its size
 * so far (chunks, for single chunks). Merges every pair that is now complete. */
static void push_cv(struct vp_b3 *h, const uint32_t cv[8], uint64_t total)
{
    uint32_t cur[16];
    memcpy(cur, cv, 32);
    while (!(total & 1)) {
        parent_cv(h->stack[--h->stack_len], cur, 0, cur);
        total >>= 1;
    }
    memcpy(h->stack[h->stack_len++], cur, 32);
}

#define SUBTREE_MAX 128 /* chunks hashed as one subtree: 128 KiB */

/* Chaining value of the 2^k-chunk subtree at p whose first chunk has counter ctr. */
static void subtree_cv(const uint8_t *p, uint64_t ctr, size_t n, uint32_t out[8])
{
    uint32_t cvs[SUBTREE_MAX][8];
    size_t i = 0;
    for (; use_avx2() && i + 8 <= n; i += 8) {
        const uint8_t *in[8];
        for (int l = 0; l < 8; l++)
            in[l] = p + (i + (size_t)l) * CHUNK_LEN;
        hash8(in, 16, ctr + i, false, (uint32_t(*)[8])cvs[i]);
    }
    for (; i < n; i++)
        chunk_cv(p + i * CHUNK_LEN, ctr + i, cvs[i]);
    /* Reduce level by level; a parent's block is its two children side by side. */
    for (; n > 1; n /= 2) {
        size_t k = 0;
        for (; use_avx2() && k + 8 <= n / 2; k += 8) {
            const uint8_t *in[8];
            for (int l = 0; l < 8; l++)
                in[l] = (const uint8_t *)cvs[2 * (k + (size_t)l)];
            uint32_t res[8][8];
            hash8(in, 1, 0, true, res);
            memcpy(cvs[k], res, sizeof(res));
        }
        for (; k < n / 2; k++) {
            uint32_t o[16];
            parent_cv(cvs[2 * k], cvs[2 * k + 1], 0, o);
            memcpy(cvs[k], o, 32);
        }
    }
    memcpy(out, cvs[0], 32);
}

static size_t chunk_len(const struct vp_b3 *h)
{
    return (size_t)h->blocks * 64 + h->buf_len;
}

static void reset_chunk(struct vp_b3 *h, uint64_t counter)
{
    memcpy(h->cv, IV, 32);
    h->chunk = counter;
    h->buf_len = 0;
    h->blocks = 0;
}

void vp_b3_init(struct vp_b3 *h)
{
    h->stack_len = 0;
    reset_chunk(h, 0);
}

static void chunk_update(struct vp_b3 *h, const uint8_t *p, size_t len)
{
    while (len) {
        if (h->buf_len == 64) {
            uint32_t out[16];
            compress(h->cv, h->buf, 64, h->chunk, h->blocks == 0 ? CHUNK_START : 0, out);
            memcpy(h->cv, out, 32);
            h->blocks++;
            h->buf_len = 0;
        }
        size_t take = 64u - h->buf_len < len ? 64u - h->buf_len : len;
        memcpy(h->buf + h->buf_len, p, take);
        h->buf_len = (uint8_t)(h->buf_len + take);
        p += take;
        len -= take;
    }
}

/* Output words of the current chunk (CHUNK_END, with extra flags). */
static void chunk_output(const struct vp_b3 *h, uint8_t flags, uint32_t out[16])
{
    uint8_t block[64] = {0};
    memcpy(block, h->buf, h->buf_len);
    compress(h->cv, block, h->buf_len, h->chunk,
             (h->blocks == 0 ? CHUNK_START : 0) | CHUNK_END | flags, out);
}

void vp_b3_update(struct vp_b3 *h, const void *data, size_t len)
{
    const uint8_t *p = data;
    while (len) {
        if (chunk_len(h) == CHUNK_LEN) {
            uint32_t out[16];
            chunk_output(h, 0, out);
            push_cv(h, out, h->chunk + 1);
            reset_chunk(h, h->chunk + 1);
        }
        if (chunk_len(h) == 0) {
            /* Whole aligned subtrees with more input after them are never the root. */
            while (len > CHUNK_LEN) {
                size_t n = SUBTREE_MAX;
                while (n > 1 && ((h->chunk & (n - 1)) || n * CHUNK_LEN >= len))
                    n /= 2;
                uint32_t cv[8];
                subtree_cv(p, h->chunk, n, cv);
                push_cv(h, cv, (h->chunk + n) / n);
                reset_chunk(h, h->chunk + n);
                p += n * CHUNK_LEN;
                len -= n * CHUNK_LEN;
            }
        }
        size_t take = CHUNK_LEN - chunk_len(h) < len ? CHUNK_LEN - chunk_len(h) : len;
        chunk_update(h, p, take);
        p += take;
        len -= take;
    }
}

/* Turns a complete current chunk into a chaining value on the stack. */
static void flush_full_chunk(struct vp_b3 *h)
{
    if (chunk_len(h) == CHUNK_LEN) {
        uint32_t out[16];
        chunk_output(h, 0, out);
        push_cv(h, out, h->chunk + 1);
        reset_chunk(h, h->chunk + 1);
    }
}

void vp_b3_update2(struct vp_b3 *a, struct vp_b3 *b, const void *data, size_t len)
{
    const uint8_t *p = data;
    if (a->chunk != b->chunk || chunk_len(a) != chunk_len(b)) {
        vp_b3_update(a, p, len);
        vp_b3_update(b, p, len);
        return;
    }
    /* Finish the partial chunk each one holds (their contents may differ). */
    if (len && chunk_len(a) % CHUNK_LEN) {
        size_t take = CHUNK_LEN - chunk_len(a) < len ? CHUNK_LEN - chunk_len(a) : len;
        vp_b3_update(a, p, take);
        vp_b3_update(b, p, take);
        p += take;
        len -= take;
    }
    if (len) {
        flush_full_chunk(a);
        flush_full_chunk(b);
    }
    /* Same bytes at the same chunk counters: one subtree value serves both. */
    while (len > CHUNK_LEN) {
        size_t n = SUBTREE_MAX;
        while (n > 1 && ((a->chunk & (n - 1)) || n * CHUNK_LEN >= len))
            n /= 2;
        uint32_t cv[8];
        subtree_cv(p, a->chunk, n, cv);
        push_cv(a, cv, (a->chunk + n) / n);
        push_cv(b, cv, (b->chunk + n) / n);
        reset_chunk(a, a->chunk + n);
        reset_chunk(b, b->chunk + n);
        p += n * CHUNK_LEN;
        len -= n * CHUNK_LEN;
    }
    vp_b3_update(a, p, len);
    vp_b3_update(b, p, len);
}

void vp_b3_final(const struct vp_b3 *h, uint8_t out[32])
{
    uint32_t o[16];
    if (h->stack_len == 0) {
        chunk_output(h, ROOT, o);
    } else {
        chunk_output(h, 0, o);
        for (int i = h->stack_len - 1; i >= 0; i--)
            parent_cv(h->stack[i], o, i == 0 ? ROOT : 0, o);
    }
    for (int i = 0; i < 8; i++)
        for (int k = 0; k < 4; k++)
            out[4 * i + k] = (uint8_t)(o[i] >> (8 * k));
}

void vp_b3_hex(const uint8_t d[32], char out[VP_B3_HEX])
{
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < 32; i++) {
        out[2 * i] = hex[d[i] >> 4];
        out[2 * i + 1] = hex[d[i] & 15];
    }
    out[64] = '\0';
}

int vp_b3_file(const char *path, char out[VP_B3_HEX])
{
    _cleanup_(closep) int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return vp_error_errno(-errno, "cannot read %s", path);
    (void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    /* A fixed buffer, not a mapping: memory stays small for a 1 GB library. */
    size_t cap = 1 << 20;
    _cleanup_(freep) uint8_t *buf = vp_xmalloc(cap);
    struct vp_b3 h;
    vp_b3_init(&h);
    for (;;) {
        ssize_t n = read(fd, buf, cap);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return vp_error_errno(-errno, "cannot read %s", path);
        if (n == 0)
            break;
        vp_b3_update(&h, buf, (size_t)n);
    }
    uint8_t d[32];
    vp_b3_final(&h, d);
    vp_b3_hex(d, out);
    return 0;
}
