/* sim: the simulated device of `vgpu-hostd --sim` (DESIGN §5): one device that names
 * itself as simulated, memory in host RAM at synthetic device addresses (2 MiB aligned,
 * unique across clients, never reused), real copies and memsets, streams and events as
 * bookkeeping, modules stored and PTX parameter lists read, and no kernels. */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "device.h"
#include "ptx.h"

#define SIM_NAME      "vgpu-hostd simulated device (no kernels)"
#define SIM_ALIGN     (2ull << 20)
#define SIM_MMAP_MIN  (1ull << 20)
#define SIM_BASE_ADDR (1ull << 40)

static uint64_t sim_total;
static atomic_uint_fast64_t sim_used;
static atomic_uint_fast64_t sim_next = SIM_BASE_ADDR;

struct sim_ctx {
    int dev;
};

struct sim_fn {
    struct sim_fn *next;
    char name[VR_MAX_NAME];
};

struct sim_module {
    char *image;
    size_t len;
    struct sim_fn *fns;
};

struct sim_event {
    unsigned flags;
    int recorded;
    struct timespec t;
};

static int sim_driver_version(int *ret)
{
    *ret = 13000;
    return CU_OK;
}

static int sim_dev_info(int dev, struct hd_dev_info *ret)
{
    static const unsigned char uuid[16] = {0x76, 0x67, 0x70, 0x75, 0x2d, 0x68, 0x6f, 0x73,
                                           0x74, 0x64, 0x2d, 0x73, 0x69, 0x6d, 0x00, 0x01};
    if (dev != 0)
        return CU_INVALID_DEVICE;
    memset(ret, 0, sizeof(*ret));
    strcpy(ret->name, SIM_NAME);
    memcpy(ret->uuid, uuid, sizeof(uuid));
    strcpy(ret->pci_bus_id, "0000:00:00.0");
    ret->cc_major = 8;
    ret->cc_minor = 9;
    ret->total_mem = sim_total;
    return CU_OK;
}

static int sim_dev_attribute(int dev, int attr, int *ret)
{
    static const struct {
        int attr, value;
    } attrs[] = {
        {1, 1024},      {2, 1024},   {3, 1024},      {4, 64},      {5, 2147483647}, {6, 65535},
        {7, 65535},     {8, 49152},  {9, 65536},     {10, 32},     {12, 65536},     {13, 2520000},
        {14, 512},      {15, 1},     {16, 16},       {17, 0},      {18, 0},         {19, 1},
        {20, 0},        {31, 1},     {32, 0},        {33, 0},      {34, 0},         {35, 0},
        {36, 10501000}, {37, 192},   {38, 33554432}, {39, 1536},   {40, 2},         {41, 1},
        {50, 0},        {75, 8},     {76, 9},        {78, 1},      {79, 1},         {80, 1},
        {81, 102400},   {82, 65536}, {83, 1},        {84, 0},      {86, 0},         {88, 0},
        {89, 1},        {90, 1},     {95, 1},        {97, 101376}, {106, 24},       {115, 1},
    };
    if (dev != 0)
        return CU_INVALID_DEVICE;
    for (size_t i = 0; i < sizeof(attrs) / sizeof(attrs[0]); i++) {
        if (attrs[i].attr == attr) {
            *ret = attrs[i].value;
            return CU_OK;
        }
    }
    return CU_INVALID_VALUE;
}

static int sim_ctx_create(int dev, unsigned flags, void **ret)
{
    (void)flags;
    struct sim_ctx *c = malloc(sizeof(*c));
    if (!c)
        return CU_OUT_OF_MEMORY;
    c->dev = dev;
    *ret = c;
    return CU_OK;
}

static int sim_ctx_destroy(void *ctx)
{
    free(ctx);
    return CU_OK;
}

static int sim_ctx_noop(void *ctx)
{
    (void)ctx;
    return CU_OK;
}

static int sim_mem_info(void *ctx, uint64_t *ret_free, uint64_t *ret_total)
{
    (void)ctx;
    uint64_t used = atomic_load(&sim_used);
    *ret_total = sim_total;
    *ret_free = used < sim_total ? sim_total - used : 0;
    return CU_OK;
}

static int sim_mem_alloc(void *ctx, uint64_t bytes, struct hd_mem *ret)
{
    (void)ctx;
    uint64_t used = atomic_fetch_add(&sim_used, bytes);
    if (used + bytes > sim_total || used + bytes < used) {
        atomic_fetch_sub(&sim_used, bytes);
        return CU_OUT_OF_MEMORY;
    }
    void *p = NULL;
    if (bytes >= SIM_MMAP_MIN) {
        p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                 -1, 0);
        if (p == MAP_FAILED)
            p = NULL;
    } else {
        p = calloc(1, bytes);
    }
    if (!p) {
        atomic_fetch_sub(&sim_used, bytes);
        return CU_OUT_OF_MEMORY;
    }
    uint64_t span = (bytes + SIM_ALIGN - 1) / SIM_ALIGN * SIM_ALIGN + SIM_ALIGN; /* a gap */
    ret->dptr = atomic_fetch_add(&sim_next, span);
    ret->size = bytes;
    ret->priv = p;
    return CU_OK;
}

static int sim_mem_free(void *ctx, const struct hd_mem *m)
{
    (void)ctx;
    if (m->size >= SIM_MMAP_MIN)
        munmap(m->priv, m->size);
    else
        free(m->priv);
    atomic_fetch_sub(&sim_used, m->size);
    return CU_OK;
}

static int sim_htod(void *ctx, const struct hd_mem *m, uint64_t off, struct vr_reader *r,
                    uint64_t n, void *stream)
{
    (void)ctx, (void)stream;
    int e = vr_read(r, (char *)m->priv + off, n);
    return e < 0 ? e : CU_OK;
}

static int sim_dtoh(void *ctx, const struct hd_mem *m, uint64_t off, uint64_t n, void *stream,
                    int fd, uint16_t op, uint32_t id)
{
    (void)ctx, (void)stream;
    struct vr_ret ret = {0};
    return vr_send_reply(fd, op, id, &ret, (const char *)m->priv + off, n);
}

static int sim_dtod(void *ctx, const struct hd_mem *dst, uint64_t doff, const struct hd_mem *src,
                    uint64_t soff, uint64_t n, void *stream)
{
    (void)ctx, (void)stream;
    memmove((char *)dst->priv + doff, (const char *)src->priv + soff, n);
    return CU_OK;
}

static int sim_memset(void *ctx, const struct hd_mem *m, uint64_t off, uint32_t value,
                      unsigned elsize, uint64_t count, void *stream)
{
    (void)ctx, (void)stream;
    char *p = (char *)m->priv + off;
    if (elsize == 1) {
        memset(p, (int)(value & 0xff), count);
    } else if (elsize == 2) {
        uint16_t v = (uint16_t)value;
        for (uint64_t i = 0; i < count; i++)
            memcpy(p + 2 * i, &v, 2);
    } else {
        for (uint64_t i = 0; i < count; i++)
            memcpy(p + 4 * i, &value, 4);
    }
    return CU_OK;
}

static int sim_module_load(void *ctx, void *image, size_t n, void **ret)
{
    (void)ctx;
    struct sim_module *m = calloc(1, sizeof(*m));
    if (!m) {
        free(image);
        return CU_OUT_OF_MEMORY;
    }
    m->image = image;
    m->len = n;
    *ret = m;
    return CU_OK;
}

static int sim_module_unload(void *ctx, void *mod)
{
    (void)ctx;
    struct sim_module *m = mod;
    while (m->fns) {
        struct sim_fn *f = m->fns;
        m->fns = f->next;
        free(f);
    }
    free(m->image);
    free(m);
    return CU_OK;
}

static int sim_get_function(void *ctx, void *mod, const char *name, void **ret_fn,
                            struct vr_param *params, unsigned *ret_nparams)
{
    (void)ctx;
    struct sim_module *m = mod;
    if (!ptx_is_ptx(m->image, m->len))
        return CU_NOT_SUPPORTED;
    int e = ptx_entry_params(m->image, m->len, name, params, VR_MAX_PARAMS, ret_nparams);
    if (e == -ENOENT)
        return CU_NOT_FOUND;
    if (e < 0)
        return CU_INVALID_VALUE;
    struct sim_fn *f;
    for (f = m->fns; f; f = f->next)
        if (strcmp(f->name, name) == 0)
            break;
    if (!f) {
        if (!(f = calloc(1, sizeof(*f))))
            return CU_OUT_OF_MEMORY;
        strcpy(f->name, name); /* name < VR_MAX_NAME: checked by the session */
        f->next = m->fns;
        m->fns = f;
    }
    *ret_fn = f;
    return CU_OK;
}

static int sim_get_global(void *ctx, void *mod, const char *name, uint64_t *ret_dptr,
                          uint64_t *ret_bytes)
{
    (void)ctx, (void)mod, (void)name, (void)ret_dptr, (void)ret_bytes;
    return CU_NOT_FOUND;
}

static int sim_launch(void *ctx, void *fn, const unsigned grid[3], const unsigned block[3],
                      unsigned shared, void *stream, void **args)
{
    (void)ctx, (void)fn, (void)grid, (void)block, (void)shared, (void)stream, (void)args;
    return CU_NOT_SUPPORTED;
}

static int sim_func_attribute(void *ctx, void *fn, int attr, int *ret)
{
    (void)ctx, (void)fn;
    switch (attr) {
    case 0: /* CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK */
        *ret = 1024;
        return CU_OK;
    case 1:
    case 2:
    case 3:
    case 4: /* shared, const, local bytes, registers */
        *ret = 0;
        return CU_OK;
    case 5:
    case 6: /* PTX and binary version */
        *ret = 89;
        return CU_OK;
    default:
        return CU_INVALID_VALUE;
    }
}

static int sim_handle_create(size_t size, void **ret)
{
    void *p = calloc(1, size);
    if (!p)
        return CU_OUT_OF_MEMORY;
    *ret = p;
    return CU_OK;
}

static int sim_stream_create(void *ctx, unsigned flags, int priority, void **ret)
{
    (void)ctx, (void)flags, (void)priority;
    return sim_handle_create(sizeof(int), ret);
}

static int sim_stream_destroy(void *ctx, void *stream)
{
    (void)ctx;
    free(stream);
    return CU_OK;
}

static int sim_stream_noop(void *ctx, void *stream)
{
    (void)ctx, (void)stream;
    return CU_OK;
}

static int sim_stream_wait_event(void *ctx, void *stream, void *event, unsigned flags)
{
    (void)ctx, (void)stream, (void)event, (void)flags;
    return CU_OK;
}

static int sim_event_create(void *ctx, unsigned flags, void **ret)
{
    (void)ctx;
    int e = sim_handle_create(sizeof(struct sim_event), ret);
    if (e == CU_OK)
        ((struct sim_event *)*ret)->flags = flags;
    return e;
}

static int sim_event_record(void *ctx, void *event, void *stream)
{
    (void)ctx, (void)stream;
    struct sim_event *ev = event;
    clock_gettime(CLOCK_MONOTONIC, &ev->t);
    ev->recorded = 1;
    return CU_OK;
}

static int sim_event_elapsed(void *ctx, void *start, void *end, float *ret_ms)
{
    (void)ctx;
    const struct sim_event *a = start, *b = end;
    if ((a->flags & 2) || (b->flags & 2)) /* DISABLE_TIMING */
        return CU_INVALID_HANDLE;
    if (!a->recorded || !b->recorded) /* cuda.h: an event never recorded is invalid */
        return CU_INVALID_HANDLE;
    double ms =
        (double)(b->t.tv_sec - a->t.tv_sec) * 1e3 + (double)(b->t.tv_nsec - a->t.tv_nsec) / 1e6;
    *ret_ms = (float)ms;
    return CU_OK;
}

static int sim_nvml_driver_version(char *buf, size_t n)
{
    if (n < sizeof("580.00-sim"))
        return NVML_INVALID_ARGUMENT;
    strcpy(buf, "580.00-sim");
    return NVML_OK;
}

static int sim_nvml_cuda_version(int *ret)
{
    *ret = 13000;
    return NVML_OK;
}

static int sim_nvml_memory(int dev, uint64_t *ret_total, uint64_t *ret_free, uint64_t *ret_used)
{
    if (dev != 0)
        return NVML_INVALID_ARGUMENT;
    uint64_t used = atomic_load(&sim_used);
    *ret_total = sim_total;
    *ret_used = used < sim_total ? used : sim_total;
    *ret_free = sim_total - *ret_used;
    return NVML_OK;
}

static const struct hd_backend sim_backend = {
    .name = "sim",
    .caps = VR_CAP_SIM,
    .device_count = 1,
    .driver_version = sim_driver_version,
    .dev_info = sim_dev_info,
    .dev_attribute = sim_dev_attribute,
    .ctx_create = sim_ctx_create,
    .ctx_destroy = sim_ctx_destroy,
    .ctx_set_current = sim_ctx_noop,
    .ctx_synchronize = sim_ctx_noop,
    .mem_info = sim_mem_info,
    .mem_alloc = sim_mem_alloc,
    .mem_free = sim_mem_free,
    .htod = sim_htod,
    .dtoh = sim_dtoh,
    .dtod = sim_dtod,
    .memset = sim_memset,
    .module_load = sim_module_load,
    .module_unload = sim_module_unload,
    .module_get_function = sim_get_function,
    .module_get_global = sim_get_global,
    .launch = sim_launch,
    .func_attribute = sim_func_attribute,
    .stream_create = sim_stream_create,
    .stream_destroy = sim_stream_destroy,
    .stream_synchronize = sim_stream_noop,
    .stream_query = sim_stream_noop,
    .stream_wait_event = sim_stream_wait_event,
    .event_create = sim_event_create,
    .event_destroy = sim_stream_destroy,
    .event_record = sim_event_record,
    .event_synchronize = sim_stream_noop,
    .event_query = sim_stream_noop,
    .event_elapsed = sim_event_elapsed,
    .nvml_driver_version = sim_nvml_driver_version,
    .nvml_cuda_version = sim_nvml_cuda_version,
    .nvml_memory = sim_nvml_memory,
};

const struct hd_backend *hd_sim_open(uint64_t total_mem)
{
    sim_total = total_mem ? total_mem : 16ull << 30;
    return &sim_backend;
}
