/* cuda-memory: the vGPU memory limit on the driver API (DESIGN §5). What a process is
 * told — cuDeviceTotalMem*, cuMemGetInfo* — is at most the limit, and every allocation
 * path that commits device memory — cuMemAlloc*, cuMemAllocPitch*, cuMemAllocManaged,
 * cuMemAllocAsync* and pools, and cuMemCreate of the VMM path — fails with
 * CUDA_ERROR_OUT_OF_MEMORY past it. Without a limit every call is forwarded unchanged.
 * Not charged: arrays, graph memory nodes, what a pool keeps after a free, and what
 * goes through the driver's export tables; memory freed by destroying or resetting a
 * context (not by a free call) stays charged. */
#include "cuda-api.h"
#include "cuda-shim.h"
#include "log.h"
#include "memlimit.h"

/* Whether the limit applies: the backend is up (that is when the limit is set up) and
 * a limit is configured. */
static bool limited(void)
{
    return vgpu_cuda_backend_up() && vgpu_mem_limit();
}

static unsigned long long min_ull(unsigned long long a, unsigned long long b)
{
    return a < b ? a : b;
}

/* What is left of the limit for this process. */
static unsigned long long headroom(void)
{
    return vgpu_mem_limit() - min_ull(vgpu_mem_used(), vgpu_mem_limit());
}

/* Reserves size bytes for entry point `what`, or says why not. */
static CUresult reserve(unsigned long long size, const char *what)
{
    if (vgpu_mem_reserve(size))
        return CUDA_SUCCESS;
    vgpu_log(VGPU_LOG_INFO,
             "%s: %llu bytes would pass the memory limit (%llu of %llu bytes held): "
             "CUDA_ERROR_OUT_OF_MEMORY",
             what, size, vgpu_mem_used(), vgpu_mem_limit());
    return CUDA_ERROR_OUT_OF_MEMORY;
}

typedef CUresult (*release_fn)(CUdeviceptr key);

/* Settles a reservation after the backend answered an allocation: recorded under key
 * when it succeeded, given back when it did not. */
static CUresult settle(CUresult r, enum vgpu_mem_kind kind, CUdeviceptr key,
                       unsigned long long size, release_fn release)
{
    if (r != CUDA_SUCCESS) {
        vgpu_mem_unreserve(size);
        return r;
    }
    if (vgpu_mem_track(kind, key, size))
        return CUDA_SUCCESS;
    release(key);
    vgpu_mem_unreserve(size);
    vgpu_log(VGPU_LOG_WARN, "no memory to account for an allocation: CUDA_ERROR_OUT_OF_MEMORY");
    return CUDA_ERROR_OUT_OF_MEMORY;
}

/* Gives back what key held once the backend freed it; keeps it when it did not. */
static CUresult give_back(CUresult r, enum vgpu_mem_kind kind, CUdeviceptr key,
                          unsigned long long size)
{
    if (!size)
        return r;
    if (r == CUDA_SUCCESS || !vgpu_mem_track(kind, key, size))
        vgpu_mem_unreserve(size);
    return r;
}

static CUresult free_pointer(CUdeviceptr p)
{
    return VGPU_FORWARD(cuMemFree_v2, p);
}

static CUresult release_handle(CUdeviceptr h)
{
    return VGPU_FORWARD(cuMemRelease, h);
}

/* An allocation entry point: forwards, charging size bytes under the new pointer. */
#define ALLOC(name, ptr, size, ...)                                                                \
    do {                                                                                           \
        VGPU_COUNT(name);                                                                          \
        if (!limited() || !(ptr))                                                                  \
            return VGPU_FORWARD(name, __VA_ARGS__);                                                \
        CUresult r_ = reserve(size, #name);                                                        \
        if (r_ != CUDA_SUCCESS)                                                                    \
            return r_;                                                                             \
        r_ = VGPU_FORWARD(name, __VA_ARGS__);                                                      \
        return settle(r_, VGPU_MEM_POINTER, *(ptr), size, free_pointer);                           \
    } while (0)

/* A free entry point: forwards, and gives back what the pointer held. The record goes
 * first, so that another thread's allocation at the freed address cannot be taken for
 * this one; a free the backend refuses puts it back. */
#define FREE(name, key, ...)                                                                       \
    do {                                                                                           \
        VGPU_COUNT(name);                                                                          \
        if (!limited())                                                                            \
            return VGPU_FORWARD(name, __VA_ARGS__);                                                \
        unsigned long long size_ = vgpu_mem_untrack(key);                                          \
        return give_back(VGPU_FORWARD(name, __VA_ARGS__), VGPU_MEM_POINTER, key, size_);           \
    } while (0)

VGPU_API CUresult cuMemAlloc_v2(CUdeviceptr *dptr, size_t bytesize)
{
    ALLOC(cuMemAlloc_v2, dptr, bytesize, dptr, bytesize);
}

VGPU_API CUresult cuMemAllocManaged(CUdeviceptr *dptr, size_t bytesize, unsigned int flags)
{
    ALLOC(cuMemAllocManaged, dptr, bytesize, dptr, bytesize, flags);
}

VGPU_API CUresult cuMemAllocAsync(CUdeviceptr *dptr, size_t bytesize, CUstream stream)
{
    ALLOC(cuMemAllocAsync, dptr, bytesize, dptr, bytesize, stream);
}

VGPU_API CUresult cuMemAllocAsync_ptsz(CUdeviceptr *dptr, size_t bytesize, CUstream stream)
{
    ALLOC(cuMemAllocAsync_ptsz, dptr, bytesize, dptr, bytesize, stream);
}

VGPU_API CUresult cuMemAllocFromPoolAsync(CUdeviceptr *dptr, size_t bytesize, CUmemoryPool pool,
                                          CUstream stream)
{
    ALLOC(cuMemAllocFromPoolAsync, dptr, bytesize, dptr, bytesize, pool, stream);
}

VGPU_API CUresult cuMemAllocFromPoolAsync_ptsz(CUdeviceptr *dptr, size_t bytesize,
                                               CUmemoryPool pool, CUstream stream)
{
    ALLOC(cuMemAllocFromPoolAsync_ptsz, dptr, bytesize, dptr, bytesize, pool, stream);
}

VGPU_API CUresult cuMemFree_v2(CUdeviceptr dptr)
{
    FREE(cuMemFree_v2, dptr, dptr);
}

VGPU_API CUresult cuMemFreeAsync(CUdeviceptr dptr, CUstream stream)
{
    FREE(cuMemFreeAsync, dptr, dptr, stream);
}

VGPU_API CUresult cuMemFreeAsync_ptsz(CUdeviceptr dptr, CUstream stream)
{
    FREE(cuMemFreeAsync_ptsz, dptr, dptr, stream);
}

/* The 32-bit API of CUDA 2.x, still exported: same accounting, 32-bit pointers. */
static CUresult free_pointer_v1(CUdeviceptr p)
{
    return VGPU_FORWARD(cuMemFree, (CUdeviceptr_v1)p);
}

VGPU_API CUresult cuMemAlloc(CUdeviceptr_v1 *dptr, unsigned int bytesize)
{
    VGPU_COUNT(cuMemAlloc);
    if (!limited() || !dptr)
        return VGPU_FORWARD(cuMemAlloc, dptr, bytesize);
    CUresult r = reserve(bytesize, "cuMemAlloc");
    if (r != CUDA_SUCCESS)
        return r;
    r = VGPU_FORWARD(cuMemAlloc, dptr, bytesize);
    return settle(r, VGPU_MEM_POINTER, r == CUDA_SUCCESS ? *dptr : 0, bytesize, free_pointer_v1);
}

VGPU_API CUresult cuMemFree(CUdeviceptr_v1 dptr)
{
    FREE(cuMemFree, dptr, dptr);
}

/* Pitched allocations: the pitch is the driver's choice, so the reservation for
 * width × height is corrected to pitch × height once it answers. */
static CUresult settle_pitch(CUresult r, CUdeviceptr ptr, unsigned long long asked,
                             unsigned long long got, release_fn release, const char *what)
{
    if (r != CUDA_SUCCESS)
        return settle(r, VGPU_MEM_POINTER, ptr, asked, release);
    if (got > asked && reserve(got - asked, what) != CUDA_SUCCESS) {
        release(ptr);
        vgpu_mem_unreserve(asked);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    if (got < asked)
        vgpu_mem_unreserve(asked - got);
    return settle(r, VGPU_MEM_POINTER, ptr, got, release);
}

VGPU_API CUresult cuMemAllocPitch_v2(CUdeviceptr *dptr, size_t *pitch, size_t width, size_t height,
                                     unsigned int elementSize)
{
    VGPU_COUNT(cuMemAllocPitch_v2);
    unsigned long long asked;
    if (!limited() || !dptr || !pitch || __builtin_mul_overflow(width, height, &asked))
        return VGPU_FORWARD(cuMemAllocPitch_v2, dptr, pitch, width, height, elementSize);
    CUresult r = reserve(asked, "cuMemAllocPitch_v2");
    if (r != CUDA_SUCCESS)
        return r;
    r = VGPU_FORWARD(cuMemAllocPitch_v2, dptr, pitch, width, height, elementSize);
    unsigned long long got = r == CUDA_SUCCESS ? (unsigned long long)*pitch * height : 0;
    return settle_pitch(r, r == CUDA_SUCCESS ? *dptr : 0, asked, got, free_pointer,
                        "cuMemAllocPitch_v2");
}

VGPU_API CUresult cuMemAllocPitch(CUdeviceptr_v1 *dptr, unsigned int *pitch, unsigned int width,
                                  unsigned int height, unsigned int elementSize)
{
    VGPU_COUNT(cuMemAllocPitch);
    if (!limited() || !dptr || !pitch)
        return VGPU_FORWARD(cuMemAllocPitch, dptr, pitch, width, height, elementSize);
    unsigned long long asked = (unsigned long long)width * height;
    CUresult r = reserve(asked, "cuMemAllocPitch");
    if (r != CUDA_SUCCESS)
        return r;
    r = VGPU_FORWARD(cuMemAllocPitch, dptr, pitch, width, height, elementSize);
    unsigned long long got = r == CUDA_SUCCESS ? (unsigned long long)*pitch * height : 0;
    return settle_pitch(r, r == CUDA_SUCCESS ? *dptr : 0, asked, got, free_pointer_v1,
                        "cuMemAllocPitch");
}

/* The VMM path (ggml-cuda's pools). cuMemCreate commits physical memory; it stays
 * committed while the handle or any mapping of it lives — ggml releases the handle
 * right after cuMemMap, and the memory goes at cuMemUnmap. */
VGPU_API CUresult cuMemCreate(CUmemGenericAllocationHandle *handle, size_t size,
                              const CUmemAllocationProp *prop, unsigned long long flags)
{
    VGPU_COUNT(cuMemCreate);
    if (!limited() || !handle)
        return VGPU_FORWARD(cuMemCreate, handle, size, prop, flags);
    CUresult r = reserve(size, "cuMemCreate");
    if (r != CUDA_SUCCESS)
        return r;
    r = VGPU_FORWARD(cuMemCreate, handle, size, prop, flags);
    return settle(r, VGPU_MEM_HANDLE, r == CUDA_SUCCESS ? *handle : 0, size, release_handle);
}

VGPU_API CUresult cuMemRelease(CUmemGenericAllocationHandle handle)
{
    VGPU_COUNT(cuMemRelease);
    if (!limited())
        return VGPU_FORWARD(cuMemRelease, handle);
    /* As for pointers, the reference goes first and comes back if the backend refuses. */
    unsigned long long last;
    bool known = vgpu_mem_handle_unref(handle, &last);
    CUresult r = VGPU_FORWARD(cuMemRelease, handle);
    if (known && last)
        return give_back(r, VGPU_MEM_HANDLE, handle, last);
    if (known && r != CUDA_SUCCESS)
        vgpu_mem_handle_ref(handle);
    return r;
}

VGPU_API CUresult cuMemMap(CUdeviceptr ptr, size_t size, size_t offset,
                           CUmemGenericAllocationHandle handle, unsigned long long flags)
{
    VGPU_COUNT(cuMemMap);
    CUresult r = VGPU_FORWARD(cuMemMap, ptr, size, offset, handle, flags);
    if (r == CUDA_SUCCESS && limited() && !vgpu_mem_map(ptr, size, handle))
        vgpu_log(VGPU_LOG_WARN, "no memory to account for a mapping: its memory is counted "
                                "only until its handle is released");
    return r;
}

VGPU_API CUresult cuMemUnmap(CUdeviceptr ptr, size_t size)
{
    VGPU_COUNT(cuMemUnmap);
    CUresult r = VGPU_FORWARD(cuMemUnmap, ptr, size);
    if (r == CUDA_SUCCESS && limited())
        vgpu_mem_unmap(ptr, size);
    return r;
}

VGPU_API CUresult cuMemRetainAllocationHandle(CUmemGenericAllocationHandle *handle, void *addr)
{
    VGPU_COUNT(cuMemRetainAllocationHandle);
    CUresult r = VGPU_FORWARD(cuMemRetainAllocationHandle, handle, addr);
    if (r == CUDA_SUCCESS && limited() && handle)
        vgpu_mem_handle_ref(*handle);
    return r;
}

/* What the process is told: at most the limit, less what it holds. */
VGPU_API CUresult cuMemGetInfo_v2(size_t *free, size_t *total)
{
    VGPU_COUNT(cuMemGetInfo_v2);
    CUresult r = VGPU_FORWARD(cuMemGetInfo_v2, free, total);
    if (r == CUDA_SUCCESS && limited() && free && total) {
        *total = min_ull(*total, vgpu_mem_limit());
        *free = min_ull(*free, headroom());
    }
    return r;
}

VGPU_API CUresult cuMemGetInfo(unsigned int *free, unsigned int *total)
{
    VGPU_COUNT(cuMemGetInfo);
    CUresult r = VGPU_FORWARD(cuMemGetInfo, free, total);
    if (r == CUDA_SUCCESS && limited() && free && total) {
        *total = (unsigned int)min_ull(*total, vgpu_mem_limit());
        *free = (unsigned int)min_ull(*free, headroom());
    }
    return r;
}

VGPU_API CUresult cuDeviceTotalMem_v2(size_t *bytes, CUdevice dev)
{
    VGPU_COUNT(cuDeviceTotalMem_v2);
    CUresult r = VGPU_FORWARD(cuDeviceTotalMem_v2, bytes, dev);
    if (r == CUDA_SUCCESS && limited() && bytes)
        *bytes = min_ull(*bytes, vgpu_mem_limit());
    return r;
}

VGPU_API CUresult cuDeviceTotalMem(unsigned int *bytes, CUdevice dev)
{
    VGPU_COUNT(cuDeviceTotalMem);
    CUresult r = VGPU_FORWARD(cuDeviceTotalMem, bytes, dev);
    if (r == CUDA_SUCCESS && limited() && bytes)
        *bytes = (unsigned int)min_ull(*bytes, vgpu_mem_limit());
    return r;
}
