/* plan: from the era table's routes and the ELF facts of one install, the edits that
 * make every route to libcuda / libnvidia-ml end in the shims — computed and
 * printable before anything is written. Executables Ollama runs get the shims as
 * absolute DT_NEEDED entries (so every later lookup of the driver sonames matches them
 * without a search); glob-based discovery is answered by an in-tree link where the era
 * looks in lib/ollama first; a library is rewritten only where its own DT_NEEDED uses
 * a spelling the soname rule does not cover. */
#ifndef VP_PLAN_H
#define VP_PLAN_H

#include "discover.h"
#include "elfwrite.h"
#include "trust.h"

enum vp_file_role { VP_ROLE_EXECUTABLE, VP_ROLE_LIBRARY, VP_ROLE_LINK };

struct vp_plan_file {
    char *path;   /* runtime path */
    enum vp_file_role role;
    struct vp_strv processes; /* roles of the processes that run or load it */
    struct vp_edit *edits;
    size_t n_edits;
    struct vp_write_choice choice; /* ELF files */
    char *link_target;             /* links */
    bool done;                     /* already as planned: nothing to write */
    uint64_t size;
    dev_t dev;                     /* the file the plan was made for (ELF files) */
    ino_t ino;
    int64_t mtime_ns;
};

struct vp_plan_route {
    char *process;
    enum vp_route_kind kind;
    char *target;
    bool covered;
    char *how;       /* why it ends in the shim, or why it cannot be covered on disk */
    char *mechanism; /* "patch", or the fallback that would cover it ("audit") */
};

enum { VP_PREDICT_CUDA, VP_PREDICT_NVML, VP_PREDICT_N };

/* What the loader model says answers the driver sonames in a process (predict.h). */
struct vp_prediction {
    char *file[VP_PREDICT_N]; /* runtime path of the answering file, NULL when none */
    char *how[VP_PREDICT_N];  /* how the loader got it, in words */
};

/* One process Ollama starts, as the verifier reproduces it. */
struct vp_plan_process {
    char *role;
    char *exe;               /* runtime path */
    struct vp_strv libpath;  /* LD_LIBRARY_PATH Ollama gives it (runtime paths) */
    struct vp_strv backends; /* libraries it dlopen()s by absolute path */
    struct vp_prediction today, after; /* before the patch, and with it */
};

struct vp_plan {
    char *root;
    char *prefix;
    unsigned eras;
    struct vp_shims shims;
    struct vp_plan_file *files;
    size_t n_files;
    struct vp_plan_route *routes;
    size_t n_routes;
    struct vp_plan_process *procs;
    size_t n_procs;
    bool all_covered;
    struct vp_strv notes;
};

/* Builds the plan for install in (identified) with the shims. patchelf may be NULL.
 * Returns 0 (uncovered routes are listed, with all_covered false) or a negative errno
 * when a file Ollama needs cannot be read. */
int vp_plan_build(const char *root, const struct vp_install *in, const struct vp_shims *shims,
                  const char *patchelf, struct vp_plan *ret);
void vp_plan_release(struct vp_plan *p);
/* Hands the plan to the audit mechanism: every route is covered by LD_AUDIT — the
 * open ones, and with patch_too false all of them, with no file left to write (an
 * unpatched install); with patch_too the files are still patched where it helps. */
void vp_plan_use_audit(struct vp_plan *p, bool patch_too);

/* Number of files that need writing. */
size_t vp_plan_pending(const struct vp_plan *p);
const char *vp_file_role_name(enum vp_file_role r);
/* "add-needed /x/libvgpu-cuda.so.1" etc., for printing. */
char *vp_edit_describe(const struct vp_edit *e);

#endif
