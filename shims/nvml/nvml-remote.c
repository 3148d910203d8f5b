/* nvml-remote: the NVML the remote backend serves. nvmlInit reads every device's
 * description once (VR_NVML_DEVICE_INFO) into a table whose entries are the device
 * handles; names, UUIDs and PCI data are answered from it, memory and versions over
 * the wire. Init and shutdown are counted, as NVML does. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "nvml-shim.h"
#include "nvml-types.h"
#include "remote.h"

#define RNV(name) vgpu_rnv_##name

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned refs;  /* nvmlInit minus nvmlShutdown */
static unsigned ndevs; /* set under lock; read while refs > 0 */
static struct vr_nvml_device devs[VR_MAX_DEVICES];

static nvmlReturn_t call(uint16_t op, const struct vr_args *a, struct vr_ret *ret, void *rbulk,
                         size_t rbulk_max, size_t *rbulk_len)
{
    struct vr_ret local;
    if (!ret)
        ret = &local;
    if (vgpu_remote_call(op, a, NULL, 0, ret, rbulk, rbulk_max, rbulk_len) < 0)
        return NVML_ERROR_GPU_IS_LOST;
    return vgpu_remote_status(ret, NVML_ERROR_NOT_SUPPORTED);
}

static bool ready(void)
{
    return __atomic_load_n(&refs, __ATOMIC_ACQUIRE) > 0;
}

/* The devices, read once per first nvmlInit. */
static nvmlReturn_t load_devices(void)
{
    struct vr_ret ret;
    nvmlReturn_t r = call(VR_NVML_DEVICE_COUNT, RARGS(0), &ret, NULL, 0, NULL);
    if (r != NVML_SUCCESS)
        return r;
    unsigned n = ret.r[0] < VR_MAX_DEVICES ? (unsigned)ret.r[0] : VR_MAX_DEVICES;
    for (unsigned i = 0; i < n; i++) {
        size_t got = 0;
        r = call(VR_NVML_DEVICE_INFO, RARGS(i), NULL, &devs[i], sizeof(devs[i]), &got);
        if (r == NVML_SUCCESS && got != sizeof(devs[i]))
            r = NVML_ERROR_UNKNOWN;
        if (r != NVML_SUCCESS)
            return r;
        devs[i].name[sizeof(devs[i].name) - 1] = '\0';
        devs[i].uuid[sizeof(devs[i].uuid) - 1] = '\0';
        devs[i].pci_bus_id[sizeof(devs[i].pci_bus_id) - 1] = '\0';
    }
    ndevs = n;
    return NVML_SUCCESS;
}

static nvmlReturn_t RNV(nvmlInitWithFlags)(unsigned int flags)
{
    vgpu_remote_fork_reinit(&lock); /* before the first use of the lock */
    pthread_mutex_lock(&lock);
    nvmlReturn_t r = NVML_SUCCESS;
    if (!refs) {
        r = call(VR_NVML_INIT, RARGS(flags), NULL, NULL, 0, NULL);
        if (r == NVML_SUCCESS)
            r = load_devices();
        if (r == NVML_SUCCESS)
            vgpu_remote_set_init(VR_NVML_INIT, flags);
    }
    if (r == NVML_SUCCESS)
        __atomic_store_n(&refs, refs + 1, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&lock);
    return r;
}

static nvmlReturn_t RNV(nvmlInit_v2)(void)
{
    return RNV(nvmlInitWithFlags)(0);
}

static nvmlReturn_t RNV(nvmlShutdown)(void)
{
    pthread_mutex_lock(&lock);
    nvmlReturn_t r = NVML_SUCCESS;
    if (!refs)
        r = NVML_ERROR_UNINITIALIZED;
    else if (refs == 1) {
        vgpu_remote_set_init(0, 0);
        r = call(VR_NVML_SHUTDOWN, RARGS(0), NULL, NULL, 0, NULL);
        if (r == NVML_ERROR_GPU_IS_LOST)
            r = NVML_SUCCESS; /* nothing is left to shut down */
    }
    if (refs && r == NVML_SUCCESS)
        __atomic_store_n(&refs, refs - 1, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&lock);
    return r;
}

/* Copies s into buf[length] by NVML's rule: INSUFFICIENT_SIZE when it does not fit. */
static nvmlReturn_t put_string(const char *s, char *buf, unsigned length)
{
    if (!buf)
        return NVML_ERROR_INVALID_ARGUMENT;
    size_t n = strlen(s);
    if (n + 1 > length)
        return NVML_ERROR_INSUFFICIENT_SIZE;
    memcpy(buf, s, n + 1);
    return NVML_SUCCESS;
}

static nvmlReturn_t driver_version(char *buf, size_t size)
{
    size_t got = 0;
    nvmlReturn_t r = call(VR_NVML_SYSTEM_DRIVER_VERSION, RARGS(0), NULL, buf, size - 1, &got);
    buf[r == NVML_SUCCESS ? got : 0] = '\0';
    return r;
}

static nvmlReturn_t RNV(nvmlSystemGetDriverVersion)(char *version, unsigned int length)
{
    if (!ready())
        return NVML_ERROR_UNINITIALIZED;
    char v[96];
    nvmlReturn_t r = driver_version(v, sizeof(v));
    return r != NVML_SUCCESS ? r : put_string(v, version, length);
}

static nvmlReturn_t RNV(nvmlSystemGetCudaDriverVersion)(int *version)
{
    if (!ready())
        return NVML_ERROR_UNINITIALIZED;
    if (!version)
        return NVML_ERROR_INVALID_ARGUMENT;
    struct vr_ret ret;
    nvmlReturn_t r = call(VR_NVML_SYSTEM_CUDA_VERSION, RARGS(0), &ret, NULL, 0, NULL);
    if (r == NVML_SUCCESS)
        *version = (int)ret.r[0];
    return r;
}

/* NVML's own version: the CUDA major of the driver, then the driver's version
 * ("13.580.65.06"), as NVIDIA's library reports it. */
static nvmlReturn_t RNV(nvmlSystemGetNVMLVersion)(char *version, unsigned int length)
{
    int cuda = 0;
    nvmlReturn_t r = RNV(nvmlSystemGetCudaDriverVersion)(&cuda);
    char v[96], out[128];
    if (r == NVML_SUCCESS)
        r = driver_version(v, sizeof(v));
    if (r != NVML_SUCCESS)
        return r;
    snprintf(out, sizeof(out), "%d.%s", cuda / 1000, v);
    return put_string(out, version, length);
}

static nvmlReturn_t RNV(nvmlDeviceGetCount_v2)(unsigned int *count)
{
    if (!ready())
        return NVML_ERROR_UNINITIALIZED;
    if (!count)
        return NVML_ERROR_INVALID_ARGUMENT;
    *count = ndevs;
    return NVML_SUCCESS;
}

/* The table entry a handle points at, or NULL. */
static const struct vr_nvml_device *dev_of(nvmlDevice_t h)
{
    const struct vr_nvml_device *d = (const struct vr_nvml_device *)h;
    return d >= devs && d < devs + ndevs ? d : NULL;
}

#define DEVICE(d, h)                                                                               \
    do {                                                                                           \
        if (!ready())                                                                              \
            return NVML_ERROR_UNINITIALIZED;                                                       \
        if (!((d) = dev_of(h)))                                                                    \
            return NVML_ERROR_INVALID_ARGUMENT;                                                    \
    } while (0)

static nvmlReturn_t RNV(nvmlDeviceGetHandleByIndex_v2)(unsigned int index, nvmlDevice_t *dev)
{
    if (!ready())
        return NVML_ERROR_UNINITIALIZED;
    if (!dev || index >= ndevs)
        return NVML_ERROR_INVALID_ARGUMENT;
    *dev = (nvmlDevice_t)&devs[index];
    return NVML_SUCCESS;
}

static nvmlReturn_t RNV(nvmlDeviceGetHandleByUUID)(const char *uuid, nvmlDevice_t *dev)
{
    if (!ready())
        return NVML_ERROR_UNINITIALIZED;
    if (!uuid || !dev)
        return NVML_ERROR_INVALID_ARGUMENT;
    for (unsigned i = 0; i < ndevs; i++)
        if (!strcasecmp(devs[i].uuid, uuid)) {
            *dev = (nvmlDevice_t)&devs[i];
            return NVML_SUCCESS;
        }
    return NVML_ERROR_NOT_FOUND;
}

/* "[domain:]bus:device.function" in hex, as NVML accepts it. */
static bool parse_bus_id(const char *s, unsigned *domain, unsigned *bus, unsigned *device)
{
    unsigned fn;
    char end;
    if (sscanf(s, "%x:%x:%x.%x%c", domain, bus, device, &fn, &end) == 4)
        return true;
    *domain = 0;
    return sscanf(s, "%x:%x.%x%c", bus, device, &fn, &end) == 3;
}

static nvmlReturn_t RNV(nvmlDeviceGetHandleByPciBusId_v2)(const char *id, nvmlDevice_t *dev)
{
    if (!ready())
        return NVML_ERROR_UNINITIALIZED;
    unsigned domain, bus, device;
    if (!id || !dev || !parse_bus_id(id, &domain, &bus, &device))
        return NVML_ERROR_INVALID_ARGUMENT;
    for (unsigned i = 0; i < ndevs; i++)
        if (devs[i].pci_domain == domain && devs[i].pci_bus == bus &&
            devs[i].pci_device == device) {
            *dev = (nvmlDevice_t)&devs[i];
            return NVML_SUCCESS;
        }
    return NVML_ERROR_NOT_FOUND;
}

static nvmlReturn_t RNV(nvmlDeviceGetName)(nvmlDevice_t h, char *name, unsigned int length)
{
    const struct vr_nvml_device *d;
    DEVICE(d, h);
    return put_string(d->name, name, length);
}

static nvmlReturn_t RNV(nvmlDeviceGetUUID)(nvmlDevice_t h, char *uuid, unsigned int length)
{
    const struct vr_nvml_device *d;
    DEVICE(d, h);
    return put_string(d->uuid, uuid, length);
}

static nvmlReturn_t RNV(nvmlDeviceGetIndex)(nvmlDevice_t h, unsigned int *index)
{
    const struct vr_nvml_device *d;
    DEVICE(d, h);
    if (!index)
        return NVML_ERROR_INVALID_ARGUMENT;
    *index = d->index;
    return NVML_SUCCESS;
}

static nvmlReturn_t RNV(nvmlDeviceGetCudaComputeCapability)(nvmlDevice_t h, int *major, int *minor)
{
    const struct vr_nvml_device *d;
    DEVICE(d, h);
    if (!major || !minor)
        return NVML_ERROR_INVALID_ARGUMENT;
    *major = d->cc_major;
    *minor = d->cc_minor;
    return NVML_SUCCESS;
}

static nvmlReturn_t RNV(nvmlDeviceGetPciInfo_v3)(nvmlDevice_t h, nvmlPciInfo_t *pci)
{
    const struct vr_nvml_device *d;
    DEVICE(d, h);
    if (!pci)
        return NVML_ERROR_INVALID_ARGUMENT;
    *pci = (nvmlPciInfo_t){.domain = d->pci_domain,
                           .bus = d->pci_bus,
                           .device = d->pci_device,
                           .pciDeviceId = d->pci_device_id,
                           .pciSubSystemId = d->pci_subsystem_id};
    snprintf(pci->busIdLegacy, sizeof(pci->busIdLegacy), "%04X:%02X:%02X.0", d->pci_domain & 0xffff,
             d->pci_bus & 0xff, d->pci_device & 0xff);
    snprintf(pci->busId, sizeof(pci->busId), "%s", d->pci_bus_id);
    return NVML_SUCCESS;
}

static nvmlReturn_t RNV(nvmlDeviceGetPciInfo)(nvmlDevice_t h, nvmlPciInfo_v1_t *pci)
{
    nvmlPciInfo_t now;
    nvmlReturn_t r = RNV(nvmlDeviceGetPciInfo_v3)(h, &now);
    if (r == NVML_SUCCESS && !pci)
        r = NVML_ERROR_INVALID_ARGUMENT;
    if (r != NVML_SUCCESS)
        return r;
    *pci = (nvmlPciInfo_v1_t){.domain = now.domain,
                              .bus = now.bus,
                              .device = now.device,
                              .pciDeviceId = now.pciDeviceId,
                              .pciSubSystemId = now.pciSubSystemId};
    memcpy(pci->busId, now.busIdLegacy, sizeof(pci->busId));
    return NVML_SUCCESS;
}

static nvmlReturn_t memory(const struct vr_nvml_device *d, unsigned long long *total,
                           unsigned long long *free, unsigned long long *used,
                           unsigned long long *reserved)
{
    struct vr_ret ret;
    nvmlReturn_t r = call(VR_NVML_DEVICE_MEMORY, RARGS(d->index), &ret, NULL, 0, NULL);
    if (r == NVML_SUCCESS) {
        *total = ret.r[0];
        *free = ret.r[1];
        *used = ret.r[2];
        if (reserved)
            *reserved = ret.r[3];
    }
    return r;
}

static nvmlReturn_t RNV(nvmlDeviceGetMemoryInfo)(nvmlDevice_t h, nvmlMemory_t *m)
{
    const struct vr_nvml_device *d;
    DEVICE(d, h);
    if (!m)
        return NVML_ERROR_INVALID_ARGUMENT;
    return memory(d, &m->total, &m->free, &m->used, NULL);
}

static nvmlReturn_t RNV(nvmlDeviceGetMemoryInfo_v2)(nvmlDevice_t h, nvmlMemory_v2_t *m)
{
    const struct vr_nvml_device *d;
    DEVICE(d, h);
    if (!m)
        return NVML_ERROR_INVALID_ARGUMENT;
    if (m->version != nvmlMemory_v2)
        return NVML_ERROR_ARGUMENT_VERSION_MISMATCH;
    return memory(d, &m->total, &m->free, &m->used, &m->reserved);
}

/* The table: sorted with strcmp (the backend searches it); older names of the same ABI
 * share a function. Every name must be in nvml-exports.def. */
#define E(name)                                                                                    \
    {                                                                                              \
#name, (void *)RNV(name)                                                                   \
    }
#define ALIAS(name, f)                                                                             \
    {                                                                                              \
#name, (void *)RNV(f)                                                                      \
    }

const struct vgpu_remote_fn vgpu_remote_fns[] = {
    ALIAS(nvmlDeviceGetCount, nvmlDeviceGetCount_v2),
    E(nvmlDeviceGetCount_v2),
    E(nvmlDeviceGetCudaComputeCapability),
    ALIAS(nvmlDeviceGetHandleByIndex, nvmlDeviceGetHandleByIndex_v2),
    E(nvmlDeviceGetHandleByIndex_v2),
    ALIAS(nvmlDeviceGetHandleByPciBusId, nvmlDeviceGetHandleByPciBusId_v2),
    E(nvmlDeviceGetHandleByPciBusId_v2),
    E(nvmlDeviceGetHandleByUUID),
    E(nvmlDeviceGetIndex),
    E(nvmlDeviceGetMemoryInfo),
    E(nvmlDeviceGetMemoryInfo_v2),
    E(nvmlDeviceGetName),
    E(nvmlDeviceGetPciInfo),
    ALIAS(nvmlDeviceGetPciInfo_v2, nvmlDeviceGetPciInfo_v3),
    E(nvmlDeviceGetPciInfo_v3),
    E(nvmlDeviceGetUUID),
    ALIAS(nvmlInit, nvmlInit_v2),
    E(nvmlInitWithFlags),
    E(nvmlInit_v2),
    E(nvmlShutdown),
    E(nvmlSystemGetCudaDriverVersion),
    ALIAS(nvmlSystemGetCudaDriverVersion_v2, nvmlSystemGetCudaDriverVersion),
    E(nvmlSystemGetDriverVersion),
    E(nvmlSystemGetNVMLVersion),
};

const unsigned vgpu_remote_nfns = VGPU_ARRAY_SIZE(vgpu_remote_fns);
