/* hooks: finds global loader hooks left by earlier deployment methods — entries in
 * /etc/ld.so.preload, LD_PRELOAD/LD_AUDIT in ollama.service or the global environment,
 * hand-made (or our own) shims answering to the driver sonames in system library dirs
 * or inside the Ollama tree. While any is present, verification proves nothing, so
 * `vgpu-patch ollama` refuses (exit 5); `migrate` (migrate.h) removes them. Each hook
 * carries what migrate needs to remove exactly it: its line, and the word on it. */
#ifndef VP_HOOKS_H
#define VP_HOOKS_H

#include "elfmodel.h"
#include "util.h"

enum vp_hook_kind {
    VP_HOOK_PRELOAD_FILE, /* /etc/ld.so.preload */
    VP_HOOK_UNIT_ENV,     /* Environment=LD_PRELOAD/LD_AUDIT in ollama.service or a drop-in */
    VP_HOOK_ENV_FILE,     /* the same in a file named by EnvironmentFile= */
    VP_HOOK_GLOBAL_ENV,   /* /etc/environment, /etc/profile.d */
    VP_HOOK_SYSTEM_LIB,   /* a driver soname answered by a non-NVIDIA library system-wide */
    VP_HOOK_TREE_LIB,     /* the same inside the Ollama tree */
    VP_HOOK_EXEC_WRAPPER, /* ExecStart= runs a script that preloads the shims */
};

struct vp_hook {
    enum vp_hook_kind kind;
    char *file;    /* runtime path */
    unsigned line; /* 0 when not line-based */
    char *what;
    char *why;
    /* For migrate: the preload entry (ld.so.preload), the variable assigned (LD_PRELOAD,
     * LD_AUDIT, LD_LIBRARY_PATH), the wrapper (exec-wrapper); NULL for libraries. */
    char *arg;
    unsigned reset_line; /* exec-wrapper: the `ExecStart=` reset before it (0: none) */
    bool in_unit;        /* in ollama.service itself, which vgpu-patch never edits */
    char *manual;        /* why migrate must leave it to the operator (NULL: it may go) */
};

struct vp_hooks {
    struct vp_hook *v;
    size_t n;
    char *shim_dir; /* the scan's (NULL: none) */
};

/* What answers to a driver soname. */
enum vp_driver_identity {
    VP_DRIVER_NVIDIA,   /* exports NVIDIA's full driver API (cuGetExportTable and 300 cu*
                         * entry points, or 150 nvml* ones), whatever its file name */
    VP_DRIVER_OURS,     /* carries VP_SHIM_MARKER */
    VP_DRIVER_HANDMADE, /* answers to the soname but is neither */
};
enum vp_driver_identity vp_driver_identify(const struct vp_elf *e, bool nvml);
const char *vp_driver_identity_name(enum vp_driver_identity id);

/* Scans root. prefix (runtime, may be NULL) is the Ollama install whose tree is
 * checked too; owned lists runtime paths our manifest owns (never reported); our own
 * drop-in and environment file are recognised by name and skipped. Links into shim_dir
 * (may be NULL) are followed where it is: it is never re-rooted. */
int vp_hooks_scan(const char *root, const char *prefix, const struct vp_strv *owned,
                  const char *shim_dir, struct vp_hooks *ret);
/* Scans one file as vp_hooks_scan scans the runtime path path for hooks of kind, but
 * reads it from ondisk (a staged copy): migrate's check that an edit took the hooks out. */
int vp_hooks_scan_file(const char *root, const char *shim_dir, enum vp_hook_kind kind,
                       const char *path, const char *ondisk, struct vp_hooks *ret);
void vp_hooks_release(struct vp_hooks *h);
const char *vp_hook_kind_name(enum vp_hook_kind k);

/* Whether a file name is a driver's (libcuda.so*, libnvidia-ml.so*); *nvml says which. */
bool vp_hooks_driver_name(const char *name, bool *nvml);
/* ---- reading configuration text (hooks-text.c) ---- */

/* The end of the systemd word of line starting at i (blanks separate words, quotes
 * group, a backslash in quotes escapes): detection and migrate's edit split alike. */
size_t vp_systemd_word_end(const char *line, size_t i);
/* The word [b, e) of a systemd line without its quotes and escapes (caller frees). */
char *vp_systemd_unquote(const char *b, const char *e);
/* A shell value at value: up to an unquoted blank or shell operator, without its quotes
 * (caller frees); *ret_end is where it ends in value. */
char *vp_shell_value(const char *value, const char **ret_end);

/* What the lines of a script (shell) or environment file read so far leave open. */
struct vp_line_state {
    bool shell;        /* set by the caller: the file is a shell script */
    char quote;        /* a quote left open */
    bool backslash;    /* the last line ended with an unescaped backslash */
    char *heredoc;     /* the delimiter of the here-document the lines are in */
    bool heredoc_dash; /* <<- (leading tabs of the delimiter line ignored) */
};
/* Takes the next line: returns whether it continues an earlier one (after a '\\', in an
 * open quote or a here-document), and follows what it leaves open. */
bool vp_line_state_next(struct vp_line_state *s, const char *line);
void vp_line_state_release(struct vp_line_state *s);

#endif
