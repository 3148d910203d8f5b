/* ops-cuda: the CUDA requests about devices (the client's ordinals, after its
 * CUDA_VISIBLE_DEVICES), contexts (the client's own, never a process-wide primary
 * context) and memory (checked against the client's allocations and its quota).
 * Async copies run synchronously: the reply means the copy is done. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "session.h"

static int cu_init(struct hd_session *s, const struct vr_hdr *h, const struct vr_args *a,
                   struct vr_ret *ret)
{
    (void)h, (void)a;
    /* As the driver: CUDA_VISIBLE_DEVICES that names no device fails cuInit. */
    if (s->ndev == 0)
        ret->status = CU_NO_DEVICE;
    return 0;
}

static int cu_driver_version(struct hd_session *s, const struct vr_hdr *h, const struct vr_args *a,
                             struct vr_ret *ret)
{
    (void)h, (void)a;
    int v = 0;
    ret->status = s->dev->driver_version(&v);
    ret->r[0] = (uint64_t)v;
    return 0;
}

static int cu_device_count(struct hd_session *s, const struct vr_hdr *h, const struct vr_args *a,
                           struct vr_ret *ret)
{
    (void)h, (void)a;
    ret->r[0] = (uint64_t)s->ndev;
    return 0;
}

static int cu_device_get(struct hd_session *s, const struct vr_hdr *h, const struct vr_args *a,
                         struct vr_ret *ret)
{
    (void)h;
    if (hd_client_dev(s, a->a[0]) < 0)
        return hd_fail(ret, CU_INVALID_DEVICE);
    ret->r[0] = a->a[0];
    return 0;
}

static int cu_device_attribute(struct hd_session *s, const struct vr_hdr *h,
                               const struct vr_args *a, struct vr_ret *ret)
{
    (void)h;
    int dev = hd_client_dev(s, a->a[1]), v = 0;
    if (dev < 0)
        return hd_fail(ret, CU_INVALID_DEVICE);
    ret->status = s->dev->dev_attribute(dev, (int)a->a[0], &v);
    ret->r[0] = (uint64_t)(int64_t)v;
    return 0;
}

/* The daemon's cached description of the client's device a0, or NULL. */
static const struct hd_dev_info *dev_info(struct hd_session *s, uint64_t dev)
{
    int i = hd_client_dev(s, dev);
    return i < 0 ? NULL : &s->d->devs[i];
}

static int cu_device_name(struct hd_session *s, const struct vr_hdr *h, const struct vr_args *a,
                          struct vr_ret *ret)
{
    (void)h;
    const struct hd_dev_info *di = dev_info(s, a->a[0]);
    if (!di)
        return hd_fail(ret, CU_INVALID_DEVICE);
    s->reply_bulk = di->name;
    s->reply_n = strlen(di->name) + 1;
    return 0;
}

static int cu_device_uuid(struct hd_session *s, const struct vr_hdr *h, const struct vr_args *a,
                          struct vr_ret *ret)
{
    (void)h;
    const struct hd_dev_info *di = dev_info(s, a->a[0]);
    if (!di)
        return hd_fail(ret, CU_INVALID_DEVICE);
    s->reply_bulk = di->uuid;
    s->reply_n = sizeof(di->uuid);
    return 0;
}

static int cu_device_total_mem(struct hd_session *s, const struct vr_hdr *h,
                               const struct vr_args *a, struct vr_ret *ret)
{
    (void)h;
    const struct hd_dev_info *di = dev_info(s, a->a[0]);
    if (!di)
        return hd_fail(ret, CU_INVALID_DEVICE);
    uint64_t limit = s->d->memory_limit;
    ret->r[0] = limit && limit < di->total_mem ? limit : di->total_mem;
    return 0;
}

static int cu_device_pci_bus_id(struct hd_session *s, const struct vr_hdr *h,
                                const struct vr_args *a, struct vr_ret *ret)
{
    (void)h;
    const struct hd_dev_info *di = dev_info(s, a->a[0]);
    if (!di)
        return hd_fail(ret, CU_INVALID_DEVICE);
    s->reply_bulk = di->pci_bus_id;
    s->reply_n = strlen(di->pci_bus_id) + 1;
    return 0;
}

static int cu_device_by_pci_bus_id(struct hd_session *s, const struct vr_hdr *h,
                                   const struct vr_args *a, struct vr_ret *ret)
{
    (void)a;
    unsigned dom, bus, dv, fn;
    if (!h->bulk || hd_pci_parse((const char *)s->bulk, &dom, &bus, &dv, &fn) < 0)
        return hd_fail(ret, CU_INVALID_VALUE);
    for (int i = 0; i < s->ndev; i++) {
        const struct hd_dev_info *di = &s->d->devs[s->devmap[i]];
        if (di->pci_domain == dom && di->pci_bus == bus && di->pci_device == dv) {
            ret->r[0] = (uint64_t)i;
            return 0;
        }
    }
    return hd_fail(ret, CU_INVALID_DEVICE);
}

/* ---- contexts ---- */

/* A new context of the client's device ordinal dev; *ret_id its id. A CUresult. */
static int ctx_new(struct hd_session *s, uint64_t dev, unsigned flags, int primary,
                   uint64_t *ret_id)
{
    int i = hd_client_dev(s, dev);
    unsigned nctx = 0;
    void *h;
    if (i < 0)
        return CU_INVALID_DEVICE;
    for (size_t k = 0; k < s->o.nobjs; k++)
        nctx += hd_obj_kind(s->o.objs[k].id) == HD_CTX;
    if (nctx >= (unsigned)s->ndev + HD_MAX_CONTEXTS) /* a primary one per device, and 8 */
        return CU_OUT_OF_MEMORY;
    int st = s->dev->ctx_create(i, flags, &h);
    if (st)
        return st;
    s->current = NULL; /* creating may have changed the thread's context */
    struct hd_obj *c = hd_obj_add(&s->o, HD_CTX, 0, h);
    if (!c) {
        s->dev->ctx_destroy(h);
        return CU_OUT_OF_MEMORY;
    }
    c->u.ctx.dev = (int)dev;
    c->u.ctx.primary = primary;
    c->u.ctx.refs = 1;
    *ret_id = c->id;
    return CU_OK;
}

static int cu_ctx_create(struct hd_session *s, const struct vr_hdr *h, const struct vr_args *a,
                         struct vr_ret *ret)
{
    (void)h;
    ret->status = ctx_new(s, a->a[1], (unsigned)a->a[0], 0, &ret->r[0]);
    return 0;
}

static int cu_ctx_destroy(struct hd_session *s, const struct vr_hdr *h, const struct vr_args *a,
                          struct vr_ret *ret)
{
    (void)h;
    struct hd_obj *c = hd_obj_find(&s->o, HD_CTX, a->a[0]);
    if (!c || c->u.ctx.primary)
        return hd_fail(ret, CU_INVALID_CONTEXT);
    hd_ctx_teardown(s, a->a[0], 0);
    return 0;
}

static int cu_ctx_synchronize(struct hd_session *s, const struct vr_hdr *h, const struct vr_args *a,
                              struct vr_ret *ret)
{
    (void)h;
    struct hd_obj *c = NULL;
    int st = hd_use_ctx(s, a->a[0], &c);
    ret->status = st ? st : s->dev->ctx_synchronize(c->h);
    return 0;
}

static int cu_primary_retain(struct hd_session *s, const struct vr_hdr *h, const struct vr_args *a,
                             struct vr_ret *ret)
{
    (void)h;
    uint64_t dev = a->a[0];
    if (hd_client_dev(s, dev) < 0)
        return hd_fail(ret, CU_INVALID_DEVICE);
    struct hd_obj *c = hd_obj_find(&s->o, HD_CTX, s->primary[dev]);
    if (c) {
        c->u.ctx.refs++;
        ret->r[0] = c->id;
        return 0;
    }
    ret->status = ctx_new(s, dev, s->primary_flags[dev], 1, &ret->r[0]);
    if (ret->status == CU_OK)
        s->primary[dev] = ret->r[0];
    return 0;
}

static int cu_primary_release(struct hd_session *s, const struct vr_hdr *h, const struct vr_args *a,
                              struct vr_ret *ret)
{
    (void)h;
    if (hd_client_dev(s, a->a[0]) < 0)
        return hd_fail(ret, CU_INVALID_DEVICE);
    struct hd_obj *c = hd_obj_find(&s->o, HD_CTX, s->primary[a->a[0]]);
    if (!c)
        return hd_fail(ret, CU_INVALID_CONTEXT);
    if (--c->u.ctx.refs == 0)
        hd_ctx_teardown(s, c->id, 0);
    return 0;
}

static int cu_primary_reset(struct hd_session *s, const struct vr_hdr *h, const struct vr_args *a,
                            struct vr_ret *ret)
{
    (void)h;
    if (hd_client_dev(s, a->a[0]) < 0)
        return hd_fail(ret, CU_INVALID_DEVICE);
    if (s->primary[a->a[0]])
        hd_ctx_teardown(s, s->primary[a->a[0]], 1);
    return 0;
}

static int cu_primary_state(struct hd_session *s, const struct vr_hdr *h, const struct vr_args *a,
                            struct vr_ret *ret)
{
    (void)h;
    if (hd_client_dev(s, a->a[0]) < 0)
        return hd_fail(ret, CU_INVALID_DEVICE);
    ret->r[0] = s->primary_flags[a->a[0]];
    ret->r[1] = s->primary[a->a[0]] != 0;
    return 0;
}

static int cu_primary_set_flags(struct hd_session *s, const struct vr_hdr *h,
                                const struct vr_args *a, struct vr_ret *ret)
{
    (void)h;
    if (hd_client_dev(s, a->a[0]) < 0)
        return hd_fail(ret, CU_INVALID_DEVICE);
    s->primary_flags[a->a[0]] = (unsigned)a->a[1];
    return 0;
}

static int cu_ctx_get_device(struct hd_session *s, const struct vr_hdr *h, const struct vr_args *a,
                             struct vr_ret *ret)
{
    (void)h;
    struct hd_obj *c = hd_obj_find(&s->o, HD_CTX, a->a[0]);
    if (!c)
        return hd_fail(ret, CU_INVALID_CONTEXT);
    ret->r[0] = (uint64_t)c->u.ctx.dev;
    return 0;
}

/* ---- memory ---- */

static int cu_mem_info(struct hd_session *s, const struct vr_hdr *h, const struct vr_args *a,
                       struct vr_ret *ret)
{
    (void)h;
    struct hd_obj *c = NULL;
    uint64_t free_b, total, limit = s->d->memory_limit;
    int st = hd_use_ctx(s, a->a[0], &c);
    if (st || (st = s->dev->mem_info(c->h, &free_b, &total)))
        return hd_fail(ret, st);
    if (limit) {
        uint64_t left = limit > s->o.used ? limit - s->o.used : 0;
        total = total < limit ? total : limit;
        free_b = free_b < left ? free_b : left;
    }
    ret->r[0] = free_b;
    ret->r[1] = total;
    return 0;
}

static int cu_mem_alloc(struct hd_session *s, const struct vr_hdr *h, const struct vr_args *a,
                        struct vr_ret *ret)
{
    (void)h;
    struct hd_obj *c = NULL;
    struct hd_mem m;
    uint64_t bytes = a->a[1], limit = s->d->memory_limit;
    int st = hd_use_ctx(s, a->a[0], &c);
    if (st)
        return hd_fail(ret, st);
    if (bytes == 0)
        return hd_fail(ret, CU_INVALID_VALUE);
    if (limit && (bytes > limit || s->o.used > limit - bytes))
        return hd_fail(ret, CU_OUT_OF_MEMORY);
    if ((st = s->dev->mem_alloc(c->h, bytes, &m)))
        return hd_fail(ret, st);
    if (hd_alloc_add(&s->o, &m, c->id, 0) < 0) {
        s->dev->mem_free(c->h, &m);
        return hd_fail(ret, CU_OUT_OF_MEMORY);
    }
    ret->r[0] = m.dptr;
    return 0;
}

static int cu_mem_free(struct hd_session *s, const struct vr_hdr *h, const struct vr_args *a,
                       struct vr_ret *ret)
{
    (void)h;
    struct hd_obj *c = NULL;
    int st = hd_use_ctx(s, a->a[0], &c);
    if (st || a->a[1] == 0)
        return hd_fail(ret, st);
    struct hd_alloc *al = hd_alloc_find(&s->o, a->a[1], 0);
    if (!al || al->m.dptr != a->a[1] || al->module)
        return hd_fail(ret, CU_INVALID_VALUE);
    ret->status = s->dev->mem_free(c->h, &al->m);
    hd_alloc_remove(&s->o, al);
    return 0;
}

/* Reads and drops a request's bulk after a failed check; -errno if the socket failed. */
static int drain(struct hd_session *s, const struct vr_hdr *h, struct vr_ret *ret, int status)
{
    ret->status = status;
    return vr_read(&s->r, NULL, h->bulk) < 0 ? -EPIPE : 0;
}

static int cu_htod(struct hd_session *s, const struct vr_hdr *h, const struct vr_args *a,
                   struct vr_ret *ret)
{
    struct hd_obj *c = NULL;
    struct hd_alloc *al = NULL;
    void *stream = NULL;
    int st = hd_use_ctx(s, a->a[0], &c);
    if (!st)
        st = hd_stream(s, a->a[2], &stream);
    if (!st && h->bulk && !(al = hd_alloc_find(&s->o, a->a[1], h->bulk)))
        st = CU_INVALID_VALUE;
    if (st || !h->bulk)
        return drain(s, h, ret, st);
    st = s->dev->htod(c->h, &al->m, a->a[1] - al->m.dptr, &s->r, h->bulk, stream);
    if (st < 0)
        return st;
    ret->status = st;
    return 0;
}

static int cu_dtoh(struct hd_session *s, const struct vr_hdr *h, const struct vr_args *a,
                   struct vr_ret *ret)
{
    struct hd_obj *c = NULL;
    struct hd_alloc *al;
    void *stream = NULL;
    uint64_t n = a->a[2];
    int st = hd_use_ctx(s, a->a[0], &c);
    if (!st)
        st = hd_stream(s, a->a[3], &stream);
    if (st || n == 0)
        return hd_fail(ret, st);
    if (n > VR_MAX_BULK || !(al = hd_alloc_find(&s->o, a->a[1], n)))
        return hd_fail(ret, CU_INVALID_VALUE);
    st = s->dev->dtoh(c->h, &al->m, a->a[1] - al->m.dptr, n, stream, s->fd, h->op, h->id);
    if (st <= 0)
        return st < 0 ? st : 1;
    return hd_fail(ret, st);
}

static int cu_dtod(struct hd_session *s, const struct vr_hdr *h, const struct vr_args *a,
                   struct vr_ret *ret)
{
    (void)h;
    struct hd_obj *c = NULL;
    struct hd_alloc *dst, *src;
    void *stream = NULL;
    uint64_t n = a->a[3];
    int st = hd_use_ctx(s, a->a[0], &c);
    if (!st)
        st = hd_stream(s, a->a[4], &stream);
    if (st || n == 0)
        return hd_fail(ret, st);
    if (!(dst = hd_alloc_find(&s->o, a->a[1], n)) || !(src = hd_alloc_find(&s->o, a->a[2], n)))
        return hd_fail(ret, CU_INVALID_VALUE);
    ret->status = s->dev->dtod(c->h, &dst->m, a->a[1] - dst->m.dptr, &src->m, a->a[2] - src->m.dptr,
                               n, stream);
    return 0;
}

static int cu_memset(struct hd_session *s, const struct vr_hdr *h, const struct vr_args *a,
                     struct vr_ret *ret)
{
    (void)h;
    struct hd_obj *c = NULL;
    struct hd_alloc *al;
    void *stream = NULL;
    uint64_t el = a->a[3], count = a->a[4];
    int st = hd_use_ctx(s, a->a[0], &c);
    if (!st)
        st = hd_stream(s, a->a[5], &stream);
    if (st)
        return hd_fail(ret, st);
    if ((el != 1 && el != 2 && el != 4) || a->a[1] % el || count > UINT64_MAX / el)
        return hd_fail(ret, CU_INVALID_VALUE);
    if (count == 0)
        return 0;
    if (!(al = hd_alloc_find(&s->o, a->a[1], count * el)))
        return hd_fail(ret, CU_INVALID_VALUE);
    ret->status = s->dev->memset(c->h, &al->m, a->a[1] - al->m.dptr, (uint32_t)a->a[2],
                                 (unsigned)el, count, stream);
    return 0;
}

static int cu_mem_range(struct hd_session *s, const struct vr_hdr *h, const struct vr_args *a,
                        struct vr_ret *ret)
{
    (void)h;
    struct hd_obj *c = NULL;
    int st = hd_use_ctx(s, a->a[0], &c);
    if (st)
        return hd_fail(ret, st);
    struct hd_alloc *al = hd_alloc_find(&s->o, a->a[1], 0);
    if (!al)
        return hd_fail(ret, CU_NOT_FOUND);
    ret->r[0] = al->m.dptr;
    ret->r[1] = al->m.size;
    return 0;
}

const struct hd_op hd_cuda_ops[] = {
    {VR_CU_INIT, 0, cu_init},
    {VR_CU_DRIVER_GET_VERSION, 0, cu_driver_version},
    {VR_CU_DEVICE_GET_COUNT, 0, cu_device_count},
    {VR_CU_DEVICE_GET, 0, cu_device_get},
    {VR_CU_DEVICE_GET_ATTRIBUTE, 0, cu_device_attribute},
    {VR_CU_DEVICE_GET_NAME, 0, cu_device_name},
    {VR_CU_DEVICE_GET_UUID, 0, cu_device_uuid},
    {VR_CU_DEVICE_TOTAL_MEM, 0, cu_device_total_mem},
    {VR_CU_DEVICE_GET_PCI_BUS_ID, 0, cu_device_pci_bus_id},
    {VR_CU_DEVICE_GET_BY_PCI_BUS_ID, 0, cu_device_by_pci_bus_id},
    {VR_CU_CTX_CREATE, 0, cu_ctx_create},
    {VR_CU_CTX_DESTROY, 0, cu_ctx_destroy},
    {VR_CU_CTX_SYNCHRONIZE, 0, cu_ctx_synchronize},
    {VR_CU_PRIMARY_CTX_RETAIN, 0, cu_primary_retain},
    {VR_CU_PRIMARY_CTX_RELEASE, 0, cu_primary_release},
    {VR_CU_PRIMARY_CTX_RESET, 0, cu_primary_reset},
    {VR_CU_PRIMARY_CTX_GET_STATE, 0, cu_primary_state},
    {VR_CU_PRIMARY_CTX_SET_FLAGS, 0, cu_primary_set_flags},
    {VR_CU_CTX_GET_DEVICE, 0, cu_ctx_get_device},
    {VR_CU_MEM_GET_INFO, 0, cu_mem_info},
    {VR_CU_MEM_ALLOC, 0, cu_mem_alloc},
    {VR_CU_MEM_FREE, 0, cu_mem_free},
    {VR_CU_MEMCPY_HTOD, OP_BULK_SELF, cu_htod},
    {VR_CU_MEMCPY_DTOH, 0, cu_dtoh},
    {VR_CU_MEMCPY_DTOD, 0, cu_dtod},
    {VR_CU_MEMSET, 0, cu_memset},
    {VR_CU_MEM_GET_ADDRESS_RANGE, 0, cu_mem_range},
    {0, 0, NULL},
};
