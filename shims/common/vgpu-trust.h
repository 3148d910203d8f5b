/* vgpu-trust: the shim dir trust rule (DESIGN §7), shared by vgpu-patch and
 * vgpu-launch. Whatever sits at the shim paths runs inside Ollama, so a shim, its
 * directory and every ancestor must be owned by root (or, when the caller is not
 * root, by the caller) and not writable by group or others — a root-owned sticky
 * ancestor such as /tmp excepted. */
#ifndef VGPU_TRUST_H
#define VGPU_TRUST_H

#include <stddef.h>

/* Checks path and every ancestor, as named and then as links resolve them. Returns 0,
 * or a negative errno (-EPERM: untrusted) with one sentence in msg (size n). */
int vgpu_trust_check(const char *path, char *msg, size_t n);

#endif
