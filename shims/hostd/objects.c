/* objects: per-client handle and allocation tables (see objects.h). Handles live in an
 * unordered array (a client holds tens to a few thousand); allocations in an array
 * sorted by address, so every copy's pointer check is a binary search. */
#include "objects.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* Shared by all clients, so one client's id is never valid for another. */
static atomic_uint_fast64_t next_id;

void hd_objects_init(struct hd_objects *o)
{
    memset(o, 0, sizeof(*o));
}

void hd_objects_release(struct hd_objects *o)
{
    for (size_t i = 0; i < o->nobjs; i++)
        if (hd_obj_kind(o->objs[i].id) == HD_FUNCTION)
            free(o->objs[i].u.fn.params);
    free(o->objs);
    free(o->allocs);
    hd_objects_init(o);
}

enum hd_kind hd_obj_kind(uint64_t id)
{
    return (enum hd_kind)(id >> 56);
}

static int grow(void **arr, size_t *cap, size_t need, size_t elsize)
{
    if (need <= *cap)
        return 0;
    size_t n = *cap ? *cap * 2 : 16;
    void *p = realloc(*arr, n * elsize);
    if (!p)
        return -ENOMEM;
    *arr = p;
    *cap = n;
    return 0;
}

struct hd_obj *hd_obj_add(struct hd_objects *o, enum hd_kind kind, uint64_t ctx, void *h)
{
    if (o->nobjs >= HD_MAX_OBJECTS ||
        grow((void **)&o->objs, &o->cap, o->nobjs + 1, sizeof(*o->objs)) < 0)
        return NULL;
    struct hd_obj *ob = &o->objs[o->nobjs++];
    memset(ob, 0, sizeof(*ob));
    ob->id = (uint64_t)kind << 56 | ((atomic_fetch_add(&next_id, 1) + 1) & ((1ull << 56) - 1));
    ob->ctx = kind == HD_CTX ? ob->id : ctx;
    ob->h = h;
    return ob;
}

struct hd_obj *hd_obj_find(struct hd_objects *o, enum hd_kind kind, uint64_t id)
{
    if (hd_obj_kind(id) != kind)
        return NULL;
    for (size_t i = 0; i < o->nobjs; i++)
        if (o->objs[i].id == id)
            return &o->objs[i];
    return NULL;
}

struct hd_obj *hd_obj_any(struct hd_objects *o, enum hd_kind kind, uint64_t ctx)
{
    for (size_t i = 0; i < o->nobjs; i++)
        if (hd_obj_kind(o->objs[i].id) == kind && (!ctx || o->objs[i].ctx == ctx))
            return &o->objs[i];
    return NULL;
}

void hd_obj_remove(struct hd_objects *o, uint64_t id)
{
    for (size_t i = 0; i < o->nobjs; i++) {
        if (o->objs[i].id != id)
            continue;
        if (hd_obj_kind(id) == HD_FUNCTION)
            free(o->objs[i].u.fn.params);
        o->objs[i] = o->objs[--o->nobjs];
        return;
    }
}

/* The index of the first allocation with dptr > p. */
static size_t upper_bound(const struct hd_objects *o, uint64_t p)
{
    size_t lo = 0, hi = o->nallocs;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (o->allocs[mid].m.dptr <= p)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

int hd_alloc_add(struct hd_objects *o, const struct hd_mem *m, uint64_t ctx, uint64_t module)
{
    if (o->nallocs >= HD_MAX_ALLOCS ||
        grow((void **)&o->allocs, &o->acap, o->nallocs + 1, sizeof(*o->allocs)) < 0)
        return -ENOMEM;
    size_t i = upper_bound(o, m->dptr);
    memmove(&o->allocs[i + 1], &o->allocs[i], (o->nallocs - i) * sizeof(*o->allocs));
    o->allocs[i].m = *m;
    o->allocs[i].ctx = ctx;
    o->allocs[i].module = module;
    o->nallocs++;
    if (!module)
        o->used += m->size;
    return 0;
}

struct hd_alloc *hd_alloc_find(struct hd_objects *o, uint64_t p, uint64_t n)
{
    size_t i = upper_bound(o, p);
    if (i == 0)
        return NULL;
    struct hd_alloc *a = &o->allocs[i - 1];
    uint64_t off = p - a->m.dptr;
    if (off >= a->m.size || (n && n > a->m.size - off))
        return NULL;
    return a;
}

struct hd_alloc *hd_alloc_any(struct hd_objects *o, uint64_t ctx)
{
    for (size_t i = 0; i < o->nallocs; i++)
        if (!ctx || o->allocs[i].ctx == ctx)
            return &o->allocs[i];
    return NULL;
}

void hd_alloc_remove(struct hd_objects *o, struct hd_alloc *a)
{
    size_t i = (size_t)(a - o->allocs);
    if (!a->module)
        o->used -= a->m.size;
    memmove(&o->allocs[i], &o->allocs[i + 1], (o->nallocs - i - 1) * sizeof(*o->allocs));
    o->nallocs--;
}
