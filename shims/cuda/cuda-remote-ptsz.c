/* cuda-remote-ptsz: the per-thread default stream variants of the remote entry points.
 * A program built with --default-stream per-thread (cudart asks cuGetProcAddress with
 * CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM) calls the _ptsz / _ptds names: the
 * same calls, with the default stream (0) meaning CU_STREAM_PER_THREAD. The daemon runs
 * copies synchronously, so the _ptds synchronous copies are the plain ones. */
#include "cuda-remote.h"

#define CU_STREAM_PER_THREAD ((CUstream)0x2)

static CUstream per_thread(CUstream s)
{
    return s ? s : CU_STREAM_PER_THREAD;
}

CUresult RCU(cuMemcpyHtoDAsync_v2_ptsz)(CUdeviceptr dst, const void *src, size_t bytes, CUstream s)
{
    return RCU(cuMemcpyHtoDAsync_v2)(dst, src, bytes, per_thread(s));
}

CUresult RCU(cuMemcpyDtoHAsync_v2_ptsz)(void *dst, CUdeviceptr src, size_t bytes, CUstream s)
{
    return RCU(cuMemcpyDtoHAsync_v2)(dst, src, bytes, per_thread(s));
}

CUresult RCU(cuMemcpyDtoDAsync_v2_ptsz)(CUdeviceptr dst, CUdeviceptr src, size_t bytes, CUstream s)
{
    return RCU(cuMemcpyDtoDAsync_v2)(dst, src, bytes, per_thread(s));
}

CUresult RCU(cuMemsetD8Async_ptsz)(CUdeviceptr dst, unsigned char v, size_t n, CUstream s)
{
    return RCU(cuMemsetD8Async)(dst, v, n, per_thread(s));
}

CUresult RCU(cuMemsetD16Async_ptsz)(CUdeviceptr dst, unsigned short v, size_t n, CUstream s)
{
    return RCU(cuMemsetD16Async)(dst, v, n, per_thread(s));
}

CUresult RCU(cuMemsetD32Async_ptsz)(CUdeviceptr dst, unsigned int v, size_t n, CUstream s)
{
    return RCU(cuMemsetD32Async)(dst, v, n, per_thread(s));
}

CUresult RCU(cuStreamSynchronize_ptsz)(CUstream s)
{
    return RCU(cuStreamSynchronize)(per_thread(s));
}

CUresult RCU(cuStreamQuery_ptsz)(CUstream s)
{
    return RCU(cuStreamQuery)(per_thread(s));
}

CUresult RCU(cuStreamWaitEvent_ptsz)(CUstream s, CUevent e, unsigned int flags)
{
    return RCU(cuStreamWaitEvent)(per_thread(s), e, flags);
}

CUresult RCU(cuEventRecord_ptsz)(CUevent e, CUstream s)
{
    return RCU(cuEventRecord)(e, per_thread(s));
}

CUresult RCU(cuLaunchKernel_ptsz)(CUfunction f, unsigned int gx, unsigned int gy, unsigned int gz,
                                  unsigned int bx, unsigned int by, unsigned int bz,
                                  unsigned int shared, CUstream s, void **params, void **extra)
{
    return RCU(cuLaunchKernel)(f, gx, gy, gz, bx, by, bz, shared, per_thread(s), params, extra);
}
