/* copy: the patched copy of one file in one pass — the kernel copies the bytes while a
 * second thread hashes the original and the patched result (BLAKE3; the hash work of
 * unchanged chunks is shared), then the patch set is written over the copy. */
#ifndef VP_COPY_H
#define VP_COPY_H

#include "blake3.h"
#include "elfwrite.h"

struct vp_copy_result {
    char orig_b3[VP_B3_HEX];
    char patched_b3[VP_B3_HEX];
    uint64_t size;          /* of the result */
    uint64_t bytes_written; /* into the copy */
};

/* Copies src_fd (size bytes) to dst_fd (empty) applying ps (NULL for a plain copy).
 * Returns 0 or a negative errno with a message (-ENOSPC on a full disk). */
int vp_copy_patched(int src_fd, uint64_t size, int dst_fd, const struct vp_patchset *ps,
                    struct vp_copy_result *ret);

#endif
