/* libvgpu-audit.so: the LD_AUDIT fallback (DESIGN §4, §8). For routes that cannot be
 * fixed on disk — runners extracted to a temp dir, absolute-path dlopens of the real
 * driver, read-only images — it answers every request for the driver libraries with
 * the shims: at LA_SER_ORIG, so the shim is loaded under its own path (and also an
 * absolute-path dlopen, which gets no other search call, is redirected). Every other
 * name is returned unchanged; nothing else is hooked (no la_symbind, no PLT hooks).
 *
 * It runs in the loader's audit namespace with its own libc, under the loader lock,
 * before the program's libc is initialised: it re-enters nothing (no dlopen, NSS or
 * locale), uses static storage, never writes to stdout, and does its little setup only
 * when a driver name is first requested, so a program that never asks for one pays
 * nothing but the load of this module. */
#include <fcntl.h>
#include <limits.h>
#include <link.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vgpu-conf.h"

#define API __attribute__((visibility("default")))

enum driver { NOT_A_DRIVER = -1, CUDA, NVML, NDRIVERS };

static const struct {
    const char *stem;  /* "libcuda.so": also .so.1 and .so.<version> */
    const char *shim;  /* its stand-in in the shim dir */
} drivers[NDRIVERS] = {
    [CUDA] = {"libcuda.so", "libvgpu-cuda.so.1"},
    [NVML] = {"libnvidia-ml.so", "libvgpu-nvml.so.1"},
};

/* Objects la_objopen() recognised as our shims: their own loads (the native backend's
 * dlopen of the real driver) are never redirected. */
#define SHIM_COOKIE ((uintptr_t)0x76677075) /* "vgpu" */

static bool set_up;
static char shim_path[NDRIVERS][PATH_MAX];
static bool shim_ok[NDRIVERS];
static dev_t shim_dev[NDRIVERS];
static ino_t shim_ino[NDRIVERS];
static bool warned[NDRIVERS];
static char shim_dir[PATH_MAX];
static const char *why_not; /* why there is no shim dir */

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* One line on stderr with one write(): never stdout, never stdio buffers. */
static void say(const char *fmt, ...)
{
    char buf[PATH_MAX + 256];
    int n = snprintf(buf, sizeof(buf), "vgpu-audit[%d]: ", (int)getpid());
    va_list ap;
    va_start(ap, fmt);
    if (n > 0 && (size_t)n < sizeof(buf))
        n += vsnprintf(buf + n, sizeof(buf) - (size_t)n, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n >= sizeof(buf) - 1)
        n = (int)sizeof(buf) - 2;
    buf[n++] = '\n';
    ssize_t w = write(STDERR_FILENO, buf, (size_t)n);
    (void)w;
}

static void conf_line(void *ctx, unsigned lineno, const char *key, const char *value)
{
    (void)ctx, (void)lineno;
    if (key && !strcmp(key, "shim_dir") && !vgpu_conf_check(VGPU_CONF_SHIM_DIR, value))
        snprintf(shim_dir, sizeof(shim_dir), "%s", value);
}

/* shim_dir from /etc/vgpu/vgpu.conf, when VGPU_SHIM_DIR is not set. */
static void read_conf(void)
{
    static char text[64 * 1024];
    int fd = open(VGPU_CONF_PATH, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0)
        return;
    struct stat st;
    ssize_t n = 0;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode))
        n = read(fd, text, sizeof(text) - 1);
    close(fd);
    if (n <= 0)
        return;
    text[n] = '\0';
    vgpu_conf_scan(text, conf_line, NULL);
}

static void setup(void)
{
    set_up = true;
    const char *env = secure_getenv("VGPU_SHIM_DIR");
    if (env && *env) {
        if (vgpu_conf_check(VGPU_CONF_SHIM_DIR, env)) {
            why_not = "VGPU_SHIM_DIR is not an absolute path";
            return;
        }
        snprintf(shim_dir, sizeof(shim_dir), "%s", env);
    } else {
        read_conf();
        if (!shim_dir[0]) {
            why_not = "no shim dir: set VGPU_SHIM_DIR or shim_dir in " VGPU_CONF_PATH;
            return;
        }
    }
    for (int d = 0; d < NDRIVERS; d++) {
        int n = snprintf(shim_path[d], sizeof(shim_path[d]), "%s/%s", shim_dir, drivers[d].shim);
        struct stat st;
        shim_ok[d] = n > 0 && (size_t)n < sizeof(shim_path[d]) && stat(shim_path[d], &st) == 0 &&
                     S_ISREG(st.st_mode);
        if (shim_ok[d]) {
            shim_dev[d] = st.st_dev;
            shim_ino[d] = st.st_ino;
        }
    }
}

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

/* Which driver a file name asks for: <stem>, <stem>.1, or <stem>.<version> (digits and
 * dots, e.g. libcuda.so.580.65.06). */
static enum driver classify(const char *name)
{
    const char *base = base_name(name);
    for (int d = 0; d < NDRIVERS; d++) {
        size_t n = strlen(drivers[d].stem);
        if (strncmp(base, drivers[d].stem, n))
            continue;
        const char *v = base + n;
        if (!*v)
            return (enum driver)d;
        if (*v++ != '.' || !*v)
            return NOT_A_DRIVER;
        for (; *v; v++)
            if ((*v < '0' || *v > '9') && *v != '.')
                return NOT_A_DRIVER;
        return (enum driver)d;
    }
    return NOT_A_DRIVER;
}

API unsigned int la_version(unsigned int version)
{
    (void)version;
    /* 1: the LAV_CURRENT of glibc 2.28–2.34; every later loader accepts it too. */
    return 1;
}

/* Marks our shims (by name, or by file identity for a link to one). */
API unsigned int la_objopen(struct link_map *map, Lmid_t lmid, uintptr_t *cookie)
{
    (void)lmid;
    const char *base = base_name(map->l_name);
    bool ours = false;
    for (int d = 0; d < NDRIVERS; d++)
        ours = ours || !strcmp(base, drivers[d].shim);
    if (!ours && classify(base) != NOT_A_DRIVER) {
        if (!set_up)
            setup();
        struct stat st;
        for (int d = 0; d < NDRIVERS && !ours; d++)
            ours = shim_ok[d] && stat(map->l_name, &st) == 0 && st.st_dev == shim_dev[d] &&
                   st.st_ino == shim_ino[d];
    }
    if (ours)
        *cookie = SHIM_COOKIE;
    return 0; /* no symbol binding callbacks */
}

API char *la_objsearch(const char *name, uintptr_t *cookie, unsigned int flag)
{
    if (flag != LA_SER_ORIG || (cookie && *cookie == SHIM_COOKIE))
        return (char *)name;
    enum driver d = classify(name);
    if (d == NOT_A_DRIVER)
        return (char *)name;
    if (!set_up)
        setup();
    if (shim_ok[d])
        return shim_path[d];
    if (!warned[d]) {
        warned[d] = true;
        if (why_not)
            say("%s: %s; it loads unchanged", name, why_not);
        else
            say("%s: the shim %s is missing; it loads unchanged", name, shim_path[d]);
    }
    return (char *)name;
}
