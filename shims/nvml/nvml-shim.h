/* nvml-shim: internals of libvgpu-nvml.so.1 shared by its C files. */
#ifndef VGPU_NVML_SHIM_H
#define VGPU_NVML_SHIM_H

#include <stdbool.h>

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

enum vgpu_nvml_state { VGPU_NVML_UP, VGPU_NVML_NO_BACKEND, VGPU_NVML_BAD_CONFIG };
enum vgpu_nvml_state vgpu_nvml_state(void);
bool vgpu_nvml_backend_up(void);
void *vgpu_nvml_backend_lookup(const char *name);
/* A call the backend cannot serve: counted; UNINITIALIZED while no backend is up,
 * NOT_SUPPORTED when the backend lacks the entry point. */
nvmlReturn_t vgpu_nvml_unserved(unsigned index);

#define VGPU_COUNT(name) \
    __atomic_fetch_add(&vgpu_nvml_dispatch.calls[VGPU_NVML_##name], 1, __ATOMIC_RELAXED)

#define VGPU_FORWARD(name, ...)                                                          \
    ({                                                                                   \
        __typeof__(&name) fn_ = (__typeof__(&name))vgpu_dispatch_real(&vgpu_nvml_dispatch, \
                                                                     VGPU_NVML_##name);  \
        fn_ ? fn_(__VA_ARGS__) : vgpu_nvml_unserved(VGPU_NVML_##name);                   \
    })

#endif
