/* vgpu-patch inspect: the ELF facts vgpu-patch bases its plan on, for diagnosis. */
#include "cli.h"
#include "loader.h"

#include <getopt.h>
#include <string.h>

static const char help[] =
    "Usage: vgpu-patch inspect FILE... [--json]\n"
    "Show the ELF facts of each file that matter for loading libcuda / NVML: type,\n"
    "interpreter, DT_NEEDED (and where each resolves here, with this LD_LIBRARY_PATH),\n"
    "DT_SONAME, RPATH vs RUNPATH, flags, spare dynamic slots,\n"
    "version requirements, dlopen imports, Go build facts, the driver names it contains\n"
    "as strings (dlopen routes), and how vgpu-patch could add the shims to it.\n";

/* Where each DT_NEEDED of path resolves on this system, by the loader model, with this
 * process's LD_LIBRARY_PATH: an executable as at its start, a library as if dlopen()ed. */
static void resolve_needed(const char *path, const struct vp_elf *e, struct vp_strv *out)
{
    struct vp_lspace ls;
    char *abs = realpath(path, NULL);
    if (!abs || !e->has_dynamic || vp_lspace_init(&ls, "/", getenv("LD_LIBRARY_PATH"), "/") < 0) {
        free(abs);
        return;
    }
    ls.trace = true;
    size_t top = SIZE_MAX;
    char why[300] = "";
    _cleanup_(freep) char *self = NULL;
    if (vp_elf_is_executable(e)) {
        if (vp_lspace_load_exe(&ls, abs, NULL) == 0 || ls.exe != SIZE_MAX)
            top = ls.exe;
    } else if (!(self = realpath("/proc/self/exe", NULL)) ||
               vp_lspace_load_exe(&ls, self, NULL) < 0 ||
               vp_lspace_dlopen(&ls, ls.exe, abs, &top, NULL) < 0) {
        /* as if a program without RPATH (this one) dlopen()ed it */
        /* dlopen() is all or nothing: say why instead of guessing per name */
        snprintf(why, sizeof(why), "not resolved: a dlopen of it fails here (%s)",
                 vp_last_error());
        top = SIZE_MAX;
    }
    for (size_t i = 0; i < e->n_needed; i++) {
        ssize_t idx = top == SIZE_MAX ? -1 : vp_lspace_find_loaded(&ls, e->needed[i].name);
        if (idx < 0 || ls.objs[idx].faked) {
            vp_strv_push(out, *why ? why : "not found");
            continue;
        }
        _cleanup_(freep) char *how = vp_lfound_describe(&ls, &ls.objs[idx].found);
        vp_strv_push_take(out, vp_xasprintf("%s (%s)", ls.objs[idx].name, how));
    }
    vp_lspace_release(&ls);
    free(abs);
}

static const char *rpath_kind(const struct vp_elf *e)
{
    return e->runpath ? "DT_RUNPATH (after LD_LIBRARY_PATH, not inherited)"
           : e->rpath ? "DT_RPATH (before LD_LIBRARY_PATH, inherited)"
                      : "none";
}

static void hypothetical(const struct vp_elf *e, struct vp_write_choice *c)
{
    static const char *cuda = "/usr/local/lib/vgpu/libvgpu-cuda.so.1";
    static const char *nvml = "/usr/local/lib/vgpu/libvgpu-nvml.so.1";
    struct vp_edit edits[2] = {{VP_EDIT_ADD_NEEDED, NULL, (char *)cuda},
                               {VP_EDIT_ADD_NEEDED, NULL, (char *)nvml}};
    vp_elfwrite_choose(e, edits, 2, "/usr/bin/patchelf", c);
}

static void json_file(struct vp_json *j, const char *path, const struct vp_elf *e)
{
    struct vp_strv where = {0};
    resolve_needed(path, e, &where);
    vp_json_begin_object(j, NULL);
    vp_json_string(j, "path", path);
    vp_json_string(j, "type", vp_elf_kind_name(e->kind));
    vp_json_string(j, "interpreter", e->interp);
    vp_json_begin_array(j, "needed");
    for (size_t i = 0; i < e->n_needed; i++) {
        vp_json_begin_object(j, NULL);
        vp_json_string(j, "name", e->needed[i].name);
        vp_json_string(j, "resolves_to", i < where.n ? where.v[i] : NULL);
        vp_json_end_object(j);
    }
    vp_json_end_array(j);
    vp_strv_release(&where);
    vp_json_string(j, "soname", e->soname);
    vp_json_string(j, "rpath", e->rpath);
    vp_json_string(j, "runpath", e->runpath);
    vp_json_uint(j, "flags_1", e->flags_1);
    vp_json_uint(j, "spare_dynamic_slots", e->dyn_spare);
    vp_json_bool(j, "section_headers", e->shnum > 0);
    vp_json_begin_array(j, "version_needs");
    for (size_t i = 0; i < e->n_verneed; i++)
        vp_json_string(j, NULL, vp_elf_dynstr(e, e->verneed[i].vn_file));
    vp_json_end_array(j);
    vp_json_bool(j, "imports_dlopen", e->imports_dlopen);
    vp_json_bool(j, "go", e->go);
    vp_json_bool(j, "go_internal_link", e->go_internal_link);
    vp_json_string(j, "go_toolchain", e->go_toolchain);
    vp_json_string(j, "ollama_version", e->ollama_version);
    vp_json_bool(j, "exports_shim_marker", e->exports_marker);
    if (e->soname && (!strcmp(e->soname, VP_SONAME_CUDA) || !strcmp(e->soname, VP_SONAME_NVML)))
        vp_json_string(j, "driver_identity",
                       vp_driver_identity_name(vp_driver_identify(e, !strcmp(e->soname, VP_SONAME_NVML))));
    vp_json_begin_array(j, "route_strings");
    for (size_t i = 0; i < e->n_routes; i++) {
        vp_json_begin_object(j, NULL);
        vp_json_string(j, "text", e->routes[i].text);
        vp_json_string(j, "kind", e->routes[i].glob ? "glob"
                                  : e->routes[i].absolute ? "absolute"
                                                          : "bare");
        vp_json_end_object(j);
    }
    vp_json_end_array(j);
    struct vp_write_choice c;
    hypothetical(e, &c);
    vp_json_string(j, "add_shims_method", vp_write_method_name(c.method));
    vp_json_string(j, "add_shims_reason", c.reason);
    vp_json_end_object(j);
}

static void text_file(const char *path, const struct vp_elf *e)
{
    printf("%s\n  type: %s%s\n", path, vp_elf_kind_name(e->kind),
           e->shnum ? "" : " (no section headers)");
    if (e->interp)
        printf("  interpreter: %s\n", e->interp);
    struct vp_strv where = {0};
    resolve_needed(path, e, &where);
    for (size_t i = 0; i < e->n_needed; i++)
        printf("  needed: %s -> %s\n", e->needed[i].name, i < where.n ? where.v[i] : "?");
    vp_strv_release(&where);
    if (e->soname)
        printf("  soname: %s\n", e->soname);
    printf("  search path: %s%s%s\n", rpath_kind(e), e->runpath || e->rpath ? " = " : "",
           e->runpath ? e->runpath : e->rpath ? e->rpath : "");
    if (e->has_dynamic)
        printf("  dynamic: %zu entries, %zu spare DT_NULL slots, flags_1 %#llx\n", e->dyn_used,
               e->dyn_spare, (unsigned long long)e->flags_1);
    for (size_t i = 0; i < e->n_verneed; i++)
        printf("  version needs from: %s\n", vp_elf_dynstr(e, e->verneed[i].vn_file));
    printf("  imports dlopen: %s\n", e->imports_dlopen ? "yes" : "no");
    if (e->go)
        printf("  Go: %s, %s linker%s%s\n", e->go_toolchain ? e->go_toolchain : "version unknown",
               e->go_internal_link ? "internal" : "external",
               e->ollama_version ? ", Ollama release " : "",
               e->ollama_version ? e->ollama_version : "");
    if (e->exports_marker)
        printf("  exports %s: a vgpu-patch shim\n", VP_SHIM_MARKER);
    if (e->soname && (!strcmp(e->soname, VP_SONAME_CUDA) || !strcmp(e->soname, VP_SONAME_NVML)))
        printf("  answers %s as: %s\n", e->soname,
               vp_driver_identity_name(vp_driver_identify(e, !strcmp(e->soname, VP_SONAME_NVML))));
    for (size_t i = 0; i < e->n_routes; i++)
        printf("  names the driver: \"%s\" (%s)\n", e->routes[i].text,
               e->routes[i].glob ? "glob" : e->routes[i].absolute ? "absolute path" : "bare name");
    struct vp_write_choice c;
    hypothetical(e, &c);
    printf("  adding the shims: %s (%s)\n", vp_write_method_name(c.method), c.reason);
}

int cmd_inspect(int argc, char **argv)
{
    static const struct option longopts[] = {{"json", no_argument, NULL, 'j'},
                                             {"help", no_argument, NULL, 'h'}, {0}};
    bool json = false;
    int opt;
    while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        if (opt == 'j') {
            json = true;
            continue;
        }
        if (opt == 'h') {
            fputs(help, stdout);
            return VP_EXIT_OK;
        }
        fputs(help, stderr);
        return VP_EXIT_USAGE;
    }
    if (optind == argc)
        return cli_fail(VP_EXIT_USAGE, "inspect: name at least one file");
    struct vp_json j;
    if (json) {
        cli_json_begin(&j, "inspect");
        vp_json_begin_array(&j, "files");
    }
    int code = VP_EXIT_OK;
    for (int i = optind; i < argc; i++) {
        struct vp_elf *e = NULL;
        int r = vp_elf_open(argv[i], &e);
        if (r == 0)
            r = vp_elf_scan_strings(e);
        if (r < 0) {
            code = VP_EXIT_ERROR;
            if (json) {
                vp_json_begin_object(&j, NULL);
                vp_json_string(&j, "path", argv[i]);
                vp_json_string(&j, "error", vp_last_error());
                vp_json_end_object(&j);
            }
            cli_fail(VP_EXIT_ERROR, "%s", vp_last_error());
        } else if (json) {
            json_file(&j, argv[i], e);
        } else {
            text_file(argv[i], e);
        }
        vp_elf_free(e);
    }
    if (json) {
        vp_json_end_array(&j);
        vp_json_int(&j, "exit_code", code);
        vp_json_end_object(&j);
        vp_json_finish(&j);
    }
    return code;
}
