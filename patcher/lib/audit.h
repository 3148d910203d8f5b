/* audit: the delivery of the audit mechanism (DESIGN §4, §7). Ollama's processes need
 * LD_AUDIT naming the shim dir's audit module, VGPU_SHIM_DIR, and — on glibc older
 * than 2.35, where any auditor sends every lazily bound call through the profiling
 * path (glibc bug 15533) — LD_BIND_NOW=1. The service gets them from the environment
 * file <state-dir>/ollama.env (empty when the patch covers everything); supervisors
 * that cannot set an environment run Ollama through vgpu-launch, which sets them. */
#ifndef VP_AUDIT_H
#define VP_AUDIT_H

#include "trust.h"
#include "util.h"

#define VP_ENV_FILE "ollama.env"

/* The glibc version the variables are for: VGPU_PATCH_GLIBC_VERSION when set (tests),
 * else the running one. */
const char *vp_glibc_version(void);
/* Whether a glibc version needs LD_BIND_NOW=1 under an auditor (older than 2.35). */
bool vp_glibc_needs_bind_now(const char *version);

/* The audit mechanism's variables for a shim dir, as KEY=VALUE lines. */
void vp_audit_env(const struct vp_shims *s, struct vp_strv *ret);

/* Writes <state_dir>/ollama.env with the lines (none: an empty file), atomically and
 * only when its content changes. Returns 1 when written, 0 when it was already so,
 * or a negative errno with a message. */
int vp_env_file_write(const char *state_dir, const struct vp_strv *lines);

/* Whether ollama.service under root reads the environment file env_file (a runtime
 * path): an EnvironmentFile= line naming it in the unit or one of its drop-ins. */
bool vp_env_file_delivered(const char *root, const char *env_file);

#endif
