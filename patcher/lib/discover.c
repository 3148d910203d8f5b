/* discover: Ollama installs from the service unit, PATH and the usual prefixes. */
#include "discover.h"
#include "blake3.h"
#include "elfmodel.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

const char *const vp_unit_dirs[] = {"/etc/systemd/system", "/run/systemd/system",
                                    "/usr/local/lib/systemd/system", "/lib/systemd/system",
                                    "/usr/lib/systemd/system", NULL};

enum { FP_CUDA_GLOB = 1, FP_WSL_NVML = 2 };

#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

static bool exists_in(const char *root, const char *path, mode_t type)
{
    _cleanup_(freep) char *p = vp_rooted(root, path);
    struct stat st;
    return stat(p, &st) == 0 && (type == 0 || (st.st_mode & S_IFMT) == type);
}

static char *unquote(const char *w)
{
    size_t len = strlen(w);
    if (len >= 2 && (w[0] == '"' || w[0] == '\'') && w[len - 1] == w[0])
        return vp_xstrndup(w + 1, len - 2);
    return vp_xstrdup(w);
}

/* The program an ExecStart= value runs: the first word named ollama (through wrappers
 * such as env, nice, our own vgpu-launch or sh -c "..."), else the first word without
 * systemd's prefix characters. */
static char *exec_program(const char *value)
{
    struct vp_strv words = {0};
    vp_strv_split(&words, value, " \t\"'");
    char *first = NULL, *named = NULL;
    for (size_t i = 0; i < words.n && !named; i++) {
        char *w = words.v[i] + strspn(words.v[i], "@-:+!");
        if (!*w)
            continue;
        if (!first)
            first = unquote(w);
        if (w[0] == '/' && strcmp(vp_basename(w), "ollama") == 0)
            named = unquote(w);
    }
    vp_strv_release(&words);
    if (named) {
        free(first);
        return named;
    }
    return first;
}

/* Applies the ExecStart= lines of one unit file to *cur (an empty value resets). */
static void scan_unit(const char *file, char **cur, char **cur_file, const char *runtime_name)
{
    _cleanup_(freep) char *text = NULL;
    if (vp_read_file(file, 1 << 20, &text, NULL) < 0)
        return;
    bool service = false;
    for (char *line = text, *next; line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        line += strspn(line, " \t");
        if (*line == '[') {
            service = vp_startswith(line, "[Service]");
            continue;
        }
        if (!service || !vp_startswith(line, "ExecStart="))
            continue;
        const char *v = line + strlen("ExecStart=");
        free(*cur);
        *cur = *v ? vp_xstrdup(v) : NULL; /* "ExecStart=" alone: a reset */
        free(*cur_file);
        *cur_file = vp_xstrdup(runtime_name);
    }
}

static int cmp_base(const void *a, const void *b)
{
    return strcmp(vp_basename(*(char *const *)a), vp_basename(*(char *const *)b));
}

void vp_service_files(const char *root, struct vp_strv *ret, bool *ret_has_unit)
{
    *ret_has_unit = false;
    for (size_t i = 0; vp_unit_dirs[i] && !*ret_has_unit; i++) {
        _cleanup_(freep) char *rt = vp_path_join(vp_unit_dirs[i], "ollama.service");
        _cleanup_(freep) char *f = vp_rooted(root, rt);
        if (access(f, R_OK) == 0) {
            vp_strv_push(ret, rt);
            *ret_has_unit = true;
        }
    }
    struct vp_strv names = {0}, dropins = {0};
    for (size_t i = 0; vp_unit_dirs[i]; i++) {
        _cleanup_(freep) char *rt = vp_path_join(vp_unit_dirs[i], "ollama.service.d");
        _cleanup_(freep) char *d = vp_rooted(root, rt);
        DIR *dir = opendir(d);
        if (!dir)
            continue;
        for (struct dirent *de; (de = readdir(dir));) {
            if (!vp_endswith(de->d_name, ".conf") || vp_strv_contains(&names, de->d_name))
                continue;
            vp_strv_push(&names, de->d_name);
            vp_strv_push_take(&dropins, vp_xasprintf("%s/%s", rt, de->d_name));
        }
        closedir(dir);
    }
    if (dropins.n)
        qsort(dropins.v, dropins.n, sizeof(char *), cmp_base);
    for (size_t i = 0; i < dropins.n; i++)
        vp_strv_push(ret, dropins.v[i]);
    vp_strv_release(&names);
    vp_strv_release(&dropins);
}

/* A directory by inode and change time (entries added, removed or renamed); anything
 * else by inode, size and modification time (a file still being written). */
static void stamp_add(struct vp_b3 *h, const char *rel, const struct stat *st)
{
    char line[96];
    bool dir = S_ISDIR(st->st_mode);
    const struct timespec *t = dir ? &st->st_ctim : &st->st_mtim;
    int n = snprintf(line, sizeof(line), " %c %llu %lld %lld.%09ld\n", dir ? 'd' : 'f',
                     (unsigned long long)st->st_ino, dir ? 0LL : (long long)st->st_size,
                     (long long)t->tv_sec, t->tv_nsec);
    vp_b3_update(h, rel, strlen(rel) + 1);
    vp_b3_update(h, line, (size_t)n);
}

/* dir and everything below it (on disk, links not followed), sorted, depth-first. */
static void stamp_dirs(struct vp_b3 *h, const char *dir, const char *rel, int depth)
{
    struct stat st;
    if (lstat(dir, &st) < 0 || !S_ISDIR(st.st_mode))
        return;
    stamp_add(h, rel, &st);
    struct vp_strv names = {0};
    DIR *d = depth < 6 ? opendir(dir) : NULL;
    for (struct dirent *e; d && (e = readdir(d));)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            vp_strv_push(&names, e->d_name);
    if (d)
        closedir(d);
    if (names.n)
        qsort(names.v, names.n, sizeof(char *), cmp_base);
    for (size_t i = 0; i < names.n; i++) {
        _cleanup_(freep) char *sub = vp_path_join(dir, names.v[i]);
        _cleanup_(freep) char *subrel = vp_path_join(rel, names.v[i]);
        struct stat sst;
        if (lstat(sub, &sst) < 0)
            continue;
        if (S_ISDIR(sst.st_mode))
            stamp_dirs(h, sub, subrel, depth + 1);
        else
            stamp_add(h, subrel, &sst);
    }
    vp_strv_release(&names);
}

char *vp_tree_stamp(const char *root, const char *prefix)
{
    struct vp_b3 h;
    vp_b3_init(&h);
    _cleanup_(freep) char *bin_rt = vp_path_join(prefix, "bin/ollama");
    _cleanup_(freep) char *bin = vp_rooted(root, bin_rt);
    struct stat st;
    if (lstat(bin, &st) == 0)
        stamp_add(&h, "bin/ollama", &st);
    _cleanup_(freep) char *lib_rt = vp_path_join(prefix, "lib/ollama");
    _cleanup_(freep) char *lib = vp_rooted(root, lib_rt);
    stamp_dirs(&h, lib, "lib/ollama", 0);
    uint8_t digest[32];
    vp_b3_final(&h, digest);
    char *hex = vp_xmalloc(VP_B3_HEX);
    vp_b3_hex(digest, hex);
    return hex;
}

char *vp_service_exec_start(const char *root, bool skip_ours, char **ret_file)
{
    char *cmd = NULL, *file = NULL;
    struct vp_strv files = {0};
    bool has_unit;
    vp_service_files(root, &files, &has_unit);
    for (size_t i = 0; has_unit && i < files.n; i++) {
        if (skip_ours && !strcmp(vp_basename(files.v[i]), VP_DROPIN_FILE))
            continue;
        _cleanup_(freep) char *f = vp_rooted(root, files.v[i]);
        scan_unit(f, &cmd, &file, files.v[i]);
    }
    vp_strv_release(&files);
    if (cmd && ret_file)
        *ret_file = file;
    else
        free(file);
    return cmd;
}

char *vp_service_exec_binary(const char *root, char **ret_unit)
{
    char *unit = NULL;
    _cleanup_(freep) char *cmd = vp_service_exec_start(root, false, &unit);
    char *prog = cmd ? exec_program(cmd) : NULL;
    if (prog && ret_unit)
        *ret_unit = unit;
    else
        free(unit);
    return prog;
}

static void add_candidate(struct vp_discovery *d, const char *root, const char *binary,
                          unsigned by, const char *unit)
{
    _cleanup_(freep) char *real = NULL;
    if (binary[0] != '/' || vp_root_realpath(root, binary, &real) < 0 ||
        !exists_in(root, real, S_IFREG))
        return;
    for (size_t i = 0; i < d->n; i++)
        if (strcmp(d->installs[i].binary, real) == 0) {
            d->installs[i].found_by |= by;
            if (unit && !d->installs[i].unit)
                d->installs[i].unit = vp_xstrdup(unit);
            return;
        }
    d->installs = vp_xrealloc(d->installs, (d->n + 1) * sizeof(*d->installs));
    struct vp_install *in = &d->installs[d->n++];
    _cleanup_(freep) char *bindir = vp_dirname(real);
    _cleanup_(freep) char *up = vp_path_join(bindir, "..");
    *in = (struct vp_install){
        .prefix = vp_path_normalize(up),
        .binary = vp_xstrdup(real),
        .found_by = by,
        .unit = unit ? vp_xstrdup(unit) : NULL,
    };
}

static void scan_opt(struct vp_discovery *d, const char *root)
{
    _cleanup_(freep) char *opt = vp_rooted(root, "/opt");
    DIR *dir = opendir(opt);
    if (!dir)
        return;
    for (struct dirent *de; (de = readdir(dir));) {
        if (de->d_name[0] == '.')
            continue;
        _cleanup_(freep) char *b = vp_xasprintf("/opt/%s/bin/ollama", de->d_name);
        add_candidate(d, root, b, VP_FOUND_SCAN, NULL);
    }
    closedir(dir);
}

static const char *found_by_name(unsigned by)
{
    if (by & VP_FOUND_PREFIX)
        return "--prefix";
    if (by & VP_FOUND_SERVICE)
        return "ollama.service";
    if (by & VP_FOUND_PATH)
        return "PATH";
    return "scan";
}

int vp_discover(const char *root, const char *prefix, const char *path_env,
                struct vp_discovery *ret)
{
    struct vp_discovery d = {.chosen = -1};
    if (prefix) {
        _cleanup_(freep) char *b = vp_path_join(prefix, "bin/ollama");
        add_candidate(&d, root, b, VP_FOUND_PREFIX, NULL);
        if (!d.n) {
            vp_discovery_release(&d);
            return vp_error(-ENOENT, "no Ollama under --prefix %s: %s%s is not a file", prefix,
                            root && strcmp(root, "/") ? root : "", b);
        }
    }
    _cleanup_(freep) char *unit = NULL;
    _cleanup_(freep) char *svc = vp_service_exec_binary(root, &unit);
    if (svc)
        add_candidate(&d, root, svc, VP_FOUND_SERVICE, unit);
    struct vp_strv dirs = {0};
    vp_strv_split(&dirs, path_env ? path_env : DEFAULT_PATH, ":");
    for (size_t i = 0; i < dirs.n; i++) {
        _cleanup_(freep) char *b = vp_path_join(dirs.v[i], "ollama");
        add_candidate(&d, root, b, VP_FOUND_PATH, NULL);
    }
    vp_strv_release(&dirs);
    add_candidate(&d, root, "/usr/local/bin/ollama", VP_FOUND_SCAN, NULL);
    add_candidate(&d, root, "/usr/bin/ollama", VP_FOUND_SCAN, NULL);
    scan_opt(&d, root);

    static const unsigned order[] = {VP_FOUND_PREFIX, VP_FOUND_SERVICE, VP_FOUND_PATH,
                                     VP_FOUND_SCAN};
    for (size_t o = 0; o < VP_ARRAY_SIZE(order) && d.chosen < 0; o++)
        for (size_t i = 0; i < d.n && d.chosen < 0; i++)
            if (d.installs[i].found_by & order[o])
                d.chosen = (int)i;
    if (d.chosen < 0) {
        vp_discovery_release(&d);
        return vp_error(-ENOENT, "no Ollama install found (looked at ollama.service, PATH, "
                                 "/usr/local, /usr and /opt); pass --prefix");
    }
    if (d.n > 1) {
        const struct vp_install *c = &d.installs[d.chosen];
        for (size_t i = 0; i < d.n; i++)
            if ((int)i != d.chosen)
                vp_strv_push_take(
                    &d.notes,
                    vp_xasprintf("another Ollama is installed at %s (found by %s) and is left "
                                 "alone; acting on %s (found by %s). A stale copy that a "
                                 "shell or another service starts will not load the shims: "
                                 "remove it or patch it with --prefix",
                                 d.installs[i].prefix, found_by_name(d.installs[i].found_by),
                                 c->prefix, found_by_name(c->found_by)));
    }
    *ret = d;
    return 0;
}

static bool has_cuda_backend(const char *root, const char *libdir)
{
    _cleanup_(freep) char *d = vp_rooted(root, libdir);
    DIR *dir = opendir(d);
    bool found = false;
    if (!dir)
        return false;
    for (struct dirent *de; (de = readdir(dir)) && !found;) {
        if (!vp_startswith(de->d_name, "cuda_v"))
            continue;
        _cleanup_(freep) char *f = vp_xasprintf("%s/%s/libggml-cuda.so", libdir, de->d_name);
        found = exists_in(root, f, 0);
    }
    closedir(dir);
    return found;
}

/* Driver-name strings of a file (the routes compiled into it). */
static unsigned fingerprints(const char *root, const char *path)
{
    _cleanup_(freep) char *ondisk = vp_rooted(root, path);
    _cleanup_(vp_elf_freep) struct vp_elf *e = NULL;
    unsigned fp = 0;
    if (vp_elf_open(ondisk, &e) < 0 || vp_elf_scan_strings(e) < 0)
        return 0;
    for (size_t i = 0; i < e->n_routes; i++) {
        const struct vp_elf_route_string *rt = &e->routes[i];
        if (rt->glob && !rt->nvml)
            fp |= FP_CUDA_GLOB;
        if (rt->nvml && rt->absolute && strstr(rt->text, "/usr/lib/wsl/lib/libnvidia-ml.so"))
            fp |= FP_WSL_NVML;
    }
    return fp;
}

/* C and D share a layout: the Go discovery globs exist only up to C, and ggml-base's
 * NVML route (which tries the WSL path first) only from D on. */
static unsigned tell_c_from_d(const char *root, const struct vp_install *in, const char **how)
{
    unsigned bin = fingerprints(root, in->binary), base = 0;
    struct vp_strv libs = {0};
    _cleanup_(freep) char *pat = vp_path_join(in->prefix, "lib/ollama/libggml-base.so*");
    vp_root_glob(root, pat, &libs);
    for (size_t i = 0; i < libs.n; i++)
        base |= fingerprints(root, libs.v[i]);
    vp_strv_release(&libs);
    /* mem_nvml sits in ggml-base; a release whose cgo build compiles ggml into
     * bin/ollama carries it there instead. */
    bool glob = bin & FP_CUDA_GLOB, wsl = (bin | base) & FP_WSL_NVML;
    if (glob && !wsl) {
        *how = "bin/ollama carries the Go discovery globs (up to C)";
        return 1u << VP_ERA_C;
    }
    if (wsl && !glob) {
        *how = "the NVML route through the WSL path is present (D on)";
        return 1u << VP_ERA_D;
    }
    *how = glob ? "both C and D fingerprints are present: covering both"
                : "no C or D fingerprint found: covering both";
    return 1u << VP_ERA_C | 1u << VP_ERA_D;
}

int vp_install_identify(const char *root, struct vp_install *in)
{
    _cleanup_(freep) char *bin = vp_rooted(root, in->binary);
    _cleanup_(vp_elf_freep) struct vp_elf *e = NULL;
    int r = vp_elf_open(bin, &e);
    if (r < 0)
        return r;
    free(in->version);
    free(in->toolchain);
    in->version = e->ollama_version ? vp_xstrdup(e->ollama_version) : NULL;
    in->toolchain = e->go_toolchain ? vp_xstrdup(e->go_toolchain) : NULL;

    _cleanup_(freep) char *lib = vp_path_join(in->prefix, "lib/ollama");
    _cleanup_(freep) char *runners = vp_path_join(lib, "runners");
    _cleanup_(freep) char *server = vp_path_join(lib, "llama-server");
    in->has_lib_ollama = exists_in(root, lib, S_IFDIR);
    in->has_runners = exists_in(root, runners, S_IFDIR);
    in->has_llama_server = exists_in(root, server, 0);
    in->has_cuda_dirs = has_cuda_backend(root, lib);

    unsigned by_layout;
    const char *layout, *how = NULL;
    if (in->has_llama_server)
        by_layout = 1u << VP_ERA_E, layout = "lib/ollama/llama-server";
    else if (in->has_runners)
        by_layout = 1u << VP_ERA_B, layout = "lib/ollama/runners/";
    else if (in->has_cuda_dirs)
        by_layout = 1u << VP_ERA_C | 1u << VP_ERA_D, layout = "lib/ollama/cuda_v*/libggml-cuda.so";
    else if (in->has_lib_ollama)
        by_layout = 1u << VP_ERA_A, layout = "a flat lib/ollama";
    else
        by_layout = 1u << VP_ERA_A0 | 1u << VP_ERA_A, layout = "no lib/ollama";

    unsigned by_version = vp_era_from_version(in->version);
    free(in->era_reason);
    if (by_version) {
        in->eras = by_version;
        in->era_reason = vp_xasprintf("release %s read from the binary's build info; %s (%s)",
                                      in->version,
                                      by_version & by_layout ? "the layout agrees"
                                                             : "the layout looks like another "
                                                               "era: files from two releases "
                                                               "are mixed",
                                      layout);
        return 0;
    }
    in->eras = by_layout;
    if (by_layout == (1u << VP_ERA_C | 1u << VP_ERA_D))
        in->eras = tell_c_from_d(root, in, &how);
    in->era_reason = vp_xasprintf("%s (a -trimpath build keeps no -ldflags); era from the "
                                  "layout (%s)%s%s",
                                  in->version ? "unrecognised release"
                                              : "no Ollama version in the binary's build info",
                                  layout, how ? " and the files' contents: " : "",
                                  how ? how : "");
    return 0;
}

void vp_discovery_release(struct vp_discovery *d)
{
    for (size_t i = 0; i < d->n; i++) {
        struct vp_install *in = &d->installs[i];
        free(in->prefix);
        free(in->binary);
        free(in->unit);
        free(in->version);
        free(in->toolchain);
        free(in->era_reason);
    }
    free(d->installs);
    vp_strv_release(&d->notes);
    *d = (struct vp_discovery){.chosen = -1};
}
