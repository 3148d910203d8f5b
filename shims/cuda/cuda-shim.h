/* cuda-shim: internals of libvgpu-cuda.so.1 shared by its C files — entry point
 * indices, the dispatch table, the backend state, and the macros the implemented
 * entry points use to count calls and reach the backend. */
#ifndef VGPU_CUDA_SHIM_H
#define VGPU_CUDA_SHIM_H

#include <stdbool.h>

#include "cuda-types.h"
#include "backend.h"
#include "dispatch.h"
#include "shim.h"

/* The generated table: VGPU_TABLE_SIZE, and each export's index. */
#define VGPU_ENTRY(kind, index, name)
#include "cuda-table.h"
#undef VGPU_ENTRY

enum vgpu_cuda_index {
#define VGPU_ENTRY(kind, index, name) VGPU_CUDA_##name = index,
#include "cuda-table.h"
#undef VGPU_ENTRY
};

extern const struct vgpu_dispatch vgpu_cuda_dispatch;

/* The backend (core/backend.h), brought up once at the first call that needs it. */
enum vgpu_backend_state vgpu_cuda_state(void);
bool vgpu_cuda_backend_up(void);
/* The backend, or NULL when none is up. */
const struct vgpu_backend *vgpu_cuda_backend(void);
/* Serves cuGetExportTable through the backend. */
CUresult vgpu_cuda_backend_export_table(const void **table, const CUuuid *id);

/* The answer to a call the backend cannot serve: counted; "not initialized" while no
 * backend is up, NOT_SUPPORTED when the backend lacks the entry point. */
CUresult vgpu_cuda_unserved(unsigned index);

/* Counts a call to an implemented entry point. */
#define VGPU_COUNT(name) VGPU_DISPATCH_COUNT(vgpu_cuda_dispatch, VGPU_CUDA_##name)
/* Calls the backend's own `name` with the shim's prototype of it, or answers as
 * vgpu_cuda_unserved(). */
#define VGPU_FORWARD(name, ...)                                                                    \
    VGPU_DISPATCH_FORWARD(vgpu_cuda_dispatch, VGPU_CUDA_##name, vgpu_cuda_unserved, name,          \
                          __VA_ARGS__)

/* The newest CUDA version the shim's tables know: what cuDriverGetVersion reports
 * while no backend is up, so runtimes go on to cuInit and learn there is no device. */
#define VGPU_CUDA_TABLE_VERSION 13000

#endif
