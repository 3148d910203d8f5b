/* loader: a model of glibc 2.36 ld.so's library search (elf/dl-load.c, dl-deps.c) for one
 * namespace of one process over a root directory, recording how every name was resolved. */
#ifndef VP_LOADER_H
#define VP_LOADER_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "elfmodel.h"
#include "ldcache.h"
#include "util.h"

/* How a name was resolved. */
enum vp_how {
    VP_HOW_NOT_FOUND,
    VP_HOW_LOADED_NAME,   /* an object already loaded under that name (l_name or an alias) */
    VP_HOW_LOADED_SONAME, /* an object already loaded whose DT_SONAME is that name */
    VP_HOW_LOADED_INODE,  /* the file found is an object already loaded under another path */
    VP_HOW_PATH,          /* the name contains '/': opened as given (after $ORIGIN etc.) */
    VP_HOW_RPATH,         /* DT_RPATH of obj (the caller, its loaders, or the executable) */
    VP_HOW_LD_LIBRARY_PATH,
    VP_HOW_RUNPATH, /* DT_RUNPATH of obj, the caller */
    VP_HOW_CACHE,   /* /etc/ld.so.cache */
    VP_HOW_DEFAULT, /* a default directory */
};

/* The answer to one lookup. */
struct vp_lfound {
    enum vp_how how;
    char *path;   /* runtime path ld.so records as l_name; NULL when not found */
    size_t obj;   /* LOADED_*: the object; RPATH/RUNPATH: whose list; else SIZE_MAX */
    size_t entry; /* RPATH/RUNPATH/LD_LIBRARY_PATH/DEFAULT: 0-based element of that list */
    char *dir;    /* that element after $ORIGIN/$LIB/$PLATFORM expansion, else NULL */
};
void vp_lfound_release(struct vp_lfound *f);

/* One object of the namespace (a struct link_map). */
struct vp_lobj {
    char *name;             /* l_name: the runtime path it was found under */
    char *file;             /* on-disk path: root + that path with symlinks resolved */
    struct vp_elf *elf;     /* NULL for a placeholder of a missing library (trace mode) */
    size_t loader;          /* l_loader: the object whose DT_NEEDED loaded it, or SIZE_MAX */
    struct vp_strv aliases; /* l_libname: names it was requested under, first one first */
    char *origin;           /* $ORIGIN; NULL when unknown */
    struct vp_lfound found; /* how it was found when it was loaded */
    bool faked;             /* a missing library, kept as ldd lists it ("not found") */
    dev_t dev;              /* identity for the same-file check (0/0 for the executable */
    ino_t ino;              /*  and ld.so itself, which ld.so never compares either) */
};

/* One namespace of one process. Fields may be adjusted between init and the first load. */
struct vp_lspace {
    char *root;  /* "/" or a fake root: files are read at root + runtime path */
    char *cwd;   /* the process's working directory (runtime path) */
    char *llp;   /* LD_LIBRARY_PATH, NULL when unset */
    bool secure; /* AT_SECURE: LD_LIBRARY_PATH ignored, DSTs restricted */
    bool trace;  /* like ldd (LD_TRACE_LOADED_OBJECTS=1): a missing library becomes a placeholder
                  * and loading goes on; otherwise it stops with ld.so's error, as at start */
    struct vp_ldcache *cache;    /* root/etc/ld.so.cache; NULL when absent or unreadable */
    int cache_error;             /* why cache is NULL (negative errno), 0 when loaded */
    struct vp_strv default_dirs; /* Debian 12: /lib/x86_64-linux-gnu /usr/lib/... /lib /usr/lib */
    struct vp_strv subdirs;      /* tried inside every directory, in order, each ending in '/',
                                  * the last one "" (the directory itself) */
    const char *platform, *lib;  /* $PLATFORM and $LIB */
    struct vp_strv warnings;     /* what ld.so would print and ignore (a preload not found) */
    struct vp_strv dir_keys, dir_vals; /* resolved search directories (a cache) */
    struct vp_strv host_dirs;    /* runtime dirs read at their own path, not under root: the
                                  * shim dir, which --root never re-roots */
    struct vp_lobj *objs;        /* in load order (the namespace's link map list) */
    size_t n, cap;
    size_t exe; /* index of the executable, SIZE_MAX before load_exe */
};

/* Sets up a namespace over root with Debian 12's defaults and root/etc/ld.so.cache (an absent
 * or corrupt cache is treated as empty, as ld.so does; see cache_error). ld_library_path may be
 * NULL; cwd is the process's working directory. Returns 0 or a negative errno. */
int vp_lspace_init(struct vp_lspace *ls, const char *root, const char *ld_library_path,
                   const char *cwd);
void vp_lspace_release(struct vp_lspace *ls);

/* Loads the executable (runtime path exe), ld.so itself (its PT_INTERP), the preloads
 * (NULL-terminated, may be NULL; one not found is recorded in warnings and ignored) and then
 * all DT_NEEDED breadth-first, as ld.so does at startup. Returns 0, or a negative errno with
 * ld.so's message ("EXE: error while loading shared libraries: libX: cannot open shared object
 * file: No such file or directory"); what was loaded before the error stays in the space. */
int vp_lspace_load_exe(struct vp_lspace *ls, const char *exe, const char *const *preload);

/* dlopen(name) called from object `caller`: loads the object and its needs. *ret_idx is the
 * object that answers; ret_found (may be NULL) says how the name itself was resolved (release
 * it with vp_lfound_release). On failure nothing stays loaded, as with dlopen. */
int vp_lspace_dlopen(struct vp_lspace *ls, size_t caller, const char *name, size_t *ret_idx,
                     struct vp_lfound *ret_found);

/* Resolves name for a request by object `caller` (SIZE_MAX: no caller) without loading
 * anything: an already loaded object, or the file a search would open. Returns 0 with
 * ret->how == VP_HOW_NOT_FOUND when nothing answers, a negative errno when ld.so would stop
 * with an error (a candidate that is not ELF, an executable, ...). */
int vp_lspace_resolve(struct vp_lspace *ls, size_t caller, const char *name, struct vp_lfound *ret);

/* The object that answers name right now with no search (dlopen RTLD_NOLOAD): matched by
 * l_name, an alias or DT_SONAME, first in load order; -1 if none. */
ssize_t vp_lspace_find_loaded(const struct vp_lspace *ls, const char *name);

/* "LD_LIBRARY_PATH", "RPATH", ... for enum values. */
const char *vp_how_name(enum vp_how h);

/* A sentence for a CLI: "via LD_LIBRARY_PATH entry 1 (/opt/alt)". Caller frees. */
char *vp_lfound_describe(const struct vp_lspace *ls, const struct vp_lfound *f);

#endif
