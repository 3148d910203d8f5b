/* cuda-remote-mem: memory, copies, streams and events over the wire. Copies go
 * between the caller's buffer and the socket directly, in pieces of at most
 * VR_MAX_BULK; the memory limit (cuda-memory.c) wraps the allocation calls. */
#include <string.h>

#include "cuda-remote.h"

static uint64_t min_u64(uint64_t a, uint64_t b)
{
    return a < b ? a : b;
}

/* A call on the current context, answering nothing. */
#define CTX_CALL(op, ...)                                                                          \
    ({                                                                                             \
        uint64_t ctx_;                                                                             \
        NEED_CONTEXT(ctx_);                                                                        \
        vgpu_rcu_call(op, RARGS(ctx_, __VA_ARGS__), NULL, 0, NULL, NULL, 0, NULL);                 \
    })

CUresult RCU(cuMemGetInfo_v2)(size_t *free, size_t *total)
{
    uint64_t ctx;
    NEED_CONTEXT(ctx);
    if (!free || !total)
        return CUDA_ERROR_INVALID_VALUE;
    struct vr_ret ret;
    CUresult r = vgpu_rcu_call(VR_CU_MEM_GET_INFO, RARGS(ctx), NULL, 0, &ret, NULL, 0, NULL);
    if (r == CUDA_SUCCESS) {
        *free = (size_t)ret.r[0];
        *total = (size_t)ret.r[1];
    }
    return r;
}

CUresult RCU(cuMemAlloc_v2)(CUdeviceptr *dptr, size_t bytes)
{
    uint64_t ctx;
    NEED_CONTEXT(ctx);
    if (!dptr || !bytes)
        return CUDA_ERROR_INVALID_VALUE;
    struct vr_ret ret;
    CUresult r = vgpu_rcu_call(VR_CU_MEM_ALLOC, RARGS(ctx, bytes), NULL, 0, &ret, NULL, 0, NULL);
    if (r == CUDA_SUCCESS)
        *dptr = ret.r[0];
    return r;
}

CUresult RCU(cuMemFree_v2)(CUdeviceptr dptr)
{
    return CTX_CALL(VR_CU_MEM_FREE, dptr);
}

CUresult RCU(cuMemGetAddressRange_v2)(CUdeviceptr *base, size_t *size, CUdeviceptr dptr)
{
    uint64_t ctx;
    NEED_CONTEXT(ctx);
    struct vr_ret ret;
    CUresult r =
        vgpu_rcu_call(VR_CU_MEM_GET_ADDRESS_RANGE, RARGS(ctx, dptr), NULL, 0, &ret, NULL, 0, NULL);
    if (r == CUDA_SUCCESS && base)
        *base = ret.r[0];
    if (r == CUDA_SUCCESS && size)
        *size = (size_t)ret.r[1];
    return r;
}

static CUresult htod(CUdeviceptr dst, const void *src, size_t bytes, CUstream s, bool async)
{
    uint64_t ctx;
    NEED_CONTEXT(ctx);
    if (bytes && !src)
        return CUDA_ERROR_INVALID_VALUE;
    const unsigned char *p = src;
    for (size_t done = 0; done < bytes;) {
        size_t n = (size_t)min_u64(bytes - done, VR_MAX_BULK);
        CUresult r = vgpu_rcu_call(VR_CU_MEMCPY_HTOD, RARGS(ctx, dst + done, ID(s), async),
                                   p + done, n, NULL, NULL, 0, NULL);
        if (r != CUDA_SUCCESS)
            return r;
        done += n;
    }
    return CUDA_SUCCESS;
}

static CUresult dtoh(void *dst, CUdeviceptr src, size_t bytes, CUstream s, bool async)
{
    uint64_t ctx;
    NEED_CONTEXT(ctx);
    if (bytes && !dst)
        return CUDA_ERROR_INVALID_VALUE;
    unsigned char *p = dst;
    for (size_t done = 0; done < bytes;) {
        size_t n = (size_t)min_u64(bytes - done, VR_MAX_BULK), got = 0;
        /* The reply's bulk lands in the caller's buffer. */
        CUresult r = vgpu_rcu_call(VR_CU_MEMCPY_DTOH, RARGS(ctx, src + done, n, ID(s), async), NULL,
                                   0, NULL, p + done, n, &got);
        if (r != CUDA_SUCCESS)
            return r;
        if (got != n)
            return CUDA_ERROR_UNKNOWN; /* the daemon sent less than it copied */
        done += n;
    }
    return CUDA_SUCCESS;
}

CUresult RCU(cuMemcpyHtoD_v2)(CUdeviceptr dst, const void *src, size_t bytes)
{
    return htod(dst, src, bytes, NULL, false);
}

CUresult RCU(cuMemcpyHtoDAsync_v2)(CUdeviceptr dst, const void *src, size_t bytes, CUstream s)
{
    return htod(dst, src, bytes, s, true);
}

CUresult RCU(cuMemcpyDtoH_v2)(void *dst, CUdeviceptr src, size_t bytes)
{
    return dtoh(dst, src, bytes, NULL, false);
}

CUresult RCU(cuMemcpyDtoHAsync_v2)(void *dst, CUdeviceptr src, size_t bytes, CUstream s)
{
    return dtoh(dst, src, bytes, s, true);
}

CUresult RCU(cuMemcpyDtoD_v2)(CUdeviceptr dst, CUdeviceptr src, size_t bytes)
{
    return CTX_CALL(VR_CU_MEMCPY_DTOD, dst, src, bytes, 0, 0);
}

CUresult RCU(cuMemcpyDtoDAsync_v2)(CUdeviceptr dst, CUdeviceptr src, size_t bytes, CUstream s)
{
    return CTX_CALL(VR_CU_MEMCPY_DTOD, dst, src, bytes, ID(s), 1);
}

static CUresult memset_(CUdeviceptr dst, unsigned v, unsigned size, size_t n, CUstream s,
                        bool async)
{
    return CTX_CALL(VR_CU_MEMSET, dst, v, size, n, ID(s), async);
}

CUresult RCU(cuMemsetD8_v2)(CUdeviceptr dst, unsigned char v, size_t n)
{
    return memset_(dst, v, 1, n, NULL, false);
}

CUresult RCU(cuMemsetD16_v2)(CUdeviceptr dst, unsigned short v, size_t n)
{
    return memset_(dst, v, 2, n, NULL, false);
}

CUresult RCU(cuMemsetD32_v2)(CUdeviceptr dst, unsigned int v, size_t n)
{
    return memset_(dst, v, 4, n, NULL, false);
}

CUresult RCU(cuMemsetD8Async)(CUdeviceptr dst, unsigned char v, size_t n, CUstream s)
{
    return memset_(dst, v, 1, n, s, true);
}

CUresult RCU(cuMemsetD16Async)(CUdeviceptr dst, unsigned short v, size_t n, CUstream s)
{
    return memset_(dst, v, 2, n, s, true);
}

CUresult RCU(cuMemsetD32Async)(CUdeviceptr dst, unsigned int v, size_t n, CUstream s)
{
    return memset_(dst, v, 4, n, s, true);
}

/* ---- streams and events ---- */

/* A create call answering a handle in r0. */
static CUresult create(uint16_t op, const struct vr_args *a, void **out)
{
    if (!out)
        return CUDA_ERROR_INVALID_VALUE;
    struct vr_ret ret;
    CUresult r = vgpu_rcu_call(op, a, NULL, 0, &ret, NULL, 0, NULL);
    if (r == CUDA_SUCCESS)
        *out = (void *)(uintptr_t)ret.r[0];
    return r;
}

CUresult RCU(cuStreamCreateWithPriority)(CUstream *s, unsigned int flags, int priority)
{
    uint64_t ctx;
    NEED_CONTEXT(ctx);
    return create(VR_CU_STREAM_CREATE, RARGS(ctx, flags, (uint64_t)(int64_t)priority), (void **)s);
}

CUresult RCU(cuStreamCreate)(CUstream *s, unsigned int flags)
{
    return RCU(cuStreamCreateWithPriority)(s, flags, 0);
}

CUresult RCU(cuEventCreate)(CUevent *e, unsigned int flags)
{
    uint64_t ctx;
    NEED_CONTEXT(ctx);
    return create(VR_CU_EVENT_CREATE, RARGS(ctx, flags), (void **)e);
}

/* Calls on an existing stream or event name it; the current context (maybe none) goes
 * along and the daemon decides. */
#define HANDLE_CALL(op, ...)                                                                       \
    ({                                                                                             \
        CUresult r_ = vgpu_rcu_initialized();                                                      \
        r_ == CUDA_SUCCESS ? vgpu_rcu_call(op, RARGS(vgpu_rcu_current(), __VA_ARGS__), NULL, 0,    \
                                           NULL, NULL, 0, NULL)                                    \
                           : r_;                                                                   \
    })

CUresult RCU(cuStreamDestroy_v2)(CUstream s)
{
    return HANDLE_CALL(VR_CU_STREAM_DESTROY, ID(s));
}

CUresult RCU(cuStreamSynchronize)(CUstream s)
{
    return HANDLE_CALL(VR_CU_STREAM_SYNCHRONIZE, ID(s));
}

CUresult RCU(cuStreamQuery)(CUstream s)
{
    return HANDLE_CALL(VR_CU_STREAM_QUERY, ID(s));
}

CUresult RCU(cuStreamWaitEvent)(CUstream s, CUevent e, unsigned int flags)
{
    return HANDLE_CALL(VR_CU_STREAM_WAIT_EVENT, ID(s), ID(e), flags);
}

CUresult RCU(cuEventDestroy_v2)(CUevent e)
{
    return HANDLE_CALL(VR_CU_EVENT_DESTROY, ID(e));
}

CUresult RCU(cuEventRecord)(CUevent e, CUstream s)
{
    return HANDLE_CALL(VR_CU_EVENT_RECORD, ID(e), ID(s));
}

CUresult RCU(cuEventSynchronize)(CUevent e)
{
    return HANDLE_CALL(VR_CU_EVENT_SYNCHRONIZE, ID(e));
}

CUresult RCU(cuEventQuery)(CUevent e)
{
    return HANDLE_CALL(VR_CU_EVENT_QUERY, ID(e));
}

CUresult RCU(cuEventElapsedTime)(float *ms, CUevent start, CUevent end)
{
    NEED_INIT();
    if (!ms)
        return CUDA_ERROR_INVALID_VALUE;
    struct vr_ret ret;
    CUresult r =
        vgpu_rcu_call(VR_CU_EVENT_ELAPSED_TIME, RARGS(vgpu_rcu_current(), ID(start), ID(end)), NULL,
                      0, &ret, NULL, 0, NULL);
    if (r == CUDA_SUCCESS) {
        uint32_t bits = (uint32_t)ret.r[0];
        memcpy(ms, &bits, sizeof(*ms));
    }
    return r;
}
