/* conf: configuration file and environment, validated key by key. */
#include "conf.h"

#include <ctype.h>
#include <errno.h>
#include <string.h>

typedef bool (*validator)(const char *v);

static bool is_abs_path(const char *v)
{
    return v[0] == '/';
}

static bool is_backend(const char *v)
{
    return !strcmp(v, "native") || !strcmp(v, "remote") || !strcmp(v, "none");
}

static bool is_log_level(const char *v)
{
    return !strcmp(v, "error") || !strcmp(v, "warn") || !strcmp(v, "info") ||
           !strcmp(v, "debug");
}

static bool is_size(const char *v)
{
    if (!strcmp(v, "none"))
        return true;
    if (*v < '0' || *v > '9')
        return false; /* strtoull would take "-8G" and wrap it */
    char *end;
    errno = 0;
    unsigned long long n = strtoull(v, &end, 10);
    if (end == v || errno || !n)
        return false;
    static const char *const units[] = {"", "K", "M", "G", "T", "KiB", "MiB", "GiB", "TiB"};
    for (size_t i = 0; i < VP_ARRAY_SIZE(units); i++)
        if (!strcmp(end, units[i]))
            return true;
    return false;
}

static bool is_port(const char *p)
{
    char *end;
    unsigned long n = strtoul(p, &end, 10);
    return end != p && !*end && n > 0 && n < 65536;
}

static bool is_endpoint(const char *v)
{
    if (vp_startswith(v, "unix:"))
        return v[5] == '/' || v[5] == '@';
    if (vp_startswith(v, "vsock:")) {
        char *end;
        strtoul(v + 6, &end, 10);
        return end != v + 6 && *end == ':' && is_port(end + 1);
    }
    if (vp_startswith(v, "tcp:")) {
        const char *colon = strrchr(v + 4, ':');
        return colon && colon > v + 4 && is_port(colon + 1);
    }
    return false;
}

static const struct {
    const char *name;
    validator valid;
    const char *expect;
} keys[VP_CONF_NKEYS] = {
    [VP_CONF_BACKEND] = {"backend", is_backend, "native, remote or none"},
    [VP_CONF_NATIVE_CUDA] = {"native_cuda", is_abs_path, "an absolute path"},
    [VP_CONF_NATIVE_NVML] = {"native_nvml", is_abs_path, "an absolute path"},
    [VP_CONF_MEMORY_LIMIT] = {"memory_limit", is_size, "a size such as 8G, 8GiB, or none"},
    [VP_CONF_LOG] = {"log", is_log_level, "error, warn, info or debug"},
    [VP_CONF_LOG_FILE] = {"log_file", is_abs_path, "an absolute path"},
    [VP_CONF_SHIM_DIR] = {"shim_dir", is_abs_path, "an absolute path"},
    [VP_CONF_ENDPOINT] = {"endpoint", is_endpoint,
                          "vsock:CID:PORT, unix:/PATH or tcp:HOST:PORT"},
};

const char *vp_conf_key_name(enum vp_conf_key k)
{
    return keys[k].name;
}

const char *vp_conf_source_name(enum vp_conf_source s)
{
    return s == VP_CONF_ENV ? "environment" : s == VP_CONF_FILE ? "file" : "default";
}

static int find_key(const char *name)
{
    for (int k = 0; k < VP_CONF_NKEYS; k++)
        if (!strcmp(keys[k].name, name))
            return k;
    return -1;
}

static bool has_control(const char *v)
{
    for (; *v; v++)
        if ((unsigned char)*v < 0x20 || *v == 0x7f)
            return true;
    return false;
}

static void set(struct vp_conf *c, int k, const char *v, enum vp_conf_source src,
                const char *where)
{
    if (has_control(v)) {
        vp_strv_push_take(&c->problems, vp_xasprintf("%s: the value of %s contains a control "
                                                     "character",
                                                     where, keys[k].name));
        return;
    }
    if (!keys[k].valid(v)) {
        vp_strv_push_take(&c->problems, vp_xasprintf("%s: bad value '%s' for %s (expected %s)",
                                                     where, v, keys[k].name, keys[k].expect));
        return;
    }
    free(c->value[k]);
    c->value[k] = vp_xstrdup(v);
    c->source[k] = src;
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    return s;
}

void vp_conf_parse(struct vp_conf *c, const char *text, size_t len, const char *origin)
{
    _cleanup_(freep) char *copy = vp_xstrndup(text, len);
    unsigned lineno = 0;
    for (char *line = copy, *next; line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        lineno++;
        char *hash = strchr(line, '#');
        if (hash)
            *hash = '\0';
        char *s = trim(line);
        if (!*s)
            continue;
        _cleanup_(freep) char *where = vp_xasprintf("%s:%u", origin, lineno);
        char *eq = strchr(s, '=');
        if (!eq) {
            vp_strv_push_take(&c->problems,
                              vp_xasprintf("%s: expected 'key = value', got '%s'", where, s));
            continue;
        }
        *eq = '\0';
        char *key = trim(s), *val = trim(eq + 1);
        int k = find_key(key);
        if (k < 0) {
            vp_strv_push_take(&c->problems, vp_xasprintf("%s: unknown key '%s'", where, key));
            continue;
        }
        if (strlen(val) >= 2 && val[0] == '"' && val[strlen(val) - 1] == '"') {
            val[strlen(val) - 1] = '\0';
            val++;
        }
        set(c, k, val, VP_CONF_FILE, where);
    }
}

void vp_conf_apply_env(struct vp_conf *c)
{
    for (int k = 0; k < VP_CONF_NKEYS; k++) {
        char name[32] = "VGPU_";
        for (size_t i = 0; keys[k].name[i] && i < 25; i++)
            name[5 + i] = (char)toupper((unsigned char)keys[k].name[i]);
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
