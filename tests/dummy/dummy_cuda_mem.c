/*
 * dummy_cuda_mem.c: the dummy CUDA driver's memory entry points: cuMemGetInfo,
 * plain, pitched, managed, stream-ordered and pool allocations, and the
 * virtual memory management calls (cuMemCreate / AddressReserve / Map ...).
 *
 * Nothing is ever backed by memory: addresses are fake, unique and never
 * reused, and live in cuda_objects so that unknown pointers are rejected.
 * Every device allocation and cuMemCreate handle is charged to its device;
 * one that would take the device past DUMMY_CUDA_MEMORY fails with
 * CUDA_ERROR_OUT_OF_MEMORY. Plain, pitched, managed and async allocations
 * need a current context, whose device they are charged to.
 */
#include "dummy_cuda.h"

#define GRANULARITY (2ULL << 20) /* cuMemGetAllocationGranularity, address spacing */
#define PITCH_ALIGN 512ULL
#define VA_BASE     0x7f0000000000ULL

/* Guarded by cuda_lock. */
static unsigned long long used[DUMMY_MAX_DEVICES];
static uint64_t next_va = VA_BASE;
static uint64_t next_handle = 1;

/* Static default pools, one per device, like primary contexts. */
static struct {
    CUdevice dev;
} default_pool[DUMMY_MAX_DEVICES];

void cuda_mem_reset_locked(void)
{
    for (int i = 0; i < DUMMY_MAX_DEVICES; i++)
        used[i] = 0;
    next_va = VA_BASE;
    next_handle = 1;
}

static bool charged(enum cuda_kind kind)
{
    return kind == MEM_DEVICE || kind == MEM_PHYSICAL;
}

/* Record a new allocation of kind on dev; *key gets its address or handle. */
static CUresult add(enum cuda_kind kind, CUdevice dev, uint64_t size, unsigned long long *key)
{
    if (size == 0)
        return CUDA_ERROR_INVALID_VALUE;
    if (size > (1ULL << 56))
        return CUDA_ERROR_OUT_OF_MEMORY;

    CUresult rc = CUDA_SUCCESS;
    pthread_mutex_lock(&cuda_lock);
    if (charged(kind) && size > cuda_cfg.memory - used[dev]) {
        rc = CUDA_ERROR_OUT_OF_MEMORY;
        goto out;
    }
    struct dummy_rec rec = {.size = size, .refs = 1, .dev = dev, .kind = kind};
    if (kind == MEM_PHYSICAL) {
        rec.key = next_handle;
    } else {
        /* Round up and leave a gap, so neighbours never touch. */
        rec.key = next_va;
        next_va += (size + 2 * GRANULARITY - 1) / GRANULARITY * GRANULARITY;
    }
    if (!dummy_table_add(&cuda_objects, rec)) {
        rc = CUDA_ERROR_OUT_OF_MEMORY;
        goto out;
    }
    if (kind == MEM_PHYSICAL)
        next_handle++;
    if (charged(kind))
        used[dev] += size;
    *key = rec.key;
out:
    pthread_mutex_unlock(&cuda_lock);
    return rc;
}

/* Forget the allocation of kind at key; size 0 matches any size. */
static CUresult drop(enum cuda_kind kind, uint64_t key, uint64_t size)
{
    pthread_mutex_lock(&cuda_lock);
    struct dummy_rec *rec = dummy_table_find(&cuda_objects, kind, key);
    bool found = rec && (size == 0 || rec->size == size);
    if (found) {
        if (charged(kind))
            used[rec->dev] -= rec->size;
        dummy_table_remove(&cuda_objects, rec);
    }
    pthread_mutex_unlock(&cuda_lock);
    return found ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

/* The device of the calling thread's current context. */
static CUresult current_device(CUdevice *dev)
{
    return cuda_context_device(cuda_tls_context(), dev);
}

/* Like current_device, but for objects that may also be made with no context. */
static CUdevice current_device_or_0(void)
{
    CUdevice dev = 0;
    return current_device(&dev) == CUDA_SUCCESS ? dev : 0;
}

static CUresult alloc_current(CUdeviceptr *dptr, size_t bytesize)
{
    CUdevice dev;
    CUresult rc = current_device(&dev);
    if (rc != CUDA_SUCCESS)
        return rc;
    return dptr ? add(MEM_DEVICE, dev, bytesize, dptr) : CUDA_ERROR_INVALID_VALUE;
}

static CUresult pool_device(CUmemoryPool pool, CUdevice *dev)
{
    uintptr_t first = (uintptr_t)default_pool, addr = (uintptr_t)pool;
    if (addr >= first && addr < (uintptr_t)(default_pool + cuda_cfg.devices)) {
        *dev = (CUdevice)((addr - first) / sizeof default_pool[0]);
        return CUDA_SUCCESS;
    }
    return pool && cuda_object_device(OBJ_POOL, pool, dev) ? CUDA_SUCCESS
                                                           : CUDA_ERROR_INVALID_VALUE;
}

static CUresult alloc_from_pool(CUdeviceptr *dptr, size_t bytesize, CUmemoryPool pool)
{
    CUdevice dev;
    if (!dptr || pool_device(pool, &dev) != CUDA_SUCCESS)
        return CUDA_ERROR_INVALID_VALUE;
    return add(MEM_DEVICE, dev, bytesize, dptr);
}

/* ---- info and classic allocations ------------------------------------------ */

DUMMY_EXPORT CUresult cuMemGetInfo_v2(size_t *free_bytes, size_t *total_bytes)
{
    CU_ENTER(cuMemGetInfo_v2);
    CUdevice dev;
    CUresult rc = current_device(&dev);
    if (rc != CUDA_SUCCESS)
        return rc;
    if (!free_bytes || !total_bytes)
        return CUDA_ERROR_INVALID_VALUE;

    size_t total = cuda_cfg.memory;
    if (cuda_cfg.selfcall) {
        /* Through the PLT: lands in whatever cuDeviceTotalMem_v2 binds to. */
        rc = cuDeviceTotalMem_v2(&total, dev);
        if (rc != CUDA_SUCCESS)
            return rc;
    }
    pthread_mutex_lock(&cuda_lock);
    *free_bytes = used[dev] < total ? total - used[dev] : 0;
    pthread_mutex_unlock(&cuda_lock);
    *total_bytes = total;
    return CUDA_SUCCESS;
}

DUMMY_EXPORT CUresult cuMemAlloc_v2(CUdeviceptr *dptr, size_t bytesize)
{
    CU_ENTER(cuMemAlloc_v2);
    if (cuda_cfg.selfcall) {
        /* Through the PLT: lands in whatever cuCtxGetCurrent binds to. */
        CUcontext ctx = NULL;
        CUdevice dev;
        CUresult rc = cuCtxGetCurrent(&ctx);
        if (rc == CUDA_SUCCESS)
            rc = cuda_context_device(ctx, &dev);
        if (rc != CUDA_SUCCESS)
            return rc;
        return dptr ? add(MEM_DEVICE, dev, bytesize, dptr) : CUDA_ERROR_INVALID_VALUE;
    }
    return alloc_current(dptr, bytesize);
}

DUMMY_EXPORT CUresult cuMemAllocPitch_v2(CUdeviceptr *dptr, size_t *pitch, size_t width,
                                         size_t height, unsigned int element_size)
{
    CU_ENTER(cuMemAllocPitch_v2);
    size_t row = (width + PITCH_ALIGN - 1) / PITCH_ALIGN * PITCH_ALIGN, bytes;
    if (!pitch || width == 0 || height == 0 || row < width ||
        (element_size != 4 && element_size != 8 && element_size != 16))
        return CUDA_ERROR_INVALID_VALUE;
    if (__builtin_mul_overflow(row, height, &bytes))
        return CUDA_ERROR_OUT_OF_MEMORY;
    CUresult rc = alloc_current(dptr, bytes);
    if (rc == CUDA_SUCCESS)
        *pitch = row;
    return rc;
}

DUMMY_EXPORT CUresult cuMemAllocManaged(CUdeviceptr *dptr, size_t bytesize, unsigned int flags)
{
    CU_ENTER(cuMemAllocManaged);
    if (flags != 1 && flags != 2) /* CU_MEM_ATTACH_GLOBAL, CU_MEM_ATTACH_HOST */
        return CUDA_ERROR_INVALID_VALUE;
    return alloc_current(dptr, bytesize);
}

DUMMY_EXPORT CUresult cuMemFree_v2(CUdeviceptr dptr)
{
    CU_ENTER(cuMemFree_v2);
    return drop(MEM_DEVICE, dptr, 0);
}

/* ---- stream-ordered allocations and pools ------------------------------------ */
/* Streams are not checked here; the _ptsz twins behave exactly the same. */

DUMMY_EXPORT CUresult cuMemAllocAsync(CUdeviceptr *dptr, size_t bytesize, CUstream stream)
{
    (void)stream;
    CU_ENTER(cuMemAllocAsync);
    return alloc_current(dptr, bytesize);
}

DUMMY_EXPORT CUresult cuMemAllocAsync_ptsz(CUdeviceptr *dptr, size_t bytesize, CUstream stream)
{
    (void)stream;
    CU_ENTER(cuMemAllocAsync_ptsz);
    return alloc_current(dptr, bytesize);
}

DUMMY_EXPORT CUresult cuMemAllocFromPoolAsync(CUdeviceptr *dptr, size_t bytesize, CUmemoryPool pool,
                                              CUstream stream)
{
    (void)stream;
    CU_ENTER(cuMemAllocFromPoolAsync);
    return alloc_from_pool(dptr, bytesize, pool);
}

DUMMY_EXPORT CUresult cuMemAllocFromPoolAsync_ptsz(CUdeviceptr *dptr, size_t bytesize,
                                                   CUmemoryPool pool, CUstream stream)
{
    (void)stream;
    CU_ENTER(cuMemAllocFromPoolAsync_ptsz);
    return alloc_from_pool(dptr, bytesize, pool);
}

DUMMY_EXPORT CUresult cuMemFreeAsync(CUdeviceptr dptr, CUstream stream)
{
    (void)stream;
    CU_ENTER(cuMemFreeAsync);
    return drop(MEM_DEVICE, dptr, 0);
}

DUMMY_EXPORT CUresult cuMemFreeAsync_ptsz(CUdeviceptr dptr, CUstream stream)
{
    (void)stream;
    CU_ENTER(cuMemFreeAsync_ptsz);
    return drop(MEM_DEVICE, dptr, 0);
}

/* props is never read; the pool belongs to the current context's device, or 0. */
DUMMY_EXPORT CUresult cuMemPoolCreate(CUmemoryPool *pool, const CUmemPoolProps *props)
{
    CU_ENTER(cuMemPoolCreate);
    if (!pool || !props)
        return CUDA_ERROR_INVALID_VALUE;
    *pool = cuda_new_object(OBJ_POOL, current_device_or_0());
    return *pool ? CUDA_SUCCESS : CUDA_ERROR_OUT_OF_MEMORY;
}

DUMMY_EXPORT CUresult cuMemPoolDestroy(CUmemoryPool pool)
{
    CU_ENTER(cuMemPoolDestroy);
    return cuda_free_object(OBJ_POOL, pool) ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

DUMMY_EXPORT CUresult cuDeviceGetDefaultMemPool(CUmemoryPool *pool, CUdevice dev)
{
    CU_ENTER(cuDeviceGetDefaultMemPool);
    if (!pool)
        return CUDA_ERROR_INVALID_VALUE;
    if (!cuda_valid_device(dev))
        return CUDA_ERROR_INVALID_DEVICE;
    default_pool[dev].dev = dev;
    *pool = (CUmemoryPool)&default_pool[dev];
    return CUDA_SUCCESS;
}

/* ---- virtual memory management ------------------------------------------------ */

/* prop is never read; the memory is charged to the current context's device, or 0. */
DUMMY_EXPORT CUresult cuMemCreate(CUmemGenericAllocationHandle *handle, size_t size,
                                  const CUmemAllocationProp *prop, unsigned long long flags)
{
    CU_ENTER(cuMemCreate);
    if (!handle || !prop || flags != 0)
        return CUDA_ERROR_INVALID_VALUE;
    return add(MEM_PHYSICAL, current_device_or_0(), size, handle);
}

/* Drops a reference to a physical allocation; the memory goes with the last one.
 * Caller holds cuda_lock. */
static bool physical_unref(CUmemGenericAllocationHandle handle)
{
    struct dummy_rec *phys = dummy_table_find(&cuda_objects, MEM_PHYSICAL, handle);
    if (phys && --phys->refs == 0) {
        used[phys->dev] -= phys->size;
        dummy_table_remove(&cuda_objects, phys);
    }
    return phys != NULL;
}

/* Like the real driver, memory stays allocated while a mapping of it exists. */
DUMMY_EXPORT CUresult cuMemRelease(CUmemGenericAllocationHandle handle)
{
    CU_ENTER(cuMemRelease);
    pthread_mutex_lock(&cuda_lock);
    bool found = physical_unref(handle);
    pthread_mutex_unlock(&cuda_lock);
    return found ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

DUMMY_EXPORT CUresult cuMemAddressReserve(CUdeviceptr *ptr, size_t size, size_t alignment,
                                          CUdeviceptr addr, unsigned long long flags)
{
    (void)alignment, (void)addr;
    CU_ENTER(cuMemAddressReserve);
    if (!ptr || flags != 0)
        return CUDA_ERROR_INVALID_VALUE;
    return add(VA_RESERVED, 0, size, ptr);
}

DUMMY_EXPORT CUresult cuMemAddressFree(CUdeviceptr ptr, size_t size)
{
    CU_ENTER(cuMemAddressFree);
    return drop(VA_RESERVED, ptr, size);
}

/* [ptr, ptr+size) must lie in a reservation and not start an existing mapping. */
DUMMY_EXPORT CUresult cuMemMap(CUdeviceptr ptr, size_t size, size_t offset,
                               CUmemGenericAllocationHandle handle, unsigned long long flags)
{
    CU_ENTER(cuMemMap);
    if (size == 0 || flags != 0)
        return CUDA_ERROR_INVALID_VALUE;
    CUresult rc = CUDA_ERROR_INVALID_VALUE;
    pthread_mutex_lock(&cuda_lock);
    struct dummy_rec *phys = dummy_table_find(&cuda_objects, MEM_PHYSICAL, handle);
    if (phys && offset <= phys->size && size <= phys->size - offset &&
        dummy_table_find_range(&cuda_objects, VA_RESERVED, ptr, size) &&
        !dummy_table_find(&cuda_objects, VA_MAPPED, ptr)) {
        struct dummy_rec map = {
            .key = ptr, .size = size, .handle = handle, .dev = phys->dev, .kind = VA_MAPPED};
        rc = dummy_table_add(&cuda_objects, map) ? CUDA_SUCCESS : CUDA_ERROR_OUT_OF_MEMORY;
        if (rc == CUDA_SUCCESS) /* re-found: adding may have moved the table */
            dummy_table_find(&cuda_objects, MEM_PHYSICAL, handle)->refs++;
    }
    pthread_mutex_unlock(&cuda_lock);
    return rc;
}

/* Unmaps every mapping that starts in [ptr, ptr+size), as one call may cover several. */
DUMMY_EXPORT CUresult cuMemUnmap(CUdeviceptr ptr, size_t size)
{
    CU_ENTER(cuMemUnmap);
    bool any = false;
    pthread_mutex_lock(&cuda_lock);
    for (size_t i = 0; i < cuda_objects.len;) {
        struct dummy_rec *r = &cuda_objects.recs[i];
        if (r->kind == VA_MAPPED && r->key >= ptr && r->key - ptr < size) {
            CUmemGenericAllocationHandle handle = r->handle;
            dummy_table_remove(&cuda_objects, r);
            physical_unref(handle);
            any = true;
            i = 0; /* removals move records around: look again from the start */
        } else {
            i++;
        }
    }
    pthread_mutex_unlock(&cuda_lock);
    return any ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

DUMMY_EXPORT CUresult cuMemRetainAllocationHandle(CUmemGenericAllocationHandle *handle, void *addr)
{
    CU_ENTER(cuMemRetainAllocationHandle);
    if (!handle)
        return CUDA_ERROR_INVALID_VALUE;
    pthread_mutex_lock(&cuda_lock);
    struct dummy_rec *map =
        dummy_table_find_range(&cuda_objects, VA_MAPPED, (CUdeviceptr)(uintptr_t)addr, 1);
    struct dummy_rec *phys =
        map ? dummy_table_find(&cuda_objects, MEM_PHYSICAL, map->handle) : NULL;
    if (phys) {
        phys->refs++;
        *handle = map->handle;
    }
    pthread_mutex_unlock(&cuda_lock);
    return phys ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

DUMMY_EXPORT CUresult cuMemSetAccess(CUdeviceptr ptr, size_t size, const CUmemAccessDesc *desc,
                                     size_t count)
{
    CU_ENTER(cuMemSetAccess);
    if (!desc || count == 0 || size == 0)
        return CUDA_ERROR_INVALID_VALUE;
    pthread_mutex_lock(&cuda_lock);
    bool mapped = dummy_table_find_range(&cuda_objects, VA_MAPPED, ptr, size) != NULL;
    pthread_mutex_unlock(&cuda_lock);
    return mapped ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

DUMMY_EXPORT CUresult cuMemGetAllocationGranularity(size_t *granularity,
                                                    const CUmemAllocationProp *prop,
                                                    CUmemAllocationGranularity_flags option)
{
    (void)option;
    CU_ENTER(cuMemGetAllocationGranularity);
    if (!granularity || !prop)
        return CUDA_ERROR_INVALID_VALUE;
    *granularity = GRANULARITY;
    return CUDA_SUCCESS;
}
