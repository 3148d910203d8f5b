/* backend: choose and open the configured backend: native (a driver library here) or
 * remote (vgpu-hostd, through each shim's table of remote entry points). */
#include "backend.h"
#include "config.h"
#include "log.h"
#include "native.h"
#include "remote.h"

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

static void *native_lookup(const struct vgpu_backend *b, const char *name)
{
    return dlsym(b->handle, name);
}

typedef int (*export_table_fn)(const void **table, const void *id);

/* The native driver serves its own tables: what goes through them escapes the shim's
 * policy (DESIGN §5; cudart cannot work without them). */
static int native_export_table(const struct vgpu_backend *b, const void **table, const void *id)
{
    union {
        void *p;
        export_table_fn fn;
    } u = {.p = dlsym(b->handle, "cuGetExportTable")};
    return u.p ? u.fn(table, id) : VGPU_BACKEND_NO_TABLES;
}

/* The shim's remote entry point called name (binary search), or NULL. */
static void *remote_lookup(const struct vgpu_backend *b, const char *name)
{
    (void)b;
    unsigned lo = 0, hi = vgpu_remote_nfns;
    while (lo < hi) {
        unsigned mid = lo + (hi - lo) / 2;
        int c = strcmp(name, vgpu_remote_fns[mid].name);
        if (c == 0)
            return vgpu_remote_fns[mid].fn;
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

/* Export tables cannot cross the wire (DESIGN §5): cudart is out of the remote scope. */
static int remote_export_table(const struct vgpu_backend *b, const void **table, const void *id)
{
    (void)b, (void)table, (void)id;
    return VGPU_BACKEND_NO_TABLES;
}

static enum vgpu_backend_state remote_open(const char *api, struct vgpu_backend *ret)
{
    struct vgpu_remote_info info;
    char msg[1024];
    if (vgpu_remote_open(strcmp(api, "NVML") ? VR_API_CUDA : VR_API_NVML, &info, msg, sizeof(msg)) <
        0) {
        vgpu_log(VGPU_LOG_WARN, "backend remote: %s: reporting no %s device", msg, api);
        return VGPU_BACKEND_DOWN;
    }
    *ret = (struct vgpu_backend){
        .name = "remote",
        .lookup = remote_lookup,
        .export_table = remote_export_table,
    };
    vgpu_log(VGPU_LOG_INFO, "backend remote: %s (%s), %u device%s", info.endpoint, info.daemon,
             info.devices, info.devices == 1 ? "" : "s");
    return VGPU_BACKEND_UP;
}

enum vgpu_backend_state vgpu_backend_open(const char *api, const char *native_path,
                                          const char *native_key, struct vgpu_backend *ret)
{
    const struct vgpu_config *c = vgpu_config();
    if (!c->ok)
        return VGPU_BACKEND_BAD_CONFIG;
    switch (c->backend) {
    case VGPU_BACKEND_NONE:
        vgpu_log(VGPU_LOG_INFO, "backend none: reporting no %s device", api);
        return VGPU_BACKEND_DOWN;
    case VGPU_BACKEND_REMOTE:
        return remote_open(api, ret);
    case VGPU_BACKEND_NATIVE:
        break;
    }
    if (!native_path[0]) {
        vgpu_log(VGPU_LOG_WARN,
                 "backend native needs %s (the real %s driver library): "
                 "reporting no %s device",
                 native_key, api, api);
        return VGPU_BACKEND_DOWN;
    }
    char msg[PATH_MAX + 256];
    void *h = vgpu_native_open(native_path, msg, sizeof(msg));
    if (!h) {
        vgpu_log(VGPU_LOG_WARN, "backend native: %s: reporting no %s device", msg, api);
        return VGPU_BACKEND_DOWN;
    }
    *ret = (struct vgpu_backend){
        .name = "native",
        .lookup = native_lookup,
        .export_table = native_export_table,
        .handle = h,
    };
    vgpu_log(VGPU_LOG_INFO, "backend native: %s", native_path);
    return VGPU_BACKEND_UP;
}
