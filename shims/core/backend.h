/* backend: where a shim's calls go (DESIGN §5). A backend answers, for an entry
 * point's name, the function that serves it; CUDA's export tables get an operation
 * of their own so that a backend without a local driver (remote, a later release)
 * can serve them itself. `native` — a real driver on this machine — is the backend
 * this release builds. */
#ifndef VGPU_BACKEND_H
#define VGPU_BACKEND_H

enum vgpu_backend_state {
    VGPU_BACKEND_UP,
    VGPU_BACKEND_DOWN,       /* none configured, or it cannot be reached: no device */
    VGPU_BACKEND_BAD_CONFIG, /* the configuration is bad: the API reports errors */
};

#define VGPU_BACKEND_NO_TABLES (-1)

struct vgpu_backend {
    const char *name;
    /* The backend's function for an entry point, or NULL when it cannot serve it. */
    void *(*lookup)(const struct vgpu_backend *b, const char *name);
    /* cuGetExportTable (CUDA only): a CUresult and the table in *table, or
     * VGPU_BACKEND_NO_TABLES when the backend has none. */
    int (*export_table)(const struct vgpu_backend *b, const void **table, const void *id);
    void *handle; /* native: the driver's dlopen() handle */
};

/* Brings up the configured backend for one API ("CUDA", "NVML"). native_path is the
 * configured driver library for that API ("" when unset) and native_key its
 * configuration key, for messages. Logs why the backend stays down. */
enum vgpu_backend_state vgpu_backend_open(const char *api, const char *native_path,
                                          const char *native_key, struct vgpu_backend *ret);

#endif
