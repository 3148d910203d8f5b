/* ops-exec: the CUDA requests about code and ordering: modules (images kept by the
 * backend), functions (with their parameter layout, so a launch's packed arguments can
 * be checked and pointed at), launches, streams and events; and PING. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ptx.h"
#include "session.h"

static int ping(struct hd_session *s, const struct vr_hdr *h, const struct vr_args *a,
                struct vr_ret *ret)
{
    (void)ret;
    if (vr_read(&s->r, NULL, h->bulk) < 0)
        return -EPIPE;
    memset(s->out.text, 0, sizeof(s->out.text));
    s->reply_bulk = s->out.text;
    s->reply_n = a->a[0] < VR_MAX_NAME ? a->a[0] : VR_MAX_NAME;
    return 0;
}

/* The request's bulk as a symbol name, or NULL when it is not one. */
static const char *bulk_name(struct hd_session *s, const struct vr_hdr *h)
{
    if (h->bulk < 2 || h->bulk > VR_MAX_NAME || s->bulk[h->bulk - 1] != '\0' ||
        strlen((const char *)s->bulk) != h->bulk - 1)
        return NULL;
    return (const char *)s->bulk;
}

static int module_load(struct hd_session *s, const struct vr_hdr *h, const struct vr_args *a,
                       struct vr_ret *ret)
{
    struct hd_obj *c = NULL, *m;
    /* Over the client's image quota: read and dropped, as when out of memory. */
    bool over = s->image_bytes + h->bulk > HD_MAX_IMAGE_BYTES;
    void *image = h->bulk && !over ? malloc(h->bulk) : NULL;
    void *mod;
    int st;

    if (vr_read(&s->r, image, h->bulk) < 0) { /* NULL: read and dropped */
        free(image);
        return -EPIPE;
    }
    if ((st = hd_use_ctx(s, a->a[0], &c)) || !image) {
        free(image);
        return hd_fail(ret, st ? st : h->bulk ? CU_OUT_OF_MEMORY : CU_INVALID_VALUE);
    }
    /* The driver reads as far as the image's headers say: they must stay inside it. */
    if (!vr_image_fits(image, h->bulk)) {
        free(image);
        return hd_fail(ret, CU_INVALID_IMAGE);
    }
    if ((st = s->dev->module_load(c->h, image, h->bulk, &mod)))
        return hd_fail(ret, st);
    if (!(m = hd_obj_add(&s->o, HD_MODULE, a->a[0], mod))) {
        s->dev->module_unload(c->h, mod);
        return hd_fail(ret, CU_OUT_OF_MEMORY);
    }
    m->u.mod.bytes = h->bulk;
    s->image_bytes += h->bulk;
    ret->r[0] = m->id;
    return 0;
}

static int module_unload(struct hd_session *s, const struct vr_hdr *h, const struct vr_args *a,
                         struct vr_ret *ret)
{
    (void)h;
    struct hd_obj *c = NULL, *m;
    int st = hd_use_ctx(s, a->a[0], &c);
    if (st)
        return hd_fail(ret, st);
    if (!(m = hd_obj_find(&s->o, HD_MODULE, a->a[1])))
        return hd_fail(ret, CU_INVALID_HANDLE);
    hd_module_teardown(s, m);
    return 0;
}

/* The function object for (module, backend function), made once. */
static struct hd_obj *function_obj(struct hd_session *s, const struct hd_obj *m, void *fn,
                                   unsigned n)
{
    for (size_t i = 0; i < s->o.nobjs; i++)
        if (hd_obj_kind(s->o.objs[i].id) == HD_FUNCTION && s->o.objs[i].h == fn &&
            s->o.objs[i].u.fn.module == m->id)
            return &s->o.objs[i];
    struct vr_param *params = malloc((n ? n : 1) * sizeof(*params));
    if (!params)
        return NULL;
    memcpy(params, s->out.params, n * sizeof(*params));
    uint64_t module = m->id, ctx = m->ctx;
    struct hd_obj *f = hd_obj_add(&s->o, HD_FUNCTION, ctx, fn);
    if (!f) {
        free(params);
        return NULL;
    }
    f->u.fn.module = module;
    f->u.fn.nparams = n;
    f->u.fn.params = params;
    f->u.fn.argsize = ptx_params_size(params, n);
    return f;
}

static int get_function(struct hd_session *s, const struct vr_hdr *h, const struct vr_args *a,
                        struct vr_ret *ret)
{
    struct hd_obj *c = NULL, *m, *f;
    const char *name = bulk_name(s, h);
    unsigned n = 0;
    void *fn;
    int st = hd_use_ctx(s, a->a[0], &c);
    if (st)
        return hd_fail(ret, st);
    if (!(m = hd_obj_find(&s->o, HD_MODULE, a->a[1])))
        return hd_fail(ret, CU_INVALID_HANDLE);
    if (!name)
        return hd_fail(ret, CU_INVALID_VALUE);
    if ((st = s->dev->module_get_function(c->h, m->h, name, &fn, s->out.params, &n)))
        return hd_fail(ret, st);
    if (!(f = function_obj(s, m, fn, n)))
        return hd_fail(ret, CU_OUT_OF_MEMORY);
    ret->r[0] = f->id;
    ret->r[1] = n;
    s->reply_bulk = s->out.params;
    s->reply_n = n * sizeof(struct vr_param);
    return 0;
}

static int get_global(struct hd_session *s, const struct vr_hdr *h, const struct vr_args *a,
                      struct vr_ret *ret)
{
    struct hd_obj *c = NULL, *m;
    const char *name = bulk_name(s, h);
    struct hd_mem g = {0};
    int st = hd_use_ctx(s, a->a[0], &c);
    if (st)
        return hd_fail(ret, st);
    if (!(m = hd_obj_find(&s->o, HD_MODULE, a->a[1])))
        return hd_fail(ret, CU_INVALID_HANDLE);
    if (!name)
        return hd_fail(ret, CU_INVALID_VALUE);
    if ((st = s->dev->module_get_global(c->h, m->h, name, &g.dptr, &g.size)))
        return hd_fail(ret, st);
    /* The global's range becomes copyable for this client, until its module goes. */
    struct hd_alloc *known = hd_alloc_find(&s->o, g.dptr, g.size);
    if (g.size && !(known && known->m.dptr == g.dptr) && hd_alloc_add(&s->o, &g, m->ctx, m->id) < 0)
        return hd_fail(ret, CU_OUT_OF_MEMORY);
    ret->r[0] = g.dptr;
    ret->r[1] = g.size;
    return 0;
}

static int launch(struct hd_session *s, const struct vr_hdr *h, const struct vr_args *a,
                  struct vr_ret *ret)
{
    struct hd_obj *c = NULL, *f;
    void *stream = NULL;
    const unsigned grid[3] = {(unsigned)a->a[2], (unsigned)(a->a[2] >> 32), (unsigned)a->a[3]};
    const unsigned block[3] = {(unsigned)a->a[4], (unsigned)(a->a[4] >> 32), (unsigned)a->a[5]};
    int st = hd_use_ctx(s, a->a[0], &c);
    if (!st)
        st = hd_stream(s, a->a[7], &stream);
    if (st)
        return hd_fail(ret, st);
    if (!(f = hd_obj_find(&s->o, HD_FUNCTION, a->a[1])))
        return hd_fail(ret, CU_INVALID_HANDLE);
    /* `extra` buffers may be padded past the last parameter (sizeof a struct). */
    if (h->bulk < f->u.fn.argsize || !grid[0] || !grid[1] || !grid[2] || !block[0] || !block[1] ||
        !block[2] || a->a[6] > UINT32_MAX)
        return hd_fail(ret, CU_INVALID_VALUE);
    for (unsigned i = 0; i < f->u.fn.nparams; i++)
        s->args[i] = s->bulk + f->u.fn.params[i].offset;
    ret->status = s->dev->launch(c->h, f->h, grid, block, (unsigned)a->a[6], stream, s->args);
    return 0;
}

static int func_attribute(struct hd_session *s, const struct vr_hdr *h, const struct vr_args *a,
                          struct vr_ret *ret)
{
    (void)h;
    struct hd_obj *c = NULL, *f;
    int v = 0, st = hd_use_ctx(s, a->a[0], &c);
    if (st)
        return hd_fail(ret, st);
    if (!(f = hd_obj_find(&s->o, HD_FUNCTION, a->a[2])))
        return hd_fail(ret, CU_INVALID_HANDLE);
    ret->status = s->dev->func_attribute(c->h, f->h, (int)a->a[1], &v);
    ret->r[0] = (uint64_t)(int64_t)v;
    return 0;
}

/* ---- streams and events ---- */

/* Records a new handle of kind made by the backend (or undoes it). */
static int add_handle(struct hd_session *s, enum hd_kind kind, uint64_t ctx, void *hnd, int st,
                      struct vr_ret *ret)
{
    if (st)
        return hd_fail(ret, st);
    struct hd_obj *o = hd_obj_add(&s->o, kind, ctx, hnd);
    if (!o) {
        if (kind == HD_STREAM)
            s->dev->stream_destroy(s->current, hnd);
        else
            s->dev->event_destroy(s->current, hnd);
        return hd_fail(ret, CU_OUT_OF_MEMORY);
    }
    ret->r[0] = o->id;
    return 0;
}

static int stream_create(struct hd_session *s, const struct vr_hdr *h, const struct vr_args *a,
                         struct vr_ret *ret)
{
    (void)h;
    struct hd_obj *c = NULL;
    void *st_h = NULL;
    int st = hd_use_ctx(s, a->a[0], &c);
    if (st)
        return hd_fail(ret, st);
    st = s->dev->stream_create(c->h, (unsigned)a->a[1], (int)(int64_t)a->a[2], &st_h);
    return add_handle(s, HD_STREAM, a->a[0], st_h, st, ret);
}

static int event_create(struct hd_session *s, const struct vr_hdr *h, const struct vr_args *a,
                        struct vr_ret *ret)
{
    (void)h;
    struct hd_obj *c = NULL;
    void *ev = NULL;
    int st = hd_use_ctx(s, a->a[0], &c);
    if (st)
        return hd_fail(ret, st);
    st = s->dev->event_create(c->h, (unsigned)a->a[1], &ev);
    return add_handle(s, HD_EVENT, a->a[0], ev, st, ret);
}

/* The stream or event named by id made current in its own context, as CUDA lets any
 * thread use them: *ret the object (NULL for the special streams 0, 1, 2, which belong
 * to the current context cur). A CUresult. */
static int own_ctx(struct hd_session *s, enum hd_kind kind, uint64_t id, uint64_t cur,
                   struct hd_obj **ret_ctx, struct hd_obj **ret)
{
    struct hd_obj *o = NULL;
    if (!(kind == HD_STREAM && id <= 2) && !(o = hd_obj_find(&s->o, kind, id)))
        return CU_INVALID_HANDLE;
    int st = hd_use_ctx(s, o ? o->ctx : cur, ret_ctx);
    if (!st)
        *ret = o;
    return st;
}

/* The ops on one stream or event, a1 the handle (a0 only for the special streams). */
static int handle_op(struct hd_session *s, const struct vr_hdr *h, const struct vr_args *a,
                     struct vr_ret *ret)
{
    const struct hd_backend *dev = s->dev;
    struct hd_obj *c = NULL, *o = NULL, *ev;
    void *stream = NULL;
    enum hd_kind kind = h->op >= VR_CU_EVENT_CREATE ? HD_EVENT : HD_STREAM;
    int st = own_ctx(s, kind, a->a[1], a->a[0], &c, &o);

    if (st)
        return hd_fail(ret, st);
    if (kind == HD_STREAM)
        stream = o ? o->h : (void *)(uintptr_t)a->a[1];
    switch (h->op) {
    case VR_CU_STREAM_DESTROY:
        if (!o)
            return hd_fail(ret, CU_INVALID_HANDLE);
        ret->status = dev->stream_destroy(c->h, stream);
        hd_obj_remove(&s->o, o->id);
        return 0;
    case VR_CU_STREAM_SYNCHRONIZE:
        return hd_fail(ret, dev->stream_synchronize(c->h, stream));
    case VR_CU_STREAM_QUERY:
        return hd_fail(ret, dev->stream_query(c->h, stream));
    case VR_CU_STREAM_WAIT_EVENT:
        if (!(ev = hd_obj_find(&s->o, HD_EVENT, a->a[2])))
            return hd_fail(ret, CU_INVALID_HANDLE);
        return hd_fail(ret, dev->stream_wait_event(c->h, stream, ev->h, (unsigned)a->a[3]));
    case VR_CU_EVENT_DESTROY:
        ret->status = dev->event_destroy(c->h, o->h);
        hd_obj_remove(&s->o, o->id);
        return 0;
    case VR_CU_EVENT_RECORD:
        if ((st = hd_stream(s, a->a[2], &stream)))
            return hd_fail(ret, st);
        return hd_fail(ret, dev->event_record(c->h, o->h, stream));
    case VR_CU_EVENT_SYNCHRONIZE:
        return hd_fail(ret, dev->event_synchronize(c->h, o->h));
    case VR_CU_EVENT_QUERY:
        return hd_fail(ret, dev->event_query(c->h, o->h));
    default:
        return hd_fail(ret, CU_NOT_SUPPORTED);
    }
}

static int event_elapsed(struct hd_session *s, const struct vr_hdr *h, const struct vr_args *a,
                         struct vr_ret *ret)
{
    (void)h;
    struct hd_obj *c = NULL, *e0, *e1;
    float ms = 0;
    uint32_t bits;
    int st = own_ctx(s, HD_EVENT, a->a[1], 0, &c, &e0);
    if (st)
        return hd_fail(ret, st);
    if (!(e1 = hd_obj_find(&s->o, HD_EVENT, a->a[2])))
        return hd_fail(ret, CU_INVALID_HANDLE);
    ret->status = s->dev->event_elapsed(c->h, e0->h, e1->h, &ms);
    memcpy(&bits, &ms, sizeof(bits));
    ret->r[0] = bits;
    return 0;
}

const struct hd_op hd_exec_ops[] = {
    {VR_PING, OP_BULK_SELF, ping},
    {VR_CU_MODULE_LOAD, OP_BULK_SELF, module_load},
    {VR_CU_MODULE_UNLOAD, 0, module_unload},
    {VR_CU_MODULE_GET_FUNCTION, 0, get_function},
    {VR_CU_MODULE_GET_GLOBAL, 0, get_global},
    {VR_CU_LAUNCH_KERNEL, 0, launch},
    {VR_CU_FUNC_GET_ATTRIBUTE, 0, func_attribute},
    {VR_CU_STREAM_CREATE, 0, stream_create},
    {VR_CU_STREAM_DESTROY, 0, handle_op},
    {VR_CU_STREAM_SYNCHRONIZE, 0, handle_op},
    {VR_CU_STREAM_QUERY, 0, handle_op},
    {VR_CU_STREAM_WAIT_EVENT, 0, handle_op},
    {VR_CU_EVENT_CREATE, 0, event_create},
    {VR_CU_EVENT_DESTROY, 0, handle_op},
    {VR_CU_EVENT_RECORD, 0, handle_op},
    {VR_CU_EVENT_SYNCHRONIZE, 0, handle_op},
    {VR_CU_EVENT_QUERY, 0, handle_op},
    {VR_CU_EVENT_ELAPSED_TIME, 0, event_elapsed},
    {0, 0, NULL},
};
