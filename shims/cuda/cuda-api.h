/* cuda-api: prototypes of the driver API entry points libvgpu-cuda.so.1 implements in
 * C (cuda-impl.def lists them), as NVIDIA's cuda.h declares them. Every other export
 * is a generated trampoline that needs no prototype. */
#ifndef VGPU_CUDA_API_H
#define VGPU_CUDA_API_H

#include "cuda-types.h"
#include "shim.h"

/* cuda-init.c */
VGPU_API CUresult cuInit(unsigned int flags);
VGPU_API CUresult cuDriverGetVersion(int *version);
VGPU_API CUresult cuGetExportTable(const void **table, const CUuuid *id);
VGPU_API CUresult cuGetErrorName(CUresult error, const char **str);
VGPU_API CUresult cuGetErrorString(CUresult error, const char **str);

/* cuda-procaddr.c */
VGPU_API CUresult cuGetProcAddress(const char *symbol, void **pfn, int cudaVersion,
                                   cuuint64_t flags);
VGPU_API CUresult cuGetProcAddress_v2(const char *symbol, void **pfn, int cudaVersion,
                                      cuuint64_t flags,
                                      CUdriverProcAddressQueryResult *symbolStatus);

/* cuda-memory.c: what the memory limit applies to */
VGPU_API CUresult cuDeviceTotalMem(unsigned int *bytes, CUdevice dev);
VGPU_API CUresult cuDeviceTotalMem_v2(size_t *bytes, CUdevice dev);
VGPU_API CUresult cuMemGetInfo(unsigned int *free, unsigned int *total);
VGPU_API CUresult cuMemGetInfo_v2(size_t *free, size_t *total);
VGPU_API CUresult cuMemAlloc(CUdeviceptr_v1 *dptr, unsigned int bytesize);
VGPU_API CUresult cuMemAlloc_v2(CUdeviceptr *dptr, size_t bytesize);
VGPU_API CUresult cuMemAllocPitch(CUdeviceptr_v1 *dptr, unsigned int *pitch, unsigned int width,
                                  unsigned int height, unsigned int elementSize);
VGPU_API CUresult cuMemAllocPitch_v2(CUdeviceptr *dptr, size_t *pitch, size_t width, size_t height,
                                     unsigned int elementSize);
VGPU_API CUresult cuMemAllocManaged(CUdeviceptr *dptr, size_t bytesize, unsigned int flags);
VGPU_API CUresult cuMemAllocAsync(CUdeviceptr *dptr, size_t bytesize, CUstream stream);
VGPU_API CUresult cuMemAllocAsync_ptsz(CUdeviceptr *dptr, size_t bytesize, CUstream stream);
VGPU_API CUresult cuMemAllocFromPoolAsync(CUdeviceptr *dptr, size_t bytesize, CUmemoryPool pool,
                                          CUstream stream);
VGPU_API CUresult cuMemAllocFromPoolAsync_ptsz(CUdeviceptr *dptr, size_t bytesize,
                                               CUmemoryPool pool, CUstream stream);
VGPU_API CUresult cuMemFree(CUdeviceptr_v1 dptr);
VGPU_API CUresult cuMemFree_v2(CUdeviceptr dptr);
VGPU_API CUresult cuMemFreeAsync(CUdeviceptr dptr, CUstream stream);
VGPU_API CUresult cuMemFreeAsync_ptsz(CUdeviceptr dptr, CUstream stream);
VGPU_API CUresult cuMemCreate(CUmemGenericAllocationHandle *handle, size_t size,
                              const CUmemAllocationProp *prop, unsigned long long flags);
VGPU_API CUresult cuMemRelease(CUmemGenericAllocationHandle handle);
VGPU_API CUresult cuMemMap(CUdeviceptr ptr, size_t size, size_t offset,
                           CUmemGenericAllocationHandle handle, unsigned long long flags);
VGPU_API CUresult cuMemUnmap(CUdeviceptr ptr, size_t size);
VGPU_API CUresult cuMemRetainAllocationHandle(CUmemGenericAllocationHandle *handle, void *addr);

#endif
