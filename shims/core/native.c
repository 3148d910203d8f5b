/* native: dlopen the real driver, refusing our own shims. */
#include "native.h"
#include "shim.h"

#include <dlfcn.h>
#include <stdio.h>

void *vgpu_native_open(const char *path, char *msg, size_t n)
{
    if (path[0] != '/') {
        snprintf(msg, n, "'%s' is not an absolute path", path);
        return NULL;
    }
    /* DEEPBIND: the driver's own symbol references resolve inside the driver first,
     * not to the shim that already owns libcuda.so.1 in the global scope. LOCAL: its
     * symbols never become visible to the program. The absolute path never matches
     * our soname, so dlopen cannot hand the shim back. */
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
    if (!h) {
        const char *e = dlerror();
        snprintf(msg, n, "cannot load %s: %s", path, e ? e : "unknown error");
        return NULL;
    }
    if (dlsym(h, "vgpu_shim_abi_version")) {
        snprintf(msg, n,
                 "%s is a vgpu shim, not the real driver (it exports vgpu_shim_abi_version)", path);
        dlclose(h);
        return NULL;
    }
    return h;
}
