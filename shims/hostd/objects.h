/* objects: one client's handles (contexts, modules, functions, streams, events) and
 * device allocations, under the opaque ids the client sees. A session owns its tables
 * and uses them from its own thread only. Ids are (kind << 56 | a daemon-wide counter):
 * never 0, never reused, and an id of another kind or client is simply not found. */
#ifndef VGPU_HOSTD_OBJECTS_H
#define VGPU_HOSTD_OBJECTS_H

#include <stddef.h>
#include <stdint.h>

#include "device.h"

enum hd_kind { HD_CTX = 1, HD_MODULE, HD_FUNCTION, HD_STREAM, HD_EVENT };

/* What one client may hold (vgpu-hostd(8), LIMITS): handles of all kinds, and device
 * allocations (module globals included). Beyond them an add fails as out of memory. */
#define HD_MAX_OBJECTS 65536u
#define HD_MAX_ALLOCS  65536u

struct hd_obj {
    uint64_t id;
    uint64_t ctx; /* the owning context's id (a context: its own) */
    void *h;      /* the backend's handle */
    union {
        struct {
            int dev;       /* the client's ordinal */
            unsigned refs; /* primary: retain count */
            int primary;   /* this is the client's primary context of dev */
        } ctx;
        struct {
            size_t bytes; /* the image's, counted against HD_MAX_IMAGE_BYTES */
        } mod;
        struct {
            uint64_t module;
            unsigned nparams;
            struct vr_param *params; /* owned */
            size_t argsize;
        } fn;
    } u;
};

struct hd_alloc {
    struct hd_mem m;
    uint64_t ctx;
    uint64_t module; /* a module's global (not the client's to free): its module's id */
};

struct hd_objects {
    struct hd_obj *objs;
    size_t nobjs, cap;
    struct hd_alloc *allocs; /* sorted by m.dptr */
    size_t nallocs, acap;
    uint64_t used; /* bytes of all allocations */
};

void hd_objects_init(struct hd_objects *o);
/* Frees the tables (the objects themselves must have been released by the caller). */
void hd_objects_release(struct hd_objects *o);

enum hd_kind hd_obj_kind(uint64_t id);
/* A new object with a fresh id; the pointer lives until the next add or remove.
 * NULL when out of memory or at HD_MAX_OBJECTS. */
struct hd_obj *hd_obj_add(struct hd_objects *o, enum hd_kind kind, uint64_t ctx, void *h);
/* The object of that kind with that id, or NULL. */
struct hd_obj *hd_obj_find(struct hd_objects *o, enum hd_kind kind, uint64_t id);
/* Some object of kind belonging to ctx (ctx 0: any), or NULL: for teardown loops. */
struct hd_obj *hd_obj_any(struct hd_objects *o, enum hd_kind kind, uint64_t ctx);
/* Forgets the object (and a function's parameter list). */
void hd_obj_remove(struct hd_objects *o, uint64_t id);

/* Records an allocation of ctx, or with module != 0 a module global's range (not
 * counted in used). 0 or -ENOMEM (also at HD_MAX_ALLOCS). */
int hd_alloc_add(struct hd_objects *o, const struct hd_mem *m, uint64_t ctx, uint64_t module);
/* The allocation holding all of [p, p + n) (n 0: the byte at p), or NULL. */
struct hd_alloc *hd_alloc_find(struct hd_objects *o, uint64_t p, uint64_t n);
/* Some allocation of ctx (0: any), or NULL. */
struct hd_alloc *hd_alloc_any(struct hd_objects *o, uint64_t ctx);
void hd_alloc_remove(struct hd_objects *o, struct hd_alloc *a);

#endif
