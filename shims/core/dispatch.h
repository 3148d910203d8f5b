/* dispatch: the table behind each shim's exports. Every exported entry point has an
 * index (its place in the sorted export table). Forwarded entry points are generated
 * trampolines — `incq calls[i]; jmp *slots[i]` — whose slot starts at a lazy stub;
 * the first call lands in vgpu_dispatch_resolve(), which brings the backend up and
 * stores the backend's function in the slot, so later calls cost one counter
 * increment and one indirect jump. Entry points the shim implements in C count their
 * calls themselves and reach the backend through vgpu_dispatch_real(). */
#ifndef VGPU_DISPATCH_H
#define VGPU_DISPATCH_H

#include <stdbool.h>

#include "dispatch-shards.h"

struct vgpu_dispatch {
    const char *const *names; /* sorted with strcmp */
    const bool *implemented;  /* per entry: implemented in C (policy), not forwarded */
    unsigned n;
    void **slots;            /* read by the trampolines */
    unsigned long *calls;    /* [VGPU_CALL_SHARDS][n], incremented by the trampolines */
    unsigned long *unserved; /* calls the backend could not serve (atomic) */
    /* Brings the backend up once; true when it is up. */
    bool (*backend_up)(void);
    /* The backend's function for an entry point, or NULL. */
    void *(*backend_lookup)(const char *name);
    void *not_supported; /* returns the API's NOT_SUPPORTED code */
    void *not_ready;     /* returns the API's "not initialized" code */
};

/* Counts a call to implemented entry point `index` of dispatch table d. */
#define VGPU_DISPATCH_COUNT(d, index) __atomic_fetch_add(&(d).calls[index], 1, __ATOMIC_RELAXED)

/* Calls the backend's own `name` (entry `index` of d) with the shim's prototype of
 * it, or returns unserved(index) when the backend has none. */
#define VGPU_DISPATCH_FORWARD(d, index, unserved, name, ...)                                       \
    ({                                                                                             \
        __typeof__(&name) fn_ = (__typeof__(&name))vgpu_dispatch_real(&(d), index);                \
        fn_ ? fn_(__VA_ARGS__) : unserved(index);                                                  \
    })

/* The index of name, or -1. */
int vgpu_dispatch_find(const struct vgpu_dispatch *d, const char *name);
/* Called by the lazy stubs: the function a forwarded call to entry i goes to. */
void *vgpu_dispatch_resolve(const struct vgpu_dispatch *d, unsigned i);
/* The backend's function for entry i (cached), or NULL when the backend is down or
 * lacks it; for the C implementations. */
void *vgpu_dispatch_real(const struct vgpu_dispatch *d, unsigned i);
/* Counts a call to entry i that the backend could not serve (and logs the first). */
void vgpu_dispatch_unserved(const struct vgpu_dispatch *d, unsigned i, const char *why);
/* Statistics of entry i for the stats API; returns false past the end. */
bool vgpu_dispatch_stat(const struct vgpu_dispatch *d, unsigned i, const char **name,
                        unsigned long *calls, unsigned long *unserved);

#endif
