/* shim: what both shims share — export attributes, the component name each shim
 * defines, and small helpers. Everything not marked VGPU_API stays inside the shim
 * (hidden visibility, and the version script ends in `local: *;`). */
#ifndef VGPU_SHIM_H
#define VGPU_SHIM_H

#include <stddef.h>

#define VGPU_API           __attribute__((visibility("default")))
#define VGPU_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* The marker that tells our shims from NVIDIA's drivers and from hand-made shims
 * (DESIGN §5); both shims export it. Bump it when the shims' contract changes. */
#define VGPU_SHIM_ABI_VERSION 1

/* "vgpu-cuda" or "vgpu-nvml": the prefix of every message; defined by each shim. */
extern const char vgpu_shim_component[];

/* Copies src into dst (size n > 0), truncating; returns dst. */
char *vgpu_strlcpy(char *dst, const char *src, size_t n);

#endif
