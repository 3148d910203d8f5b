/* cuda-remote: the driver API over the wire to vgpu-hostd (core/remote.h), shared by
 * cuda-remote*.c. Handles are the daemon's ids, cast to CUDA's pointer types — except
 * CUmodule and CUfunction, which point at client records (cuda-remote-module.c). The
 * current context is per thread, as in the driver. */
#ifndef VGPU_CUDA_REMOTE_H
#define VGPU_CUDA_REMOTE_H

#include <stdint.h>

#include "cuda-types.h"
#include "remote.h"

#define ID(h) ((uint64_t)(uintptr_t)(h))

/* One call: the reply's CUresult, CUDA_ERROR_DEVICE_UNAVAILABLE when the connection
 * was lost, NOT_SUPPORTED when the daemon does not know op. ret may be NULL. */
CUresult vgpu_rcu_call(uint16_t op, const struct vr_args *a, const void *bulk, size_t n,
                       struct vr_ret *ret, void *rbulk, size_t rbulk_max, size_t *rbulk_len);

/* CUDA_SUCCESS after a successful cuInit, else CUDA_ERROR_NOT_INITIALIZED. */
CUresult vgpu_rcu_initialized(void);
/* The calling thread's current context (0: none). */
uint64_t vgpu_rcu_current(void);
/* Drops ctx from the calling thread's context stack (it was destroyed). */
void vgpu_rcu_forget_context(uint64_t ctx);

/* Sets *ctx to the current context, or returns why there is none. */
#define NEED_CONTEXT(ctx)                                                                          \
    do {                                                                                           \
        CUresult r_ = vgpu_rcu_initialized();                                                      \
        if (r_ != CUDA_SUCCESS)                                                                    \
            return r_;                                                                             \
        if (!((ctx) = vgpu_rcu_current()))                                                         \
            return CUDA_ERROR_INVALID_CONTEXT;                                                     \
    } while (0)

#define NEED_INIT()                                                                                \
    do {                                                                                           \
        CUresult r_ = vgpu_rcu_initialized();                                                      \
        if (r_ != CUDA_SUCCESS)                                                                    \
            return r_;                                                                             \
    } while (0)

/* The entry points, by their driver names with this prefix (the table is in
 * cuda-remote.c). */
#define RCU(name) vgpu_rcu_##name

/* cuda-remote-mem.c */
CUresult RCU(cuMemGetInfo_v2)(size_t *free, size_t *total);
CUresult RCU(cuMemAlloc_v2)(CUdeviceptr *dptr, size_t bytes);
CUresult RCU(cuMemFree_v2)(CUdeviceptr dptr);
CUresult RCU(cuMemGetAddressRange_v2)(CUdeviceptr *base, size_t *size, CUdeviceptr dptr);
CUresult RCU(cuMemcpyHtoD_v2)(CUdeviceptr dst, const void *src, size_t bytes);
CUresult RCU(cuMemcpyHtoDAsync_v2)(CUdeviceptr dst, const void *src, size_t bytes, CUstream s);
CUresult RCU(cuMemcpyDtoH_v2)(void *dst, CUdeviceptr src, size_t bytes);
CUresult RCU(cuMemcpyDtoHAsync_v2)(void *dst, CUdeviceptr src, size_t bytes, CUstream s);
CUresult RCU(cuMemcpyDtoD_v2)(CUdeviceptr dst, CUdeviceptr src, size_t bytes);
CUresult RCU(cuMemcpyDtoDAsync_v2)(CUdeviceptr dst, CUdeviceptr src, size_t bytes, CUstream s);
CUresult RCU(cuMemsetD8_v2)(CUdeviceptr dst, unsigned char v, size_t n);
CUresult RCU(cuMemsetD16_v2)(CUdeviceptr dst, unsigned short v, size_t n);
CUresult RCU(cuMemsetD32_v2)(CUdeviceptr dst, unsigned int v, size_t n);
CUresult RCU(cuMemsetD8Async)(CUdeviceptr dst, unsigned char v, size_t n, CUstream s);
CUresult RCU(cuMemsetD16Async)(CUdeviceptr dst, unsigned short v, size_t n, CUstream s);
CUresult RCU(cuMemsetD32Async)(CUdeviceptr dst, unsigned int v, size_t n, CUstream s);
CUresult RCU(cuStreamCreate)(CUstream *s, unsigned int flags);
CUresult RCU(cuStreamCreateWithPriority)(CUstream *s, unsigned int flags, int priority);
CUresult RCU(cuStreamDestroy_v2)(CUstream s);
CUresult RCU(cuStreamSynchronize)(CUstream s);
CUresult RCU(cuStreamQuery)(CUstream s);
CUresult RCU(cuStreamWaitEvent)(CUstream s, CUevent e, unsigned int flags);
CUresult RCU(cuEventCreate)(CUevent *e, unsigned int flags);
CUresult RCU(cuEventDestroy_v2)(CUevent e);
CUresult RCU(cuEventRecord)(CUevent e, CUstream s);
CUresult RCU(cuEventSynchronize)(CUevent e);
CUresult RCU(cuEventQuery)(CUevent e);
CUresult RCU(cuEventElapsedTime)(float *ms, CUevent start, CUevent end);

/* cuda-remote-module.c */
CUresult RCU(cuModuleLoad)(CUmodule *m, const char *fname);
CUresult RCU(cuModuleLoadData)(CUmodule *m, const void *image);
CUresult RCU(cuModuleLoadDataEx)(CUmodule *m, const void *image, unsigned int n,
                                 CUjit_option *options, void **values);
CUresult RCU(cuModuleLoadFatBinary)(CUmodule *m, const void *fatbin);
CUresult RCU(cuModuleUnload)(CUmodule m);
CUresult RCU(cuModuleGetFunction)(CUfunction *f, CUmodule m, const char *name);
CUresult RCU(cuModuleGetGlobal_v2)(CUdeviceptr *dptr, size_t *bytes, CUmodule m, const char *name);
CUresult RCU(cuLaunchKernel)(CUfunction f, unsigned int gx, unsigned int gy, unsigned int gz,
                             unsigned int bx, unsigned int by, unsigned int bz, unsigned int shared,
                             CUstream s, void **params, void **extra);
CUresult RCU(cuFuncGetAttribute)(int *value, CUfunction_attribute attrib, CUfunction f);

/* cuda-remote-ptsz.c: the per-thread default stream variants */
CUresult RCU(cuMemcpyHtoDAsync_v2_ptsz)(CUdeviceptr dst, const void *src, size_t bytes, CUstream s);
CUresult RCU(cuMemcpyDtoHAsync_v2_ptsz)(void *dst, CUdeviceptr src, size_t bytes, CUstream s);
CUresult RCU(cuMemcpyDtoDAsync_v2_ptsz)(CUdeviceptr dst, CUdeviceptr src, size_t bytes, CUstream s);
CUresult RCU(cuMemsetD8Async_ptsz)(CUdeviceptr dst, unsigned char v, size_t n, CUstream s);
CUresult RCU(cuMemsetD16Async_ptsz)(CUdeviceptr dst, unsigned short v, size_t n, CUstream s);
CUresult RCU(cuMemsetD32Async_ptsz)(CUdeviceptr dst, unsigned int v, size_t n, CUstream s);
CUresult RCU(cuStreamSynchronize_ptsz)(CUstream s);
CUresult RCU(cuStreamQuery_ptsz)(CUstream s);
CUresult RCU(cuStreamWaitEvent_ptsz)(CUstream s, CUevent e, unsigned int flags);
CUresult RCU(cuEventRecord_ptsz)(CUevent e, CUstream s);
CUresult RCU(cuLaunchKernel_ptsz)(CUfunction f, unsigned int gx, unsigned int gy, unsigned int gz,
                                  unsigned int bx, unsigned int by, unsigned int bz,
                                  unsigned int shared, CUstream s, void **params, void **extra);

/* Module image sizes: vr_image_size (shims/remote/proto.h). */

#endif
