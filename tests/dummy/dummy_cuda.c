/*
 * dummy_cuda.c: the dummy CUDA driver (libcuda.so.1 for GPU-less tests):
 * knobs, cuInit, devices, contexts, streams and the dummy_cuda_* test
 * controls. Memory entry points
 * live in dummy_cuda_mem.c; error strings, cuGetProcAddress and
 * cuGetExportTable in dummy_cuda_proc.c. See README.md for the knobs.
 */
#include "dummy_cuda.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- entry-point table and knobs --------------------------------------- */

#define NAME(name, before_init)        #name,
#define BEFORE_INIT(name, before_init) before_init,
static const char *const entry_names[] = {DUMMY_CUDA_ENTRY_POINTS(NAME)};
static const bool entry_before_init[] = {DUMMY_CUDA_ENTRY_POINTS(BEFORE_INIT)};
#undef NAME
#undef BEFORE_INIT

static atomic_ulong entry_calls[E_CUDA_COUNT];
static int entry_fail[E_CUDA_COUNT];
const struct dummy_api cuda_api = {"dummy-cuda", E_CUDA_COUNT, entry_names, entry_calls,
                                   entry_fail};

struct cuda_config cuda_cfg;
static pthread_once_t config_once = PTHREAD_ONCE_INIT;
static atomic_bool initialized;

static void load_config(void)
{
    unsigned long long devices = dummy_env_ull("DUMMY_CUDA_DEVICES", 1);
    cuda_cfg.devices = devices > DUMMY_MAX_DEVICES ? DUMMY_MAX_DEVICES : (int)devices;
    snprintf(cuda_cfg.name, sizeof cuda_cfg.name, "%s",
             dummy_env_str("DUMMY_CUDA_NAME", "Dummy GPU"));
    cuda_cfg.memory = dummy_env_ull("DUMMY_CUDA_MEMORY", 16ULL << 30);
    cuda_cfg.version = (int)dummy_env_ull("DUMMY_CUDA_VERSION", 13000);
    cuda_cfg.cc_major = 8;
    cuda_cfg.cc_minor = 9;
    dummy_env_cc("DUMMY_CUDA_CC", &cuda_cfg.cc_major, &cuda_cfg.cc_minor);
    cuda_cfg.selfcall = dummy_env_flag("DUMMY_CUDA_SELFCALL");
    cuda_cfg.proc_missing = getenv("DUMMY_CUDA_PROC_MISSING");
    cuda_cfg.proc_answer = getenv("DUMMY_CUDA_PROC_ANSWER");
    dummy_api_parse_fail(&cuda_api, "DUMMY_CUDA_FAIL");
}

CUresult cuda_enter(enum cuda_entry e)
{
    pthread_once(&config_once, load_config);
    int forced = dummy_api_enter(&cuda_api, e);
    if (forced != DUMMY_NO_FAIL)
        return forced;
    if (!entry_before_init[e] && !atomic_load(&initialized))
        return CUDA_ERROR_NOT_INITIALIZED;
    return CUDA_SUCCESS;
}

bool cuda_valid_device(CUdevice dev)
{
    return dev >= 0 && dev < cuda_cfg.devices;
}

/* ---- handles: contexts, streams, pools ---------------------------------- */

pthread_mutex_t cuda_lock = PTHREAD_MUTEX_INITIALIZER;
struct dummy_table cuda_objects;

/* Created contexts, streams and pools are small heap objects like this. */
struct dummy_object {
    char tag[8];
    CUdevice dev;
};

/* Primary contexts are static, one per device; their handle never changes. */
static struct dummy_object primary_ctx[DUMMY_MAX_DEVICES];
static int primary_refs[DUMMY_MAX_DEVICES];
static __thread CUcontext tls_current;

void *cuda_new_object(enum cuda_kind kind, CUdevice dev)
{
    static const char *const tags[] = {
        [OBJ_CONTEXT] = "ctx", [OBJ_STREAM] = "stream", [OBJ_POOL] = "pool"};
    struct dummy_object *obj = calloc(1, sizeof *obj);
    if (!obj)
        return NULL;
    snprintf(obj->tag, sizeof obj->tag, "%s", tags[kind]);
    obj->dev = dev;
    struct dummy_rec rec = {.key = (uintptr_t)obj, .size = sizeof *obj, .dev = dev, .kind = kind};
    pthread_mutex_lock(&cuda_lock);
    bool ok = dummy_table_add(&cuda_objects, rec);
    pthread_mutex_unlock(&cuda_lock);
    if (!ok) {
        free(obj);
        return NULL;
    }
    return obj;
}

bool cuda_free_object(enum cuda_kind kind, void *obj)
{
    pthread_mutex_lock(&cuda_lock);
    struct dummy_rec *rec = dummy_table_find(&cuda_objects, kind, (uintptr_t)obj);
    if (rec)
        dummy_table_remove(&cuda_objects, rec);
    pthread_mutex_unlock(&cuda_lock);
    if (rec)
        free(obj);
    return rec != NULL;
}

bool cuda_object_device(enum cuda_kind kind, const void *obj, CUdevice *dev)
{
    pthread_mutex_lock(&cuda_lock);
    struct dummy_rec *rec = dummy_table_find(&cuda_objects, kind, (uintptr_t)obj);
    if (rec)
        *dev = rec->dev;
    pthread_mutex_unlock(&cuda_lock);
    return rec != NULL;
}

CUcontext cuda_tls_context(void)
{
    return tls_current;
}

CUresult cuda_context_device(CUcontext ctx, CUdevice *dev)
{
    uintptr_t first = (uintptr_t)primary_ctx, addr = (uintptr_t)ctx;
    if (addr >= first && addr < (uintptr_t)(primary_ctx + cuda_cfg.devices)) {
        *dev = (CUdevice)((addr - first) / sizeof primary_ctx[0]);
        return CUDA_SUCCESS;
    }
    return ctx && cuda_object_device(OBJ_CONTEXT, ctx, dev) ? CUDA_SUCCESS
                                                            : CUDA_ERROR_INVALID_CONTEXT;
}

/* ---- init and devices ---------------------------------------------------- */

DUMMY_EXPORT CUresult cuInit(unsigned int flags)
{
    CU_ENTER(cuInit);
    if (flags != 0)
        return CUDA_ERROR_INVALID_VALUE;
    if (cuda_cfg.devices == 0)
        return CUDA_ERROR_NO_DEVICE;
    atomic_store(&initialized, true);
    return CUDA_SUCCESS;
}

DUMMY_EXPORT CUresult cuDriverGetVersion(int *version)
{
    CU_ENTER(cuDriverGetVersion);
    if (!version)
        return CUDA_ERROR_INVALID_VALUE;
    *version = cuda_cfg.version;
    return CUDA_SUCCESS;
}

DUMMY_EXPORT CUresult cuDeviceGetCount(int *count)
{
    CU_ENTER(cuDeviceGetCount);
    if (!count)
        return CUDA_ERROR_INVALID_VALUE;
    *count = cuda_cfg.devices;
    return CUDA_SUCCESS;
}

DUMMY_EXPORT CUresult cuDeviceGet(CUdevice *device, int ordinal)
{
    CU_ENTER(cuDeviceGet);
    if (!device)
        return CUDA_ERROR_INVALID_VALUE;
    if (!cuda_valid_device(ordinal))
        return CUDA_ERROR_INVALID_DEVICE;
    *device = ordinal;
    return CUDA_SUCCESS;
}

DUMMY_EXPORT CUresult cuDeviceGetName(char *name, int len, CUdevice dev)
{
    CU_ENTER(cuDeviceGetName);
    if (!name || len <= 0)
        return CUDA_ERROR_INVALID_VALUE;
    if (!cuda_valid_device(dev))
        return CUDA_ERROR_INVALID_DEVICE;
    snprintf(name, (size_t)len, "%s", cuda_cfg.name);
    return CUDA_SUCCESS;
}

DUMMY_EXPORT CUresult cuDeviceTotalMem_v2(size_t *bytes, CUdevice dev)
{
    CU_ENTER(cuDeviceTotalMem_v2);
    if (!bytes)
        return CUDA_ERROR_INVALID_VALUE;
    if (!cuda_valid_device(dev))
        return CUDA_ERROR_INVALID_DEVICE;
    *bytes = cuda_cfg.memory;
    return CUDA_SUCCESS;
}

DUMMY_EXPORT CUresult cuDeviceGetAttribute(int *value, CUdevice_attribute attrib, CUdevice dev)
{
    /* CU_DEVICE_ATTRIBUTE_* values; any other attribute reads as 0. */
    const struct {
        int attrib, value;
    } attributes[] = {
        {1, 1024},               /* MAX_THREADS_PER_BLOCK */
        {10, 32},                /* WARP_SIZE */
        {16, 64},                /* MULTIPROCESSOR_COUNT */
        {33, 1 + dev},           /* PCI_BUS_ID */
        {41, 1},                 /* UNIFIED_ADDRESSING */
        {75, cuda_cfg.cc_major}, /* COMPUTE_CAPABILITY_MAJOR */
        {76, cuda_cfg.cc_minor}, /* COMPUTE_CAPABILITY_MINOR */
        {83, 1},                 /* MANAGED_MEMORY */
        {102, 1},                /* VIRTUAL_MEMORY_MANAGEMENT_SUPPORTED */
        {115, 1},                /* MEMORY_POOLS_SUPPORTED */
    };

    CU_ENTER(cuDeviceGetAttribute);
    if (!value || attrib <= 0)
        return CUDA_ERROR_INVALID_VALUE;
    if (!cuda_valid_device(dev))
        return CUDA_ERROR_INVALID_DEVICE;
    *value = 0;
    for (size_t i = 0; i < sizeof attributes / sizeof attributes[0]; i++) {
        if (attributes[i].attrib == attrib)
            *value = attributes[i].value;
    }
    return CUDA_SUCCESS;
}

static CUresult device_uuid(CUuuid *uuid, CUdevice dev)
{
    if (!uuid)
        return CUDA_ERROR_INVALID_VALUE;
    if (!cuda_valid_device(dev))
        return CUDA_ERROR_INVALID_DEVICE;
    dummy_uuid((unsigned)dev, (unsigned char *)uuid->bytes);
    return CUDA_SUCCESS;
}

DUMMY_EXPORT CUresult cuDeviceGetUuid(CUuuid *uuid, CUdevice dev)
{
    CU_ENTER(cuDeviceGetUuid);
    return device_uuid(uuid, dev);
}

DUMMY_EXPORT CUresult cuDeviceGetUuid_v2(CUuuid *uuid, CUdevice dev)
{
    CU_ENTER(cuDeviceGetUuid_v2);
    return device_uuid(uuid, dev);
}

/* ---- contexts ------------------------------------------------------------ */

DUMMY_EXPORT CUresult cuDevicePrimaryCtxRetain(CUcontext *pctx, CUdevice dev)
{
    CU_ENTER(cuDevicePrimaryCtxRetain);
    if (!pctx)
        return CUDA_ERROR_INVALID_VALUE;
    if (!cuda_valid_device(dev))
        return CUDA_ERROR_INVALID_DEVICE;
    pthread_mutex_lock(&cuda_lock);
    primary_refs[dev]++;
    pthread_mutex_unlock(&cuda_lock);
    *pctx = (CUcontext)&primary_ctx[dev];
    return CUDA_SUCCESS;
}

DUMMY_EXPORT CUresult cuDevicePrimaryCtxRelease_v2(CUdevice dev)
{
    CU_ENTER(cuDevicePrimaryCtxRelease_v2);
    if (!cuda_valid_device(dev))
        return CUDA_ERROR_INVALID_DEVICE;
    pthread_mutex_lock(&cuda_lock);
    bool retained = primary_refs[dev] > 0;
    if (retained)
        primary_refs[dev]--;
    pthread_mutex_unlock(&cuda_lock);
    return retained ? CUDA_SUCCESS : CUDA_ERROR_INVALID_CONTEXT;
}

DUMMY_EXPORT CUresult cuCtxCreate_v2(CUcontext *pctx, unsigned int flags, CUdevice dev)
{
    (void)flags;
    CU_ENTER(cuCtxCreate_v2);
    if (!pctx)
        return CUDA_ERROR_INVALID_VALUE;
    if (!cuda_valid_device(dev))
        return CUDA_ERROR_INVALID_DEVICE;
    CUcontext ctx = cuda_new_object(OBJ_CONTEXT, dev);
    if (!ctx)
        return CUDA_ERROR_OUT_OF_MEMORY;
    tls_current = *pctx = ctx;
    return CUDA_SUCCESS;
}

DUMMY_EXPORT CUresult cuCtxDestroy_v2(CUcontext ctx)
{
    CU_ENTER(cuCtxDestroy_v2);
    if (!cuda_free_object(OBJ_CONTEXT, ctx))
        return CUDA_ERROR_INVALID_CONTEXT;
    if (tls_current == ctx)
        tls_current = NULL;
    return CUDA_SUCCESS;
}

DUMMY_EXPORT CUresult cuCtxGetCurrent(CUcontext *pctx)
{
    CU_ENTER(cuCtxGetCurrent);
    if (!pctx)
        return CUDA_ERROR_INVALID_VALUE;
    *pctx = tls_current;
    return CUDA_SUCCESS;
}

DUMMY_EXPORT CUresult cuLaunchCooperativeKernel(CUfunction f, unsigned gx, unsigned gy, unsigned gz,
                                                unsigned bx, unsigned by, unsigned bz,
                                                unsigned shmem, CUstream stream, void **params)
{
    CU_ENTER(cuLaunchCooperativeKernel);
    bool want = f == (CUfunction)0x1001 && gx == 2 && gy == 3 && gz == 5 && bx == 7 && by == 11 &&
                bz == 13 && shmem == 17 && stream == (CUstream)0x1019 && params == (void **)0x1023;
    return want ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

DUMMY_EXPORT CUresult cuCtxSetCurrent(CUcontext ctx)
{
    CU_ENTER(cuCtxSetCurrent);
    CUdevice dev;
    if (ctx && cuda_context_device(ctx, &dev) != CUDA_SUCCESS)
        return CUDA_ERROR_INVALID_CONTEXT;
    tls_current = ctx;
    return CUDA_SUCCESS;
}

DUMMY_EXPORT CUresult cuCtxSynchronize(void)
{
    CU_ENTER(cuCtxSynchronize);
    CUdevice dev;
    return cuda_context_device(tls_current, &dev);
}

DUMMY_EXPORT CUresult cuCtxGetDevice(CUdevice *device)
{
    CU_ENTER(cuCtxGetDevice);
    if (!device)
        return CUDA_ERROR_INVALID_VALUE;
    return cuda_context_device(tls_current, device);
}

/* ---- streams ------------------------------------------------------------- */

DUMMY_EXPORT CUresult cuStreamCreate(CUstream *stream, unsigned int flags)
{
    (void)flags;
    CU_ENTER(cuStreamCreate);
    CUdevice dev;
    CUresult rc = cuda_context_device(tls_current, &dev);
    if (rc != CUDA_SUCCESS)
        return rc;
    if (!stream)
        return CUDA_ERROR_INVALID_VALUE;
    *stream = cuda_new_object(OBJ_STREAM, dev);
    return *stream ? CUDA_SUCCESS : CUDA_ERROR_OUT_OF_MEMORY;
}

DUMMY_EXPORT CUresult cuStreamDestroy_v2(CUstream stream)
{
    CU_ENTER(cuStreamDestroy_v2);
    return cuda_free_object(OBJ_STREAM, stream) ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

DUMMY_EXPORT CUresult cuStreamSynchronize(CUstream stream)
{
    CU_ENTER(cuStreamSynchronize);
    CUdevice dev;
    /* NULL and the special handles CU_STREAM_LEGACY (1) and CU_STREAM_PER_THREAD (2). */
    if ((uintptr_t)stream <= 2 || cuda_object_device(OBJ_STREAM, stream, &dev))
        return CUDA_SUCCESS;
    return CUDA_ERROR_INVALID_VALUE;
}

/* ---- test controls ------------------------------------------------------- */

DUMMY_EXPORT unsigned long dummy_cuda_calls(const char *name)
{
    return dummy_api_calls(&cuda_api, name);
}

/*
 * Forget every call count, context, stream, pool and allocation (cuInit stays
 * done). Call it while no other thread is using the dummy; contexts that are
 * current in other threads become stale (INVALID_CONTEXT).
 */
DUMMY_EXPORT void dummy_cuda_reset(void)
{
    pthread_once(&config_once, load_config);
    dummy_api_reset_calls(&cuda_api);
    pthread_mutex_lock(&cuda_lock);
    for (size_t i = 0; i < cuda_objects.len; i++) {
        const struct dummy_rec *rec = &cuda_objects.recs[i];
        if (rec->kind == OBJ_CONTEXT || rec->kind == OBJ_STREAM || rec->kind == OBJ_POOL)
            free((void *)(uintptr_t)rec->key);
    }
    cuda_objects.len = 0;
    memset(primary_refs, 0, sizeof primary_refs);
    cuda_mem_reset_locked();
    pthread_mutex_unlock(&cuda_lock);
    tls_current = NULL;
}
