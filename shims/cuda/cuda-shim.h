/* cuda-shim: internals of libvgpu-cuda.so.1 shared by its C files — entry point
 * indices, the dispatch table, the backend state, and the macros the implemented
 * entry points use to count calls and reach the backend. */
#ifndef VGPU_CUDA_SHIM_H
#define VGPU_CUDA_SHIM_H

#include <stdbool.h>

#include "cuda-types.h"
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

/* Where the shim's calls go (core/backend.h has the states). */
enum vgpu_cuda_state { VGPU_CUDA_UP, VGPU_CUDA_NO_BACKEND, VGPU_CUDA_BAD_CONFIG };
/* Brings the configured backend up, once; later calls return the same state. */
enum vgpu_cuda_state vgpu_cuda_state(void);
bool vgpu_cuda_backend_up(void);
void *vgpu_cuda_backend_lookup(const char *name);
/* Serves cuGetExportTable through the backend. */
CUresult vgpu_cuda_backend_export_table(const void **table, const CUuuid *id);

/* The answer to a call the backend cannot serve: counted; NOT_INITIALIZED while no
 * backend is up, NOT_SUPPORTED when the backend lacks the entry point. */
CUresult vgpu_cuda_unserved(unsigned index);

/* Counts a call to an implemented entry point. */
#define VGPU_COUNT(name) \
    __atomic_fetch_add(&vgpu_cuda_dispatch.calls[VGPU_CUDA_##name], 1, __ATOMIC_RELAXED)

/* Calls the backend's own `name` with the shim's prototype of it, or answers as
 * vgpu_cuda_unserved() when it has none. */
#define VGPU_FORWARD(name, ...)                                                          \
    ({                                                                                   \
        __typeof__(&name) fn_ = (__typeof__(&name))vgpu_dispatch_real(&vgpu_cuda_dispatch, \
                                                                     VGPU_CUDA_##name);  \
        fn_ ? fn_(__VA_ARGS__) : vgpu_cuda_unserved(VGPU_CUDA_##name);                   \
    })

/* The newest CUDA version the shim's tables know: what cuDriverGetVersion reports
 * while no backend is up, so runtimes go on to cuInit and learn there is no device. */
#define VGPU_CUDA_TABLE_VERSION 13000

#endif
