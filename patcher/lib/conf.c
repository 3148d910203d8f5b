/* conf: configuration file and environment, validated key by key. The key table, the
 * value checks and the line syntax live in shims/common/vgpu-conf.c, shared with the
 * shims; this file collects values and problems for vgpu-patch. */
#include "conf.h"

#include <errno.h>
#include <string.h>

const char *vp_conf_key_name(enum vp_conf_key k)
{
    return vgpu_conf_key_name((enum vgpu_conf_key)k);
}

const char *vp_conf_source_name(enum vp_conf_source s)
{
    return s == VP_CONF_ENV ? "environment" : s == VP_CONF_FILE ? "file" : "default";
}

static void set(struct vp_conf *c, int k, const char *v, enum vp_conf_source src,
                const char *where)
{
    const char *problem = vgpu_conf_check((enum vgpu_conf_key)k, v);
    if (problem) {
        /* A value with control characters is not echoed back. */
        bool printable = !strstr(problem, "control");
        vp_strv_push_take(&c->problems,
                          vp_xasprintf("%s: bad value%s%s%s for %s (%s)", where,
                                       printable ? " '" : "", printable ? v : "",
                                       printable ? "'" : "", vp_conf_key_name(k), problem));
        return;
    }
    free(c->value[k]);
    c->value[k] = vp_xstrdup(v);
    c->source[k] = src;
}

struct parse_ctx {
    struct vp_conf *conf;
    const char *origin;
};

static void parse_line(void *ctx, unsigned lineno, const char *key, const char *value)
{
    struct parse_ctx *p = ctx;
    _cleanup_(freep) char *where = vp_xasprintf("%s:%u", p->origin, lineno);
    if (!key) {
        vp_strv_push_take(&p->conf->problems,
                          vp_xasprintf("%s: expected 'key = value', got '%s'", where, value));
        return;
    }
    int k = vgpu_conf_find_key(key);
    if (k < 0) {
        vp_strv_push_take(&p->conf->problems,
                          vp_xasprintf("%s: unknown key '%s'", where, key));
        return;
    }
    set(p->conf, k, value, VP_CONF_FILE, where);
}

void vp_conf_parse(struct vp_conf *c, const char *text, size_t len, const char *origin)
{
    _cleanup_(freep) char *copy = vp_xstrndup(text, len);
    struct parse_ctx p = {c, origin};
    vgpu_conf_scan(copy, parse_line, &p);
}

void vp_conf_apply_env(struct vp_conf *c)
{
    for (int k = 0; k < VP_CONF_NKEYS; k++) {
        char name[VGPU_CONF_ENV_MAX];
        vgpu_conf_key_env((enum vgpu_conf_key)k, name);
        const char *v = secure_getenv(name);
        if (v && *v) {
            _cleanup_(freep) char *where = vp_xasprintf("environment %s", name);
            set(c, k, v, VP_CONF_ENV, where);
        }
    }
}

int vp_conf_load(struct vp_conf *c, const char *root)
{
    *c = (struct vp_conf){0};
    _cleanup_(freep) char *path = vp_rooted(root, VP_CONF_PATH);
    _cleanup_(freep) char *text = NULL;
    size_t len;
    int r = vp_read_file(path, 1 << 20, &text, &len);
    if (r < 0 && r != -ENOENT)
        return vp_error_errno(r, "cannot read %s", path);
    if (r == 0)
        vp_conf_parse(c, text, len, VP_CONF_PATH);
    vp_conf_apply_env(c);
    return 0;
}

const char *vp_conf_get(const struct vp_conf *c, enum vp_conf_key k)
{
    return c->value[k];
}

void vp_conf_release(struct vp_conf *c)
{
    for (int k = 0; k < VP_CONF_NKEYS; k++)
        free(c->value[k]);
    vp_strv_release(&c->problems);
    *c = (struct vp_conf){0};
}
