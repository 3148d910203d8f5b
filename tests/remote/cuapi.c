/* cuapi: loading the shims by path and resolving their entry points (cuapi.h). */
#include "cuapi.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A dlsym'd object pointer copied into the typed function pointer field. */
#define RESOLVE(api, name)                                                                         \
    do {                                                                                           \
        void *p_ = dlsym((api)->lib, #name);                                                       \
        if (!p_) {                                                                                 \
            fprintf(stderr, "cuapi: %s has no %s\n", path, #name);                                 \
            return -1;                                                                             \
        }                                                                                          \
        _Static_assert(sizeof((api)->name) == sizeof(p_), "function pointer size");                \
        memcpy(&(api)->name, &p_, sizeof(p_));                                                     \
    } while (0)

static void *open_lib(const char *dir, const char *file, char *path, size_t len)
{
    if (!dir)
        dir = getenv("VGPU_TEST_SHIM_DIR");
    if (!dir || !*dir) {
        fprintf(stderr, "cuapi: VGPU_TEST_SHIM_DIR is not set\n");
        return NULL;
    }
    snprintf(path, len, "%s/%s", dir, file);
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h)
        fprintf(stderr, "cuapi: cannot load %s: %s\n", path, dlerror());
    return h;
}

int cuapi_load(struct cuapi *ret, const char *dir)
{
    char path[4096];
    struct cuapi *c = ret;
    memset(c, 0, sizeof(*c));
    c->lib = open_lib(dir, "libvgpu-cuda.so.1", path, sizeof(path));
    if (!c->lib)
        return -1;
    RESOLVE(c, cuInit);
    RESOLVE(c, cuDriverGetVersion);
    RESOLVE(c, cuDeviceGetCount);
    RESOLVE(c, cuDeviceGet);
    RESOLVE(c, cuDeviceGetName);
    RESOLVE(c, cuDeviceTotalMem_v2);
    RESOLVE(c, cuDeviceGetAttribute);
    RESOLVE(c, cuDeviceGetUuid_v2);
    RESOLVE(c, cuDeviceGetPCIBusId);
    RESOLVE(c, cuDevicePrimaryCtxRetain);
    RESOLVE(c, cuDevicePrimaryCtxRelease_v2);
    RESOLVE(c, cuCtxSetCurrent);
    RESOLVE(c, cuCtxSynchronize);
    RESOLVE(c, cuMemGetInfo_v2);
    RESOLVE(c, cuMemAlloc_v2);
    RESOLVE(c, cuMemFree_v2);
    RESOLVE(c, cuMemcpyHtoD_v2);
    RESOLVE(c, cuMemcpyDtoH_v2);
    RESOLVE(c, cuMemcpyDtoD_v2);
    RESOLVE(c, cuMemcpyHtoDAsync_v2);
    RESOLVE(c, cuMemcpyDtoHAsync_v2);
    RESOLVE(c, cuMemcpyDtoDAsync_v2);
    RESOLVE(c, cuMemsetD8_v2);
    RESOLVE(c, cuMemsetD16_v2);
    RESOLVE(c, cuMemsetD32_v2);
    RESOLVE(c, cuStreamCreate);
    RESOLVE(c, cuStreamSynchronize);
    RESOLVE(c, cuStreamDestroy_v2);
    RESOLVE(c, cuModuleLoadData);
    RESOLVE(c, cuModuleGetFunction);
    RESOLVE(c, cuModuleUnload);
    RESOLVE(c, cuLaunchKernel);
    return 0;
}

int nvmlapi_load(struct nvmlapi *ret, const char *dir)
{
    char path[4096];
    struct nvmlapi *n = ret;
    memset(n, 0, sizeof(*n));
    n->lib = open_lib(dir, "libvgpu-nvml.so.1", path, sizeof(path));
    if (!n->lib)
        return -1;
    RESOLVE(n, nvmlInit_v2);
    RESOLVE(n, nvmlShutdown);
    RESOLVE(n, nvmlSystemGetDriverVersion);
    RESOLVE(n, nvmlDeviceGetCount_v2);
    RESOLVE(n, nvmlDeviceGetHandleByIndex_v2);
    RESOLVE(n, nvmlDeviceGetName);
    RESOLVE(n, nvmlDeviceGetUUID);
    RESOLVE(n, nvmlDeviceGetPciInfo_v3);
    RESOLVE(n, nvmlDeviceGetMemoryInfo);
    return 0;
}

void cuapi_uuid_string(const CUuuid *u, char buf[48])
{
    static const int groups[] = {4, 2, 2, 2, 6};
    char *p = buf + sprintf(buf, "GPU");
    for (int g = 0, i = 0; g < 5; g++) {
        *p++ = '-';
        for (int k = 0; k < groups[g]; k++, i++)
            p += sprintf(p, "%02x", u->bytes[i]);
    }
}
