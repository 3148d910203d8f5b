/* native-exec: the native backend's copies (streamed between the socket and the GPU
 * through two pinned 8 MiB staging buffers per context, double-buffered), modules
 * (PTX kept for parameter layouts when the driver cannot tell them) and launches.
 * Copies, memsets and DtoD copies wait for their stream before the reply, async ones
 * included; launches stay asynchronous. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "native.h"
#include "ptx.h"

void nat_stage_free(struct nat_ctx *c)
{
    for (int i = 0; i < 2; i++) {
        if (c->ev[i])
            hd_cu.event_destroy(c->ev[i]);
        if (c->stage[i] && c->pinned)
            hd_cu.mem_free_host(c->stage[i]);
        else
            free(c->stage[i]);
        c->stage[i] = c->ev[i] = NULL;
    }
}

/* ---- copies ---- */

/* The context's staging buffers and their events (pinned if the driver lets us). */
static int stage_get(struct nat_ctx *c)
{
    if (c->ev[1])
        return CU_OK;
    c->pinned = hd_cu.mem_alloc_host(&c->stage[0], STAGE) == CU_OK &&
                hd_cu.mem_alloc_host(&c->stage[1], STAGE) == CU_OK;
    if (!c->pinned) {
        if (c->stage[0])
            hd_cu.mem_free_host(c->stage[0]);
        c->stage[0] = malloc(STAGE);
        c->stage[1] = malloc(STAGE);
    }
    int st = c->stage[0] && c->stage[1] ? CU_OK : CU_OUT_OF_MEMORY;
    for (int i = 0; i < 2 && !st; i++)
        st = hd_cu.event_create(&c->ev[i], 2 /* CU_EVENT_DISABLE_TIMING */);
    if (st)
        nat_stage_free(c);
    return st;
}

int nat_htod(void *ctx, const struct hd_mem *m, uint64_t off, struct vr_reader *r, uint64_t n,
             void *stream)
{
    struct nat_ctx *c = ctx;
    int st = stage_get(c), busy[2] = {0, 0};
    uint64_t done = 0;

    if (st) /* keep the stream in step: drop the bytes */
        return vr_read(r, NULL, n) < 0 ? -EPIPE : st;
    for (int i = 0; done < n; i ^= 1) {
        size_t k = n - done < STAGE ? (size_t)(n - done) : STAGE;
        if (busy[i]) { /* stage i must be free before the socket refills it */
            int e = hd_cu.event_synchronize(c->ev[i]);
            st = st ? st : e;
        }
        int e = vr_read(r, c->stage[i], k);
        if (e < 0) {
            hd_cu.stream_synchronize(stream); /* the other buffer may still be in flight */
            return e;
        }
        if (!st)
            st = hd_cu.memcpy_htod_async(m->dptr + off + done, c->stage[i], k, stream);
        if (!st)
            st = hd_cu.event_record(c->ev[i], stream);
        busy[i] = !st;
        done += k;
    }
    int sync = hd_cu.stream_synchronize(stream);
    return st ? st : sync;
}

/* Starts copying chunk [pos, pos + k) of m into stage i. */
static int dtoh_issue(struct nat_ctx *c, int i, const struct hd_mem *m, uint64_t pos, size_t k,
                      void *stream)
{
    int st = hd_cu.memcpy_dtoh_async(c->stage[i], m->dptr + pos, k, stream);
    return st ? st : hd_cu.event_record(c->ev[i], stream);
}

int nat_dtoh(void *ctx, const struct hd_mem *m, uint64_t off, uint64_t n, void *stream, int fd,
             uint16_t op, uint32_t id)
{
    struct nat_ctx *c = ctx;
    struct vr_ret ret = {0};
    struct vr_hdr h = {
        .magic = VR_MAGIC, .op = op, .flags = VR_F_REPLY, .id = id, .len = sizeof(ret), .bulk = n};
    int st = stage_get(c), sent = 0;
    uint64_t pos = 0;
    size_t k = n < STAGE ? (size_t)n : STAGE;

    if (!st)
        st = dtoh_issue(c, 0, m, off, k, stream);
    if (!st)
        st = hd_cu.event_synchronize(c->ev[0]);
    for (int i = 0; !st && pos < n; i ^= 1) {
        k = n - pos < STAGE ? (size_t)(n - pos) : STAGE;
        size_t next = n - pos - k < STAGE ? (size_t)(n - pos - k) : STAGE;
        if (next && (st = dtoh_issue(c, i ^ 1, m, off + pos + k, next, stream)))
            break;
        int e = sent ? vr_send_bulk(fd, c->stage[i], k)
                     : vr_send(fd, &h, &ret, c->stage[i], k, NULL, 0);
        if (e < 0) {
            hd_cu.stream_synchronize(stream);
            return e;
        }
        sent = 1;
        pos += k;
        if (next)
            st = hd_cu.event_synchronize(c->ev[i ^ 1]);
    }
    if (st && sent)
        return -EIO; /* the reply promised bytes the device did not give */
    return st;
}

int nat_dtod(void *ctx, const struct hd_mem *dst, uint64_t doff, const struct hd_mem *src,
             uint64_t soff, uint64_t n, void *stream)
{
    (void)ctx;
    int st = hd_cu.memcpy_dtod_async(dst->dptr + doff, src->dptr + soff, n, stream);
    return st ? st : hd_cu.stream_synchronize(stream);
}

int nat_memset(void *ctx, const struct hd_mem *m, uint64_t off, uint32_t value, unsigned elsize,
               uint64_t count, void *stream)
{
    (void)ctx;
    CUdptr p = m->dptr + off;
    int st = elsize == 1   ? hd_cu.memset_d8_async(p, (unsigned char)value, count, stream)
             : elsize == 2 ? hd_cu.memset_d16_async(p, (unsigned short)value, count, stream)
                           : hd_cu.memset_d32_async(p, value, count, stream);
    return st ? st : hd_cu.stream_synchronize(stream);
}

/* ---- modules and kernels ---- */

int nat_module_load(void *ctx, void *image, size_t n, void **ret)
{
    (void)ctx;
    struct nat_module *m = calloc(1, sizeof(*m));
    int st = CU_OUT_OF_MEMORY;
    if (!m)
        goto out;
    /* The session checked that the image holds what its headers declare (PTX: its NUL). */
    if ((st = hd_cu.module_load_data(&m->mod, image)))
        goto out;
    if (ptx_is_ptx(image, n)) {
        m->ptx = image;
        m->len = n;
        image = NULL;
    }
    *ret = m;
    m = NULL;
out:
    free(m);
    free(image);
    return st;
}

int nat_module_unload(void *ctx, void *mod)
{
    (void)ctx;
    struct nat_module *m = mod;
    int st = hd_cu.module_unload(m->mod);
    free(m->ptx);
    free(m);
    return st;
}

/* The layout from the driver (CUDA 12.4+). 0, or -1 when it cannot tell. */
static int driver_params(void *fn, struct vr_param *params, unsigned *ret_n)
{
    unsigned n = 0;
    if (!hd_cu.func_get_param_info)
        return -1;
    for (;; n++) {
        size_t off, size;
        int st = hd_cu.func_get_param_info(fn, n, &off, &size);
        if (st == CU_INVALID_VALUE)
            break;
        if (st || n == VR_MAX_PARAMS || off + size > VR_MAX_KERNEL_ARG)
            return -1;
        params[n] = (struct vr_param){(uint32_t)off, (uint32_t)size};
    }
    *ret_n = n;
    return 0;
}

int nat_get_function(void *ctx, void *mod, const char *name, void **ret_fn, struct vr_param *params,
                     unsigned *ret_nparams)
{
    (void)ctx;
    struct nat_module *m = mod;
    void *fn;
    int st = hd_cu.module_get_function(&fn, m->mod, name);
    if (st)
        return st;
    if (driver_params(fn, params, ret_nparams) < 0 &&
        (!m->ptx || ptx_entry_params(m->ptx, m->len, name, params, VR_MAX_PARAMS, ret_nparams)))
        return CU_NOT_SUPPORTED;
    *ret_fn = fn;
    return CU_OK;
}

int nat_get_global(void *ctx, void *mod, const char *name, uint64_t *ret_dptr, uint64_t *ret_bytes)
{
    (void)ctx;
    CUdptr p = 0;
    size_t n = 0;
    int st = hd_cu.module_get_global(&p, &n, ((struct nat_module *)mod)->mod, name);
    *ret_dptr = p;
    *ret_bytes = n;
    return st;
}

int nat_launch(void *ctx, void *fn, const unsigned grid[3], const unsigned block[3],
               unsigned shared, void *stream, void **args)
{
    (void)ctx;
    return hd_cu.launch_kernel(fn, grid[0], grid[1], grid[2], block[0], block[1], block[2], shared,
                               stream, args, NULL);
}

int nat_func_attribute(void *ctx, void *fn, int attr, int *ret)
{
    (void)ctx;
    return hd_cu.func_get_attribute(ret, attr, fn);
}
