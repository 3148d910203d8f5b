/* blake3: the BLAKE3 hash (256-bit output, unkeyed) for the manifest's content hashes.
 * Chosen over SHA-256 because its tree structure hashes eight 1 KiB chunks at once with
 * AVX2: several GB/s, so hashing while copying costs less than the copy itself. */
#ifndef VP_BLAKE3_H
#define VP_BLAKE3_H

#include <stddef.h>
#include <stdint.h>

#define VP_B3_HEX 65 /* 64 hex digits and a NUL */

struct vp_b3 {
    uint32_t stack[54][8]; /* chaining values of complete subtrees */
    uint8_t stack_len;
    uint32_t cv[8]; /* current chunk */
    uint64_t chunk;
    uint8_t buf[64];
    uint8_t buf_len;
    uint8_t blocks;
};

void vp_b3_init(struct vp_b3 *h);
void vp_b3_update(struct vp_b3 *h, const void *data, size_t len);
/* Feeds the same bytes to two hashers that have consumed the same number of bytes
 * (possibly different ones): whole chunks are hashed once for both. */
void vp_b3_update2(struct vp_b3 *a, struct vp_b3 *b, const void *data, size_t len);
/* Writes the 32-byte digest; h may be updated further afterwards. */
void vp_b3_final(const struct vp_b3 *h, uint8_t out[32]);
void vp_b3_hex(const uint8_t digest[32], char out[VP_B3_HEX]);
/* Hashes a whole file; returns 0 or a negative errno with a message. */
int vp_b3_file(const char *path, char out[VP_B3_HEX]);
/* For tests and benchmarks: 1 forces the portable code, 0 auto-detects AVX2. */
void vp_b3_force_portable(int on);

#endif
