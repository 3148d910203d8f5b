/* cuda-remote: the remote backend's driver API — initialisation, devices, contexts —
 * and the table of every remote entry point (memory, streams and events in
 * cuda-remote-mem.c; modules and launches in cuda-remote-module.c). */
#include <string.h>

#include "cuda-remote.h"
#include "cuda-shim.h"

static bool initialized;

CUresult vgpu_rcu_initialized(void)
{
    return __atomic_load_n(&initialized, __ATOMIC_ACQUIRE) ? CUDA_SUCCESS
                                                           : CUDA_ERROR_NOT_INITIALIZED;
}

CUresult vgpu_rcu_call(uint16_t op, const struct vr_args *a, const void *bulk, size_t n,
                       struct vr_ret *ret, void *rbulk, size_t rbulk_max, size_t *rbulk_len)
{
    struct vr_ret local;
    if (!ret)
        ret = &local;
    if (vgpu_remote_call(op, a, bulk, n, ret, rbulk, rbulk_max, rbulk_len) < 0)
        return CUDA_ERROR_DEVICE_UNAVAILABLE;
    return vgpu_remote_status(ret, CUDA_ERROR_NOT_SUPPORTED);
}

/* ---- initialisation and devices ---- */

static CUresult RCU(cuInit)(unsigned int flags)
{
    CUresult r = vgpu_rcu_call(VR_CU_INIT, RARGS(flags), NULL, 0, NULL, NULL, 0, NULL);
    if (r == CUDA_SUCCESS) {
        vgpu_remote_set_init(VR_CU_INIT, flags);
        __atomic_store_n(&initialized, true, __ATOMIC_RELEASE);
    }
    return r;
}

static CUresult RCU(cuDriverGetVersion)(int *version)
{
    if (!version)
        return CUDA_ERROR_INVALID_VALUE;
    struct vr_ret ret;
    CUresult r = vgpu_rcu_call(VR_CU_DRIVER_GET_VERSION, RARGS(0), NULL, 0, &ret, NULL, 0, NULL);
    if (r == CUDA_SUCCESS)
        *version = (int)ret.r[0];
    return r;
}

/* A call that answers one integer in r0. */
static CUresult get_int(uint16_t op, const struct vr_args *a, int *out)
{
    NEED_INIT();
    if (!out)
        return CUDA_ERROR_INVALID_VALUE;
    struct vr_ret ret;
    CUresult r = vgpu_rcu_call(op, a, NULL, 0, &ret, NULL, 0, NULL);
    if (r == CUDA_SUCCESS)
        *out = (int)ret.r[0];
    return r;
}

static CUresult RCU(cuDeviceGetCount)(int *count)
{
    return get_int(VR_CU_DEVICE_GET_COUNT, RARGS(0), count);
}

static CUresult RCU(cuDeviceGet)(CUdevice *dev, int ordinal)
{
    return get_int(VR_CU_DEVICE_GET, RARGS((uint64_t)(int64_t)ordinal), dev);
}

static CUresult RCU(cuDeviceGetAttribute)(int *value, CUdevice_attribute attrib, CUdevice dev)
{
    return get_int(VR_CU_DEVICE_GET_ATTRIBUTE,
                   RARGS((uint64_t)(int64_t)attrib, (uint64_t)(int64_t)dev), value);
}

static CUresult RCU(cuDeviceComputeCapability)(int *major, int *minor, CUdevice dev)
{
    if (!major || !minor)
        return CUDA_ERROR_INVALID_VALUE;
    CUresult r =
        RCU(cuDeviceGetAttribute)(major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, dev);
    return r != CUDA_SUCCESS ? r
                             : RCU(cuDeviceGetAttribute)(
                                   minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, dev);
}

/* A call that answers a string in its bulk, copied (truncated) into out[len]. */
static CUresult get_string(uint16_t op, CUdevice dev, char *out, int len)
{
    NEED_INIT();
    if (!out || len <= 0)
        return CUDA_ERROR_INVALID_VALUE;
    char buf[VR_MAX_NAME];
    size_t n = 0;
    CUresult r =
        vgpu_rcu_call(op, RARGS((uint64_t)(int64_t)dev), NULL, 0, NULL, buf, sizeof(buf) - 1, &n);
    if (r != CUDA_SUCCESS)
        return r;
    buf[n] = '\0';
    size_t k = strnlen(buf, (size_t)len - 1);
    memcpy(out, buf, k);
    out[k] = '\0';
    return CUDA_SUCCESS;
}

static CUresult RCU(cuDeviceGetName)(char *name, int len, CUdevice dev)
{
    return get_string(VR_CU_DEVICE_GET_NAME, dev, name, len);
}

static CUresult RCU(cuDeviceGetPCIBusId)(char *id, int len, CUdevice dev)
{
    return get_string(VR_CU_DEVICE_GET_PCI_BUS_ID, dev, id, len);
}

static CUresult RCU(cuDeviceGetByPCIBusId)(CUdevice *dev, const char *id)
{
    NEED_INIT();
    if (!dev || !id)
        return CUDA_ERROR_INVALID_VALUE;
    size_t n = strnlen(id, VR_MAX_NAME);
    if (n == VR_MAX_NAME)
        return CUDA_ERROR_INVALID_VALUE;
    struct vr_ret ret;
    CUresult r =
        vgpu_rcu_call(VR_CU_DEVICE_GET_BY_PCI_BUS_ID, RARGS(0), id, n + 1, &ret, NULL, 0, NULL);
    if (r == CUDA_SUCCESS)
        *dev = (CUdevice)ret.r[0];
    return r;
}

static CUresult RCU(cuDeviceGetUuid)(CUuuid *uuid, CUdevice dev)
{
    NEED_INIT();
    if (!uuid)
        return CUDA_ERROR_INVALID_VALUE;
    CUuuid got;
    size_t n = 0;
    CUresult r = vgpu_rcu_call(VR_CU_DEVICE_GET_UUID, RARGS((uint64_t)(int64_t)dev), NULL, 0, NULL,
                               got.bytes, sizeof(got.bytes), &n);
    if (r == CUDA_SUCCESS && n != sizeof(got.bytes))
        return CUDA_ERROR_UNKNOWN;
    if (r == CUDA_SUCCESS)
        *uuid = got;
    return r;
}

static CUresult RCU(cuDeviceTotalMem_v2)(size_t *bytes, CUdevice dev)
{
    NEED_INIT();
    if (!bytes)
        return CUDA_ERROR_INVALID_VALUE;
    struct vr_ret ret;
    CUresult r = vgpu_rcu_call(VR_CU_DEVICE_TOTAL_MEM, RARGS((uint64_t)(int64_t)dev), NULL, 0, &ret,
                               NULL, 0, NULL);
    if (r == CUDA_SUCCESS)
        *bytes = (size_t)ret.r[0];
    return r;
}

/* ---- contexts: the per-thread stack ---- */

#define CTX_STACK 64

static __thread uint64_t ctx_stack[CTX_STACK];
static __thread unsigned ctx_depth;

uint64_t vgpu_rcu_current(void)
{
    return ctx_depth ? ctx_stack[ctx_depth - 1] : 0;
}

void vgpu_rcu_forget_context(uint64_t ctx)
{
    unsigned k = 0;
    for (unsigned i = 0; i < ctx_depth; i++)
        if (ctx_stack[i] != ctx)
            ctx_stack[k++] = ctx_stack[i];
    ctx_depth = k;
}

static CUresult push(uint64_t ctx)
{
    if (ctx_depth == CTX_STACK)
        return CUDA_ERROR_OUT_OF_MEMORY;
    ctx_stack[ctx_depth++] = ctx;
    return CUDA_SUCCESS;
}

static CUresult RCU(cuCtxCreate_v2)(CUcontext *pctx, unsigned int flags, CUdevice dev)
{
    NEED_INIT();
    if (!pctx)
        return CUDA_ERROR_INVALID_VALUE;
    if (ctx_depth == CTX_STACK)
        return CUDA_ERROR_OUT_OF_MEMORY;
    struct vr_ret ret;
    CUresult r = vgpu_rcu_call(VR_CU_CTX_CREATE, RARGS(flags, (uint64_t)(int64_t)dev), NULL, 0,
                               &ret, NULL, 0, NULL);
    if (r != CUDA_SUCCESS)
        return r;
    push(ret.r[0]);
    *pctx = (CUcontext)(uintptr_t)ret.r[0];
    return CUDA_SUCCESS;
}

static CUresult RCU(cuCtxCreate_v3)(CUcontext *pctx, CUexecAffinityParam *params, int nparams,
                                    unsigned int flags, CUdevice dev)
{
    if (params && nparams > 0)
        return CUDA_ERROR_NOT_SUPPORTED; /* execution affinity is not forwarded */
    return RCU(cuCtxCreate_v2)(pctx, flags, dev);
}

static CUresult RCU(cuCtxCreate_v4)(CUcontext *pctx, CUctxCreateParams *params, unsigned int flags,
                                    CUdevice dev)
{
    if (params &&
        ((params->execAffinityParams && params->numExecAffinityParams > 0) || params->cigParams))
        return CUDA_ERROR_NOT_SUPPORTED;
    return RCU(cuCtxCreate_v2)(pctx, flags, dev);
}

static CUresult RCU(cuCtxDestroy_v2)(CUcontext ctx)
{
    NEED_INIT();
    if (!ctx)
        return CUDA_ERROR_INVALID_VALUE;
    CUresult r = vgpu_rcu_call(VR_CU_CTX_DESTROY, RARGS(ID(ctx)), NULL, 0, NULL, NULL, 0, NULL);
    if (r == CUDA_SUCCESS)
        vgpu_rcu_forget_context(ID(ctx));
    return r;
}

static CUresult RCU(cuCtxGetCurrent)(CUcontext *pctx)
{
    NEED_INIT();
    if (!pctx)
        return CUDA_ERROR_INVALID_VALUE;
    *pctx = (CUcontext)(uintptr_t)vgpu_rcu_current();
    return CUDA_SUCCESS;
}

static CUresult RCU(cuCtxSetCurrent)(CUcontext ctx)
{
    NEED_INIT();
    if (!ctx) {
        if (ctx_depth)
            ctx_depth--;
        return CUDA_SUCCESS;
    }
    if (!ctx_depth)
        return push(ID(ctx));
    ctx_stack[ctx_depth - 1] = ID(ctx);
    return CUDA_SUCCESS;
}

static CUresult RCU(cuCtxPushCurrent_v2)(CUcontext ctx)
{
    NEED_INIT();
    return ctx ? push(ID(ctx)) : CUDA_ERROR_INVALID_VALUE;
}

static CUresult RCU(cuCtxPopCurrent_v2)(CUcontext *pctx)
{
    NEED_INIT();
    if (!ctx_depth)
        return CUDA_ERROR_INVALID_CONTEXT;
    uint64_t ctx = ctx_stack[--ctx_depth];
    if (pctx)
        *pctx = (CUcontext)(uintptr_t)ctx;
    return CUDA_SUCCESS;
}

static CUresult RCU(cuCtxGetDevice)(CUdevice *dev)
{
    uint64_t ctx;
    NEED_CONTEXT(ctx);
    return get_int(VR_CU_CTX_GET_DEVICE, RARGS(ctx), dev);
}

static CUresult RCU(cuCtxSynchronize)(void)
{
    uint64_t ctx;
    NEED_CONTEXT(ctx);
    return vgpu_rcu_call(VR_CU_CTX_SYNCHRONIZE, RARGS(ctx), NULL, 0, NULL, NULL, 0, NULL);
}

static CUresult RCU(cuDevicePrimaryCtxRetain)(CUcontext *pctx, CUdevice dev)
{
    NEED_INIT();
    if (!pctx)
        return CUDA_ERROR_INVALID_VALUE;
    struct vr_ret ret;
    CUresult r = vgpu_rcu_call(VR_CU_PRIMARY_CTX_RETAIN, RARGS((uint64_t)(int64_t)dev), NULL, 0,
                               &ret, NULL, 0, NULL);
    if (r == CUDA_SUCCESS)
        *pctx = (CUcontext)(uintptr_t)ret.r[0];
    return r;
}

/* A primary context call on dev with one more argument; nothing answered. */
static CUresult primary(uint16_t op, CUdevice dev, uint64_t a1)
{
    NEED_INIT();
    return vgpu_rcu_call(op, RARGS((uint64_t)(int64_t)dev, a1), NULL, 0, NULL, NULL, 0, NULL);
}

static CUresult RCU(cuDevicePrimaryCtxRelease_v2)(CUdevice dev)
{
    return primary(VR_CU_PRIMARY_CTX_RELEASE, dev, 0);
}

static CUresult RCU(cuDevicePrimaryCtxReset_v2)(CUdevice dev)
{
    return primary(VR_CU_PRIMARY_CTX_RESET, dev, 0);
}

static CUresult RCU(cuDevicePrimaryCtxSetFlags_v2)(CUdevice dev, unsigned int flags)
{
    return primary(VR_CU_PRIMARY_CTX_SET_FLAGS, dev, flags);
}

static CUresult RCU(cuDevicePrimaryCtxGetState)(CUdevice dev, unsigned int *flags, int *active)
{
    NEED_INIT();
    if (!flags || !active)
        return CUDA_ERROR_INVALID_VALUE;
    struct vr_ret ret;
    CUresult r = vgpu_rcu_call(VR_CU_PRIMARY_CTX_GET_STATE, RARGS((uint64_t)(int64_t)dev), NULL, 0,
                               &ret, NULL, 0, NULL);
    if (r == CUDA_SUCCESS) {
        *flags = (unsigned)ret.r[0];
        *active = (int)ret.r[1];
    }
    return r;
}

/* ---- the table: sorted with strcmp (the backend searches it); older names of the same
 * ABI share a function. Every name must be in cuda-exports.def. ---- */

#define E(name)                                                                                    \
    {                                                                                              \
#name, (void *)RCU(name)                                                                   \
    }
#define ALIAS(name, f)                                                                             \
    {                                                                                              \
#name, (void *)RCU(f)                                                                      \
    }

const struct vgpu_remote_fn vgpu_remote_fns[] = {
    ALIAS(cuCtxCreate, cuCtxCreate_v2),
    E(cuCtxCreate_v2),
    E(cuCtxCreate_v3),
    E(cuCtxCreate_v4),
    ALIAS(cuCtxDestroy, cuCtxDestroy_v2),
    E(cuCtxDestroy_v2),
    E(cuCtxGetCurrent),
    E(cuCtxGetDevice),
    ALIAS(cuCtxPopCurrent, cuCtxPopCurrent_v2),
    E(cuCtxPopCurrent_v2),
    ALIAS(cuCtxPushCurrent, cuCtxPushCurrent_v2),
    E(cuCtxPushCurrent_v2),
    E(cuCtxSetCurrent),
    E(cuCtxSynchronize),
    E(cuDeviceComputeCapability),
    E(cuDeviceGet),
    E(cuDeviceGetAttribute),
    E(cuDeviceGetByPCIBusId),
    E(cuDeviceGetCount),
    E(cuDeviceGetName),
    E(cuDeviceGetPCIBusId),
    E(cuDeviceGetUuid),
    ALIAS(cuDeviceGetUuid_v2, cuDeviceGetUuid),
    E(cuDevicePrimaryCtxGetState),
    ALIAS(cuDevicePrimaryCtxRelease, cuDevicePrimaryCtxRelease_v2),
    E(cuDevicePrimaryCtxRelease_v2),
    ALIAS(cuDevicePrimaryCtxReset, cuDevicePrimaryCtxReset_v2),
    E(cuDevicePrimaryCtxReset_v2),
    E(cuDevicePrimaryCtxRetain),
    ALIAS(cuDevicePrimaryCtxSetFlags, cuDevicePrimaryCtxSetFlags_v2),
    E(cuDevicePrimaryCtxSetFlags_v2),
    E(cuDeviceTotalMem_v2),
    E(cuDriverGetVersion),
    E(cuEventCreate),
    ALIAS(cuEventDestroy, cuEventDestroy_v2),
    E(cuEventDestroy_v2),
    E(cuEventElapsedTime),
    ALIAS(cuEventElapsedTime_v2, cuEventElapsedTime),
    E(cuEventQuery),
    E(cuEventRecord),
    E(cuEventRecord_ptsz),
    E(cuEventSynchronize),
    E(cuFuncGetAttribute),
    E(cuInit),
    E(cuLaunchKernel),
    E(cuLaunchKernel_ptsz),
    E(cuMemAlloc_v2),
    E(cuMemFree_v2),
    E(cuMemGetAddressRange_v2),
    E(cuMemGetInfo_v2),
    E(cuMemcpyDtoDAsync_v2),
    E(cuMemcpyDtoDAsync_v2_ptsz),
    E(cuMemcpyDtoD_v2),
    ALIAS(cuMemcpyDtoD_v2_ptds, cuMemcpyDtoD_v2),
    E(cuMemcpyDtoHAsync_v2),
    E(cuMemcpyDtoHAsync_v2_ptsz),
    E(cuMemcpyDtoH_v2),
    ALIAS(cuMemcpyDtoH_v2_ptds, cuMemcpyDtoH_v2),
    E(cuMemcpyHtoDAsync_v2),
    E(cuMemcpyHtoDAsync_v2_ptsz),
    E(cuMemcpyHtoD_v2),
    ALIAS(cuMemcpyHtoD_v2_ptds, cuMemcpyHtoD_v2),
    E(cuMemsetD16Async),
    E(cuMemsetD16Async_ptsz),
    E(cuMemsetD16_v2),
    ALIAS(cuMemsetD16_v2_ptds, cuMemsetD16_v2),
    E(cuMemsetD32Async),
    E(cuMemsetD32Async_ptsz),
    E(cuMemsetD32_v2),
    ALIAS(cuMemsetD32_v2_ptds, cuMemsetD32_v2),
    E(cuMemsetD8Async),
    E(cuMemsetD8Async_ptsz),
    E(cuMemsetD8_v2),
    ALIAS(cuMemsetD8_v2_ptds, cuMemsetD8_v2),
    E(cuModuleGetFunction),
    E(cuModuleGetGlobal_v2),
    E(cuModuleLoad),
    E(cuModuleLoadData),
    E(cuModuleLoadDataEx),
    E(cuModuleLoadFatBinary),
    E(cuModuleUnload),
    E(cuStreamCreate),
    E(cuStreamCreateWithPriority),
    ALIAS(cuStreamDestroy, cuStreamDestroy_v2),
    E(cuStreamDestroy_v2),
    E(cuStreamQuery),
    E(cuStreamQuery_ptsz),
    E(cuStreamSynchronize),
    E(cuStreamSynchronize_ptsz),
    E(cuStreamWaitEvent),
    E(cuStreamWaitEvent_ptsz),
};

const unsigned vgpu_remote_nfns = VGPU_ARRAY_SIZE(vgpu_remote_fns);
