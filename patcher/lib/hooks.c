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
    static const char *const names[] = {"ld.so.preload",   "unit-environment",
                                        "environment-file", "global-environment",
                                        "system-library",  "ollama-tree-library",
                                        "exec-wrapper"};
    return names[k];
}

bool vp_hooks_driver_name(const char *name, bool *nvml)
{
    *nvml = vp_startswith(name, "libnvidia-ml.so");
    return *nvml || vp_startswith(name, "libcuda.so");
}

/* What the scan of the files needs. */
struct scan {
    const char *root;
    struct vp_hooks *h;
    enum vp_hook_kind kind; /* of the assignments found in the file */
    bool in_unit;           /* the file is ollama.service itself */
    unsigned reset_line;    /* the last `ExecStart=` reset seen in the file */
    struct vp_strv env_files;
};

static struct vp_hook *add(struct scan *s, enum vp_hook_kind kind, const char *file,
                           unsigned line, char *what, const char *why)
{
    struct vp_hooks *h = s->h;
    h->v = vp_xrealloc(h->v, (h->n + 1) * sizeof(*h->v));
    h->v[h->n] = (struct vp_hook){kind, vp_xstrdup(file), line, what, vp_xstrdup(why)};
    h->v[h->n].in_unit = s->in_unit;
    return &h->v[h->n++];
}

/* Calls fn for every line of a file under root (nothing when it cannot be read). */
static void each_line(struct scan *s, const char *path,
                      void (*fn)(struct scan *, const char *, unsigned, char *))
{
    _cleanup_(freep) char *f = vp_rooted(s->root, path);
    _cleanup_(freep) char *text = NULL;
    if (vp_read_file(f, 1 << 20, &text, NULL) < 0)
        return;
    unsigned n = 0;
    s->reset_line = 0;
    for (char *line = text, *next; line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        n++;
        fn(s, path, n, line + strspn(line, " \t"));
    }
}

/* The identity of the library a runtime path under root leads to: -1 when it is no
 * readable ELF file, else an enum vp_driver_identity. *ret_driverish: it answers to a
 * driver soname, exports driver entry points or carries our marker. */
static int identify_file(const char *root, const char *rt, bool nvml_name, bool *ret_driverish)
{
    _cleanup_(freep) char *real = NULL;
    *ret_driverish = false;
    if (vp_root_realpath(root, rt, &real) < 0)
        return -1;
    _cleanup_(freep) char *ondisk = vp_rooted(root, real);
    _cleanup_(vp_elf_freep) struct vp_elf *e = NULL;
    if (vp_elf_open(ondisk, &e) < 0)
        return -1;
    bool nvml_soname = false;
    bool soname = e->soname && vp_hooks_driver_name(e->soname, &nvml_soname);
    *ret_driverish = soname || e->exports_marker || e->n_cu_exports || e->n_nvml_exports;
    bool nvml = soname ? nvml_soname : nvml_name || (!e->n_cu_exports && e->n_nvml_exports);
    return (int)vp_driver_identify(e, nvml);
}

/* An entry of ld.so.preload is a hook when it names the driver or a vGPU shim, or the
 * file answers to a driver soname, exports its entry points or carries our marker —
 * unless it is NVIDIA's own driver. Other entries (an allocator, a profiler) are not
 * ours to judge, and stay. */
static bool preload_entry_is_hook(const char *root, const char *word)
{
    const char *base = vp_basename(word);
    bool nvml, driverish;
    bool named = vp_hooks_driver_name(base, &nvml) || vp_startswith(base, "libvgpu");
    int id = identify_file(root, word, nvml, &driverish);
    if (id == VP_DRIVER_NVIDIA && driverish)
        return false;
    return named || driverish;
}

static void preload_line(struct scan *s, const char *file, unsigned n, char *line)
{
    char *hash = strchr(line, '#'); /* glibc blanks everything from '#' to the end */
    if (hash)
        *hash = '\0';
    if (!*line)
        return;
    struct vp_strv words = {0};
    vp_strv_split(&words, line, " \t:");
    for (size_t i = 0; i < words.n; i++) {
        if (!preload_entry_is_hook(s->root, words.v[i]))
            continue;
        struct vp_hook *k =
            add(s, VP_HOOK_PRELOAD_FILE, file, n, vp_xasprintf("preloads %s", words.v[i]),
                "loaded into every program on the machine (it broke lspci, sshd and cat "
                "before); verification of Ollama means nothing while it is there");
        k->arg = vp_xstrdup(words.v[i]);
    }
    vp_strv_release(&words);
}

/* Whether a directory (runtime path) holds a library named like the driver that is not
 * NVIDIA's: LD_LIBRARY_PATH naming it puts that library before the driver. */
static bool dir_shadows_driver(const char *root, const char *dir)
{
    if (*dir != '/')
        return false;
    _cleanup_(freep) char *d = vp_rooted(root, dir);
    DIR *dh = opendir(d);
    if (!dh)
        return false;
    bool found = false;
    for (struct dirent *de; !found && (de = readdir(dh));) {
        bool nvml, driverish;
        if (!vp_hooks_driver_name(de->d_name, &nvml))
            continue;
        _cleanup_(freep) char *rt = vp_path_join(dir, de->d_name);
        int id = identify_file(root, rt, nvml, &driverish);
        found = id >= 0 && id != VP_DRIVER_NVIDIA;
    }
    closedir(dh);
    return found;
}

static const char *const loader_vars[] = {"LD_PRELOAD", "LD_AUDIT", "LD_LIBRARY_PATH"};

/* Whether a line assigns loader_vars[v] (a word starting with VAR=, after a space, a
 * quote or '='); *ret_value: where its value starts. */
static bool assigns(const char *s, size_t v, const char **ret_value)
{
    size_t len = strlen(loader_vars[v]);
    for (const char *hit = s; (hit = strstr(hit, loader_vars[v])); hit += len)
        if (hit[len] == '=' && (hit == s || strchr(" \t\"'=", hit[-1]))) {
            *ret_value = hit + len + 1;
            return true;
        }
    return false;
}

/* Whether an LD_LIBRARY_PATH value (up to a space or quote) names a directory that
 * holds a library posing as the driver. */
static bool library_path_is_hook(const char *root, const char *value)
{
    _cleanup_(freep) char *v = vp_xstrndup(value, strcspn(value, " \t\"'"));
    struct vp_strv dirs = {0};
    vp_strv_split(&dirs, v, ":");
    bool hook = false;
    for (size_t i = 0; i < dirs.n && !hook; i++)
        hook = dir_shadows_driver(root, dirs.v[i]);
    vp_strv_release(&dirs);
    return hook;
}

static void env_line(struct scan *s, const char *file, unsigned n, char *line)
{
    if (*line == '#')
        return;
    for (size_t v = 0; v < VP_ARRAY_SIZE(loader_vars); v++) {
        const char *value;
        if (!assigns(line, v, &value))
            continue;
        bool libpath = !strcmp(loader_vars[v], "LD_LIBRARY_PATH");
        if (libpath && !library_path_is_hook(s->root, value))
            continue;
        const char *why =
            libpath ? "it puts a directory holding a library posing as the driver first in "
                      "the search of every process that inherits it; it overrides what "
                      "vgpu-patch verifies"
            : s->kind == VP_HOOK_GLOBAL_ENV
                ? "a global loader variable reaches every login session and program started "
                  "from it"
                : "every Ollama process and runner inherits it (LD_PRELOAD of shims broke "
                  "libggml-cuda.so loading); it overrides what vgpu-patch verifies";
        struct vp_hook *k =
            add(s, s->kind, file, n, vp_xasprintf("sets %s: %s", loader_vars[v], line), why);
        k->arg = vp_xstrdup(loader_vars[v]);
    }
}

/* A program in ExecStart= that is a script (not ELF) mentioning the loader variables or
 * the driver: the force_load_shim style of wrapper. Our vgpu-launch is ELF. */
static bool is_wrapper(const char *root, const char *prog)
{
    _cleanup_(freep) char *f = vp_rooted(root, prog);
    _cleanup_(freep) char *text = NULL;
    size_t len;
    if (*prog != '/' || vp_read_file(f, 1 << 16, &text, &len) < 0 || len < 4 ||
        !memcmp(text, "\177ELF", 4))
        return false;
    static const char *const marks[] = {"LD_PRELOAD", "LD_AUDIT", "libcuda.so",
                                        "libnvidia-ml.so"};
    for (size_t i = 0; i < VP_ARRAY_SIZE(marks); i++)
        if (memmem(text, len, marks[i], strlen(marks[i])))
            return true;
    return false;
}

static void exec_start_line(struct scan *s, const char *file, unsigned n, const char *value)
{
    value += strspn(value, " \t");
    if (!*value) {
        s->reset_line = n;
        return;
    }
    value += strspn(value, "@-:+!|");
    _cleanup_(freep) char *prog = vp_xstrndup(value, strcspn(value, " \t"));
    if (!is_wrapper(s->root, prog))
        return;
    struct vp_hook *k = add(
        s, VP_HOOK_EXEC_WRAPPER, file, n,
        vp_xasprintf("starts Ollama through the wrapper %s, which preloads the driver or a "
                     "shim: ExecStart=%s",
                     prog, value),
        s->in_unit ? "every Ollama process inherits what the wrapper sets; it is in the unit "
                     "itself, which vgpu-patch never edits: restore its ExecStart= by hand"
                   : "every Ollama process inherits what the wrapper sets (LD_PRELOAD of "
                     "shims broke libggml-cuda.so loading); it overrides what vgpu-patch "
                     "verifies");
    k->arg = vp_xstrdup(prog);
    k->reset_line = s->reset_line;
}

static void unit_line(struct scan *s, const char *file, unsigned n, char *line)
{
    if (vp_startswith(line, "Environment=")) {
        env_line(s, file, n, line);
    } else if (vp_startswith(line, "ExecStart=")) {
        exec_start_line(s, file, n, line + strlen("ExecStart="));
    } else if (vp_startswith(line, "EnvironmentFile=")) {
        const char *f = line + strlen("EnvironmentFile=");
        f += *f == '-';
        if (*f == '/' && strcmp(vp_basename(f), VP_ENV_FILE) != 0)
            vp_strv_push(&s->env_files, f);
    }
}

static void scan_units(struct scan *s)
{
    struct vp_strv files = {0};
    bool has_unit;
    vp_service_files(s->root, &files, &has_unit);
    s->kind = VP_HOOK_UNIT_ENV;
    for (size_t i = 0; i < files.n; i++) {
        if (strcmp(vp_basename(files.v[i]), VP_DROPIN_FILE) == 0) /* ours */
            continue;
        s->in_unit = has_unit && i == 0;
        each_line(s, files.v[i], unit_line);
    }
    s->in_unit = false;
    vp_strv_release(&files);
    s->kind = VP_HOOK_ENV_FILE;
    for (size_t i = 0; i < s->env_files.n; i++)
        each_line(s, s->env_files.v[i], env_line);
    vp_strv_release(&s->env_files);
}

static void scan_global_env(struct scan *s)
{
    s->kind = VP_HOOK_GLOBAL_ENV;
    each_line(s, "/etc/environment", env_line);
    struct vp_strv files = {0};
    vp_root_glob(s->root, "/etc/profile.d/*.sh", &files);
    for (size_t i = 0; i < files.n; i++)
        each_line(s, files.v[i], env_line);
    vp_strv_release(&files);
}

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

/* Checks one directory (runtime path) for driver names not answered by NVIDIA's
 * driver; recurse levels of subdirectories (for the Ollama tree). */
static void scan_lib_dir(struct scan *s, const char *dir, enum vp_hook_kind kind,
                         const struct vp_strv *owned, const char *shim_dir, int recurse)
{
    const char *root = s->root;
    _cleanup_(freep) char *d = vp_rooted(root, dir);
    DIR *dh = opendir(d);
    if (!dh)
        return;
    for (struct dirent *de; (de = readdir(dh));) {
        if (de->d_name[0] == '.')
            continue;
        _cleanup_(freep) char *rt = vp_path_join(dir, de->d_name);
        bool nvml;
        if (!vp_hooks_driver_name(de->d_name, &nvml)) {
            if (recurse > 0 && de->d_type == DT_DIR)
                scan_lib_dir(s, rt, kind, owned, shim_dir, recurse - 1);
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
            add(s, kind, rt, 0, vp_xasprintf("%s does not lead to a readable library", rt),
                "a leftover link named like the driver; remove it");
            continue;
        }
        enum vp_driver_identity id = vp_driver_identify(e, nvml);
        if (id == VP_DRIVER_NVIDIA || (id == VP_DRIVER_OURS && kind == VP_HOOK_TREE_LIB))
            continue;
        add(s, kind, rt, 0,
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
    struct scan s = {.root = root, .h = &h};
    each_line(&s, "/etc/ld.so.preload", preload_line);
    scan_units(&s);
    scan_global_env(&s);
    struct vp_strv dirs = {0};
    system_lib_dirs(root, &dirs);
    for (size_t i = 0; i < dirs.n; i++)
        scan_lib_dir(&s, dirs.v[i], VP_HOOK_SYSTEM_LIB, owned, shim_dir, 0);
    vp_strv_release(&dirs);
    if (prefix) {
        _cleanup_(freep) char *lib = vp_path_join(prefix, "lib/ollama");
        scan_lib_dir(&s, lib, VP_HOOK_TREE_LIB, owned, shim_dir, 2);
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
        free(h->v[i].arg);
    }
    free(h->v);
    *h = (struct vp_hooks){0};
}
