/* hooks: detection of global loader hooks from earlier deployment methods. */
#include "hooks.h"
#include "audit.h"
#include "discover.h"

#include <dirent.h>
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#define CUDA_EXPORTS_OF_A_DRIVER 300
#define NVML_EXPORTS_OF_A_DRIVER 150

enum vp_driver_identity vp_driver_identify(const struct vp_elf *e, bool nvml)
{
    if (e->exports_marker)
        return VP_DRIVER_OURS;
    if (nvml ? e->n_nvml_exports >= NVML_EXPORTS_OF_A_DRIVER
             : e->exports_cu_export_table && e->n_cu_exports >= CUDA_EXPORTS_OF_A_DRIVER)
        return VP_DRIVER_NVIDIA;
    return VP_DRIVER_HANDMADE;
}

const char *vp_driver_identity_name(enum vp_driver_identity id)
{
    static const char *const names[] = {"nvidia-driver", "vgpu-patch-shim", "hand-made-shim"};
    return names[id];
}

const char *vp_hook_kind_name(enum vp_hook_kind k)
{
    static const char *const names[] = {"ld.so.preload", "unit-environment",
                                        "environment-file", "global-environment",
                                        "system-library", "ollama-tree-library"};
    return names[k];
}

static void add(struct vp_hooks *h, enum vp_hook_kind kind, const char *file, unsigned line,
                char *what, const char *why)
{
    h->v = vp_xrealloc(h->v, (h->n + 1) * sizeof(*h->v));
    h->v[h->n++] = (struct vp_hook){kind, vp_xstrdup(file), line, what, vp_xstrdup(why)};
}

/* Calls fn for every line of a file under root (nothing when it cannot be read). */
static void each_line(const char *root, const char *path,
                      void (*fn)(struct vp_hooks *, const char *, unsigned, char *, void *),
                      struct vp_hooks *h, void *ud)
{
    _cleanup_(freep) char *f = vp_rooted(root, path);
    _cleanup_(freep) char *text = NULL;
    if (vp_read_file(f, 1 << 20, &text, NULL) < 0)
        return;
    unsigned n = 0;
    for (char *line = text, *next; line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        n++;
        fn(h, path, n, line + strspn(line, " \t"), ud);
    }
}

static void preload_line(struct vp_hooks *h, const char *file, unsigned n, char *line, void *ud)
{
    (void)ud;
    char *hash = strchr(line, '#'); /* glibc blanks everything from '#' to the end */
    if (hash)
        *hash = '\0';
    if (!*line)
        return;
    struct vp_strv words = {0};
    vp_strv_split(&words, line, " \t:");
    for (size_t i = 0; i < words.n; i++)
        add(h, VP_HOOK_PRELOAD_FILE, file, n, vp_xasprintf("preloads %s", words.v[i]),
            "loaded into every program on the machine (it broke lspci, sshd and cat before); "
            "verification of Ollama means nothing while it is there");
    vp_strv_release(&words);
}

static bool assigns_loader_var(const char *s, const char **var)
{
    static const char *const vars[] = {"LD_PRELOAD=", "LD_AUDIT="};
    for (size_t i = 0; i < VP_ARRAY_SIZE(vars); i++) {
        const char *hit = strstr(s, vars[i]);
        if (hit && (hit == s || strchr(" \t\"'=", hit[-1]))) {
            *var = vars[i];
            return true;
        }
    }
    return false;
}

static void env_line(struct vp_hooks *h, const char *file, unsigned n, char *line, void *ud)
{
    const enum vp_hook_kind *kind = ud;
    const char *var;
    if (*line == '#' || !assigns_loader_var(line, &var))
        return;
    add(h, *kind, file, n, vp_xasprintf("sets %.*s: %s", (int)strlen(var) - 1, var, line),
        *kind == VP_HOOK_GLOBAL_ENV
            ? "a global loader variable reaches every login session and program started from it"
            : "every Ollama process and runner inherits it (LD_PRELOAD of shims broke "
              "libggml-cuda.so loading); it overrides what vgpu-patch verifies");
}

struct unit_ctx {
    const char *root;
    struct vp_strv env_files;
};

static void unit_line(struct vp_hooks *h, const char *file, unsigned n, char *line, void *ud)
{
    struct unit_ctx *u = ud;
    const char *var;
    if (vp_startswith(line, "Environment=") && assigns_loader_var(line, &var)) {
        enum vp_hook_kind k = VP_HOOK_UNIT_ENV;
        env_line(h, file, n, line, &k);
    } else if (vp_startswith(line, "EnvironmentFile=")) {
        const char *f = line + strlen("EnvironmentFile=");
        f += *f == '-';
        if (*f == '/' && strcmp(vp_basename(f), VP_ENV_FILE) != 0)
            vp_strv_push(&u->env_files, f);
    }
}

static void scan_units(const char *root, struct vp_hooks *h)
{
    struct unit_ctx u = {.root = root};
    struct vp_strv files = {0};
    bool has_unit;
    vp_service_files(root, &files, &has_unit);
    for (size_t i = 0; i < files.n; i++)
        if (strcmp(vp_basename(files.v[i]), VP_DROPIN_FILE) != 0) /* ours */
            each_line(root, files.v[i], unit_line, h, &u);
    vp_strv_release(&files);
    enum vp_hook_kind k = VP_HOOK_ENV_FILE;
    for (size_t i = 0; i < u.env_files.n; i++)
        each_line(root, u.env_files.v[i], env_line, h, &k);
    vp_strv_release(&u.env_files);
}

static void scan_global_env(const char *root, struct vp_hooks *h)
{
    enum vp_hook_kind k = VP_HOOK_GLOBAL_ENV;
    each_line(root, "/etc/environment", env_line, h, &k);
    struct vp_strv files = {0};
    vp_root_glob(root, "/etc/profile.d/*.sh", &files);
    for (size_t i = 0; i < files.n; i++)
        each_line(root, files.v[i], env_line, h, &k);
    vp_strv_release(&files);
}

static bool driver_name(const char *name, bool *nvml)
{
    *nvml = vp_startswith(name, "libnvidia-ml.so");
    return *nvml || vp_startswith(name, "libcuda.so");
}

/* Checks one directory (runtime path) for driver names not answered by NVIDIA's
 * driver; recurse levels of subdirectories (for the Ollama tree). */
/* Where a driver-named entry leads, on disk: inside the root, except for a link into
 * the shim dir, a run-time path that --root never re-roots. */
static char *lead(const char *root, const char *rt, const char *shim_dir, char **ret_real)
{
    char target[4096];
    _cleanup_(freep) char *at = vp_rooted(root, rt);
    ssize_t n = readlink(at, target, sizeof(target) - 1);
    if (n > 0 && shim_dir) {
        target[n] = '\0';
        size_t len = strlen(shim_dir);
        if (!strncmp(target, shim_dir, len) && target[len] == '/') {
            *ret_real = vp_xstrdup(target);
            return vp_xstrdup(target);
        }
    }
    if (vp_root_realpath(root, rt, ret_real) < 0)
        return NULL;
    return vp_rooted(root, *ret_real);
}

static void scan_lib_dir(const char *root, const char *dir, enum vp_hook_kind kind,
                         const struct vp_strv *owned, const char *shim_dir, int recurse,
                         struct vp_hooks *h)
{
    _cleanup_(freep) char *d = vp_rooted(root, dir);
    DIR *dh = opendir(d);
    if (!dh)
        return;
    for (struct dirent *de; (de = readdir(dh));) {
        if (de->d_name[0] == '.')
            continue;
        _cleanup_(freep) char *rt = vp_path_join(dir, de->d_name);
        bool nvml;
        if (!driver_name(de->d_name, &nvml)) {
            if (recurse > 0 && de->d_type == DT_DIR)
                scan_lib_dir(root, rt, kind, owned, shim_dir, recurse - 1, h);
            continue;
        }
        if (owned && vp_strv_contains(owned, rt))
            continue;
        _cleanup_(freep) char *real = NULL;
        _cleanup_(freep) char *ondisk = lead(root, rt, shim_dir, &real);
        _cleanup_(vp_elf_freep) struct vp_elf *e = NULL;
        if (ondisk && vp_elf_open(ondisk, &e) < 0)
            e = NULL;
        if (!e) {
            add(h, kind, rt, 0, vp_xasprintf("%s does not lead to a readable library", rt),
                "a leftover link named like the driver; remove it");
            continue;
        }
        enum vp_driver_identity id = vp_driver_identify(e, nvml);
        if (id == VP_DRIVER_NVIDIA || (id == VP_DRIVER_OURS && kind == VP_HOOK_TREE_LIB))
            continue;
        add(h, kind, rt, 0,
            vp_xasprintf("%s -> %s is a %s", rt, real, vp_driver_identity_name(id)),
            kind == VP_HOOK_TREE_LIB
                ? "it shadows the driver inside Ollama's tree, outside vgpu-patch's control"
                : id == VP_DRIVER_OURS
                      ? "the vGPU shim is installed system-wide: every program on the machine "
                        "can load it"
                      : "a non-NVIDIA library answers to the driver's name for every program "
                        "on the machine");
    }
    closedir(dh);
}

static void system_lib_dirs(const char *root, struct vp_strv *dirs)
{
    static const char *const defaults[] = {"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu",
                                           "/lib64", "/usr/lib64", "/lib", "/usr/lib",
                                           "/usr/local/lib"};
    for (size_t i = 0; i < VP_ARRAY_SIZE(defaults); i++)
        vp_strv_push(dirs, defaults[i]);
    struct vp_strv confs = {0};
    vp_strv_push(&confs, "/etc/ld.so.conf");
    for (size_t c = 0; c < confs.n && c < 64; c++) {
        _cleanup_(freep) char *f = vp_rooted(root, confs.v[c]);
        _cleanup_(freep) char *text = NULL;
        if (vp_read_file(f, 1 << 20, &text, NULL) < 0)
            continue;
        for (char *line = text, *next; line; line = next) {
            next = strchr(line, '\n');
            if (next)
                *next++ = '\0';
            char *hash = strchr(line, '#');
            if (hash)
                *hash = '\0';
            line += strspn(line, " \t");
            if (vp_startswith(line, "include") && (line[7] == ' ' || line[7] == '\t')) {
                char *pat = line + 7 + strspn(line + 7, " \t");
                pat[strcspn(pat, " \t\r")] = '\0';
                vp_root_glob(root, pat, &confs);
                continue;
            }
            line[strcspn(line, " \t\r")] = '\0';
            if (*line == '/' && !vp_strv_contains(dirs, line))
                vp_strv_push(dirs, line);
        }
    }
    vp_strv_release(&confs);
}

int vp_hooks_scan(const char *root, const char *prefix, const struct vp_strv *owned,
                  const char *shim_dir, struct vp_hooks *ret)
{
    struct vp_hooks h = {0};
    each_line(root, "/etc/ld.so.preload", preload_line, &h, NULL);
    scan_units(root, &h);
    scan_global_env(root, &h);
    struct vp_strv dirs = {0};
    system_lib_dirs(root, &dirs);
    for (size_t i = 0; i < dirs.n; i++)
        scan_lib_dir(root, dirs.v[i], VP_HOOK_SYSTEM_LIB, owned, shim_dir, 0, &h);
    vp_strv_release(&dirs);
    if (prefix) {
        _cleanup_(freep) char *lib = vp_path_join(prefix, "lib/ollama");
        scan_lib_dir(root, lib, VP_HOOK_TREE_LIB, owned, shim_dir, 2, &h);
    }
    *ret = h;
    return 0;
}

void vp_hooks_release(struct vp_hooks *h)
{
    for (size_t i = 0; i < h->n; i++) {
        free(h->v[i].file);
        free(h->v[i].what);
        free(h->v[i].why);
    }
    free(h->v);
    *h = (struct vp_hooks){0};
}
