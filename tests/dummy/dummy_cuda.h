/*
 * dummy_cuda.h: private interface of the dummy CUDA driver (tests/dummy), a
 * stand-in libcuda.so.1 that the shims forward to in GPU-less tests.
 *
 * Declares the CUDA types and constants the dummy needs (no CUDA headers are
 * used), the table of implemented entry points, their prototypes, and the
 * hidden state shared by dummy_cuda.c (init, devices, contexts, streams),
 * dummy_cuda_mem.c (memory) and dummy_cuda_proc.c (error strings,
 * cuGetProcAddress, cuGetExportTable).
 */
#ifndef VGPU_TESTS_DUMMY_CUDA_H
#define VGPU_TESTS_DUMMY_CUDA_H

#include "dummy_common.h"

#include <pthread.h>
#include <stddef.h>

/* ---- CUDA driver API types (ABI-compatible subset of cuda.h) ----------- */

typedef int CUresult;
typedef int CUdevice;
typedef int CUdevice_attribute;
typedef unsigned long long CUdeviceptr;
typedef unsigned long long cuuint64_t;
typedef unsigned long long CUmemGenericAllocationHandle;
typedef int CUmemAllocationGranularity_flags;
typedef int CUdriverProcAddressQueryResult;
typedef struct CUctx_st *CUcontext;
typedef struct CUstream_st *CUstream;
typedef struct CUfunc_st *CUfunction;
typedef struct CUmemPoolHandle_st *CUmemoryPool;
typedef struct CUmemPoolProps_st CUmemPoolProps;           /* never read */
typedef struct CUmemAllocationProp_st CUmemAllocationProp; /* never read */
typedef struct CUmemAccessDesc_st CUmemAccessDesc;         /* never read */
typedef struct CUuuid_st {
    char bytes[16];
} CUuuid;

enum {
    CUDA_SUCCESS = 0,
    CUDA_ERROR_INVALID_VALUE = 1,
    CUDA_ERROR_OUT_OF_MEMORY = 2,
    CUDA_ERROR_NOT_INITIALIZED = 3,
    CUDA_ERROR_NO_DEVICE = 100,
    CUDA_ERROR_INVALID_DEVICE = 101,
    CUDA_ERROR_INVALID_CONTEXT = 201,
    CUDA_ERROR_NOT_FOUND = 500,
    CUDA_ERROR_NOT_SUPPORTED = 801,
    CUDA_ERROR_UNKNOWN = 999,
};

/* ---- the implemented entry points -------------------------------------- */

/*
 * X(name, before_init): every entry point the dummy exports. before_init = 1
 * marks the ones that work before cuInit, as in the real driver; the others
 * return CUDA_ERROR_NOT_INITIALIZED until cuInit(0) has succeeded.
 */
#define DUMMY_CUDA_ENTRY_POINTS(X)                                                                 \
    X(cuInit, 1)                                                                                   \
    X(cuDriverGetVersion, 1)                                                                       \
    X(cuGetErrorString, 1)                                                                         \
    X(cuGetErrorName, 1)                                                                           \
    X(cuGetProcAddress, 1)                                                                         \
    X(cuGetProcAddress_v2, 1)                                                                      \
    X(cuGetExportTable, 1)                                                                         \
    X(cuDeviceGetCount, 0)                                                                         \
    X(cuDeviceGet, 0)                                                                              \
    X(cuDeviceGetName, 0)                                                                          \
    X(cuDeviceTotalMem_v2, 0)                                                                      \
    X(cuDeviceGetAttribute, 0)                                                                     \
    X(cuDeviceGetUuid, 0)                                                                          \
    X(cuDeviceGetUuid_v2, 0)                                                                       \
    X(cuDevicePrimaryCtxRetain, 0)                                                                 \
    X(cuDevicePrimaryCtxRelease_v2, 0)                                                             \
    X(cuCtxCreate_v2, 0)                                                                           \
    X(cuCtxDestroy_v2, 0)                                                                          \
    X(cuCtxGetCurrent, 0)                                                                          \
    X(cuCtxSetCurrent, 0)                                                                          \
    X(cuCtxSynchronize, 0)                                                                         \
    X(cuCtxGetDevice, 0)                                                                           \
    X(cuStreamCreate, 0)                                                                           \
    X(cuStreamDestroy_v2, 0)                                                                       \
    X(cuStreamSynchronize, 0)                                                                      \
    X(cuMemGetInfo_v2, 0)                                                                          \
    X(cuMemAlloc_v2, 0)                                                                            \
    X(cuMemAllocPitch_v2, 0)                                                                       \
    X(cuMemAllocManaged, 0)                                                                        \
    X(cuMemFree_v2, 0)                                                                             \
    X(cuMemAllocAsync, 0)                                                                          \
    X(cuMemAllocAsync_ptsz, 0)                                                                     \
    X(cuMemAllocFromPoolAsync, 0)                                                                  \
    X(cuMemAllocFromPoolAsync_ptsz, 0)                                                             \
    X(cuMemFreeAsync, 0)                                                                           \
    X(cuMemFreeAsync_ptsz, 0)                                                                      \
    X(cuMemPoolCreate, 0)                                                                          \
    X(cuMemPoolDestroy, 0)                                                                         \
    X(cuDeviceGetDefaultMemPool, 0)                                                                \
    X(cuMemCreate, 0)                                                                              \
    X(cuMemRelease, 0)                                                                             \
    X(cuMemAddressReserve, 0)                                                                      \
    X(cuMemAddressFree, 0)                                                                         \
    X(cuMemMap, 0)                                                                                 \
    X(cuMemUnmap, 0)                                                                               \
    X(cuMemSetAccess, 0)                                                                           \
    X(cuMemGetAllocationGranularity, 0)                                                            \
    X(cuLaunchCooperativeKernel, 0)                                                                \
    X(cuMemRetainAllocationHandle, 0)

enum cuda_entry {
#define DUMMY_CUDA_ENUM(name, before_init) E_##name,
    DUMMY_CUDA_ENTRY_POINTS(DUMMY_CUDA_ENUM)
#undef DUMMY_CUDA_ENUM
        E_CUDA_COUNT
};

#define DUMMY_API DUMMY_EXPORT CUresult
DUMMY_API cuInit(unsigned int flags);
DUMMY_API cuDriverGetVersion(int *version);
DUMMY_API cuGetErrorString(CUresult error, const char **str);
DUMMY_API cuGetErrorName(CUresult error, const char **str);
DUMMY_API cuGetProcAddress(const char *symbol, void **pfn, int cuda_version, cuuint64_t flags);
DUMMY_API cuGetProcAddress_v2(const char *symbol, void **pfn, int cuda_version, cuuint64_t flags,
                              CUdriverProcAddressQueryResult *status);
DUMMY_API cuGetExportTable(const void **table, const CUuuid *id);
DUMMY_API cuDeviceGetCount(int *count);
DUMMY_API cuDeviceGet(CUdevice *device, int ordinal);
DUMMY_API cuDeviceGetName(char *name, int len, CUdevice dev);
DUMMY_API cuDeviceTotalMem_v2(size_t *bytes, CUdevice dev);
DUMMY_API cuDeviceGetAttribute(int *value, CUdevice_attribute attrib, CUdevice dev);
DUMMY_API cuDeviceGetUuid(CUuuid *uuid, CUdevice dev);
DUMMY_API cuDeviceGetUuid_v2(CUuuid *uuid, CUdevice dev);
DUMMY_API cuDevicePrimaryCtxRetain(CUcontext *pctx, CUdevice dev);
DUMMY_API cuDevicePrimaryCtxRelease_v2(CUdevice dev);
DUMMY_API cuCtxCreate_v2(CUcontext *pctx, unsigned int flags, CUdevice dev);
DUMMY_API cuCtxDestroy_v2(CUcontext ctx);
DUMMY_API cuCtxGetCurrent(CUcontext *pctx);
DUMMY_API cuCtxSetCurrent(CUcontext ctx);
DUMMY_API cuCtxSynchronize(void);
DUMMY_API cuCtxGetDevice(CUdevice *device);
DUMMY_API cuStreamCreate(CUstream *stream, unsigned int flags);
DUMMY_API cuStreamDestroy_v2(CUstream stream);
DUMMY_API cuStreamSynchronize(CUstream stream);
DUMMY_API cuMemGetInfo_v2(size_t *free_bytes, size_t *total_bytes);
DUMMY_API cuMemAlloc_v2(CUdeviceptr *dptr, size_t bytesize);
DUMMY_API cuMemAllocPitch_v2(CUdeviceptr *dptr, size_t *pitch, size_t width, size_t height,
                             unsigned int element_size);
DUMMY_API cuMemAllocManaged(CUdeviceptr *dptr, size_t bytesize, unsigned int flags);
DUMMY_API cuMemFree_v2(CUdeviceptr dptr);
DUMMY_API cuMemAllocAsync(CUdeviceptr *dptr, size_t bytesize, CUstream stream);
DUMMY_API cuMemAllocAsync_ptsz(CUdeviceptr *dptr, size_t bytesize, CUstream stream);
DUMMY_API cuMemAllocFromPoolAsync(CUdeviceptr *dptr, size_t bytesize, CUmemoryPool pool,
                                  CUstream stream);
DUMMY_API cuMemAllocFromPoolAsync_ptsz(CUdeviceptr *dptr, size_t bytesize, CUmemoryPool pool,
                                       CUstream stream);
DUMMY_API cuMemFreeAsync(CUdeviceptr dptr, CUstream stream);
DUMMY_API cuMemFreeAsync_ptsz(CUdeviceptr dptr, CUstream stream);
DUMMY_API cuMemPoolCreate(CUmemoryPool *pool, const CUmemPoolProps *props);
DUMMY_API cuMemPoolDestroy(CUmemoryPool pool);
DUMMY_API cuDeviceGetDefaultMemPool(CUmemoryPool *pool, CUdevice dev);
DUMMY_API cuMemCreate(CUmemGenericAllocationHandle *handle, size_t size,
                      const CUmemAllocationProp *prop, unsigned long long flags);
DUMMY_API cuMemRelease(CUmemGenericAllocationHandle handle);
DUMMY_API cuMemAddressReserve(CUdeviceptr *ptr, size_t size, size_t alignment, CUdeviceptr addr,
                              unsigned long long flags);
DUMMY_API cuMemAddressFree(CUdeviceptr ptr, size_t size);
DUMMY_API cuMemMap(CUdeviceptr ptr, size_t size, size_t offset, CUmemGenericAllocationHandle handle,
                   unsigned long long flags);
DUMMY_API cuMemUnmap(CUdeviceptr ptr, size_t size);
DUMMY_API cuMemSetAccess(CUdeviceptr ptr, size_t size, const CUmemAccessDesc *desc, size_t count);
DUMMY_API cuMemGetAllocationGranularity(size_t *granularity, const CUmemAllocationProp *prop,
                                        CUmemAllocationGranularity_flags option);
DUMMY_API cuMemRetainAllocationHandle(CUmemGenericAllocationHandle *handle, void *addr);
/* Launches nothing. Succeeds only for the arguments f 0x1001, grid 2 3 5, block 7 11
 * 13, shared memory 17, stream 0x1019, params 0x1023 (the last four travel on the
 * stack): the shim tests prove a call crosses a trampoline's lazy first call intact. */
DUMMY_API cuLaunchCooperativeKernel(CUfunction f, unsigned gx, unsigned gy, unsigned gz,
                                    unsigned bx, unsigned by, unsigned bz, unsigned shmem,
                                    CUstream stream, void **params);
#undef DUMMY_API

/* Test controls (see README.md). */
DUMMY_EXPORT unsigned long dummy_cuda_calls(const char *name);
DUMMY_EXPORT void dummy_cuda_reset(void);

/* ---- state shared by dummy_cuda.c and dummy_cuda_mem.c ----------------- */

#pragma GCC visibility push(hidden)

struct cuda_config {
    int devices;
    char name[256];
    unsigned long long memory; /* per device */
    int version;
    int cc_major, cc_minor;
    bool selfcall;
    const char *proc_missing;
    const char *proc_answer; /* DUMMY_CUDA_PROC_ANSWER */
};
extern struct cuda_config cuda_cfg; /* valid once cuda_enter() has run */
extern const struct dummy_api cuda_api;

/* What a record in cuda_objects stands for. */
enum cuda_kind {
    OBJ_CONTEXT,  /* key: heap object from cuCtxCreate */
    OBJ_STREAM,   /* key: heap object from cuStreamCreate */
    OBJ_POOL,     /* key: heap object from cuMemPoolCreate */
    MEM_DEVICE,   /* key: fake device address; charged to the device */
    MEM_PHYSICAL, /* key: cuMemCreate handle; charged to the device */
    VA_RESERVED,  /* key: fake address from cuMemAddressReserve */
    VA_MAPPED,    /* key: address passed to cuMemMap */
};

/* Every live handle and allocation; lock cuda_lock around any use. */
extern pthread_mutex_t cuda_lock;
extern struct dummy_table cuda_objects;

/* Count a run of entry point e; a nonzero result is what it must return. */
CUresult cuda_enter(enum cuda_entry e);
#define CU_ENTER(fn)                                                                               \
    do {                                                                                           \
        CUresult cu_enter_rc_ = cuda_enter(E_##fn);                                                \
        if (cu_enter_rc_ != CUDA_SUCCESS)                                                          \
            return cu_enter_rc_;                                                                   \
    } while (0)

bool cuda_valid_device(CUdevice dev);
CUcontext cuda_tls_context(void);                           /* this thread's current */
CUresult cuda_context_device(CUcontext ctx, CUdevice *dev); /* INVALID_CONTEXT if stale */
void *cuda_new_object(enum cuda_kind kind, CUdevice dev);   /* registered heap object */
bool cuda_free_object(enum cuda_kind kind, void *obj);
bool cuda_object_device(enum cuda_kind kind, const void *obj, CUdevice *dev);
void cuda_mem_reset_locked(void); /* memory accounting, under cuda_lock */

#pragma GCC visibility pop

#endif
