/* shim-table.c.h: what each shim has of its own but writes the same way, for the one
 * C file of each shim that includes it. Define first:
 *   VGPU_TABLE        the generated table header (VGPU_ENTRY(FWD|IMPL, index, name)
 *                     lines, and VGPU_TABLE_SIZE), already included once
 *   VGPU_PREFIX       the shim's prefix token (cuda, nvml)
 *   VGPU_API_NAME     "CUDA" or "NVML", for messages
 *   VGPU_NATIVE_PATH  the configured driver for the native backend, from `c`
 *                     (const struct vgpu_config *), and VGPU_NATIVE_KEY its key name
 *   VGPU_NOT_SUPPORTED, VGPU_NOT_READY: the API's codes for "the backend lacks it"
 *                     and "no backend is up"
 *   VGPU_ON_UP(c)     optional: runs once when the backend came up
 * It defines vgpu_<prefix>_dispatch (names, counters, slots), the resolver the
 * trampolines call, the backend state (vgpu_<prefix>_state(), _backend_up(),
 * _backend()), vgpu_<prefix>_unserved(), and the exports vgpu_<prefix>_stat() and
 * vgpu_shim_abi_version. */
#include <pthread.h>

#include "backend.h"
#include "config.h"
#include "dispatch.h"
#include "shim.h"

#define VGPU_CAT_(a, b)  a##b
#define VGPU_CAT(a, b)   VGPU_CAT_(a, b)
#define VGPU_SYM(suffix) VGPU_CAT(VGPU_CAT(vgpu_, VGPU_PREFIX), suffix)

/* The backend, brought up once at the first call that needs it. */
static pthread_once_t vgpu_once = PTHREAD_ONCE_INIT;
static enum vgpu_backend_state vgpu_state;
static struct vgpu_backend vgpu_backend;

static void vgpu_bring_up(void)
{
    const struct vgpu_config *c = vgpu_config();
    vgpu_state = vgpu_backend_open(VGPU_API_NAME, VGPU_NATIVE_PATH, VGPU_NATIVE_KEY, &vgpu_backend);
#ifdef VGPU_ON_UP
    if (vgpu_state == VGPU_BACKEND_UP)
        VGPU_ON_UP(c);
#endif
}

enum vgpu_backend_state VGPU_SYM(_state)(void)
{
    pthread_once(&vgpu_once, vgpu_bring_up);
    return vgpu_state;
}

bool VGPU_SYM(_backend_up)(void)
{
    return VGPU_SYM(_state)() == VGPU_BACKEND_UP;
}

const struct vgpu_backend *VGPU_SYM(_backend)(void)
{
    return VGPU_SYM(_backend_up)() ? &vgpu_backend : NULL;
}

static void *vgpu_lookup(const char *name)
{
    return vgpu_backend.lookup(&vgpu_backend, name);
}

static int vgpu_not_supported(void)
{
    return VGPU_NOT_SUPPORTED;
}

static int vgpu_not_ready(void)
{
    return VGPU_NOT_READY;
}

static const char *const VGPU_SYM(_names)[VGPU_TABLE_SIZE] = {
#define VGPU_ENTRY(kind, index, name) [index] = #name,
#include VGPU_TABLE
#undef VGPU_ENTRY
};

static const bool VGPU_SYM(_implemented)[VGPU_TABLE_SIZE] = {
#define VGPU_ENTRY(kind, index, name) [index] = VGPU_IS_##kind,
#define VGPU_IS_IMPL                  true
#define VGPU_IS_FWD                   false
#include VGPU_TABLE
#undef VGPU_ENTRY
};

/* The trampolines address these by name (see trampolines.S.h). */
__attribute__((visibility("hidden"))) unsigned long
    VGPU_SYM(_calls)[VGPU_CALL_SHARDS * VGPU_TABLE_SIZE];
extern void *VGPU_SYM(_slots)[VGPU_TABLE_SIZE];
static unsigned long VGPU_SYM(_unserved_calls)[VGPU_TABLE_SIZE];

const struct vgpu_dispatch VGPU_SYM(_dispatch) = {
    .names = VGPU_SYM(_names),
    .implemented = VGPU_SYM(_implemented),
    .n = VGPU_TABLE_SIZE,
    .slots = VGPU_SYM(_slots),
    .calls = VGPU_SYM(_calls),
    .unserved = VGPU_SYM(_unserved_calls),
    .backend_up = VGPU_SYM(_backend_up),
    .backend_lookup = vgpu_lookup,
    .not_supported = (void *)vgpu_not_supported,
    .not_ready = (void *)vgpu_not_ready,
};

int VGPU_SYM(_unserved)(unsigned index)
{
    bool up = VGPU_SYM(_backend_up)();
    vgpu_dispatch_unserved(&VGPU_SYM(_dispatch), index,
                           up ? "the backend does not provide it: NOT_SUPPORTED"
                              : "no backend is up");
    return up ? VGPU_NOT_SUPPORTED : VGPU_NOT_READY;
}

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
