/* cu: dlsym the entry points the tests call from the shim. */
#include "cu.h"
#include "shimtest.h"

#define LOAD(field) cu.field = (__typeof__(cu.field))st_sym(cu.h, "cu" #field)

struct cu cu_load(void)
{
    struct cu cu = {.h = st_open("libvgpu-cuda.so.1")};
    LOAD(Init);
    LOAD(DriverGetVersion);
    LOAD(DeviceGetCount);
    LOAD(DeviceGetName);
    LOAD(DeviceTotalMem_v2);
    LOAD(DevicePrimaryCtxRetain);
    LOAD(CtxSetCurrent);
    LOAD(CtxGetCurrent);
    LOAD(MemGetInfo_v2);
    LOAD(MemAlloc_v2);
    LOAD(MemAlloc);
    LOAD(MemAllocPitch_v2);
    LOAD(MemAllocManaged);
    LOAD(MemAllocAsync);
    LOAD(MemAllocAsync_ptsz);
    LOAD(MemAllocFromPoolAsync);
    LOAD(MemAllocFromPoolAsync_ptsz);
    LOAD(MemFree_v2);
    LOAD(MemFreeAsync);
    LOAD(MemFreeAsync_ptsz);
    LOAD(MemCreate);
    LOAD(MemRelease);
    LOAD(MemAddressReserve);
    LOAD(MemMap);
    LOAD(MemUnmap);
    LOAD(MemRetainAllocationHandle);
    LOAD(DeviceGetDefaultMemPool);
    LOAD(StreamCreate);
    LOAD(GetProcAddress);
    LOAD(GetProcAddress_v2);
    LOAD(GetExportTable);
    LOAD(LaunchKernel);
    LOAD(LaunchCooperativeKernel);
    return cu;
}

void cu_start(const struct cu *cu)
{
    void *ctx = NULL;
    ST_CHECK_INT(cu->Init(0), CU_OK);
    ST_CHECK_INT(cu->DevicePrimaryCtxRetain(&ctx, 0), CU_OK);
    ST_CHECK_INT(cu->CtxSetCurrent(ctx), CU_OK);
}
