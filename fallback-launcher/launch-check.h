/* launch-check: proves, in a child process, that the shims and the audit module of a
 * shim dir load and export what they must, without calling anything in them. */
#ifndef LAUNCH_CHECK_H
#define LAUNCH_CHECK_H

#include <stddef.h>

/* How long the child may take before it is killed and the check fails. */
#define LAUNCH_CHECK_TIMEOUT_MS 10000

/* Checks that the shim dir's files pass vgpu-patch's trust rule, then checks
 * dir/libvgpu-cuda.so.1 (vgpu_shim_abi_version, cuInit), dir/libvgpu-nvml.so.1
 * (vgpu_shim_abi_version, nvmlInit_v2) and dir/libvgpu-audit.so (la_version,
 * la_objsearch) in a forked child that dlopen()s them RTLD_NOW | RTLD_LOCAL and
 * _exit()s. Returns 0 when all load and export them, else a negative errno with the
 * first reason, one line naming the file, in why (size bytes, NUL-terminated). */
int launch_check(const char *dir, char *why, size_t size);

#endif
