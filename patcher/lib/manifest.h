/* manifest: what vgpu-patch changed, with everything an exact undo needs — per file
 * the original's hash, size, mtime, inode, owner and mode, the backup that keeps the
 * original inode, the patched result's hash and identity, and the edits. A versioned
 * line format (one record per line, escaped key=value tokens), written atomically. */
#ifndef VP_MANIFEST_H
#define VP_MANIFEST_H

#include <stdint.h>
#include <sys/types.h>

#include "blake3.h"
#include "util.h"

struct vp_fileid {
    char b3[VP_B3_HEX]; /* BLAKE3-256, hex */
    uint64_t size;
    int64_t mtime_ns;
    uint64_t ino, dev;
};

struct stat;
/* A file's modification time in nanoseconds. */
int64_t vp_mtime_ns(const struct stat *st);
/* Fills id from st and the file's BLAKE3 hex (b3 NULL: no hash). */
void vp_fileid_of(struct vp_fileid *id, const struct stat *st, const char *b3);

/* FILE: an installed file patched (with a backup); LINK: a link we added or replaced;
 * UNIT: a systemd file we wrote (patched.b3 is its content; no b3 for a directory);
 * MIGRATED: a legacy hook `migrate` took away (method: edited, removed, disabled, or
 * regenerated for the ld.so.cache; orig is what was there, kept in backup; patched is
 * what migrate left, none for removed; target: a removed link's target, or the new
 * name of a disabled file; role: the hook kind; edits: what went). */
enum vp_entry_kind { VP_ENTRY_FILE, VP_ENTRY_LINK, VP_ENTRY_UNIT, VP_ENTRY_MIGRATED };

struct vp_entry {
    enum vp_entry_kind kind;
    char *path; /* runtime path */
    char *role; /* executable, library, link */
    /* files */
    struct vp_fileid orig, patched;
    mode_t mode;
    uid_t uid;
    gid_t gid;
    char *backup; /* on-disk path of the backup (hard link or copy) */
    char *method; /* segment, in-place, patchelf */
    char *edits;  /* human-readable, ';'-separated */
    /* links */
    char *target;
    char *prev_target; /* the link that was there before, NULL when there was none */
};

struct vp_manifest_install {
    char *prefix, *shim_dir, *version, *eras;
    /* How the shims reach Ollama (DESIGN §7): mechanism "patch" or "audit" (NULL in
     * manifests written before it was recorded: patch), delivery "elf",
     * "environment-file" or "launcher". An audit install is kept with no entries. */
    char *mechanism, *delivery;
    /* What --mechanism asked for ("patch", "audit"; NULL: the choice was vgpu-patch's),
     * so that `ensure` can do it again. "none" in mechanism keeps the record of an
     * install that was rolled back (by the operator) or restored (by `ensure`, with
     * restored set, when its shims stopped loading). */
    char *requested, *restored;
    /* How the install was wired: the systemd dir of our drop-in and units (NULL: not
     * wired, e.g. --no-wire), and "1" when OLLAMA_VULKAN was left alone (--keep-vulkan). */
    char *systemd_dir, *keep_vulkan;
    /* vp_tree_stamp() of the release when it was last patched and verified: ensure
     * patches again when it differs (files an upgrade added later). */
    char *tree_stamp;
    struct vp_entry *entries;
    size_t n;
};

struct vp_manifest {
    char *root;
    struct vp_manifest_install *installs;
    size_t n;
    struct vp_entry *migrated; /* in the order they were made (not per install) */
    size_t n_migrated;
};

#define VP_MANIFEST_MAGIC "vgpu-patch-manifest 1"

/* Loads <state>/manifest; an absent manifest gives an empty one. -EBADMSG when it is
 * corrupt (with the line number). */
int vp_manifest_load(const char *state_dir, struct vp_manifest *ret);
int vp_manifest_parse(const char *text, size_t len, struct vp_manifest *ret);
/* Writes <state>/manifest atomically. */
int vp_manifest_save(const char *state_dir, const struct vp_manifest *m);
/* Serialises to a malloc'd string. */
char *vp_manifest_format(const struct vp_manifest *m);
void vp_manifest_release(struct vp_manifest *m);
void vp_manifest_install_release(struct vp_manifest_install *in);

/* The entries of an install in the Ollama tree (files and links, not our units). */
size_t vp_install_tree_entries(const struct vp_manifest_install *in);

/* Finds (or adds) the install block for prefix. */
struct vp_manifest_install *vp_manifest_install(struct vp_manifest *m, const char *prefix);
struct vp_entry *vp_manifest_find(struct vp_manifest_install *in, const char *path);
/* Adds or replaces the entry for e->path; takes ownership of e's strings. */
void vp_manifest_put(struct vp_manifest_install *in, struct vp_entry *e);
void vp_manifest_remove(struct vp_manifest_install *in, const char *path);
void vp_entry_release(struct vp_entry *e);
/* Appends a migrated entry; takes ownership of e's strings. */
void vp_manifest_add_migrated(struct vp_manifest *m, struct vp_entry *e);
/* Whether any entry of any install uses backup b. */
bool vp_manifest_uses_backup(const struct vp_manifest *m, const char *b);
size_t vp_manifest_count(const struct vp_manifest *m);
/* The mechanism and delivery of an install ("none" and NULL when nothing is recorded;
 * patch and elf for installs recorded before they were). */
const char *vp_install_mechanism(const struct vp_manifest_install *in);
const char *vp_install_delivery(const struct vp_manifest_install *in);
/* The same for the whole manifest: its first install that has one. */
const char *vp_manifest_mechanism(const struct vp_manifest *m);
const char *vp_manifest_delivery(const struct vp_manifest *m);

#endif
