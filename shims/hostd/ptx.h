/* ptx: just enough of a PTX reader to lay out a kernel's parameters (the `.entry`
 * declarations), for the simulated device and for drivers without cuFuncGetParamInfo.
 * Every read is bounded by the image length; the image need not be NUL-terminated. */
#ifndef VGPU_HOSTD_PTX_H
#define VGPU_HOSTD_PTX_H

#include <stdbool.h>
#include <stddef.h>

#include "proto.h"

/* Whether image looks like PTX text: the bytes before the first NUL (or all of them)
 * hold a `.version` directive, and nothing follows that NUL but more NULs. */
bool ptx_is_ptx(const void *image, size_t len);

/* Finds `.entry name` in the PTX text and lays out its parameters: params[i] gets the
 * offset (aligned to the parameter's alignment) and size of parameter i, *ret_n their
 * count. Returns 0, -ENOENT (no such entry), -EINVAL (a declaration it cannot read),
 * or -E2BIG (more than max parameters, or a parameter beyond VR_MAX_KERNEL_ARG). */
int ptx_entry_params(const char *ptx, size_t len, const char *name, struct vr_param *params,
                     unsigned max, unsigned *ret_n);

/* The packed size of a parameter list: the end of its last byte (0 for none). */
size_t ptx_params_size(const struct vr_param *params, unsigned n);

#endif
