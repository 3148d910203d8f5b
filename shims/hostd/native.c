/* native: the real device, through the NVIDIA driver loaded with dlopen (no NVIDIA
 * header: the few prototypes are in native.h). This file loads the driver and NVML and
 * owns devices, contexts, allocations, streams, events and the NVML queries; copies,
 * modules and launches are in native-exec.c. NVML is optional: without it the device
 * descriptions come from CUDA and NVML's own queries answer
 * NVML_ERROR_LIBRARY_NOT_FOUND. */
#include <dlfcn.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hostd.h"
#include "native.h"

static struct {
    int (*init)(void);
    int (*driver_version)(char *, unsigned);
    int (*cuda_version)(int *);
    int (*handle_by_pci)(const char *, void **);
    int (*pci_info)(void *, void *);
    int (*memory_info)(void *, unsigned long long *);
} nv;

struct sym {
    const char *name;
    size_t offset;
    int optional;
};

#define CU(field, name, opt)                                                                       \
    {                                                                                              \
        name, offsetof(struct hd_cu_api, field), opt                                               \
    }
static const struct sym cu_syms[] = {
    CU(init, "cuInit", 0),
    CU(driver_get_version, "cuDriverGetVersion", 0),
    CU(device_get_count, "cuDeviceGetCount", 0),
    CU(device_get, "cuDeviceGet", 0),
    CU(device_get_attribute, "cuDeviceGetAttribute", 0),
    CU(device_get_name, "cuDeviceGetName", 0),
    CU(device_get_uuid_v2, "cuDeviceGetUuid_v2", 1),
    CU(device_get_uuid, "cuDeviceGetUuid", 0),
    CU(device_total_mem, "cuDeviceTotalMem_v2", 0),
    CU(device_get_pci_bus_id, "cuDeviceGetPCIBusId", 0),
    CU(ctx_create_v2, "cuCtxCreate_v2", 1),
    CU(ctx_create_v4, "cuCtxCreate_v4", 1),
    CU(ctx_destroy, "cuCtxDestroy_v2", 0),
    CU(ctx_set_current, "cuCtxSetCurrent", 0),
    CU(ctx_pop_current, "cuCtxPopCurrent_v2", 1),
    CU(ctx_synchronize, "cuCtxSynchronize", 0),
    CU(mem_get_info, "cuMemGetInfo_v2", 0),
    CU(mem_alloc, "cuMemAlloc_v2", 0),
    CU(mem_free, "cuMemFree_v2", 0),
    CU(mem_alloc_host, "cuMemAllocHost_v2", 0),
    CU(mem_free_host, "cuMemFreeHost", 0),
    CU(memcpy_htod_async, "cuMemcpyHtoDAsync_v2", 0),
    CU(memcpy_dtoh_async, "cuMemcpyDtoHAsync_v2", 0),
    CU(memcpy_dtod_async, "cuMemcpyDtoDAsync_v2", 0),
    CU(memset_d8_async, "cuMemsetD8Async", 0),
    CU(memset_d16_async, "cuMemsetD16Async", 0),
    CU(memset_d32_async, "cuMemsetD32Async", 0),
    CU(module_load_data, "cuModuleLoadData", 0),
    CU(module_unload, "cuModuleUnload", 0),
    CU(module_get_function, "cuModuleGetFunction", 0),
    CU(module_get_global, "cuModuleGetGlobal_v2", 0),
    CU(func_get_param_info, "cuFuncGetParamInfo", 1),
    CU(launch_kernel, "cuLaunchKernel", 0),
    CU(func_get_attribute, "cuFuncGetAttribute", 0),
    CU(stream_create, "cuStreamCreateWithPriority", 0),
    CU(stream_destroy, "cuStreamDestroy_v2", 0),
    CU(stream_synchronize, "cuStreamSynchronize", 0),
    CU(stream_query, "cuStreamQuery", 0),
    CU(stream_wait_event, "cuStreamWaitEvent", 0),
    CU(event_create, "cuEventCreate", 0),
    CU(event_destroy, "cuEventDestroy_v2", 0),
    CU(event_record, "cuEventRecord", 0),
    CU(event_synchronize, "cuEventSynchronize", 0),
    CU(event_query, "cuEventQuery", 0),
    CU(event_elapsed_time, "cuEventElapsedTime", 0),
};
#undef CU

#define NV(field, name)                                                                            \
    {                                                                                              \
        name, offsetof(__typeof__(nv), field), 0                                                   \
    }
static const struct sym nv_syms[] = {
    NV(init, "nvmlInit_v2"),
    NV(driver_version, "nvmlSystemGetDriverVersion"),
    NV(cuda_version, "nvmlSystemGetCudaDriverVersion"),
    NV(handle_by_pci, "nvmlDeviceGetHandleByPciBusId_v2"),
    NV(pci_info, "nvmlDeviceGetPciInfo_v3"),
    NV(memory_info, "nvmlDeviceGetMemoryInfo"),
};
#undef NV

struct hd_cu_api hd_cu;

_Static_assert(sizeof(void *) == sizeof(void (*)(void)), "dlsym pointers fit function pointers");

/* Fills the function pointers of table (a struct at base) from lib. 0, or -ENOENT with
 * the missing name in err. */
static int resolve(void *lib, const struct sym *syms, size_t n, void *base, char *err,
                   size_t errlen)
{
    for (size_t i = 0; i < n; i++) {
        void *p = dlsym(lib, syms[i].name);
        if (!p && !syms[i].optional) {
            snprintf(err, errlen, "the driver lacks %s", syms[i].name);
            return -ENOENT;
        }
        memcpy((char *)base + syms[i].offset, &p, sizeof(p)); /* POSIX: same representation */
    }
    return 0;
}

static int ndevices;
static void *nvml_dev[VR_MAX_DEVICES]; /* NULL: NVML does not know the device */
static int have_nvml;

static int nat_driver_version(int *ret)
{
    return hd_cu.driver_get_version(ret);
}

static int nat_dev_attribute(int dev, int attr, int *ret)
{
    int d, st = hd_cu.device_get(&d, dev);
    return st ? st : hd_cu.device_get_attribute(ret, attr, d);
}

static void nvml_pci_ids(int dev, struct hd_dev_info *ret)
{
    struct {
        char bus_id_legacy[16];
        unsigned domain, bus, device, device_id, subsystem_id;
        char bus_id[32];
    } pci;
    if (!nvml_dev[dev] || nv.pci_info(nvml_dev[dev], &pci) != NVML_OK)
        return;
    ret->pci_device_id = pci.device_id;
    ret->pci_subsystem_id = pci.subsystem_id;
}

static int nat_dev_info(int dev, struct hd_dev_info *ret)
{
    size_t total = 0;
    int d, st = hd_cu.device_get(&d, dev);
    memset(ret, 0, sizeof(*ret));
    if (!st)
        st = hd_cu.device_get_name(ret->name, sizeof(ret->name), d);
    if (!st)
        st = (hd_cu.device_get_uuid_v2 ? hd_cu.device_get_uuid_v2
                                       : hd_cu.device_get_uuid)(ret->uuid, d);
    if (!st)
        st = hd_cu.device_get_pci_bus_id(ret->pci_bus_id, sizeof(ret->pci_bus_id), d);
    if (!st)
        st = hd_cu.device_get_attribute(&ret->cc_major, 75, d);
    if (!st)
        st = hd_cu.device_get_attribute(&ret->cc_minor, 76, d);
    if (!st)
        st = hd_cu.device_total_mem(&total, d);
    ret->total_mem = total;
    if (!st)
        nvml_pci_ids(dev, ret);
    return st;
}

/* ---- contexts ---- */

static int nat_ctx_create(int dev, unsigned flags, void **ret)
{
    struct nat_ctx *c = calloc(1, sizeof(*c));
    int d, st;
    if (!c)
        return CU_OUT_OF_MEMORY;
    st = hd_cu.device_get(&d, dev);
    if (!st)
        st = hd_cu.ctx_create_v2 ? hd_cu.ctx_create_v2(&c->ctx, flags, d)
                                 : hd_cu.ctx_create_v4(&c->ctx, NULL, flags, d);
    if (st) {
        free(c);
        return st;
    }
    /* cuCtxCreate pushes the context on this thread's stack; sessions make contexts
     * current per op instead, so nothing would ever pop it. */
    void *popped;
    if (hd_cu.ctx_pop_current)
        hd_cu.ctx_pop_current(&popped);
    *ret = c;
    return CU_OK;
}

static int nat_ctx_destroy(void *ctx)
{
    struct nat_ctx *c = ctx;
    hd_cu.ctx_set_current(c->ctx);
    nat_stage_free(c);
    int st = hd_cu.ctx_destroy(c->ctx);
    free(c);
    return st;
}

static int nat_ctx_set_current(void *ctx)
{
    return hd_cu.ctx_set_current(ctx ? ((struct nat_ctx *)ctx)->ctx : NULL);
}

static int nat_ctx_synchronize(void *ctx)
{
    (void)ctx;
    return hd_cu.ctx_synchronize();
}

static int nat_mem_info(void *ctx, uint64_t *ret_free, uint64_t *ret_total)
{
    (void)ctx;
    size_t f = 0, t = 0;
    int st = hd_cu.mem_get_info(&f, &t);
    *ret_free = f;
    *ret_total = t;
    return st;
}

static int nat_mem_alloc(void *ctx, uint64_t bytes, struct hd_mem *ret)
{
    (void)ctx;
    CUdptr p = 0;
    int st = hd_cu.mem_alloc(&p, bytes);
    if (st)
        return st;
    *ret = (struct hd_mem){.dptr = p, .size = bytes};
    return CU_OK;
}

static int nat_mem_free(void *ctx, const struct hd_mem *m)
{
    (void)ctx;
    return hd_cu.mem_free(m->dptr);
}

/* ---- streams and events ---- */

static int nat_stream_create(void *ctx, unsigned flags, int priority, void **ret)
{
    (void)ctx;
    return hd_cu.stream_create(ret, flags, priority);
}

static int nat_stream_destroy(void *ctx, void *h)
{
    (void)ctx;
    return hd_cu.stream_destroy(h);
}

static int nat_stream_synchronize(void *ctx, void *h)
{
    (void)ctx;
    return hd_cu.stream_synchronize(h);
}

static int nat_stream_query(void *ctx, void *h)
{
    (void)ctx;
    return hd_cu.stream_query(h);
}

static int nat_stream_wait_event(void *ctx, void *stream, void *event, unsigned flags)
{
    (void)ctx;
    return hd_cu.stream_wait_event(stream, event, flags);
}

static int nat_event_create(void *ctx, unsigned flags, void **ret)
{
    (void)ctx;
    return hd_cu.event_create(ret, flags);
}

static int nat_event_destroy(void *ctx, void *h)
{
    (void)ctx;
    return hd_cu.event_destroy(h);
}

static int nat_event_record(void *ctx, void *event, void *stream)
{
    (void)ctx;
    return hd_cu.event_record(event, stream);
}

static int nat_event_synchronize(void *ctx, void *h)
{
    (void)ctx;
    return hd_cu.event_synchronize(h);
}

static int nat_event_query(void *ctx, void *h)
{
    (void)ctx;
    return hd_cu.event_query(h);
}

static int nat_event_elapsed(void *ctx, void *start, void *end, float *ret_ms)
{
    (void)ctx;
    return hd_cu.event_elapsed_time(ret_ms, start, end);
}

/* ---- NVML ---- */

static int nat_nvml_driver_version(char *buf, size_t n)
{
    return have_nvml ? nv.driver_version(buf, (unsigned)n) : NVML_LIBRARY_NOT_FOUND;
}

static int nat_nvml_cuda_version(int *ret)
{
    if (have_nvml)
        return nv.cuda_version(ret);
    return hd_cu.driver_get_version(ret) ? NVML_UNKNOWN : NVML_OK;
}

static int nat_nvml_memory(int dev, uint64_t *ret_total, uint64_t *ret_free, uint64_t *ret_used)
{
    unsigned long long m[3] = {0, 0, 0}; /* nvmlMemory_t: total, free, used */
    if (!have_nvml)
        return NVML_LIBRARY_NOT_FOUND;
    if (dev < 0 || dev >= ndevices || !nvml_dev[dev])
        return NVML_INVALID_ARGUMENT;
    int st = nv.memory_info(nvml_dev[dev], m);
    *ret_total = m[0];
    *ret_free = m[1];
    *ret_used = m[2];
    return st;
}

static struct hd_backend native_backend = {
    .name = "native",
    .caps = VR_CAP_LAUNCH,
    .driver_version = nat_driver_version,
    .dev_info = nat_dev_info,
    .dev_attribute = nat_dev_attribute,
    .ctx_create = nat_ctx_create,
    .ctx_destroy = nat_ctx_destroy,
    .ctx_set_current = nat_ctx_set_current,
    .ctx_synchronize = nat_ctx_synchronize,
    .mem_info = nat_mem_info,
    .mem_alloc = nat_mem_alloc,
    .mem_free = nat_mem_free,
    .htod = nat_htod,
    .dtoh = nat_dtoh,
    .dtod = nat_dtod,
    .memset = nat_memset,
    .module_load = nat_module_load,
    .module_unload = nat_module_unload,
    .module_get_function = nat_get_function,
    .module_get_global = nat_get_global,
    .launch = nat_launch,
    .func_attribute = nat_func_attribute,
    .stream_create = nat_stream_create,
    .stream_destroy = nat_stream_destroy,
    .stream_synchronize = nat_stream_synchronize,
    .stream_query = nat_stream_query,
    .stream_wait_event = nat_stream_wait_event,
    .event_create = nat_event_create,
    .event_destroy = nat_event_destroy,
    .event_record = nat_event_record,
    .event_synchronize = nat_event_synchronize,
    .event_query = nat_event_query,
    .event_elapsed = nat_event_elapsed,
    .nvml_driver_version = nat_nvml_driver_version,
    .nvml_cuda_version = nat_nvml_cuda_version,
    .nvml_memory = nat_nvml_memory,
};

/* NVML, if it loads; each CUDA device's NVML handle found by its PCI bus id. */
static void nvml_open(const char *path)
{
    char err[256], bus[32], busid[32];
    unsigned dom, b, d, f;
    void *lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!lib ||
        resolve(lib, nv_syms, sizeof(nv_syms) / sizeof(nv_syms[0]), &nv, err, sizeof(err)) < 0 ||
        nv.init() != NVML_OK)
        return;
    have_nvml = 1;
    for (int i = 0; i < ndevices; i++) {
        int dev;
        if (hd_cu.device_get(&dev, i) || hd_cu.device_get_pci_bus_id(bus, sizeof(bus), dev) ||
            hd_pci_parse(bus, &dom, &b, &d, &f) < 0)
            continue;
        snprintf(busid, sizeof(busid), "%08x:%02x:%02x.%x", dom, b, d, f);
        if (nv.handle_by_pci(busid, &nvml_dev[i]) != NVML_OK)
            nvml_dev[i] = NULL;
    }
}

const struct hd_backend *hd_native_open(const char *cuda_path, const char *nvml_path, char *err,
                                        size_t errlen)
{
    void *lib = dlopen(cuda_path, RTLD_NOW | RTLD_LOCAL);
    int st;
    if (!lib) {
        snprintf(err, errlen, "cannot load the CUDA driver %s: %s (use --sim without a GPU)",
                 cuda_path, dlerror());
        return NULL;
    }
    if (dlsym(lib, "vgpu_shim_abi_version")) {
        snprintf(err, errlen,
                 "%s is a vgpu shim, not the NVIDIA driver: name the real one "
                 "with --native-cuda",
                 cuda_path);
        return NULL;
    }
    if (resolve(lib, cu_syms, sizeof(cu_syms) / sizeof(cu_syms[0]), &hd_cu, err, errlen) < 0)
        return NULL;
    if (!hd_cu.ctx_create_v2 && !hd_cu.ctx_create_v4) {
        snprintf(err, errlen, "the driver lacks cuCtxCreate_v2 and cuCtxCreate_v4");
        return NULL;
    }
    if ((st = hd_cu.init(0)) || (st = hd_cu.device_get_count(&ndevices))) {
        snprintf(err, errlen, "cuInit: CUresult %d (%s)", st,
                 st == CU_NO_DEVICE ? "no CUDA device" : "the driver cannot start");
        return NULL;
    }
    if (ndevices > (int)VR_MAX_DEVICES)
        ndevices = VR_MAX_DEVICES;
    nvml_open(nvml_path);
    native_backend.device_count = ndevices;
    return &native_backend;
}
