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
};

/* What answers to a driver soname. */
enum vp_driver_identity {
    VP_DRIVER_NVIDIA,   /* looks like NVIDIA's driver (many exports, cuGetExportTable) and
                         * its real file is named by the driver version */
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
void vp_hooks_release(struct vp_hooks *h);
const char *vp_hook_kind_name(enum vp_hook_kind k);

/* Whether a file name is a driver's (libcuda.so*, libnvidia-ml.so*); *nvml says which. */
bool vp_hooks_driver_name(const char *name, bool *nvml);
/* Whether a file name is how NVIDIA names its driver's real file: libcuda.so.N.N[.N],
 * libnvidia-ml.so.N.N[.N] (the driver version). */
bool vp_hooks_driver_file_name(const char *name, bool nvml);

/* The end of the systemd word of line starting at i (blanks separate words, quotes
 * group, a backslash in quotes escapes): detection and migrate's edit split alike. */
size_t vp_systemd_word_end(const char *line, size_t i);

#endif
