/* conf: /etc/vgpu/vgpu.conf and the VGPU_* environment (DESIGN §7): `key = value`
 * lines, '#' comments; the environment beats the file, which beats the default.
 * Unknown keys and bad values are reported, never guessed. */
#ifndef VP_CONF_H
#define VP_CONF_H

#include "util.h"
#include "vgpu-conf.h"

/* The keys and their checks are shared with the shims (shims/common/vgpu-conf.h). */
enum vp_conf_key {
    VP_CONF_BACKEND = VGPU_CONF_BACKEND,
    VP_CONF_NATIVE_CUDA = VGPU_CONF_NATIVE_CUDA,
    VP_CONF_NATIVE_NVML = VGPU_CONF_NATIVE_NVML,
    VP_CONF_MEMORY_LIMIT = VGPU_CONF_MEMORY_LIMIT,
    VP_CONF_LOG = VGPU_CONF_LOG,
    VP_CONF_LOG_FILE = VGPU_CONF_LOG_FILE,
    VP_CONF_SHIM_DIR = VGPU_CONF_SHIM_DIR,
    VP_CONF_ENDPOINT = VGPU_CONF_ENDPOINT,
    VP_CONF_CONNECT_TIMEOUT = VGPU_CONF_CONNECT_TIMEOUT,
    VP_CONF_SECRET_FILE = VGPU_CONF_SECRET_FILE,
    VP_CONF_NKEYS = VGPU_CONF_NKEYS,
};

enum vp_conf_source { VP_CONF_DEFAULT, VP_CONF_FILE, VP_CONF_ENV };

struct vp_conf {
    char *value[VP_CONF_NKEYS];
    enum vp_conf_source source[VP_CONF_NKEYS];
    struct vp_strv problems; /* "vgpu.conf:3: unknown key 'x'", one per problem */
};

#define VP_CONF_PATH VGPU_CONF_PATH

/* Loads <root>/etc/vgpu/vgpu.conf (absent is fine) and then the environment.
 * Returns 0 (problems are listed in c->problems) or a negative errno when the file
 * exists but cannot be read. */
int vp_conf_load(struct vp_conf *c, const char *root);
/* Parses configuration text; origin names it in problem messages. */
void vp_conf_parse(struct vp_conf *c, const char *text, size_t len, const char *origin);
/* Applies VGPU_* variables from the environment (read with secure_getenv). */
void vp_conf_apply_env(struct vp_conf *c);
const char *vp_conf_get(const struct vp_conf *c, enum vp_conf_key k);
const char *vp_conf_key_name(enum vp_conf_key k);
const char *vp_conf_source_name(enum vp_conf_source s);
void vp_conf_release(struct vp_conf *c);

#endif
