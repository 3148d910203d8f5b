/* trust: ownership and permission checks on the shim dir; identity of the shims. */
#include "trust.h"
#include "elfmodel.h"
#include "vgpu-trust.h"

#include <errno.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>

int vp_trust_check(const char *path)
{
    char msg[PATH_MAX + 256];
    int r = vgpu_trust_check(path, msg, sizeof(msg));
    return r < 0 ? vp_error(r, "%s", msg) : 0;
}

static int check_shim(const char *path, const char *soname)
{
    int r = vp_trust_check(path);
    if (r < 0)
        return r;
    _cleanup_(vp_elf_freep) struct vp_elf *e = NULL;
    if ((r = vp_elf_open(path, &e)) < 0)
        return vp_error(r, "shim %s: %s", path, vp_last_error());
    if (e->kind != VP_ELF_LIB)
        return vp_error(-EINVAL, "shim %s is not a shared library", path);
    if (!e->soname || strcmp(e->soname, soname) != 0)
        return vp_error(-EINVAL,
                        "shim %s has DT_SONAME %s, not %s: a later dlopen(\"%s\") would load "
                        "the real driver beside it",
                        path, e->soname ? e->soname : "(none)", soname, soname);
    if (!e->exports_marker)
        return vp_error(-EINVAL,
                        "%s does not export %s: it is not a vgpu-patch shim (a hand-made or "
                        "older shim?)",
                        path, VP_SHIM_MARKER);
    return 0;
}

int vp_shims_open(const char *dir, struct vp_shims *ret)
{
    if (!dir || dir[0] != '/')
        return vp_error(-EINVAL, "the shim dir must be an absolute path (got %s)",
                        dir ? dir : "nothing");
    struct vp_shims s = {
        .dir = vp_path_normalize(dir),
    };
    s.cuda = vp_path_join(s.dir, VP_SHIM_CUDA_FILE);
    s.nvml = vp_path_join(s.dir, VP_SHIM_NVML_FILE);
    s.audit = vp_path_join(s.dir, VP_AUDIT_FILE);
    int r = vp_trust_check(s.dir);
    if (r == 0)
        r = check_shim(s.cuda, VP_SONAME_CUDA);
    if (r == 0)
        r = check_shim(s.nvml, VP_SONAME_NVML);
    if (r < 0) {
        vp_shims_release(&s);
        return r;
    }
    *ret = s;
    return 0;
}

int vp_shims_check_audit(const struct vp_shims *s)
{
    if (strchr(s->dir, ':'))
        return vp_error(-EINVAL, "the shim dir %s contains ':', which LD_AUDIT (a ':'-separated "
                                 "list) cannot name",
                        s->dir);
    if (access(s->audit, F_OK) < 0)
        return vp_error(-ENOENT, "the audit module %s is missing: the audit mechanism needs it "
                                 "beside the shims",
                        s->audit);
    int r = vp_trust_check(s->audit);
    if (r < 0)
        return r;
    _cleanup_(vp_elf_freep) struct vp_elf *e = NULL;
    if ((r = vp_elf_open(s->audit, &e)) < 0)
        return vp_error(r, "audit module %s: %s", s->audit, vp_last_error());
    if (e->kind != VP_ELF_LIB)
        return vp_error(-EINVAL, "audit module %s is not a shared library", s->audit);
    return 0;
}

void vp_shims_copy(const struct vp_shims *s, struct vp_shims *ret)
{
    *ret = (struct vp_shims){
        .dir = vp_xstrdup(s->dir),
        .cuda = vp_xstrdup(s->cuda),
        .nvml = vp_xstrdup(s->nvml),
        .audit = s->audit ? vp_xstrdup(s->audit) : vp_path_join(s->dir, VP_AUDIT_FILE),
    };
}

void vp_shims_release(struct vp_shims *s)
{
    free(s->dir);
    free(s->cuda);
    free(s->nvml);
    free(s->audit);
    *s = (struct vp_shims){0};
}

char *vp_shims_default_dir(void)
{
    return vp_self_relative("../lib/vgpu");
}
