/* trust: the shim dir trust rule (DESIGN §7) and the identity of the shim files.
 * Patched files load whatever sits at the shim paths, so the shims, their directory
 * and every ancestor must be root-owned and not writable by group or others (a
 * root-owned sticky ancestor such as /tmp is allowed). When vgpu-patch does not run
 * as root, files owned by the invoking user are accepted too (that user could change
 * its own Ollama tree anyway). */
#ifndef VP_TRUST_H
#define VP_TRUST_H

#include "util.h"

#define VP_SHIM_CUDA_FILE "libvgpu-cuda.so.1"
#define VP_SHIM_NVML_FILE "libvgpu-nvml.so.1"
#define VP_AUDIT_FILE "libvgpu-audit.so"

struct vp_shims {
    char *dir;   /* absolute runtime path, as written into ELF files */
    char *cuda;  /* dir/libvgpu-cuda.so.1 */
    char *nvml;  /* dir/libvgpu-nvml.so.1 */
    char *audit; /* dir/libvgpu-audit.so, the LD_AUDIT module (may be absent) */
};

/* Checks path (a file or directory) and every ancestor against the trust rule.
 * Returns 0, or -EPERM with a message naming the offending path and why. */
int vp_trust_check(const char *path);

/* Validates a shim dir: absolute, trusted, both shims present, ELF shared objects
 * with the driver sonames and our marker export. Fills ret on success. */
int vp_shims_open(const char *dir, struct vp_shims *ret);
void vp_shims_release(struct vp_shims *s);
/* Validates the audit module of an opened shim dir: present, trusted, an ELF shared
 * object. Returns 0 or a negative errno with a message. */
int vp_shims_check_audit(const struct vp_shims *s);
/* A deep copy. */
void vp_shims_copy(const struct vp_shims *s, struct vp_shims *ret);

/* The default shim dir: <dir of this executable>/../lib/vgpu. */
char *vp_shims_default_dir(void);

#endif
