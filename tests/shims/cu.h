/* cu: the CUDA driver API entry points the shim tests call, taken from a loaded
 * libvgpu-cuda.so.1 with dlsym (the tests build without NVIDIA's headers). */
#ifndef VGPU_TEST_CU_H
#define VGPU_TEST_CU_H

#include <stddef.h>

typedef unsigned long long cudev_t;

struct cu {
    void *h;
    int (*Init)(unsigned);
    int (*DriverGetVersion)(int *);
    int (*DeviceGetCount)(int *);
    int (*DeviceGetName)(char *, int, int);
    int (*DeviceTotalMem_v2)(size_t *, int);
    int (*DevicePrimaryCtxRetain)(void **, int);
    int (*CtxSetCurrent)(void *);
    int (*CtxGetCurrent)(void **);
    int (*MemGetInfo_v2)(size_t *, size_t *);
    int (*MemAlloc_v2)(cudev_t *, size_t);
    int (*MemAlloc)(unsigned *, unsigned);
    int (*MemAllocPitch_v2)(cudev_t *, size_t *, size_t, size_t, unsigned);
    int (*MemAllocManaged)(cudev_t *, size_t, unsigned);
    int (*MemAllocAsync)(cudev_t *, size_t, void *);
    int (*MemAllocAsync_ptsz)(cudev_t *, size_t, void *);
    int (*MemAllocFromPoolAsync)(cudev_t *, size_t, void *, void *);
    int (*MemAllocFromPoolAsync_ptsz)(cudev_t *, size_t, void *, void *);
    int (*MemFree_v2)(cudev_t);
    int (*MemFreeAsync)(cudev_t, void *);
    int (*MemFreeAsync_ptsz)(cudev_t, void *);
    int (*MemCreate)(cudev_t *, size_t, const void *, unsigned long long);
    int (*MemRelease)(cudev_t);
    int (*MemAddressReserve)(cudev_t *, size_t, size_t, cudev_t, unsigned long long);
    int (*MemMap)(cudev_t, size_t, size_t, cudev_t, unsigned long long);
    int (*MemUnmap)(cudev_t, size_t);
    int (*MemRetainAllocationHandle)(cudev_t *, void *);
    int (*DeviceGetDefaultMemPool)(void **, int);
    int (*StreamCreate)(void **, unsigned);
    int (*GetProcAddress)(const char *, void **, int, unsigned long long);
    int (*GetProcAddress_v2)(const char *, void **, int, unsigned long long, int *);
    int (*GetExportTable)(const void **, const void *);
    int (*LaunchKernel)(void *, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned,
                        unsigned, void *, void **, void **);
    int (*LaunchCooperativeKernel)(void *, unsigned, unsigned, unsigned, unsigned, unsigned,
                                   unsigned, unsigned, void *, void **);
};

enum {
    CU_OK = 0,
    CU_INVALID_VALUE = 1,
    CU_OUT_OF_MEMORY = 2,
    CU_NOT_INITIALIZED = 3,
    CU_NO_DEVICE = 100,
    CU_NOT_FOUND = 500,
    CU_NOT_SUPPORTED = 801,
};

/* In a child: loads libvgpu-cuda.so.1 and fills every pointer (or exits 1). */
struct cu cu_load(void);
/* In a child: cuInit, then device 0's primary context made current. */
void cu_start(const struct cu *cu);

#endif
