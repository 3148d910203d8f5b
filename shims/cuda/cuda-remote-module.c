/* cuda-remote-module: modules, functions and launches over the wire. A CUmodule and a
 * CUfunction point at client records: the function's record keeps the parameter
 * layout the daemon gave, by which cuLaunchKernel packs kernelParams; a module's
 * functions are freed when it is unloaded. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cuda-remote.h"

struct rfunc {
    uint64_t id;
    struct rfunc *next;
    unsigned nparams;
    size_t argsize; /* the packed buffer: the end of the last parameter */
    struct vr_param params[];
};

struct rmodule {
    uint64_t id;
    struct rfunc *funcs;
};

/* Guards every module's function list. */
static pthread_mutex_t mod_lock = PTHREAD_MUTEX_INITIALIZER;

/* mod_lock, made fresh in a forked child (another thread may hold it at the fork). */
static void lock_modules(void)
{
    vgpu_remote_fork_reinit(&mod_lock);
    pthread_mutex_lock(&mod_lock);
}

/* ---- modules ---- */

static CUresult load(CUmodule *m, const void *bytes, size_t size)
{
    uint64_t ctx;
    NEED_CONTEXT(ctx);
    if (!m)
        return CUDA_ERROR_INVALID_VALUE;
    if (!size)
        return CUDA_ERROR_INVALID_IMAGE;
    struct rmodule *mod = calloc(1, sizeof(*mod));
    if (!mod)
        return CUDA_ERROR_OUT_OF_MEMORY;
    struct vr_ret ret;
    CUresult r = vgpu_rcu_call(VR_CU_MODULE_LOAD, RARGS(ctx), bytes, size, &ret, NULL, 0, NULL);
    if (r != CUDA_SUCCESS) {
        free(mod);
        return r;
    }
    mod->id = ret.r[0];
    *m = (CUmodule)mod;
    return CUDA_SUCCESS;
}

CUresult RCU(cuModuleLoadData)(CUmodule *m, const void *image)
{
    NEED_INIT();
    if (!image)
        return CUDA_ERROR_INVALID_VALUE;
    const void *start;
    size_t size = vr_image_size(image, &start);
    return load(m, start, size);
}

CUresult RCU(cuModuleLoadDataEx)(CUmodule *m, const void *image, unsigned int n,
                                 CUjit_option *options, void **values)
{
    (void)n, (void)options, (void)values; /* JIT options are not forwarded */
    return RCU(cuModuleLoadData)(m, image);
}

CUresult RCU(cuModuleLoadFatBinary)(CUmodule *m, const void *fatbin)
{
    return RCU(cuModuleLoadData)(m, fatbin);
}

CUresult RCU(cuModuleLoad)(CUmodule *m, const char *fname)
{
    NEED_INIT();
    if (!fname)
        return CUDA_ERROR_INVALID_VALUE;
    int fd = open(fname, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return CUDA_ERROR_FILE_NOT_FOUND;
    struct stat st;
    CUresult bad = fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ? CUDA_ERROR_FILE_NOT_FOUND
                   : st.st_size > (off_t)VR_MAX_IMAGE         ? CUDA_ERROR_INVALID_IMAGE
                                                              : CUDA_SUCCESS;
    if (bad != CUDA_SUCCESS) {
        close(fd);
        return bad;
    }
    size_t size = (size_t)st.st_size, len = 0;
    /* Zeroed past the end, so that reading a header of a short file stays inside. */
    unsigned char *buf = calloc(1, size + 128);
    ssize_t k = 0;
    while (buf && len < size &&
           ((k = read(fd, buf + len, size - len)) > 0 || (k < 0 && errno == EINTR)))
        len += k > 0 ? (size_t)k : 0;
    close(fd);
    if (!buf)
        return CUDA_ERROR_OUT_OF_MEMORY;
    buf[len] = '\0'; /* PTX files have no NUL of their own */
    /* The file's bytes hold the whole image (PTX: with the NUL added above); a wrapper's
     * pointer means nothing in a file. */
    const void *start;
    bool text =
        len >= 4 && memcmp(buf, "\x50\xed\x55\xba", 4) /* fatbin */ && memcmp(buf, "\177ELF", 4);
    size_t want = vr_image_fits(buf, text ? len + 1 : len) ? vr_image_size(buf, &start) : 0;
    CUresult r = load(m, buf, want);
    free(buf);
    return r;
}

static void free_funcs(struct rmodule *mod)
{
    for (struct rfunc *f = mod->funcs, *next; f; f = next) {
        next = f->next;
        free(f);
    }
}

CUresult RCU(cuModuleUnload)(CUmodule m)
{
    uint64_t ctx;
    NEED_CONTEXT(ctx);
    struct rmodule *mod = (struct rmodule *)m;
    if (!mod)
        return CUDA_ERROR_INVALID_HANDLE;
    CUresult r =
        vgpu_rcu_call(VR_CU_MODULE_UNLOAD, RARGS(ctx, mod->id), NULL, 0, NULL, NULL, 0, NULL);
    /* Gone on the daemon's side too when the connection was lost. */
    if (r == CUDA_SUCCESS || r == CUDA_ERROR_DEVICE_UNAVAILABLE) {
        lock_modules();
        free_funcs(mod);
        pthread_mutex_unlock(&mod_lock);
        free(mod);
    }
    return r;
}

/* A name with its NUL, as ops take it; 0 when too long. */
static size_t name_size(const char *name)
{
    size_t n = strnlen(name, VR_MAX_NAME);
    return n < VR_MAX_NAME ? n + 1 : 0;
}

CUresult RCU(cuModuleGetFunction)(CUfunction *out, CUmodule m, const char *name)
{
    uint64_t ctx;
    NEED_CONTEXT(ctx);
    struct rmodule *mod = (struct rmodule *)m;
    if (!out || !name)
        return CUDA_ERROR_INVALID_VALUE;
    if (!mod)
        return CUDA_ERROR_INVALID_HANDLE;
    size_t n = name_size(name);
    if (!n)
        return CUDA_ERROR_NOT_FOUND;
    struct rfunc *f = malloc(sizeof(*f) + VR_MAX_PARAMS * sizeof(struct vr_param));
    if (!f)
        return CUDA_ERROR_OUT_OF_MEMORY;
    struct vr_ret ret;
    size_t got = 0;
    CUresult r = vgpu_rcu_call(VR_CU_MODULE_GET_FUNCTION, RARGS(ctx, mod->id), name, n, &ret,
                               f->params, VR_MAX_PARAMS * sizeof(struct vr_param), &got);
    if (r == CUDA_SUCCESS &&
        (ret.r[1] > VR_MAX_PARAMS || got != ret.r[1] * sizeof(struct vr_param)))
        r = CUDA_ERROR_UNKNOWN; /* a layout that does not match its count */
    if (r != CUDA_SUCCESS) {
        free(f);
        return r;
    }
    f->id = ret.r[0];
    f->nparams = (unsigned)ret.r[1];
    f->argsize = 0;
    for (unsigned i = 0; i < f->nparams; i++) {
        size_t end = (size_t)f->params[i].offset + f->params[i].size;
        f->argsize = end > f->argsize ? end : f->argsize;
    }
    if (f->argsize > VR_MAX_KERNEL_ARG) {
        free(f);
        return CUDA_ERROR_UNKNOWN;
    }
    lock_modules();
    struct rfunc *have = mod->funcs;
    while (have && have->id != f->id)
        have = have->next;
    if (!have) {
        struct rfunc *small = realloc(f, sizeof(*f) + f->nparams * sizeof(struct vr_param));
        have = small ? small : f;
        have->next = mod->funcs;
        mod->funcs = have;
    } else {
        free(f);
    }
    pthread_mutex_unlock(&mod_lock);
    *out = (CUfunction)have;
    return CUDA_SUCCESS;
}

CUresult RCU(cuModuleGetGlobal_v2)(CUdeviceptr *dptr, size_t *bytes, CUmodule m, const char *name)
{
    uint64_t ctx;
    NEED_CONTEXT(ctx);
    struct rmodule *mod = (struct rmodule *)m;
    if (!name)
        return CUDA_ERROR_INVALID_VALUE;
    if (!mod)
        return CUDA_ERROR_INVALID_HANDLE;
    size_t n = name_size(name);
    if (!n)
        return CUDA_ERROR_NOT_FOUND;
    struct vr_ret ret;
    CUresult r =
        vgpu_rcu_call(VR_CU_MODULE_GET_GLOBAL, RARGS(ctx, mod->id), name, n, &ret, NULL, 0, NULL);
    if (r == CUDA_SUCCESS && dptr)
        *dptr = ret.r[0];
    if (r == CUDA_SUCCESS && bytes)
        *bytes = (size_t)ret.r[1];
    return r;
}

/* The packed argument buffer of a launch: kernelParams laid out by f's parameters, or
 * the buffer `extra` names. *buf may be set to heap memory the caller frees. */
static CUresult pack(const struct rfunc *f, void **params, void **extra, unsigned char *small,
                     size_t small_size, const void **ret_buf, size_t *ret_size,
                     unsigned char **heap)
{
    *heap = NULL;
    if (params && extra)
        return CUDA_ERROR_INVALID_VALUE;
    if (extra) {
        const void *buf = NULL;
        size_t size = 0;
        bool have_size = false;
        for (unsigned i = 0; extra[i] != CU_LAUNCH_PARAM_END; i += 2) {
            if (i >= 64)
                return CUDA_ERROR_INVALID_VALUE;
            if (extra[i] == CU_LAUNCH_PARAM_BUFFER_POINTER)
                buf = extra[i + 1];
            else if (extra[i] == CU_LAUNCH_PARAM_BUFFER_SIZE && extra[i + 1]) {
                size = *(const size_t *)extra[i + 1];
                have_size = true;
            } else
                return CUDA_ERROR_INVALID_VALUE;
        }
        if (!buf || !have_size || size > VR_MAX_KERNEL_ARG)
            return CUDA_ERROR_INVALID_VALUE;
        *ret_buf = buf;
        *ret_size = size;
        return CUDA_SUCCESS;
    }
    if (!f->nparams) {
        *ret_buf = NULL;
        *ret_size = 0;
        return CUDA_SUCCESS;
    }
    if (!params)
        return CUDA_ERROR_INVALID_VALUE;
    unsigned char *buf = small;
    if (f->argsize > small_size && !(buf = *heap = calloc(1, f->argsize)))
        return CUDA_ERROR_OUT_OF_MEMORY;
    if (buf == small)
        memset(buf, 0, f->argsize);
    for (unsigned i = 0; i < f->nparams; i++) {
        if (!params[i])
            return CUDA_ERROR_INVALID_VALUE;
        memcpy(buf + f->params[i].offset, params[i], f->params[i].size);
    }
    *ret_buf = buf;
    *ret_size = f->argsize;
    return CUDA_SUCCESS;
}

CUresult RCU(cuLaunchKernel)(CUfunction fn, unsigned int gx, unsigned int gy, unsigned int gz,
                             unsigned int bx, unsigned int by, unsigned int bz, unsigned int shared,
                             CUstream s, void **params, void **extra)
{
    uint64_t ctx;
    NEED_CONTEXT(ctx);
    const struct rfunc *f = (const struct rfunc *)fn;
    if (!f)
        return CUDA_ERROR_INVALID_HANDLE;
    unsigned char small[1024], *heap;
    const void *buf;
    size_t size;
    CUresult r = pack(f, params, extra, small, sizeof(small), &buf, &size, &heap);
    if (r == CUDA_SUCCESS)
        r = vgpu_rcu_call(VR_CU_LAUNCH_KERNEL,
                          RARGS(ctx, f->id, gx | (uint64_t)gy << 32, gz, bx | (uint64_t)by << 32,
                                bz, shared, ID(s)),
                          buf, size, NULL, NULL, 0, NULL);
    free(heap);
    return r;
}

CUresult RCU(cuFuncGetAttribute)(int *value, CUfunction_attribute attrib, CUfunction fn)
{
    uint64_t ctx;
    NEED_CONTEXT(ctx);
    const struct rfunc *f = (const struct rfunc *)fn;
    if (!value)
        return CUDA_ERROR_INVALID_VALUE;
    if (!f)
        return CUDA_ERROR_INVALID_HANDLE;
    struct vr_ret ret;
    CUresult r =
        vgpu_rcu_call(VR_CU_FUNC_GET_ATTRIBUTE, RARGS(ctx, (uint64_t)(int64_t)attrib, f->id), NULL,
                      0, &ret, NULL, 0, NULL);
    if (r == CUDA_SUCCESS)
        *value = (int)ret.r[0];
    return r;
}
