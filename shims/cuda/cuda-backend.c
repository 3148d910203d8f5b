/* cuda-backend: the dispatch table and backend of libvgpu-cuda.so.1 (generic part in
 * core/shim-table.c.h), and what only CUDA has: the memory limit, set up when the
 * backend comes up, and export tables. */
#include "config.h"
#include "cuda-shim.h"
#include "memlimit.h"

const char vgpu_shim_component[] = "vgpu-cuda";

static void on_up(const struct vgpu_config *c)
{
    vgpu_mem_setup(c->memory_limit);
}

#define VGPU_TABLE         "cuda-table.h"
#define VGPU_PREFIX        cuda
#define VGPU_API_NAME      "CUDA"
#define VGPU_NATIVE_PATH   c->native_cuda
#define VGPU_NATIVE_KEY    "native_cuda"
#define VGPU_NOT_SUPPORTED CUDA_ERROR_NOT_SUPPORTED
#define VGPU_NOT_READY     CUDA_ERROR_NOT_INITIALIZED
#define VGPU_ON_UP         on_up
#include "shim-table.c.h"

CUresult vgpu_cuda_backend_export_table(const void **table, const CUuuid *id)
{
    const struct vgpu_backend *b = vgpu_cuda_backend();
    int r = b ? b->export_table(b, table, id) : VGPU_BACKEND_NO_TABLES;
    return r == VGPU_BACKEND_NO_TABLES ? vgpu_cuda_unserved(VGPU_CUDA_cuGetExportTable) : r;
}
