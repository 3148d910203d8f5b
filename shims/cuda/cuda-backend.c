/* cuda-backend: the CUDA shim's backend, brought up once at the first call that needs
 * it, and the dispatch table of libvgpu-cuda.so.1. */
#include <pthread.h>

#include "backend.h"
#include "config.h"
#include "cuda-shim.h"
#include "log.h"
#include "memlimit.h"

const char vgpu_shim_component[] = "vgpu-cuda";

static pthread_once_t once = PTHREAD_ONCE_INIT;
static enum vgpu_backend_state state;
static struct vgpu_backend backend;

static void bring_up(void)
{
    const struct vgpu_config *c = vgpu_config();
    state = vgpu_backend_open("CUDA", c->native_cuda, "native_cuda", &backend);
    if (state == VGPU_BACKEND_UP)
        vgpu_mem_setup(c->memory_limit);
}

enum vgpu_cuda_state vgpu_cuda_state(void)
{
    pthread_once(&once, bring_up);
    return state == VGPU_BACKEND_UP     ? VGPU_CUDA_UP
           : state == VGPU_BACKEND_DOWN ? VGPU_CUDA_NO_BACKEND
                                        : VGPU_CUDA_BAD_CONFIG;
}

bool vgpu_cuda_backend_up(void)
{
    return vgpu_cuda_state() == VGPU_CUDA_UP;
}

void *vgpu_cuda_backend_lookup(const char *name)
{
    return backend.lookup(&backend, name);
}

CUresult vgpu_cuda_backend_export_table(const void **table, const CUuuid *id)
{
    int r = backend.export_table(&backend, table, id);
    return r == VGPU_BACKEND_NO_TABLES ? vgpu_cuda_unserved(VGPU_CUDA_cuGetExportTable) : r;
}

static CUresult not_supported(void)
{
    return CUDA_ERROR_NOT_SUPPORTED;
}

static CUresult not_initialized(void)
{
    return CUDA_ERROR_NOT_INITIALIZED;
}

CUresult vgpu_cuda_unserved(unsigned index)
{
    bool up = vgpu_cuda_backend_up();
    vgpu_dispatch_unserved(&vgpu_cuda_dispatch, index,
                           up ? "the backend does not provide it: NOT_SUPPORTED"
                              : "no backend is up");
    return up ? CUDA_ERROR_NOT_SUPPORTED : CUDA_ERROR_NOT_INITIALIZED;
}

#define VGPU_TABLE "cuda-table.h"
#define VGPU_PREFIX cuda
#define VGPU_UP vgpu_cuda_backend_up
#define VGPU_LOOKUP vgpu_cuda_backend_lookup
#define VGPU_NOT_SUPPORTED not_supported
#define VGPU_NOT_READY not_initialized
#include "dispatch-table.c.h"
