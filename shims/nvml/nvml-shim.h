/* nvml-shim: internals of libvgpu-nvml.so.1 shared by its C files. */
#ifndef VGPU_NVML_SHIM_H
#define VGPU_NVML_SHIM_H

#include <stdbool.h>

#include "backend.h"
#include "dispatch.h"
#include "nvml-types.h"
#include "shim.h"

/* The generated table: VGPU_TABLE_SIZE, and each export's index. */
#define VGPU_ENTRY(kind, index, name)
#include "nvml-table.h"
#undef VGPU_ENTRY

enum vgpu_nvml_index {
#define VGPU_ENTRY(kind, index, name) VGPU_NVML_##name = index,
#include "nvml-table.h"
#undef VGPU_ENTRY
};

extern const struct vgpu_dispatch vgpu_nvml_dispatch;

/* The backend (core/backend.h), brought up once at the first call that needs it. */
enum vgpu_backend_state vgpu_nvml_state(void);
bool vgpu_nvml_backend_up(void);
/* The backend, or NULL when none is up. */
const struct vgpu_backend *vgpu_nvml_backend(void);
/* The answer to a call the backend cannot serve: counted; "not initialized" while no
 * backend is up, NOT_SUPPORTED when the backend lacks the entry point. */
nvmlReturn_t vgpu_nvml_unserved(unsigned index);

/* Counts a call to an implemented entry point. */
#define VGPU_COUNT(name) VGPU_DISPATCH_COUNT(vgpu_nvml_dispatch, VGPU_NVML_##name)
/* Calls the backend's own `name` with the shim's prototype of it, or answers as
 * vgpu_nvml_unserved(). */
#define VGPU_FORWARD(name, ...)                                                                    \
    VGPU_DISPATCH_FORWARD(vgpu_nvml_dispatch, VGPU_NVML_##name, vgpu_nvml_unserved, name,          \
                          __VA_ARGS__)

#endif
