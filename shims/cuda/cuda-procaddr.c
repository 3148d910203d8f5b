/* cuda-procaddr: cuGetProcAddress. CUDA 12+ programs and NVIDIA's runtime take every
 * driver entry point from it, so it hands out the shim's own entry points — never the
 * driver's, or the policy could be bypassed — choosing the variant (_v2, _v3, _ptsz,
 * _ptds) that the requested name means at the requested CUDA version. When a native
 * driver is up, its own answer decides: whether the entry point exists at that version
 * (the shim never offers more than the driver), and which variant it is (the shim's
 * export of the same name as the driver's function). Without a driver, the table in
 * cuda-procaddr.def, from NVIDIA's PFN typedefs, decides. */
#include <dlfcn.h>
#include <string.h>

#include "cuda-api.h"
#include "cuda-shim.h"
#include "log.h"

struct proc {
    const char *base;
    int version;
    unsigned char ptds;
    unsigned short index;
};

static const struct proc procs[] = {
#define VGPU_PROC(base, version, ptds, symbol) {#base, version, ptds, VGPU_CUDA_##symbol},
#include "cuda-procaddr.def"
#undef VGPU_PROC
};

/* The address of every export, by index (defined with the trampolines). */
extern void *const vgpu_cuda_entries[VGPU_TABLE_SIZE];

/* The first procs[] entry for base, or the end. */
static size_t first_proc(const char *base)
{
    size_t lo = 0, hi = VGPU_ARRAY_SIZE(procs);
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(procs[mid].base, base) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* The newest variant of base that exists at version with the wanted stream semantics,
 * or -1; *known tells whether base is in the table at all. */
static int pick(const char *base, int version, bool ptds, bool *known)
{
    int best = -1, best_version = 0;
    size_t i = first_proc(base);
    *known = i < VGPU_ARRAY_SIZE(procs) && !strcmp(procs[i].base, base);
    for (; i < VGPU_ARRAY_SIZE(procs) && !strcmp(procs[i].base, base); i++)
        if (procs[i].ptds == ptds && procs[i].version <= version &&
            procs[i].version >= best_version) {
            best = procs[i].index;
            best_version = procs[i].version;
        }
    return best;
}

/* The shim's answer from its table alone: an export index, or -1 with *status. */
static int table_answer(const char *symbol, int version, cuuint64_t flags,
                        CUdriverProcAddressQueryResult *status)
{
    bool known;
    int index = -1;
    if (flags & CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM)
        index = pick(symbol, version, true, &known);
    if (index < 0)
        index = pick(symbol, version, false, &known);
    if (index >= 0)
        return index;
    if (known) {
        *status = CU_GET_PROC_ADDRESS_VERSION_NOT_SUFFICIENT;
        return -1;
    }
    /* Not a base name of the table (newer than its headers): an exact export name. */
    index = vgpu_dispatch_find(&vgpu_cuda_dispatch, symbol);
    if (index < 0)
        *status = CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND;
    return index;
}

/* The export the native driver's answer names, by its symbol; -1 when it is not one
 * of ours (an internal function, or an entry point newer than the shim). */
static int driver_answer_index(void *fn)
{
    Dl_info info;
    if (!dladdr(fn, &info) || info.dli_saddr != fn || !info.dli_sname)
        return -1;
    return vgpu_dispatch_find(&vgpu_cuda_dispatch, info.dli_sname);
}

/* Which export to hand out when the driver is up: the driver knows its own ABI, so
 * its answer (by the name of the function it returned) wins over the table — unless
 * that would replace an entry point the shim implements (policy) with a forwarded
 * one. -1 when neither names an export of ours. */
static int prefer_driver(const char *symbol, int version, int table, int driver)
{
    const struct vgpu_dispatch *d = &vgpu_cuda_dispatch;
    if (driver < 0) {
        /* Expected for the graphics interop entry points (GL, EGL, VDPAU) cudart asks
         * for at start: info, not a warning in every service start's journal. */
        if (table < 0)
            vgpu_log(VGPU_LOG_INFO,
                     "cuGetProcAddress %s@%d: the driver has it but this shim does not "
                     "know it; not handed out (it would bypass the shim)",
                     symbol, version);
        return table;
    }
    if (table < 0 || table == driver)
        return driver;
    if (d->implemented[table] && !d->implemented[driver]) {
        vgpu_log(VGPU_LOG_WARN,
                 "cuGetProcAddress %s@%d: the driver answers %s, the table %s; "
                 "keeping %s (it applies the vGPU policy)",
                 symbol, version, d->names[driver], d->names[table], d->names[table]);
        return table;
    }
    vgpu_log(VGPU_LOG_DEBUG, "cuGetProcAddress %s@%d: the driver answers %s, the table %s", symbol,
             version, d->names[driver], d->names[table]);
    return driver;
}

static CUresult resolve(const char *symbol, void **pfn, int version, cuuint64_t flags,
                        CUdriverProcAddressQueryResult *status)
{
    *status = CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND; /* until something is found */
    if (!symbol || !pfn || version < 0 ||
        (flags & ~(cuuint64_t)(CU_GET_PROC_ADDRESS_LEGACY_STREAM |
                               CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM)))
        return CUDA_ERROR_INVALID_VALUE;
    *pfn = NULL;
    *status = CU_GET_PROC_ADDRESS_SUCCESS;
    int index = table_answer(symbol, version, flags, status);
    __typeof__(&cuGetProcAddress_v2) real = NULL;
    if (vgpu_cuda_backend_up())
        real = (__typeof__(real))vgpu_dispatch_real(&vgpu_cuda_dispatch,
                                                    VGPU_CUDA_cuGetProcAddress_v2);
    if (real) {
        void *fn = NULL;
        CUdriverProcAddressQueryResult st = CU_GET_PROC_ADDRESS_SUCCESS;
        CUresult r = real(symbol, &fn, version, flags, &st);
        if (r != CUDA_SUCCESS || !fn) {
            *status = r != CUDA_SUCCESS ? st : CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND;
            return r != CUDA_SUCCESS ? r : CUDA_ERROR_NOT_FOUND;
        }
        *status = CU_GET_PROC_ADDRESS_SUCCESS;
        index = prefer_driver(symbol, version, index, driver_answer_index(fn));
    }
    if (index < 0) {
        if (*status == CU_GET_PROC_ADDRESS_SUCCESS)
            *status = CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND;
        return CUDA_ERROR_NOT_FOUND;
    }
    *pfn = vgpu_cuda_entries[index];
    return CUDA_SUCCESS;
}

VGPU_API CUresult cuGetProcAddress_v2(const char *symbol, void **pfn, int cudaVersion,
                                      cuuint64_t flags,
                                      CUdriverProcAddressQueryResult *symbolStatus)
{
    VGPU_COUNT(cuGetProcAddress_v2);
    CUdriverProcAddressQueryResult status;
    CUresult r = resolve(symbol, pfn, cudaVersion, flags, &status);
    if (symbolStatus)
        *symbolStatus = status;
    return r;
}

VGPU_API CUresult cuGetProcAddress(const char *symbol, void **pfn, int cudaVersion,
                                   cuuint64_t flags)
{
    VGPU_COUNT(cuGetProcAddress);
    CUdriverProcAddressQueryResult status;
    return resolve(symbol, pfn, cudaVersion, flags, &status);
}
