/* dispatch: lazy resolution of forwarded entry points, counters. */
#include "dispatch.h"
#include "log.h"

#include <string.h>

int vgpu_dispatch_find(const struct vgpu_dispatch *d, const char *name)
{
    unsigned lo = 0, hi = d->n;
    while (lo < hi) {
        unsigned mid = lo + (hi - lo) / 2;
        int c = strcmp(name, d->names[mid]);
        if (c == 0)
            return (int)mid;
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return -1;
}

void vgpu_dispatch_unserved(const struct vgpu_dispatch *d, unsigned i, const char *why)
{
    if (__atomic_fetch_add(&d->unserved[i], 1, __ATOMIC_RELAXED) == 0)
        vgpu_log(VGPU_LOG_INFO, "%s: %s (counted)", d->names[i], why);
}

void *vgpu_dispatch_real(const struct vgpu_dispatch *d, unsigned i)
{
    void *fn = __atomic_load_n(&d->slots[i], __ATOMIC_ACQUIRE);
    if (fn)
        return fn;
    if (!d->backend_up())
        return NULL;
    fn = d->backend_lookup(d->names[i]);
    if (fn)
        __atomic_store_n(&d->slots[i], fn, __ATOMIC_RELEASE);
    return fn;
}

void *vgpu_dispatch_resolve(const struct vgpu_dispatch *d, unsigned i)
{
    if (!d->backend_up()) {
        vgpu_dispatch_unserved(d, i, "no backend is up");
        return d->not_ready;
    }
    void *fn = d->backend_lookup(d->names[i]);
    if (!fn) {
        /* The slot keeps its lazy stub so that every such call is counted. */
        vgpu_dispatch_unserved(d, i, "the backend does not provide it: NOT_SUPPORTED");
        return d->not_supported;
    }
    __atomic_store_n(&d->slots[i], fn, __ATOMIC_RELEASE);
    return fn;
}

bool vgpu_dispatch_stat(const struct vgpu_dispatch *d, unsigned i, const char **name,
                        unsigned long *calls, unsigned long *unserved)
{
    if (i >= d->n)
        return false;
    *name = d->names[i];
    *calls = 0;
    for (unsigned s = 0; s < VGPU_CALL_SHARDS; s++)
        *calls += __atomic_load_n(&d->calls[s * d->n + i], __ATOMIC_RELAXED);
    *unserved = __atomic_load_n(&d->unserved[i], __ATOMIC_RELAXED);
    return true;
}
