/* device: the interface between vgpu-hostd's sessions and a device backend (the
 * simulated device of --sim, or the real driver loaded by native.c). A backend speaks
 * in its own handles (void *) and device pointers; sessions map them to per-client ids
 * and check every pointer against the client's allocations before calling in.
 *
 * CUDA-side calls return a CUresult (0 on success), NVML-side calls an nvmlReturn_t.
 * Calls that take a context expect it to be current on the calling thread
 * (ctx_set_current); every call may come from any session thread at once. */
#ifndef VGPU_HOSTD_DEVICE_H
#define VGPU_HOSTD_DEVICE_H

#include <stddef.h>
#include <stdint.h>

#include "proto.h"

/* The CUresult and nvmlReturn_t values the daemon produces itself (no NVIDIA header). */
enum {
    CU_OK = 0,
    CU_INVALID_VALUE = 1,
    CU_OUT_OF_MEMORY = 2,
    CU_NOT_INITIALIZED = 3,
    CU_NO_DEVICE = 100,
    CU_INVALID_DEVICE = 101,
    CU_INVALID_IMAGE = 200,
    CU_INVALID_CONTEXT = 201,
    CU_INVALID_HANDLE = 400,
    CU_NOT_FOUND = 500,
    CU_NOT_READY = 600,
    CU_NOT_SUPPORTED = 801,
    CU_UNKNOWN = 999,
};
enum {
    NVML_OK = 0,
    NVML_INVALID_ARGUMENT = 2,
    NVML_NOT_SUPPORTED = 3,
    NVML_LIBRARY_NOT_FOUND = 12,
    NVML_UNKNOWN = 999,
};

/* What a session needs to know about one device (the daemon's index). */
struct hd_dev_info {
    char name[96];
    unsigned char uuid[16];
    char pci_bus_id[32]; /* CUDA's form, "0000:01:00.0" */
    unsigned pci_domain, pci_bus, pci_device;
    unsigned pci_device_id, pci_subsystem_id; /* NVML's; 0 when unknown */
    int cc_major, cc_minor;
    uint64_t total_mem;
};

/* One allocation as the backend made it: copies address it by base + offset. */
struct hd_mem {
    uint64_t dptr;
    uint64_t size;
    void *priv; /* the backend's (sim: the host memory) */
};

struct hd_backend {
    const char *name; /* "sim", "native" */
    unsigned caps;    /* VR_CAP_* */
    int device_count;

    /* ---- devices (no context needed) ---- */
    int (*driver_version)(int *ret);
    int (*dev_info)(int dev, struct hd_dev_info *ret);
    int (*dev_attribute)(int dev, int attr, int *ret);

    /* ---- contexts ---- */
    int (*ctx_create)(int dev, unsigned flags, void **ret);
    /* Destroys ctx and whatever the backend still holds in it. */
    int (*ctx_destroy)(void *ctx);
    int (*ctx_set_current)(void *ctx);
    int (*ctx_synchronize)(void *ctx);
    /* Device memory as the device sees it (not yet clamped to a quota). */
    int (*mem_info)(void *ctx, uint64_t *ret_free, uint64_t *ret_total);

    /* ---- memory (in the current context) ---- */
    int (*mem_alloc)(void *ctx, uint64_t bytes, struct hd_mem *ret);
    int (*mem_free)(void *ctx, const struct hd_mem *m);
    /* Reads n bytes from r into m at off. Returns a CUresult with all n bytes consumed
     * from r (drained after a device error), or -errno when the socket failed. */
    int (*htod)(void *ctx, const struct hd_mem *m, uint64_t off, struct vr_reader *r, uint64_t n,
                void *stream);
    /* Sends the whole successful reply for request (op, id): header, status 0, and n
     * bytes of m at off as bulk. Returns 0 when sent, a CUresult > 0 when it failed before
     * anything was sent (the caller replies), or -errno (the connection is lost). */
    int (*dtoh)(void *ctx, const struct hd_mem *m, uint64_t off, uint64_t n, void *stream, int fd,
                uint16_t op, uint32_t id);
    int (*dtod)(void *ctx, const struct hd_mem *dst, uint64_t doff, const struct hd_mem *src,
                uint64_t soff, uint64_t n, void *stream);
    int (*memset)(void *ctx, const struct hd_mem *m, uint64_t off, uint32_t value, unsigned elsize,
                  uint64_t count, void *stream);

    /* ---- modules ---- */
    /* Takes image (malloc'd, n bytes) in every case. */
    int (*module_load)(void *ctx, void *image, size_t n, void **ret);
    int (*module_unload)(void *ctx, void *mod);
    /* params gets up to VR_MAX_PARAMS entries. The function lives as long as mod. */
    int (*module_get_function)(void *ctx, void *mod, const char *name, void **ret_fn,
                               struct vr_param *params, unsigned *ret_nparams);
    int (*module_get_global)(void *ctx, void *mod, const char *name, uint64_t *ret_dptr,
                             uint64_t *ret_bytes);
    /* args[i] points at parameter i in the packed buffer. */
    int (*launch)(void *ctx, void *fn, const unsigned grid[3], const unsigned block[3],
                  unsigned shared, void *stream, void **args);
    int (*func_attribute)(void *ctx, void *fn, int attr, int *ret);

    /* ---- streams and events (stream handles 0, 1, 2 are CUDA's special ones) ---- */
    int (*stream_create)(void *ctx, unsigned flags, int priority, void **ret);
    int (*stream_destroy)(void *ctx, void *stream);
    int (*stream_synchronize)(void *ctx, void *stream);
    int (*stream_query)(void *ctx, void *stream);
    int (*stream_wait_event)(void *ctx, void *stream, void *event, unsigned flags);
    int (*event_create)(void *ctx, unsigned flags, void **ret);
    int (*event_destroy)(void *ctx, void *event);
    int (*event_record)(void *ctx, void *event, void *stream);
    int (*event_synchronize)(void *ctx, void *event);
    int (*event_query)(void *ctx, void *event);
    int (*event_elapsed)(void *ctx, void *start, void *end, float *ret_ms);

    /* ---- NVML (nvmlReturn_t; devices by the daemon's index) ---- */
    int (*nvml_driver_version)(char *buf, size_t n);
    int (*nvml_cuda_version)(int *ret);
    int (*nvml_memory)(int dev, uint64_t *ret_total, uint64_t *ret_free, uint64_t *ret_used);
};

/* The simulated device; total_mem 0 means 16 GiB. Never fails. */
const struct hd_backend *hd_sim_open(uint64_t total_mem);
/* The real driver: cuda_path (dlopen name), nvml_path (optional library). Returns the
 * backend, or NULL with a reason in err. */
const struct hd_backend *hd_native_open(const char *cuda_path, const char *nvml_path, char *err,
                                        size_t errlen);

#endif
