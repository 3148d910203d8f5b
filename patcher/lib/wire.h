/* wire: the systemd side of an install (DESIGN §3 "wire", "self-heal"): our own drop-in
 * for ollama.service — `vgpu-patch ensure` before every start (fail-open), the
 * environment file, OLLAMA_VULKAN=0, and for the launcher delivery the unit's command
 * wrapped in vgpu-launch — and a path unit that runs `ensure` when Ollama is upgraded
 * while it runs. Files are written only where they differ and recorded in the manifest
 * (kind "unit"), so that rollback removes exactly what was added. */
#ifndef VP_WIRE_H
#define VP_WIRE_H

#include "discover.h"
#include "manifest.h"
#include "util.h"

#define VP_PATH_UNIT "vgpu-patch-ollama.path"
#define VP_PATH_SERVICE "vgpu-patch-ollama.service"
#define VP_DEFAULT_SYSTEMD_DIR "/etc/systemd/system"

struct vp_wire_opts {
    const char *root;
    const char *systemd_dir; /* runtime path, rooted by root */
    const char *unit;        /* the file that names Ollama's program: the unit or a drop-in */
    const char *prefix;      /* the Ollama install */
    const char *bindir;      /* where vgpu-patch and vgpu-launch are at run time */
    const char *state_dir;   /* runtime path */
    const char *shim_dir;
    bool keep_vulkan;        /* do not set OLLAMA_VULKAN=0 */
    bool launcher;           /* the launcher delivery: wrap the unit's ExecStart */
};

struct vp_wire_file {
    char *path; /* runtime */
    const char *role; /* drop-in, path-unit, path-service, drop-in-dir */
    bool written;     /* changed by this run */
};

struct vp_wire_result {
    struct vp_wire_file *files;
    size_t n;
    char *unit_name; /* "ollama.service" */
};

/* Writes the files (those that differ) and records them as entries of mi. Returns 0,
 * or a negative errno with a message (files written so far stay recorded). */
int vp_wire(const struct vp_wire_opts *o, struct vp_manifest_install *mi,
            struct vp_wire_result *ret);
void vp_wire_result_release(struct vp_wire_result *r);

/* Whether systemd runs this machine (/run/systemd/system), so systemctl can be used. */
bool vp_systemd_booted(void);

#endif
