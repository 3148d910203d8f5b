/* era: the table of Ollama release eras (reference/ollama-loading.md §0–§3): which
 * processes each era starts, the environment it gives them, and every route by which
 * they reach libcuda / libnvidia-ml. The planner and the verifier read only this
 * table; adding an era is adding a row. */
#ifndef VP_ERA_H
#define VP_ERA_H

#include <stdbool.h>

enum vp_era { VP_ERA_A0, VP_ERA_A, VP_ERA_B, VP_ERA_C, VP_ERA_D, VP_ERA_E, VP_ERA_COUNT };
#define VP_ERA_ALL ((1u << VP_ERA_COUNT) - 1)

/* How a process reaches a driver library. */
enum vp_route_kind {
    VP_ROUTE_NEEDED,      /* DT_NEEDED of the executable or of a library it loads */
    VP_ROUTE_DLOPEN_BARE, /* dlopen("libcuda.so.1") by bare name */
    VP_ROUTE_DLOPEN_ABS,  /* dlopen of a fixed absolute path */
    VP_ROUTE_GLOB,        /* glob of directories, then dlopen of the resolved match */
    VP_ROUTE_EXTRACTED,   /* code extracted to a temp dir at every start: not on disk */
};

struct vp_route_spec {
    enum vp_route_kind kind;
    const char *target; /* soname, absolute path, or glob description */
    bool nvml;
    const char *note;
};

#define VP_MAX_ROUTES 6
#define VP_MAX_LIBPATH 4

struct vp_proc_spec {
    const char *role;      /* serve, runner, gpu-discover, llama-server, ... */
    const char *exe;       /* relative to the prefix; may contain one '*' component */
    bool extracted;        /* the executable itself is extracted at run time */
    /* LD_LIBRARY_PATH Ollama sets, in order, relative to the prefix; "$EXEDIR" is the
     * executable's directory; entries with '*' expand to every match. The inherited
     * value comes after these. */
    const char *libpath[VP_MAX_LIBPATH];
    const char *backends;  /* libraries dlopen()ed by absolute path (glob, relative) */
    struct vp_route_spec routes[VP_MAX_ROUTES];
};

#define VP_MAX_PROCS 4

struct vp_era_spec {
    enum vp_era era;
    const char *name;    /* "A0" ... "E" */
    const char *first;   /* first release */
    const char *last;    /* last release, NULL for open-ended */
    const char *summary;
    /* The serve process globs <prefix>/lib/ollama/libcuda.so* before any system dir,
     * so an in-tree link to the shim wins discovery. */
    bool glob_lib_ollama_first;
    struct vp_proc_spec procs[VP_MAX_PROCS];
};

const struct vp_era_spec *vp_era_get(enum vp_era era);
const char *vp_era_name(enum vp_era era);
/* Parses "A0".."E" (case-insensitive); -1 when unknown. */
int vp_era_parse(const char *s);
const char *vp_route_kind_name(enum vp_route_kind k);

/* Compares dotted release versions ("0.5.7", "0.30.0-rc32"); a pre-release sorts
 * before its release. Returns <0, 0, >0. */
int vp_version_cmp(const char *a, const char *b);
/* The eras a release version belongs to (a bit mask of 1u << era; 0 if unknown). */
unsigned vp_era_from_version(const char *version);

#endif
