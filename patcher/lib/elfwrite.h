/* elfwrite: applies DT_NEEDED edits to a byte-identical copy of an ELF file, never to
 * the installed file. Three methods, tried in this order:
 *  - in place: only the changed bytes are written (a name that fits, or a spare
 *    DT_NULL slot plus a string that already exists);
 *  - segment: a new read-write PT_LOAD appended at the end of the copy holds the
 *    grown .dynstr and .dynamic; a PT_NULL or redundant PT_NOTE program header is
 *    turned into it, so the program header table never moves;
 *  - patchelf: one edit per invocation (Debian 12's 0.14.3 corrupts multi-edit
 *    calls, #359), never on Go's internal-linker output (#146, #457).
 * Every result is re-read with libelf and checked before it is trusted. */
#ifndef VP_ELFWRITE_H
#define VP_ELFWRITE_H

#include <sys/resource.h>

#include "elfmodel.h"

enum vp_edit_kind {
    VP_EDIT_ADD_NEEDED,     /* add new_name after the last DT_NEEDED (if absent) */
    VP_EDIT_REPLACE_NEEDED, /* rename DT_NEEDED old_name to new_name (and vn_file) */
};

struct vp_edit {
    enum vp_edit_kind kind;
    char *old_name;
    char *new_name;
};

enum vp_write_method {
    VP_WRITE_NONE,     /* nothing to do: every edit is already present */
    VP_WRITE_INPLACE,
    VP_WRITE_SEGMENT,
    VP_WRITE_PATCHELF,
    VP_WRITE_IMPOSSIBLE,
};

struct vp_write_choice {
    enum vp_write_method method;
    int slot;          /* program header turned into the new PT_LOAD (segment method) */
    bool loses_build_id; /* the converted PT_NOTE held the only build-id note */
    char reason[256];  /* why this method (or why none) */
};

struct vp_write_stats {
    uint64_t bytes_written; /* bytes written into the copy by this module */
    unsigned patchelf_runs;
    struct rusage patchelf_usage; /* summed over patchelf children */
    long patchelf_maxrss_kb;      /* the largest child's peak RSS */
};

const char *vp_write_method_name(enum vp_write_method m);
const char *vp_edit_kind_name(enum vp_edit_kind k);

/* Removes edits that are already present in e; returns how many remain. */
size_t vp_edits_pending(const struct vp_elf *e, const struct vp_edit *edits, size_t n,
                        bool *pending);

/* Chooses how the pending edits can be applied to e. patchelf is the path of the
 * patchelf binary, or NULL when none is available. No I/O. */
void vp_elfwrite_choose(const struct vp_elf *e, const struct vp_edit *edits, size_t n,
                        const char *patchelf, struct vp_write_choice *ret);

/* Applies the edits to copy_path (open as copy_fd, byte-identical to e's file) with the
 * chosen method, then re-reads the copy and checks that it says exactly what the edits
 * asked. Returns 0 or a negative errno with a message. */
int vp_elfwrite_apply(const struct vp_elf *e, int copy_fd, const char *copy_path,
                      const struct vp_edit *edits, size_t n, const struct vp_write_choice *c,
                      const char *patchelf, struct vp_write_stats *stats);

/* Checks that the file at path carries the edits relative to the original model orig:
 * DT_NEEDED list, vn_file names, unchanged interpreter/soname/rpath/runpath, and a
 * PT_DYNAMIC inside a writable PT_LOAD. */
int vp_elfwrite_check(const struct vp_elf *orig, const char *path, const struct vp_edit *edits,
                      size_t n);

#endif
