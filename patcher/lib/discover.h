/* discover: finds Ollama installs (ollama.service and its drop-ins, PATH, /usr/local,
 * /usr, /opt, or a --prefix) under a root, and identifies each one's release from the
 * binary itself, without running it. */
#ifndef VP_DISCOVER_H
#define VP_DISCOVER_H

#include "era.h"
#include "util.h"

enum vp_found_by {
    VP_FOUND_PREFIX = 1 << 0,  /* --prefix */
    VP_FOUND_SERVICE = 1 << 1, /* ExecStart= of ollama.service */
    VP_FOUND_PATH = 1 << 2,    /* $PATH */
    VP_FOUND_SCAN = 1 << 3,    /* /usr/local, /usr, /opt */
};

struct vp_install {
    char *prefix;    /* runtime path of the install prefix (…/bin/ollama lives under it) */
    char *binary;    /* runtime path of bin/ollama, symlinks resolved inside the root */
    unsigned found_by;
    char *unit;      /* the unit file that names it, when found by the service */
    char *version;   /* from Go's build info; NULL when absent */
    char *toolchain;
    unsigned eras;   /* candidate eras (bit mask); one bit when identified */
    char *era_reason;
    /* Layout facts. */
    bool has_lib_ollama, has_runners, has_cuda_dirs, has_llama_server;
};

struct vp_discovery {
    struct vp_install *installs;
    size_t n;
    int chosen;            /* index of the install to act on, -1 if none */
    struct vp_strv notes;  /* duplicates and other remarks for the operator */
};

/* Discovers installs under root. prefix (runtime path, may be NULL) names one install;
 * path_env is the PATH to search (NULL: the default system PATH). Returns 0 with
 * ret->chosen >= 0, or -ENOENT with a message when no install is found. */
int vp_discover(const char *root, const char *prefix, const char *path_env,
                struct vp_discovery *ret);
void vp_discovery_release(struct vp_discovery *d);

/* Identifies one install (version and era) from its files under root. */
int vp_install_identify(const char *root, struct vp_install *in);

/* The ExecStart= binary of ollama.service under root (last assignment wins, drop-ins
 * included); NULL when there is no such unit. *ret_unit names the file it came from. */
char *vp_service_exec_binary(const char *root, char **ret_unit);

/* The files systemd reads for ollama.service under root, as runtime paths: the unit (the
 * first directory that has it) and then its drop-ins in the order systemd applies them
 * (by name; a name in an earlier directory masks it in later ones). *ret_has_unit says
 * whether the unit itself exists (drop-ins alone make no service). */
void vp_service_files(const char *root, struct vp_strv *ret, bool *ret_has_unit);

/* A fingerprint of the release's files under root: bin/ollama and everything in
 * lib/ollama (directories by inode and change time, so that no extraction can set an
 * added, removed or replaced entry back; files by inode, size and modification time, so
 * that a file still being written changes it too). Recorded after a patch, so that
 * `ensure` notices files an upgrade added after that, and polled by `ensure --settle`
 * (hex; caller frees). */
char *vp_tree_stamp(const char *root, const char *prefix);

/* Our own drop-in for ollama.service (wire.h writes it; readers of the unit skip it). */
#define VP_DROPIN_FILE "50-vgpu-patch.conf"

/* The last ExecStart= value (the whole command line, prefix characters included) in the
 * [Service] sections of ollama.service and its drop-ins under root, as systemd applies them
 * (an empty ExecStart= resets it); our own drop-in is skipped when skip_ours. NULL when
 * there is no unit or no command. *ret_file (optional): the runtime path that set it. */
char *vp_service_exec_start(const char *root, bool skip_ours, char **ret_file);

/* The systemd unit directories searched, in priority order. */
extern const char *const vp_unit_dirs[];

#endif
