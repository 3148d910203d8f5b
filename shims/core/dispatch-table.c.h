/* dispatch-table.c.h: defines a shim's dispatch table from its generated export
 * table, for the one C file of each shim that includes it. Define first:
 *   VGPU_TABLE     the generated table header (VGPU_ENTRY(FWD|IMPL, index, name) lines,
 *                  and VGPU_TABLE_SIZE), already included once
 *   VGPU_PREFIX    the shim's prefix token (cuda, nvml)
 *   VGPU_UP        bool f(void): brings the backend up, true when it is
 *   VGPU_LOOKUP    void *f(const char *name): the backend's function, or NULL
 *   VGPU_NOT_SUPPORTED, VGPU_NOT_READY: functions returning those codes
 * It defines vgpu_<prefix>_dispatch, the counters, the resolver the trampolines
 * call, and the exported statistics function vgpu_<prefix>_stat(). */
#include "dispatch.h"
#include "shim.h"

#define VGPU_CAT_(a, b) a##b
#define VGPU_CAT(a, b) VGPU_CAT_(a, b)
#define VGPU_SYM(suffix) VGPU_CAT(VGPU_CAT(vgpu_, VGPU_PREFIX), suffix)

static const char *const VGPU_SYM(_names)[VGPU_TABLE_SIZE] = {
#define VGPU_ENTRY(kind, index, name) [index] = #name,
#include VGPU_TABLE
#undef VGPU_ENTRY
};

static const bool VGPU_SYM(_implemented)[VGPU_TABLE_SIZE] = {
#define VGPU_ENTRY(kind, index, name) [index] = VGPU_IS_##kind,
#define VGPU_IS_IMPL true
#define VGPU_IS_FWD false
#include VGPU_TABLE
#undef VGPU_ENTRY
};

/* The trampolines address these by name (see trampolines.S.h). */
__attribute__((visibility("hidden"))) unsigned long VGPU_SYM(_calls)[VGPU_CALL_SHARDS * VGPU_TABLE_SIZE];
extern void *VGPU_SYM(_slots)[VGPU_TABLE_SIZE];
static unsigned long VGPU_SYM(_unserved_calls)[VGPU_TABLE_SIZE];

const struct vgpu_dispatch VGPU_SYM(_dispatch) = {
    .names = VGPU_SYM(_names),
    .implemented = VGPU_SYM(_implemented),
    .n = VGPU_TABLE_SIZE,
    .slots = VGPU_SYM(_slots),
    .calls = VGPU_SYM(_calls),
    .unserved = VGPU_SYM(_unserved_calls),
    .backend_up = VGPU_UP,
    .backend_lookup = VGPU_LOOKUP,
    .not_supported = (void *)VGPU_NOT_SUPPORTED,
    .not_ready = (void *)VGPU_NOT_READY,
};

__attribute__((visibility("hidden"))) void *VGPU_SYM(_resolve)(unsigned index);

void *VGPU_SYM(_resolve)(unsigned index)
{
    return vgpu_dispatch_resolve(&VGPU_SYM(_dispatch), index);
}

/* Statistics for tools and tests: entry i's name, calls, and calls the backend could
 * not serve. Returns 1, or 0 past the last entry. */
VGPU_API int VGPU_SYM(_stat)(unsigned i, const char **name, unsigned long *calls,
                             unsigned long *unserved);

VGPU_API int VGPU_SYM(_stat)(unsigned i, const char **name, unsigned long *calls,
                             unsigned long *unserved)
{
    return vgpu_dispatch_stat(&VGPU_SYM(_dispatch), i, name, calls, unserved);
}

VGPU_API const int vgpu_shim_abi_version = VGPU_SHIM_ABI_VERSION;
