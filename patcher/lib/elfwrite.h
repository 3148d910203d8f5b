/* elfwrite: applies DT_NEEDED edits to a byte-identical copy of an ELF file, never to
 * the installed file. Three methods, tried in this order:
 *  - in place: only bytes that exist change (a name that fits, or a spare DT_NULL
 *    slot plus a string that already exists);
 *  - segment: a new read-write PT_LOAD appended at the end holds the grown .dynstr
 *    and .dynamic; a PT_NULL or redundant PT_NOTE program header is turned into it,
 *    so the program header table never moves; a file patched this way before has its
 *    segment rewritten (edits do not pile up segments);
 *  - patchelf: one edit per invocation (Debian 12's 0.14.3 corrupts multi-edit
 *    calls, #359), never on Go's internal-linker output (#146, #457).
 * The first two are computed as a patch set (byte ranges over the original), which the
 * copier applies while it copies and hashes, so a patched file costs one pass. Every
 * result is re-read with libelf and checked before it is trusted. */
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
    bool reuse;        /* slot is a segment vgpu-patch appended before: rewritten, not added */
    bool loses_build_id; /* the converted PT_NOTE held the only build-id note */
    char reason[256];  /* why this method (or why none) */
};

/* Bytes that replace (or, past the original size, extend) the original. */
struct vp_patch {
    uint64_t off, len;
    uint8_t *data;
};

struct vp_patchset {
    struct vp_patch *v; /* later entries win where they overlap */
    size_t n;
    uint64_t new_size;  /* size of the result: it may cut the original short, and bytes
                         * between the original end and a patch read as zeros */
};

void vp_patchset_release(struct vp_patchset *ps);

struct vp_write_stats {
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

/* Computes the byte patches for the in-place and segment methods. */
int vp_elfwrite_prepare(const struct vp_elf *e, const struct vp_edit *edits, size_t n,
                        const struct vp_write_choice *c, struct vp_patchset *ret);

/* Applies the pending edits to copy_path (a byte-identical copy of e's file) with
 * patchelf, one invocation per edit. */
int vp_elfwrite_patchelf(const struct vp_elf *e, const char *copy_path,
                         const struct vp_edit *edits, size_t n, const char *patchelf,
                         struct vp_write_stats *stats);

/* Checks that the file at path carries the edits relative to the original model orig:
 * DT_NEEDED list, vn_file names, unchanged interpreter/soname/rpath/runpath, and a
 * PT_DYNAMIC inside a writable PT_LOAD. */
int vp_elfwrite_check(const struct vp_elf *orig, const char *path, const struct vp_edit *edits,
                      size_t n);

#endif
