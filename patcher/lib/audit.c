/* audit: the audit mechanism's variables and the environment file. */
#include "audit.h"
#include "discover.h"

#include <errno.h>
#include <gnu/libc-version.h>
#include <stdio.h>
#include <string.h>

const char *vp_glibc_version(void)
{
    const char *v = secure_getenv("VGPU_PATCH_GLIBC_VERSION");
    return v && *v ? v : gnu_get_libc_version();
}

bool vp_glibc_needs_bind_now(const char *version)
{
    unsigned major = 0, minor = 0;
    if (sscanf(version, "%u.%u", &major, &minor) != 2)
        return true; /* unknown: the safe side */
    return major < 2 || (major == 2 && minor < 35);
}

/* A value as systemd's EnvironmentFile= reads it: plain when it has nothing special,
 * else in double quotes with \ and " escaped. */
static char *env_value(const char *v)
{
    if (!v[strcspn(v, " \t\"'\\$#;")])
        return vp_xstrdup(v);
    _cleanup_(freep) char *buf = vp_xcalloc(2 * strlen(v) + 3, 1);
    char *o = buf;
    *o++ = '"';
    for (; *v; v++) {
        if (*v == '"' || *v == '\\')
            *o++ = '\\';
        *o++ = *v;
    }
    *o++ = '"';
    char *r = buf;
    buf = NULL;
    return r;
}

void vp_audit_env(const struct vp_shims *s, struct vp_strv *ret)
{
    _cleanup_(freep) char *audit = env_value(s->audit);
    _cleanup_(freep) char *dir = env_value(s->dir);
    vp_strv_push_take(ret, vp_xasprintf("LD_AUDIT=%s", audit));
    vp_strv_push_take(ret, vp_xasprintf("VGPU_SHIM_DIR=%s", dir));
    if (vp_glibc_needs_bind_now(vp_glibc_version()))
        vp_strv_push(ret, "LD_BIND_NOW=1");
}

int vp_env_file_write(const char *state_dir, const struct vp_strv *lines)
{
    _cleanup_(freep) char *path = vp_path_join(state_dir, VP_ENV_FILE);
    _cleanup_(freep) char *text = vp_xstrdup("");
    for (size_t i = 0; i < lines->n; i++) {
        char *next = vp_xasprintf("%s%s\n", text, lines->v[i]);
        free(text);
        text = next;
    }
    _cleanup_(freep) char *old = NULL;
    size_t len;
    if (vp_read_file(path, 1 << 16, &old, &len) == 0 && len == strlen(text) &&
        memcmp(old, text, len) == 0)
        return 0;
    int r = vp_write_file_atomic(path, text, strlen(text), 0644);
    return r < 0 ? r : 1;
}

bool vp_env_file_delivered(const char *root, const char *env_file)
{
    struct vp_strv files = {0};
    bool has_unit, found = false;
    vp_service_files(root, &files, &has_unit);
    for (size_t i = 0; i < files.n && !found; i++) {
        _cleanup_(freep) char *ondisk = vp_rooted(root, files.v[i]);
        _cleanup_(freep) char *text = NULL;
        if (vp_read_file(ondisk, 1 << 20, &text, NULL) < 0)
            continue;
        struct vp_strv lines = {0};
        vp_strv_split(&lines, text, "\n");
        for (size_t k = 0; k < lines.n && !found; k++) {
            const char *l = lines.v[k] + strspn(lines.v[k], " \t");
            if (!vp_startswith(l, "EnvironmentFile="))
                continue;
            l += strlen("EnvironmentFile=");
            l += *l == '-'; /* "-" only makes a missing file no error */
            found = strcmp(l, env_file) == 0;
        }
        vp_strv_release(&lines);
    }
    vp_strv_release(&files);
    return found && has_unit;
}
