/* verify: proof that every process of a planned install ends in the shims (DESIGN §6):
 * the files carry the edits (re-read with libelf), `ld.so --list` resolves them to the
 * shims under the environment Ollama gives each process with a decoy driver first on
 * LD_LIBRARY_PATH, libraries load in a probe child with the shims answering, and each
 * executable, started under an audit probe that stops it before any constructor, has
 * the shims loaded. Under the audit mechanism the same checks run with LD_AUDIT, and a
 * probe requests every driver name the routes use. Every check names the file that
 * answered. */
#ifndef VP_VERIFY_H
#define VP_VERIFY_H

#include "plan.h"

struct vp_check {
    char *process;
    char *subject; /* runtime path checked */
    char *kind;    /* elf, link, ld.so-list, load-probe, exec-probe */
    bool ok;
    char *cuda;    /* the file that answered libcuda.so.1, when the check tells */
    char *nvml;
    char *message;
};

struct vp_verify {
    struct vp_check *v;
    size_t n;
    bool ok;
};

struct vp_verify_opts {
    const char *libexec; /* directory with vgpu-probe, the probe audit module, decoy/ */
    bool live;           /* run the probes (start programs); else static checks only */
    /* The audit mechanism is active: Ollama's processes run with LD_AUDIT and
     * VGPU_SHIM_DIR (the shim dir's audit module). Every check runs under them, and an
     * audit probe in each process's environment asks for every driver name the routes
     * use — bare and by absolute path — and must get the shims. */
    bool audit;
};

/* The helper directory of this installation: <bindir>/../libexec/vgpu-patch. */
char *vp_verify_default_libexec(void);

int vp_verify_plan(const struct vp_plan *p, const struct vp_verify_opts *o, struct vp_verify *ret);
void vp_verify_release(struct vp_verify *v);

/* Checks in child processes that both shims load here and export the marker and cuInit /
 * nvmlInit_v2. Returns 0, or -ENOEXEC with the loader's message. */
int vp_verify_shims_load(const char *libexec, const struct vp_shims *shims);
/* The same for the audit module: it loads and exports la_version and la_objsearch. */
int vp_verify_audit_loads(const char *libexec, const struct vp_shims *shims);

#endif
