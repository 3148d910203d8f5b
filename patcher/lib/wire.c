/* wire: our drop-in and path units, written where they differ, recorded, removable. */
#include "wire.h"
#include "blake3.h"
#include "discover.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

bool vp_systemd_booted(void)
{
    struct stat st;
    return lstat("/run/systemd/system", &st) == 0 && S_ISDIR(st.st_mode);
}

/* The unit's command run through vgpu-launch: systemd's prefix characters (- @ : + !)
 * stay in front. */
static char *launch_line(const struct vp_wire_opts *o, const char *orig)
{
    size_t k = strspn(orig, "-@:+!");
    return vp_xasprintf("ExecStart=\nExecStart=%.*s%s/vgpu-launch --shim-dir %s -- %s\n",
                        (int)k, orig, o->bindir, o->shim_dir, orig + k);
}

static char *dropin_text(const struct vp_wire_opts *o, char **ret_err)
{
    _cleanup_(freep) char *launch = NULL;
    if (o->launcher) {
        _cleanup_(freep) char *orig = vp_service_exec_start(o->root, true, NULL);
        if (!orig) {
            *ret_err = vp_xstrdup("the unit has no ExecStart= to run through vgpu-launch");
            return NULL;
        }
        launch = launch_line(o, orig);
    }
    return vp_xasprintf(
        "# Written by vgpu-patch for %s; `vgpu-patch rollback` removes it, and\n"
        "# `vgpu-patch ensure` writes it again when it is missing or edited. Do not edit.\n"
        "[Service]\n"
        "# Before every start: re-patch after an upgrade, or restore the originals when\n"
        "# the shims do not load. '-': Ollama starts even when this fails; '+': as root.\n"
        "ExecStartPre=-+%s/vgpu-patch ensure --state-dir %s\n"
        "# The audit mechanism's variables (empty under the patch).\n"
        "EnvironmentFile=-%s/ollama.env\n"
        "%s%s",
        o->prefix, o->bindir, o->state_dir, o->state_dir,
        o->keep_vulkan ? ""
                       : "# Vulkan could reach a real driver behind the shims.\n"
                         "Environment=OLLAMA_VULKAN=0\n",
        launch ? launch : "");
}

static char *path_unit_text(const struct vp_wire_opts *o)
{
    return vp_xasprintf("# Written by vgpu-patch; `vgpu-patch rollback` removes it.\n"
                        "[Unit]\n"
                        "Description=Re-apply vgpu-patch when Ollama in %s changes\n"
                        "\n"
                        "[Path]\n"
                        "PathChanged=%s/bin/ollama\n"
                        "PathChanged=%s/lib/ollama\n"
                        "Unit=" VP_PATH_SERVICE "\n"
                        "\n"
                        "[Install]\n"
                        "WantedBy=multi-user.target\n",
                        o->prefix, o->prefix, o->prefix);
}

static char *path_service_text(const struct vp_wire_opts *o)
{
    return vp_xasprintf("# Written by vgpu-patch; `vgpu-patch rollback` removes it.\n"
                        "[Unit]\n"
                        "Description=vgpu-patch ensure after an Ollama upgrade\n"
                        "\n"
                        "[Service]\n"
                        "Type=oneshot\n"
                        "# Waits until an upgrade stopped writing, then patches what it left.\n"
                        "ExecStart=%s/vgpu-patch ensure --settle 10 --state-dir %s\n",
                        o->bindir, o->state_dir);
}

static void record(struct vp_manifest_install *mi, const char *path, const char *role,
                   const char *text)
{
    struct vp_entry e = {.kind = VP_ENTRY_UNIT, .path = vp_xstrdup(path), .role = vp_xstrdup(role)};
    if (text) {
        struct vp_b3 h;
        uint8_t digest[32];
        vp_b3_init(&h);
        vp_b3_update(&h, text, strlen(text));
        vp_b3_final(&h, digest);
        vp_b3_hex(digest, e.patched.b3);
    }
    e.patched.size = text ? strlen(text) : 0;
    vp_manifest_put(mi, &e);
}

static void add_result(struct vp_wire_result *r, const char *path, const char *role,
                       bool written)
{
    r->files = vp_xrealloc(r->files, (r->n + 1) * sizeof(*r->files));
    r->files[r->n++] = (struct vp_wire_file){vp_xstrdup(path), role, written};
}

/* Writes one file (runtime path) where its content differs. */
static int put(const struct vp_wire_opts *o, struct vp_manifest_install *mi,
               struct vp_wire_result *r, const char *path, const char *role, const char *text)
{
    _cleanup_(freep) char *ondisk = vp_rooted(o->root, path);
    _cleanup_(freep) char *cur = NULL;
    size_t len;
    bool same = vp_read_file(ondisk, 1 << 20, &cur, &len) == 0 && len == strlen(text) &&
                memcmp(cur, text, len) == 0;
    if (!same) {
        int e = vp_write_file_atomic(ondisk, text, strlen(text), 0644);
        if (e < 0)
            return e;
    }
    record(mi, path, role, text);
    add_result(r, path, role, !same);
    return 0;
}

/* The launcher delivery holds only while our ExecStart= is the last one systemd applies:
 * a drop-in whose name sorts after ours (`systemctl edit` writes override.conf) and sets
 * ExecStart= would replace the wrapped command. Checked before anything is written. */
static int check_launch_wins(const struct vp_wire_opts *o)
{
    _cleanup_(freep) char *file = NULL;
    _cleanup_(freep) char *cmd = vp_service_exec_start(o->root, true, &file);
    _cleanup_(freep) char *dir = file ? vp_dirname(file) : NULL;
    if (!file || !vp_endswith(dir, ".d") || strcmp(vp_basename(file), VP_DROPIN_FILE) < 0)
        return 0;
    return vp_error(-EEXIST,
                    "%s sets ExecStart= after our drop-in, so the unit would not run Ollama "
                    "through vgpu-launch: put the command there as `%s/vgpu-launch -- "
                    "COMMAND`, or remove that ExecStart=, and run vgpu-patch again",
                    file, o->bindir);
}

/* The unit's name from the file that named the program: the unit file itself, or a
 * drop-in of it (<name>.d/<file>.conf). */
static char *unit_name(const char *file)
{
    _cleanup_(freep) char *dir = vp_dirname(file);
    const char *d = vp_basename(dir);
    if (vp_endswith(d, ".d"))
        return vp_xstrndup(d, strlen(d) - 2);
    return vp_xstrdup(vp_basename(file));
}

int vp_wire(const struct vp_wire_opts *o, struct vp_manifest_install *mi,
            struct vp_wire_result *ret)
{
    *ret = (struct vp_wire_result){.unit_name = unit_name(o->unit)};
    _cleanup_(freep) char *dir = vp_xasprintf("%s/%s.d", o->systemd_dir, ret->unit_name);
    _cleanup_(freep) char *dir_ondisk = vp_rooted(o->root, dir);
    _cleanup_(freep) char *sd_ondisk = vp_rooted(o->root, o->systemd_dir);
    if (o->launcher && check_launch_wins(o) < 0)
        return -EEXIST;
    char *err = NULL;
    _cleanup_(freep) char *dropin = dropin_text(o, &err);
    if (!dropin) {
        int r = vp_error(-EINVAL, "%s", err);
        free(err);
        return r;
    }
    int r = vp_mkdir_p(sd_ondisk, 0755);
    if (r < 0)
        return vp_error_errno(r, "cannot create %s", sd_ondisk);
    if (mkdir(dir_ondisk, 0755) == 0) {
        record(mi, dir, "drop-in-dir", NULL); /* ours: removed when empty */
        add_result(ret, dir, "drop-in-dir", true);
    } else if (errno != EEXIST) {
        return vp_error_errno(-errno, "cannot create %s", dir_ondisk);
    }
    _cleanup_(freep) char *dropin_path = vp_path_join(dir, VP_DROPIN_FILE);
    _cleanup_(freep) char *path_unit = vp_path_join(o->systemd_dir, VP_PATH_UNIT);
    _cleanup_(freep) char *path_service = vp_path_join(o->systemd_dir, VP_PATH_SERVICE);
    _cleanup_(freep) char *t_path = path_unit_text(o);
    _cleanup_(freep) char *t_service = path_service_text(o);
    r = put(o, mi, ret, dropin_path, "drop-in", dropin);
    if (r == 0)
        r = put(o, mi, ret, path_service, "path-service", t_service);
    if (r == 0)
        r = put(o, mi, ret, path_unit, "path-unit", t_path);
    return r;
}

void vp_wire_result_release(struct vp_wire_result *r)
{
    for (size_t i = 0; i < r->n; i++)
        free(r->files[i].path);
    free(r->files);
    free(r->unit_name);
    *r = (struct vp_wire_result){0};
}
