/* hooks: detection of global loader hooks from earlier deployment methods. */
#include "hooks.h"
#include "audit.h"
#include "discover.h"
#include "trust.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define CUDA_EXPORTS_OF_A_DRIVER 300
#define NVML_EXPORTS_OF_A_DRIVER 150

enum vp_driver_identity vp_driver_identify(const struct vp_elf *e, bool nvml)
{
    if (e->exports_marker)
        return VP_DRIVER_OURS;
    /* NVIDIA's driver is judged by what it exports, never by its file name: WSL ships
     * it as plain /usr/lib/wsl/lib/libcuda.so.1, and `cp -L` makes any copy unversioned.
     * An interposer that exports the full driver API (cuGetExportTable included) is
     * therefore indistinguishable from the driver by its exports alone; one that lacks
     * cuGetExportTable or most entry points is not. */
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
    static const char *const names[] = {
        "ld.so.preload",  "unit-environment",    "environment-file", "global-environment",
        "system-library", "ollama-tree-library", "exec-wrapper"};
    return names[k];
}

bool vp_hooks_driver_name(const char *name, bool *nvml)
{
    *nvml = vp_startswith(name, "libnvidia-ml.so");
    return *nvml || vp_startswith(name, "libcuda.so");
}

#define OTHER_ARCH (-2)

/* What the scan of the files needs. */
struct scan {
    const char *root;
    const char *shim_dir; /* runtime, may be NULL */
    const char *ondisk;   /* vp_hooks_scan_file: the file to read instead */
    struct vp_hooks *h;
    enum vp_hook_kind kind; /* of the assignments found in the file */
    bool in_unit;           /* the file is ollama.service itself */
    bool shell;             /* the file is a shell script (profile.d) */
    unsigned reset_line;    /* the last `ExecStart=` reset seen in the file */
    unsigned last_line;     /* a unit's logical line: its last physical line */
    bool continued;         /* each_line without join: the line continues an earlier one */
    struct vp_strv env_files;
};

static struct vp_hook *add(struct scan *s, enum vp_hook_kind kind, const char *file, unsigned line,
                           char *what, const char *why)
{
    struct vp_hooks *h = s->h;
    h->v = vp_xrealloc(h->v, (h->n + 1) * sizeof(*h->v));
    h->v[h->n] = (struct vp_hook){kind, vp_xstrdup(file), line, what, vp_xstrdup(why)};
    h->v[h->n].in_unit = s->in_unit;
    return &h->v[h->n++];
}

static void rstrip(char *l)
{
    size_t len = strlen(l);
    while (len && (l[len - 1] == ' ' || l[len - 1] == '\t' || l[len - 1] == '\r'))
        l[--len] = '\0';
}

/* Files and directories are read where their runtime path leads inside the root
 * (vp_root_resolved): a link to a host path never leads the scan out of --root. */

/* Calls fn for every line of a file under root (nothing when it cannot be read). With
 * join (unit files), lines continued with a trailing backslash are joined as systemd
 * does, fn gets the first line's number and s->last_line the last one's. */
static void each_line(struct scan *s, const char *path, bool join,
                      void (*fn)(struct scan *, const char *, unsigned, char *))
{
    _cleanup_(freep) char *f = s->ondisk ? vp_xstrdup(s->ondisk) : vp_root_resolved(s->root, path);
    _cleanup_(freep) char *text = NULL;
    if (!f || vp_read_file(f, 1 << 20, &text, NULL) < 0)
        return;
    unsigned n = 0, first = 0;
    _cleanup_(freep) char *acc = NULL;
    s->reset_line = 0;
    struct vp_line_state ls = {.shell = s->shell};
    for (char *line = text, *next; line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        n++;
        char *l = line + strspn(line, " \t");
        if (!join) {
            s->last_line = n;
            s->continued = vp_line_state_next(&ls, line);
            fn(s, path, n, l);
            continue;
        }
        if (acc && (*l == '#' || *l == ';'))
            continue; /* systemd skips comments inside a continuation */
        rstrip(l);
        size_t len = strlen(l);
        bool cont = len && l[len - 1] == '\\';
        if (cont)
            l[len - 1] = ' ';
        char *joined = vp_xasprintf("%s%s", acc ? acc : "", l);
        free(acc);
        acc = joined;
        if (!first)
            first = n;
        if (cont && next)
            continue;
        s->last_line = n;
        fn(s, path, first, acc);
        free(acc);
        acc = NULL;
        first = 0;
    }
    vp_line_state_release(&ls);
}

/* The identity of the library a runtime path under root leads to: -1 when it is no
 * readable ELF file, OTHER_ARCH for one of another architecture (out of scope), else an
 * enum vp_driver_identity. *ret_driverish: it answers to a
 * driver soname, exports driver entry points or carries our marker. */
static int identify_file(const char *root, const char *rt, bool nvml_name, bool *ret_driverish)
{
    *ret_driverish = false;
    if (*rt != '/')
        return -1;
    _cleanup_(freep) char *ondisk = vp_root_resolved(root, rt);
    _cleanup_(vp_elf_freep) struct vp_elf *e = NULL;
    int r = ondisk ? vp_elf_open(ondisk, &e) : -ENOENT;
    vp_clear_error();
    if (r < 0)
        return r == -EPROTONOSUPPORT ? OTHER_ARCH : -1;
    bool nvml_soname = false;
    bool soname = e->soname && vp_hooks_driver_name(e->soname, &nvml_soname);
    *ret_driverish = soname || e->exports_marker || e->n_cu_exports || e->n_nvml_exports;
    bool nvml = soname ? nvml_soname : nvml_name || (!e->n_cu_exports && e->n_nvml_exports);
    return (int)vp_driver_identify(e, nvml);
}

/* An entry of ld.so.preload (or LD_PRELOAD, LD_AUDIT) is a hook when it names the driver
 * or a vGPU shim, or the file answers to a driver soname, exports its entry points or
 * carries our marker — unless it is NVIDIA's own driver. Other entries (an allocator, a
 * profiler) are not ours to judge, and stay. */
static bool preload_entry_is_hook(const char *root, const char *word)
{
    const char *base = vp_basename(word);
    bool nvml, driverish;
    bool named = vp_hooks_driver_name(base, &nvml) || vp_startswith(base, "libvgpu");
    int id = identify_file(root, word, nvml, &driverish);
    if ((id == VP_DRIVER_NVIDIA && driverish) || id == OTHER_ARCH)
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
    _cleanup_(freep) char *d = vp_root_resolved(root, dir);
    DIR *dh = d ? opendir(d) : NULL;
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
#define PRELOAD      0
#define AUDIT        1
#define LIBRARY_PATH 2

/* Whether an LD_AUDIT entry is our own audit module: it carries our marker, or it is
 * VP_AUDIT_FILE in our shim dir. Any other audit module is a hook: it sees (and may
 * redirect) every library the loader looks up. */
static bool our_audit_module(const struct scan *s, const char *word)
{
    if (s->shim_dir && !strcmp(vp_basename(word), VP_AUDIT_FILE)) {
        _cleanup_(freep) char *dir = vp_dirname(word);
        if (!strcmp(dir, s->shim_dir))
            return true;
    }
    _cleanup_(freep) char *ondisk = *word == '/' ? vp_root_resolved(s->root, word) : NULL;
    _cleanup_(vp_elf_freep) struct vp_elf *e = NULL;
    bool ours = ondisk && vp_elf_open(ondisk, &e) == 0 && e->exports_marker;
    vp_clear_error();
    return ours;
}

/* An LD_PRELOAD entry of a unit or environment file is a hook when it is driver-like
 * (preload_entry_is_hook), when it interposes the loader's own lookups (it defines
 * dlopen/dlsym or la_* symbols), or when it names the driver in its bytes. */
static bool preload_var_entry_is_hook(const struct scan *s, const char *word)
{
    if (preload_entry_is_hook(s->root, word))
        return true;
    _cleanup_(freep) char *ondisk = vp_root_resolved(s->root, word);
    _cleanup_(vp_elf_freep) struct vp_elf *e = NULL;
    int r = ondisk ? vp_elf_open(ondisk, &e) : -ENOENT;
    vp_clear_error();
    if (r < 0)
        return false;
    bool nvml;
    bool driver = vp_hooks_driver_name(vp_basename(word), &nvml) &&
                  vp_driver_identify(e, nvml) == VP_DRIVER_NVIDIA;
    return !driver && (e->exports_dl || e->exports_la ||
                       memmem(e->img, e->size, "libcuda.so", strlen("libcuda.so")) ||
                       memmem(e->img, e->size, "libnvidia-ml.so", strlen("libnvidia-ml.so")));
}

/* Whether an absolute entry names no file under root (a relative one is searched). */
static bool entry_missing(const char *root, const char *word)
{
    if (*word != '/')
        return false;
    _cleanup_(freep) char *ondisk = NULL;
    struct stat st;
    bool missing = vp_root_ondisk(root, word, &ondisk) < 0 || stat(ondisk, &st) < 0;
    vp_clear_error();
    return missing;
}

/* Judges the entries of a loader variable's value (LD_AUDIT: every module but ours;
 * LD_PRELOAD: as preload_var_entry_is_hook; LD_LIBRARY_PATH: directories that shadow the
 * driver). Empty entries and $references are neither. Returns the hook entries
 * (space-separated, NULL when none); *ret_others: whether other entries are there too;
 * *ret_missing (NULL when none): the LD_PRELOAD entries that name no file, reported as
 * hooks for the operator (what they were cannot be told). */
static char *judge_value(const struct scan *s, size_t v, const char *value, bool *ret_others,
                         char **ret_missing)
{
    struct vp_strv entries = {0};
    vp_strv_split(&entries, value, v == LIBRARY_PATH ? ":;" : " \t:");
    char *hooks = NULL, *missing = NULL;
    *ret_others = false;
    for (size_t i = 0; i < entries.n; i++) {
        const char *x = entries.v[i];
        if (*x == '$')
            continue;
        bool hook = v == LIBRARY_PATH ? dir_shadows_driver(s->root, x)
                    : v == AUDIT      ? !our_audit_module(s, x)
                                      : preload_var_entry_is_hook(s, x);
        if (!hook && v == PRELOAD && entry_missing(s->root, x)) {
            char *m = vp_xasprintf("%s%s%s", missing ? missing : "", missing ? " " : "", x);
            free(missing);
            missing = m;
            hook = true;
        }
        if (!hook) {
            *ret_others = true;
            continue;
        }
        char *next = vp_xasprintf("%s%s%s", hooks ? hooks : "", hooks ? " " : "", x);
        free(hooks);
        hooks = next;
    }
    vp_strv_release(&entries);
    *ret_missing = missing;
    return hooks;
}

/* Reports the assignment of loader_vars[v] = value on line n when an entry of the value
 * is a hook; manual (may be NULL): why migrate cannot take it away by itself. */
static void assignment(struct scan *s, const char *file, unsigned n, size_t v, const char *value,
                       const char *line, const char *manual)
{
    bool others;
    _cleanup_(freep) char *missing = NULL;
    _cleanup_(freep) char *hooks = judge_value(s, v, value, &others, &missing);
    if (!hooks)
        return;
    bool libpath = v == LIBRARY_PATH;
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
    if (manual)
        k->manual = vp_xstrdup(manual);
    else if (missing)
        k->manual = vp_xasprintf("%s names %s, which does not exist: what it was cannot be "
                                 "told; take it out by hand if it is a leftover",
                                 loader_vars[v], missing);
    else if (others)
        k->manual = vp_xasprintf("only some entries of %s are hooks (%s), the others are "
                                 "not vgpu-patch's to remove: take out the hooks by hand",
                                 loader_vars[v], hooks);
}

/* Environment= of a unit: each word that itself assigns a loader variable. */
static void unit_environment(struct scan *s, const char *file, unsigned n, const char *value,
                             const char *line)
{
    _cleanup_(freep) char *manual =
        s->last_line != n ? vp_xasprintf("the assignment is part of a line continued with "
                                         "'\\' (lines %u-%u): edit it by hand",
                                         n, s->last_line)
                          : NULL;
    /* systemd keeps the last of two assignments of one variable, and migrate edits by
     * name: a line assigning a loader variable twice is left to the operator. */
    unsigned times[VP_ARRAY_SIZE(loader_vars)] = {0};
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = strspn(value, " \t"); value[i]; i += strspn(value + i, " \t")) {
            size_t e = vp_systemd_word_end(value, i);
            _cleanup_(freep) char *word = vp_systemd_unquote(value + i, value + e);
            for (size_t v = 0; v < VP_ARRAY_SIZE(loader_vars); v++) {
                size_t len = strlen(loader_vars[v]);
                if (strncmp(word, loader_vars[v], len) || word[len] != '=')
                    continue;
                if (pass == 0) {
                    times[v]++;
                    continue;
                }
                _cleanup_(freep) char *twice =
                    !manual && times[v] > 1
                        ? vp_xasprintf("the line assigns %s %u times: edit it by hand",
                                       loader_vars[v], times[v])
                        : NULL;
                assignment(s, file, n, v, word + len + 1, line, manual ? manual : twice);
            }
            i = e;
        }
    }
}

/* An environment file's KEY=VALUE line (EnvironmentFile=, /etc/environment) or a line of a
 * profile.d script. In an environment file the key starts the line; in a script the
 * assignment may follow other commands, and only a line that is nothing but the
 * assignment (with `export`, a comment after it) may go. */
static void env_line(struct scan *s, const char *file, unsigned n, char *line)
{
    if (*line == '#' || (!s->shell && *line == ';'))
        return;
    const char *start = line;
    if (vp_startswith(start, "export") && (start[6] == ' ' || start[6] == '\t'))
        start += 6 + strspn(start + 6, " \t");
    for (size_t v = 0; v < VP_ARRAY_SIZE(loader_vars); v++) {
        size_t len = strlen(loader_vars[v]);
        const char *hit = NULL;
        if (!strncmp(start, loader_vars[v], len) && start[len] == '=') {
            hit = start;
        } else if (s->shell) {
            for (const char *h = line; !hit && (h = strstr(h, loader_vars[v])); h += len)
                if (h[len] == '=' && h > line && strchr(" \t;&|({`", h[-1]))
                    hit = h;
        }
        if (!hit)
            continue;
        const char *end;
        _cleanup_(freep) char *value = NULL;
        if (s->shell) {
            value = vp_shell_value(hit + len + 1, &end);
        } else {
            _cleanup_(freep) char *raw = vp_xstrdup(hit + len + 1);
            rstrip(raw);
            value = vp_systemd_unquote(raw, raw + strlen(raw));
            end = hit + strlen(hit);
        }
        const char *rest = end + strspn(end, " \t\r");
        bool alone = hit == start && (!*rest || *rest == '#');
        const char *manual = NULL;
        if (s->continued)
            manual = "the line continues the one before it (after a '\\', in an open quote "
                     "or a here-document): edit it by hand";
        else if (!alone)
            manual = "the line does more than assign the variable: edit it by hand";
        else if (line[strlen(line) - (line[strlen(line) - 1] == '\r') - 1] == '\\')
            manual = "the line is continued with '\\': edit it by hand";
        assignment(s, file, n, v, value, line, manual);
    }
}

/* A program in ExecStart= that is a script (not ELF) mentioning the loader variables or
 * the driver: the force_load_shim style of wrapper. Our vgpu-launch is ELF. */
static bool is_wrapper(const char *root, const char *prog)
{
    if (*prog != '/')
        return false;
    _cleanup_(freep) char *f = vp_root_resolved(root, prog);
    _cleanup_(freep) char *text = NULL;
    size_t len;
    if (!f || vp_read_file(f, 1 << 16, &text, &len) < 0 || len < 4 || !memcmp(text, "\177ELF", 4))
        return false;
    static const char *const marks[] = {"LD_PRELOAD", "LD_AUDIT", "libcuda.so", "libnvidia-ml.so"};
    for (size_t i = 0; i < VP_ARRAY_SIZE(marks); i++)
        if (memmem(text, len, marks[i], strlen(marks[i])))
            return true;
    return false;
}

/* One assignment NAME=value (name [p, p + nlen)) on a command line: a loader variable's
 * hook entries are appended to *hooks; anything else (another variable, entries that are
 * no hooks) makes the command line *mixed. */
static void inline_assignment(const struct scan *s, const char *p, size_t nlen, const char *value,
                              char **hooks, bool *mixed)
{
    for (size_t v = 0; v < VP_ARRAY_SIZE(loader_vars); v++) {
        if (nlen != strlen(loader_vars[v]) || strncmp(p, loader_vars[v], nlen))
            continue;
        bool others;
        _cleanup_(freep) char *missing = NULL;
        _cleanup_(freep) char *h = judge_value(s, v, value, &others, &missing);
        *mixed |= others || missing || !h;
        if (h) {
            char *next = vp_xasprintf("%s%s%s=%s", *hooks ? *hooks : "", *hooks ? " " : "",
                                      loader_vars[v], h);
            free(*hooks);
            *hooks = next;
        }
        return;
    }
    *mixed = true;
}

static size_t name_len(const char *p)
{
    size_t n = strspn(p, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_");
    return n && p[n] == '=' && !(*p >= '0' && *p <= '9') ? n : 0;
}

/* ExecStart= that sets a loader variable itself: `/usr/bin/env VAR=... prog` or
 * `/bin/sh -c "VAR=... exec prog"`. Returns the hooks set (NULL: none); *ret_mixed: the
 * command line does more than set them (other variables, other entries, more shell),
 * so that taking the wrapper away would take more. */
static char *inline_wrapper(const struct scan *s, const char *value, bool *ret_mixed)
{
    struct vp_strv w = {0};
    for (size_t i = strspn(value, " \t"); value[i]; i += strspn(value + i, " \t")) {
        size_t e = vp_systemd_word_end(value, i);
        vp_strv_push_take(&w, vp_systemd_unquote(value + i, value + e));
        i = e;
    }
    char *hooks = NULL;
    bool mixed = false;
    const char *base = w.n ? vp_basename(w.v[0]) : "";
    if (!strcmp(base, "env")) {
        size_t i = 1;
        for (; i < w.n && w.v[i][0] == '-'; i++)
            mixed = true; /* env's options (-i, -u NAME) change more */
        for (size_t nl; i < w.n && (nl = name_len(w.v[i])); i++)
            inline_assignment(s, w.v[i], nl, w.v[i] + nl + 1, &hooks, &mixed);
    } else if ((!strcmp(base, "sh") || !strcmp(base, "bash") || !strcmp(base, "dash")) &&
               w.n >= 3 && !strcmp(w.v[1], "-c")) {
        const char *p = w.v[2] + strspn(w.v[2], " \t");
        for (size_t nl; (nl = name_len(p));) {
            const char *end;
            _cleanup_(freep) char *v = vp_shell_value(p + nl + 1, &end);
            inline_assignment(s, p, nl, v, &hooks, &mixed);
            p = end + strspn(end, " \t");
        }
        if (strpbrk(p, ";&|`$()<>\n") || vp_startswith(p, "export"))
            mixed = true;
        /* A loader variable set further on (`cd /x; export LD_PRELOAD=...`). */
        for (size_t v = 0; !hooks && v < VP_ARRAY_SIZE(loader_vars); v++) {
            size_t len = strlen(loader_vars[v]);
            for (const char *h = p; !hooks && (h = strstr(h, loader_vars[v])); h += len) {
                if (h[len] != '=' || (h > w.v[2] && !strchr(" \t;&|(`", h[-1])))
                    continue;
                const char *end;
                _cleanup_(freep) char *val = vp_shell_value(h + len + 1, &end);
                inline_assignment(s, h, len, val, &hooks, &mixed);
                mixed = true;
            }
        }
    }
    vp_strv_release(&w);
    *ret_mixed = mixed;
    return hooks;
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
    bool mixed = false;
    _cleanup_(freep) char *inline_hooks =
        is_wrapper(s->root, prog) ? NULL : inline_wrapper(s, value, &mixed);
    if (!inline_hooks && !is_wrapper(s->root, prog))
        return;
    const char *why =
        s->in_unit ? "every Ollama process inherits what the wrapper sets; it is in the unit "
                     "itself, which vgpu-patch never edits: restore its ExecStart= by hand"
                   : "every Ollama process inherits what the wrapper sets (LD_PRELOAD of "
                     "shims broke libggml-cuda.so loading); it overrides what vgpu-patch "
                     "verifies";
    struct vp_hook *k =
        add(s, VP_HOOK_EXEC_WRAPPER, file, n,
            inline_hooks ? vp_xasprintf("starts Ollama through %s, which sets %s: ExecStart=%s",
                                        prog, inline_hooks, value)
                         : vp_xasprintf("starts Ollama through the wrapper %s, which preloads the "
                                        "driver or a shim: ExecStart=%s",
                                        prog, value),
            why);
    k->arg = vp_xstrdup(prog);
    k->reset_line = s->reset_line;
    if (s->last_line != n)
        k->manual = vp_xasprintf("ExecStart= is continued with '\\' (lines %u-%u): edit it "
                                 "by hand",
                                 n, s->last_line);
    else if (mixed)
        k->manual = vp_xasprintf("the command line does more than set %s (other variables, "
                                 "entries or commands): edit it by hand",
                                 inline_hooks);
}

/* A unit file's logical line: `Key = value`, blanks around the key allowed. */
static void unit_line(struct scan *s, const char *file, unsigned n, char *line)
{
    size_t klen = strcspn(line, "= \t");
    const char *eq = line + klen + strspn(line + klen, " \t");
    if (*line == '#' || *line == ';' || *eq != '=')
        return;
    const char *value = eq + 1 + strspn(eq + 1, " \t");
    if (klen == strlen("Environment") && !strncmp(line, "Environment", klen)) {
        unit_environment(s, file, n, value, line);
    } else if (klen == strlen("ExecStart") && !strncmp(line, "ExecStart", klen)) {
        exec_start_line(s, file, n, value);
    } else if (klen == strlen("EnvironmentFile") && !strncmp(line, "EnvironmentFile", klen)) {
        const char *f = value + (*value == '-');
        _cleanup_(freep) char *path = vp_xstrndup(f, strcspn(f, " \t\r"));
        if (*path == '/' && strcmp(vp_basename(path), VP_ENV_FILE) != 0)
            vp_strv_push(&s->env_files, path);
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
        each_line(s, files.v[i], true, unit_line);
    }
    s->in_unit = false;
    vp_strv_release(&files);
    s->kind = VP_HOOK_ENV_FILE;
    for (size_t i = 0; i < s->env_files.n; i++)
        each_line(s, s->env_files.v[i], false, env_line);
    vp_strv_release(&s->env_files);
}

static void scan_global_env(struct scan *s)
{
    s->kind = VP_HOOK_GLOBAL_ENV;
    each_line(s, "/etc/environment", false, env_line);
    struct vp_strv files = {0};
    vp_root_glob(s->root, "/etc/profile.d/*.sh", &files);
    s->shell = true;
    for (size_t i = 0; i < files.n; i++)
        each_line(s, files.v[i], false, env_line);
    s->shell = false;
    vp_strv_release(&files);
}

/* Where a driver-named entry leads, on disk: inside the root, except for a link into
 * the shim dir, a run-time path that --root never re-roots. */
static char *lead(const char *root, const char *rt, const char *shim_dir, char **ret_real)
{
    char target[4096];
    _cleanup_(freep) char *at = NULL;
    ssize_t n = vp_root_ondisk(root, rt, &at) < 0 ? -1 : readlink(at, target, sizeof(target) - 1);
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
 * driver; recurse levels of subdirectories (for the Ollama tree). A dangling link, or a
 * file that is no ELF at all, is a leftover; a library of another architecture (NVIDIA's
 * 32-bit driver) is out of scope and left alone. */
static void scan_lib_dir(struct scan *s, const char *dir, enum vp_hook_kind kind,
                         const struct vp_strv *owned, const char *shim_dir, int recurse)
{
    const char *root = s->root;
    _cleanup_(freep) char *d = vp_root_resolved(root, dir);
    DIR *dh = d ? opendir(d) : NULL;
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
        int r = ondisk ? vp_elf_open(ondisk, &e) : -ENOENT;
        vp_clear_error();
        if (r == -EPROTONOSUPPORT)
            continue; /* another architecture: not ours to judge */
        if (r < 0) {
            add(s, kind, rt, 0, vp_xasprintf("%s does not lead to a readable library", rt),
                "a leftover link named like the driver; remove it");
            continue;
        }
        enum vp_driver_identity id = vp_driver_identify(e, nvml);
        if (id == VP_DRIVER_NVIDIA || (id == VP_DRIVER_OURS && kind == VP_HOOK_TREE_LIB))
            continue;
        add(s, kind, rt, 0, vp_xasprintf("%s -> %s is a %s", rt, real, vp_driver_identity_name(id)),
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
    static const char *const defaults[] = {"/lib/x86_64-linux-gnu",
                                           "/usr/lib/x86_64-linux-gnu",
                                           "/lib64",
                                           "/usr/lib64",
                                           "/lib",
                                           "/usr/lib",
                                           "/usr/local/lib"};
    for (size_t i = 0; i < VP_ARRAY_SIZE(defaults); i++)
        vp_strv_push(dirs, defaults[i]);
    struct vp_strv confs = {0};
    vp_strv_push(&confs, "/etc/ld.so.conf");
    for (size_t c = 0; c < confs.n && c < 64; c++) {
        _cleanup_(freep) char *f = vp_root_resolved(root, confs.v[c]);
        _cleanup_(freep) char *text = NULL;
        if (!f || vp_read_file(f, 1 << 20, &text, NULL) < 0)
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
    struct scan s = {.root = root, .shim_dir = shim_dir, .h = &h};
    each_line(&s, "/etc/ld.so.preload", false, preload_line);
    scan_units(&s);
    scan_global_env(&s);
    struct vp_strv dirs = {0}, seen = {0};
    system_lib_dirs(root, &dirs);
    for (size_t i = 0; i < dirs.n; i++) {
        /* On a merged /usr, /lib64 is /usr/lib64: one directory, one report per file. */
        char *d = vp_root_resolved(root, dirs.v[i]);
        if (d && !vp_strv_contains(&seen, d))
            scan_lib_dir(&s, dirs.v[i], VP_HOOK_SYSTEM_LIB, owned, shim_dir, 0);
        if (d)
            vp_strv_push_take(&seen, d);
    }
    vp_strv_release(&seen);
    vp_strv_release(&dirs);
    if (prefix) {
        _cleanup_(freep) char *lib = vp_path_join(prefix, "lib/ollama");
        scan_lib_dir(&s, lib, VP_HOOK_TREE_LIB, owned, shim_dir, 2);
    }
    h.shim_dir = shim_dir ? vp_xstrdup(shim_dir) : NULL;
    *ret = h;
    return 0;
}

int vp_hooks_scan_file(const char *root, const char *shim_dir, enum vp_hook_kind kind,
                       const char *path, const char *ondisk, struct vp_hooks *ret)
{
    struct vp_hooks h = {0};
    struct scan s = {.root = root, .shim_dir = shim_dir, .ondisk = ondisk, .h = &h, .kind = kind};
    switch (kind) {
    case VP_HOOK_PRELOAD_FILE:
        each_line(&s, path, false, preload_line);
        break;
    case VP_HOOK_UNIT_ENV:
    case VP_HOOK_EXEC_WRAPPER:
        s.kind = VP_HOOK_UNIT_ENV;
        each_line(&s, path, true, unit_line);
        vp_strv_release(&s.env_files);
        break;
    case VP_HOOK_ENV_FILE:
    case VP_HOOK_GLOBAL_ENV:
        s.shell = vp_startswith(path, "/etc/profile.d/");
        each_line(&s, path, false, env_line);
        break;
    default:
        break;
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
        free(h->v[i].manual);
    }
    free(h->v);
    free(h->shim_dir);
    *h = (struct vp_hooks){0};
}
