/* rollback: the state on disk of a change the manifest records, and its exact undo —
 * the original inode (or an exact copy of it) back in place, a link back to what it was.
 * A file that changed since it was patched is never clobbered. */
#ifndef VP_ROLLBACK_H
#define VP_ROLLBACK_H

#include "manifest.h"

enum vp_entry_state {
    VP_STATE_PATCHED,  /* as vgpu-patch left it (stat identity) */
    VP_STATE_LINKED,   /* our link, as left */
    VP_STATE_ORIGINAL, /* the original is back */
    VP_STATE_CHANGED,  /* something else is there now (an upgrade?) */
    VP_STATE_MISSING,
};

const char *vp_entry_state_name(enum vp_entry_state s);

/* From stat alone (fast: status runs at every service start). *ret_detail explains
 * anything but PATCHED/LINKED (caller frees; NULL otherwise). */
enum vp_entry_state vp_entry_state(const char *root, const struct vp_entry *e, char **ret_detail);

enum vp_rollback_outcome {
    VP_ROLLBACK_RESTORED,
    VP_ROLLBACK_ALREADY,  /* the original was in place already */
    VP_ROLLBACK_REFUSED,  /* changed since it was patched: left alone */
    VP_ROLLBACK_FAILED,
};

const char *vp_rollback_outcome_name(enum vp_rollback_outcome o);

/* Undoes one entry (dry_run: only decides). The restored file must hash to the recorded
 * original. *ret_msg explains anything but RESTORED/ALREADY (caller frees). */
enum vp_rollback_outcome vp_rollback_entry(const char *root, const struct vp_entry *e,
                                           bool dry_run, char **ret_msg);

/* Called for each entry vp_rollback_install() handles (msg may be NULL). */
typedef void (*vp_rollback_report_fn)(void *ctx, const struct vp_entry *e,
                                      enum vp_rollback_outcome out, const char *msg);

/* What of an install to undo: its tree (links, then files) or our systemd files (files,
 * then their directory). A full rollback undoes the tree first and the units only when
 * the whole tree is back, so that a rollback that cannot finish leaves the service
 * running `ensure`; `ensure` restoring the originals undoes the tree alone, so that the
 * next start patches again once the shims load. */
enum vp_undo { VP_UNDO_TREE, VP_UNDO_UNITS };

/* Undoes the entries of an install that what selects — links first (they point at the
 * shims), then files, last patched first; or unit files, then their directory —
 * reporting each, and (unless dry_run) removes the undone ones from it. Undoing the tree
 * also ends its mechanism ("none") once no file or link of it is left. The backups of
 * undone files are appended to backups (the caller deletes those the manifest no longer
 * uses). Returns the number of entries removed, and *ret_worst the worst outcome
 * (RESTORED when there was nothing to undo). */
size_t vp_rollback_install(const char *root, struct vp_manifest_install *in, enum vp_undo what,
                           bool dry_run, vp_rollback_report_fn report, void *ctx,
                           struct vp_strv *backups, enum vp_rollback_outcome *ret_worst);

/* Undoes one migrated entry (manifest.h): an edited file gets its original inode back, a
 * removed file or link comes back, a disabled file gets its name back — each only while
 * it is as migrate left it (REFUSED otherwise: an edit or upgrade since). A regenerated
 * ld.so.cache is put back when nothing rebuilt it since; else *ret_ldconfig is set (the
 * caller runs ldconfig instead) and the outcome is ALREADY. */
enum vp_rollback_outcome vp_rollback_migrated(const char *root, const struct vp_entry *e,
                                              bool dry_run, bool *ret_ldconfig,
                                              char **ret_msg);

/* Undoes every migrated entry of m, last first, reporting each, and (unless dry_run)
 * removes the undone ones; their backups are appended to backups. Returns how many were
 * removed, *ret_worst as vp_rollback_install, *ret_ldconfig as vp_rollback_migrated. */
size_t vp_rollback_migrations(const char *root, struct vp_manifest *m, bool dry_run,
                              vp_rollback_report_fn report, void *ctx, struct vp_strv *backups,
                              enum vp_rollback_outcome *ret_worst, bool *ret_ldconfig);

#endif
