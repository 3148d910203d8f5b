/* native: loading a real NVIDIA driver library for the native backend (DESIGN §5):
 * by absolute path, with RTLD_DEEPBIND so the driver's calls to its own exports stay
 * inside it, never through the shim's soname, and never one of our own shims. */
#ifndef VGPU_NATIVE_H
#define VGPU_NATIVE_H

#include <stddef.h>

/* Opens the driver at path. Returns the dlopen handle, or NULL with a message in
 * msg (size n): not absolute, cannot be loaded (dlerror), or a vgpu shim (it exports
 * vgpu_shim_abi_version: forwarding to it would loop). */
void *vgpu_native_open(const char *path, char *msg, size_t n);

#endif
