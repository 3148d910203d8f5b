/* sha256: SHA-256 (FIPS 180-4) for the manifest's content hashes; uses the x86 SHA
 * extensions when the CPU has them, plain C otherwise. */
#ifndef VP_SHA256_H
#define VP_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define VP_SHA256_HEX 65 /* 64 hex digits and a NUL */

struct vp_sha256 {
    uint32_t h[8];
    uint64_t total;
    uint8_t buf[64];
    size_t fill;
};

void vp_sha256_init(struct vp_sha256 *c);
void vp_sha256_update(struct vp_sha256 *c, const void *data, size_t len);
void vp_sha256_final(struct vp_sha256 *c, uint8_t out[32]);
void vp_sha256_hex(const uint8_t digest[32], char out[VP_SHA256_HEX]);
/* Hashes a whole file; returns 0 or a negative errno. */
int vp_sha256_file(const char *path, char out[VP_SHA256_HEX]);
/* For tests and benchmarks: force the portable code path (true) or auto-detect. */
void vp_sha256_force_portable(int on);

#endif
