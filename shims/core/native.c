/* native: dlopen the real driver, refusing our own shims. */
#include "native.h"
#include "shim.h"

#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

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
    /* Under the audit fallback, a program's own dlopen of this very path may have been
     * answered with the shim, and the loader keeps that path as a name of the shim: the
     * same spelling gets the shim back before any search. A spelling nobody else uses
     * ("dir/./file") is matched by the file's identity instead: the real driver. */
    if (dlsym(h, "vgpu_shim_abi_version")) {
        const char *slash = strrchr(path, '/');
        char alt[PATH_MAX];
        int k = snprintf(alt, sizeof(alt), "%.*s/./%s", (int)(slash - path), path, slash + 1);
        void *again = k > 0 && (size_t)k < sizeof(alt)
                          ? dlopen(alt, RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND)
                          : NULL;
        if (again && !dlsym(again, "vgpu_shim_abi_version")) {
            dlclose(h);
            return again;
        }
        if (again)
            dlclose(again);
    }
    if (dlsym(h, "vgpu_shim_abi_version")) {
        snprintf(msg, n,
                 "%s is a vgpu shim, not the real driver (it exports vgpu_shim_abi_version)", path);
        dlclose(h);
        return NULL;
    }
    return h;
}
