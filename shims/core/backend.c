/* backend: choose and open the configured backend; the native one. */
#include "backend.h"
#include "config.h"
#include "log.h"
#include "native.h"

#include <dlfcn.h>
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

enum vgpu_backend_state vgpu_backend_open(const char *api, const char *native_path,
                                          const char *native_key, struct vgpu_backend *ret)
{
    const struct vgpu_config *c = vgpu_config();
    if (!c->ok)
        return VGPU_BACKEND_BAD_CONFIG;
    switch (c->backend) {
    case VGPU_BACKEND_UNSET:
        vgpu_log(VGPU_LOG_WARN,
                 "no backend is configured (set backend in %s, or VGPU_BACKEND): "
                 "reporting no %s device",
                 c->file[0] ? c->file : "/etc/vgpu/vgpu.conf", api);
        return VGPU_BACKEND_DOWN;
    case VGPU_BACKEND_NONE:
        vgpu_log(VGPU_LOG_INFO, "backend none: reporting no %s device", api);
        return VGPU_BACKEND_DOWN;
    case VGPU_BACKEND_REMOTE:
        vgpu_log(VGPU_LOG_WARN,
                 "the remote backend (vgpu-hostd) is not available in this build: "
                 "reporting no %s device",
                 api);
        return VGPU_BACKEND_DOWN;
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
