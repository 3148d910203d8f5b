/* vgpu-probe: loads libraries in a child of vgpu-patch and reports which file answers
 * the driver sonames — the load probe of DESIGN §6. Executables cannot be dlopen()ed;
 * they are probed with libvgpu-probe-audit.so instead.
 *   vgpu-probe check-shim PATH SYMBOL...     dlopen PATH, require each symbol
 *   vgpu-probe load [--preload PATH]... LIB  preload like DT_NEEDED, dlopen LIB, report
 *   vgpu-probe request NAME...              dlopen each NAME as a program would (bare or
 *                                           absolute), report the file that answered
 *   vgpu-probe driver CUDA-SHIM NVML-SHIM   what the shims' backend reports (doctor)
 * Output lines: "ok", "error MESSAGE", "answer SONAME|NAME PATH|none", "obj PATH". */
#include <dlfcn.h>
#include <link.h>
#include <stdio.h>
#include <string.h>

static const char *const sonames[] = {"libcuda.so.1", "libnvidia-ml.so.1"};

static int check_shim(int argc, char **argv)
{
    void *h = dlopen(argv[0], RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        printf("error %s\n", dlerror());
        return 1;
    }
    for (int i = 1; i < argc; i++)
        if (!dlsym(h, argv[i])) {
            printf("error %s does not export %s\n", argv[0], argv[i]);
            return 1;
        }
    printf("ok\n");
    return 0;
}

static int load(int argc, char **argv)
{
    int i = 0;
    for (; i + 1 < argc && strcmp(argv[i], "--preload") == 0; i += 2)
        if (!dlopen(argv[i + 1], RTLD_NOW | RTLD_GLOBAL)) {
            printf("error %s\n", dlerror());
            return 1;
        }
    if (i + 1 != argc) {
        printf("error usage: vgpu-probe load [--preload PATH]... LIB\n");
        return 2;
    }
    void *h = dlopen(argv[i], RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        printf("error %s\n", dlerror());
        return 1;
    }
    for (size_t k = 0; k < sizeof(sonames) / sizeof(sonames[0]); k++) {
        void *d = dlopen(sonames[k], RTLD_LAZY | RTLD_NOLOAD);
        struct link_map *m = NULL;
        if (d && dlinfo(d, RTLD_DI_LINKMAP, &m) == 0 && m)
            printf("answer %s %s\n", sonames[k], m->l_name);
        else
            printf("answer %s none\n", sonames[k]);
    }
    struct link_map *m = NULL;
    if (dlinfo(h, RTLD_DI_LINKMAP, &m) == 0 && m) {
        while (m->l_prev)
            m = m->l_prev;
        for (; m; m = m->l_next)
            if (m->l_name && m->l_name[0])
                printf("obj %s\n", m->l_name);
    }
    printf("ok\n");
    return 0;
}

/* The audit mechanism's proof: each name a release asks for, answered by the shims. */
static int request(int argc, char **argv)
{
    for (int i = 0; i < argc; i++) {
        void *h = dlopen(argv[i], RTLD_LAZY | RTLD_LOCAL);
        struct link_map *m = NULL;
        if (h && dlinfo(h, RTLD_DI_LINKMAP, &m) == 0 && m)
            printf("answer %s %s\n", argv[i], m->l_name);
        else
            printf("answer %s none\n", argv[i]);
    }
    printf("ok\n");
    return 0;
}

typedef int (*cu_int_fn)(int *);
typedef int (*cu_init_fn)(unsigned);
typedef int (*cu_name_fn)(char *, int, int);
typedef int (*cu_attr_fn)(int *, int, int);
typedef int (*nv_init_fn)(void);
typedef int (*nv_str_fn)(char *, unsigned);

/* dlsym into a typed pointer (the union keeps the prototype, libnvidia-container style). */
#define SYM(h, type, name) ((union { void *p; type fn; }){.p = dlsym(h, name)}).fn

/* What a program would learn from the driver through the shims: the CUDA and NVML
 * versions and the first device, as Ollama's discovery asks for them. */
static int driver(const char *cuda, const char *nvml)
{
    void *c = dlopen(cuda, RTLD_NOW | RTLD_GLOBAL);
    if (!c) {
        printf("error %s\n", dlerror());
        return 1;
    }
    cu_init_fn init = SYM(c, cu_init_fn, "cuInit");
    cu_int_fn version = SYM(c, cu_int_fn, "cuDriverGetVersion");
    cu_int_fn count = SYM(c, cu_int_fn, "cuDeviceGetCount");
    cu_name_fn name = SYM(c, cu_name_fn, "cuDeviceGetName");
    cu_attr_fn attr = SYM(c, cu_attr_fn, "cuDeviceGetAttribute");
    int v = 0, n = 0, major = 0, minor = 0;
    char dev[256] = "";
    int r = init ? init(0) : -1;
    printf("cuda init %d\n", r);
    if (version && version(&v) == 0)
        printf("cuda driver_version %d\n", v);
    if (r == 0 && count && count(&n) == 0) {
        printf("cuda devices %d\n", n);
        if (n > 0 && name && name(dev, sizeof(dev), 0) == 0 && attr &&
            attr(&major, 75, 0) == 0 && attr(&minor, 76, 0) == 0)
            printf("cuda device0 %d.%d %s\n", major, minor, dev);
    }
    void *nv = dlopen(nvml, RTLD_NOW | RTLD_GLOBAL);
    nv_init_fn ninit = nv ? SYM(nv, nv_init_fn, "nvmlInit_v2") : NULL;
    nv_str_fn nver = nv ? SYM(nv, nv_str_fn, "nvmlSystemGetDriverVersion") : NULL;
    char dv[96] = "";
    r = ninit ? ninit() : -1;
    printf("nvml init %d\n", r);
    if (r == 0 && nver && nver(dv, sizeof(dv)) == 0)
        printf("nvml driver_version %s\n", dv);
    printf("ok\n");
    return 0;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc >= 4 && strcmp(argv[1], "check-shim") == 0)
        return check_shim(argc - 2, argv + 2);
    if (argc >= 3 && strcmp(argv[1], "load") == 0)
        return load(argc - 2, argv + 2);
    if (argc >= 3 && strcmp(argv[1], "request") == 0)
        return request(argc - 2, argv + 2);
    if (argc == 4 && strcmp(argv[1], "driver") == 0)
        return driver(argv[2], argv[3]);
    fprintf(stderr, "usage: vgpu-probe check-shim PATH SYMBOL... | load [--preload PATH]... LIB"
                    " | request NAME... | driver CUDA-SHIM NVML-SHIM\n");
    return 2;
}
