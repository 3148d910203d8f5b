/* nvml-backend: the NVML shim's backend, brought up once at the first call that needs
 * it, and the dispatch table of libvgpu-nvml.so.1. */
#include <pthread.h>

#include "backend.h"
#include "config.h"
#include "nvml-shim.h"

const char vgpu_shim_component[] = "vgpu-nvml";

static pthread_once_t once = PTHREAD_ONCE_INIT;
static enum vgpu_backend_state state;
static struct vgpu_backend backend;

static void bring_up(void)
{
    state = vgpu_backend_open("NVML", vgpu_config()->native_nvml, "native_nvml", &backend);
}

enum vgpu_nvml_state vgpu_nvml_state(void)
{
    pthread_once(&once, bring_up);
    return state == VGPU_BACKEND_UP     ? VGPU_NVML_UP
           : state == VGPU_BACKEND_DOWN ? VGPU_NVML_NO_BACKEND
                                        : VGPU_NVML_BAD_CONFIG;
}

bool vgpu_nvml_backend_up(void)
{
    return vgpu_nvml_state() == VGPU_NVML_UP;
}

void *vgpu_nvml_backend_lookup(const char *name)
{
    return backend.lookup(&backend, name);
}

static nvmlReturn_t not_supported(void)
{
    return NVML_ERROR_NOT_SUPPORTED;
}

static nvmlReturn_t uninitialized(void)
{
    return NVML_ERROR_UNINITIALIZED;
}

nvmlReturn_t vgpu_nvml_unserved(unsigned index)
{
    bool up = vgpu_nvml_backend_up();
    vgpu_dispatch_unserved(&vgpu_nvml_dispatch, index,
                           up ? "the backend does not provide it: NOT_SUPPORTED"
                              : "no backend is up");
    return up ? NVML_ERROR_NOT_SUPPORTED : NVML_ERROR_UNINITIALIZED;
}

#define VGPU_TABLE "nvml-table.h"
#define VGPU_PREFIX nvml
#define VGPU_UP vgpu_nvml_backend_up
#define VGPU_LOOKUP vgpu_nvml_backend_lookup
#define VGPU_NOT_SUPPORTED not_supported
#define VGPU_NOT_READY uninitialized
#include "dispatch-table.c.h"
