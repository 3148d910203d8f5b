/* native: what native.c (the driver, devices, contexts) and native-exec.c (copies,
 * modules, launches) share: the driver's entry points as dlsym found them, and the
 * backend's context and module objects. Internal to the native backend. */
#ifndef VGPU_HOSTD_NATIVE_H
#define VGPU_HOSTD_NATIVE_H

#include <stddef.h>
#include <stdint.h>

#include "device.h"

#define STAGE (8u << 20) /* one staging buffer */

typedef uint64_t CUdptr;

/* The driver entry points, filled from dlsym by the table below. */
struct hd_cu_api {
    int (*init)(unsigned);
    int (*driver_get_version)(int *);
    int (*device_get_count)(int *);
    int (*device_get)(int *, int);
    int (*device_get_attribute)(int *, int, int);
    int (*device_get_name)(char *, int, int);
    int (*device_get_uuid_v2)(unsigned char *, int);
    int (*device_get_uuid)(unsigned char *, int);
    int (*device_total_mem)(size_t *, int);
    int (*device_get_pci_bus_id)(char *, int, int);
    int (*ctx_create_v2)(void **, unsigned, int);
    int (*ctx_create_v4)(void **, void *, unsigned, int);
    int (*ctx_destroy)(void *);
    int (*ctx_set_current)(void *);
    int (*ctx_pop_current)(void **);
    int (*ctx_synchronize)(void);
    int (*mem_get_info)(size_t *, size_t *);
    int (*mem_alloc)(CUdptr *, size_t);
    int (*mem_free)(CUdptr);
    int (*mem_alloc_host)(void **, size_t);
    int (*mem_free_host)(void *);
    int (*memcpy_htod_async)(CUdptr, const void *, size_t, void *);
    int (*memcpy_dtoh_async)(void *, CUdptr, size_t, void *);
    int (*memcpy_dtod_async)(CUdptr, CUdptr, size_t, void *);
    int (*memset_d8_async)(CUdptr, unsigned char, size_t, void *);
    int (*memset_d16_async)(CUdptr, unsigned short, size_t, void *);
    int (*memset_d32_async)(CUdptr, unsigned, size_t, void *);
    int (*module_load_data)(void **, const void *);
    int (*module_unload)(void *);
    int (*module_get_function)(void **, void *, const char *);
    int (*module_get_global)(CUdptr *, size_t *, void *, const char *);
    int (*func_get_param_info)(void *, size_t, size_t *, size_t *);
    int (*launch_kernel)(void *, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned,
                         unsigned, void *, void **, void **);
    int (*func_get_attribute)(int *, int, void *);
    int (*stream_create)(void **, unsigned, int);
    int (*stream_destroy)(void *);
    int (*stream_synchronize)(void *);
    int (*stream_query)(void *);
    int (*stream_wait_event)(void *, void *, unsigned);
    int (*event_create)(void **, unsigned);
    int (*event_destroy)(void *);
    int (*event_record)(void *, void *);
    int (*event_synchronize)(void *);
    int (*event_query)(void *);
    int (*event_elapsed_time)(float *, void *, void *);
};
extern struct hd_cu_api hd_cu;

struct nat_ctx {
    void *ctx;
    void *stage[2]; /* pinned, STAGE bytes each; made on the first copy */
    void *ev[2];
    int pinned; /* stage[] came from cuMemAllocHost (else malloc) */
};

struct nat_module {
    void *mod;
    char *ptx; /* the PTX text, for parameter layouts; NULL for binaries */
    size_t len;
};

/* Frees a context's staging buffers (the context is current). */
void nat_stage_free(struct nat_ctx *c);

int nat_htod(void *ctx, const struct hd_mem *m, uint64_t off, struct vr_reader *r, uint64_t n,
             void *stream);
int nat_dtoh(void *ctx, const struct hd_mem *m, uint64_t off, uint64_t n, void *stream, int fd,
             uint16_t op, uint32_t id);
int nat_dtod(void *ctx, const struct hd_mem *dst, uint64_t doff, const struct hd_mem *src,
             uint64_t soff, uint64_t n, void *stream);
int nat_memset(void *ctx, const struct hd_mem *m, uint64_t off, uint32_t value, unsigned elsize,
               uint64_t count, void *stream);
int nat_module_load(void *ctx, void *image, size_t n, void **ret);
int nat_module_unload(void *ctx, void *mod);
int nat_get_function(void *ctx, void *mod, const char *name, void **ret_fn, struct vr_param *params,
                     unsigned *ret_nparams);
int nat_get_global(void *ctx, void *mod, const char *name, uint64_t *ret_dptr, uint64_t *ret_bytes);
int nat_launch(void *ctx, void *fn, const unsigned grid[3], const unsigned block[3],
               unsigned shared, void *stream, void **args);
int nat_func_attribute(void *ctx, void *fn, int attr, int *ret);

#endif
