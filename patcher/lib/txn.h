/* txn: the state dir (lock, journal, backups) and the transaction that replaces
 * installed files. Nothing is written in place: each new file is staged beside the one
 * it replaces, the inode it replaces is kept by a hard link (the backup), and then it
 * is renamed over. Every step is journalled first, so a crash at any point is undone
 * by the next run (vp_state_open recovers), and an error undoes what was done. */
#ifndef VP_TXN_H
#define VP_TXN_H

#include <sys/stat.h>

#include "manifest.h"
#include "util.h"

struct vp_state {
    char *dir; /* on-disk path */
    int lock_fd;
    struct vp_strv recovered; /* what a recovery did, for the operator */
};

enum {
    VP_STATE_CREATE = 1 << 0, /* create the dir when missing */
    VP_STATE_LOCK = 1 << 1,   /* take the exclusive lock (and recover a journal) */
};

/* Opens the state dir. With VP_STATE_LOCK, waits up to timeout_ms for the lock
 * (-EBUSY names the holder), then recovers an interrupted transaction. -ENOENT when
 * the dir does not exist and VP_STATE_CREATE is not given. */
int vp_state_open(const char *dir, unsigned flags, int timeout_ms, struct vp_state *ret);
void vp_state_close(struct vp_state *st);
/* Whether a journal is left by an interrupted run (for read-only commands). */
bool vp_state_interrupted(const struct vp_state *st);
/* Whether another process holds the lock (a run in progress, not an interrupted one). */
bool vp_state_busy(const struct vp_state *st);
/* Finishes or undoes the transaction the journal describes, then removes the journal;
 * what it did is appended to st->recovered. Idempotent. */
int vp_txn_replay(struct vp_state *st);
char *vp_state_backup_dir(const struct vp_state *st);

struct vp_txn_item;
struct vp_txn {
    struct vp_state *st;
    int jfd;
    struct vp_txn_item *items;
    size_t n;
    bool committed; /* vp_txn_commit wrote its "committed" record: only forward now */
};

int vp_txn_begin(struct vp_state *st, struct vp_txn *t);
/* Creates the staging file beside path (O_EXCL, mode 0600) and returns its fd and
 * name (owned by the transaction). */
int vp_txn_stage_file(struct vp_txn *t, const char *path, int *ret_fd, const char **ret_tmp);
/* Keeps the original that is about to be replaced (open as orig_fd, with stat orig)
 * reachable through prev: a hard link to that very inode, or an exact copy across file
 * systems. keep: prev is the permanent backup, which survives the commit and is reused
 * when it already holds that original (same inode, or same content orig_b3). */
int vp_txn_keep_prev(struct vp_txn *t, const char *path, int orig_fd, const struct stat *orig,
                     const char *prev, bool keep, const char *orig_b3);
/* Stages a symbolic link path -> target (replacing the link there, if any, never a file);
 * *ret_prev_target (may be NULL) gets the link it replaces, NULL when there was none. */
int vp_txn_stage_link(struct vp_txn *t, const char *path, const char *target,
                      char **ret_prev_target);
/* Stages the removal of path (a file or a link, open as fd — O_RDONLY or O_PATH with
 * O_NOFOLLOW — with lstat st): its inode is kept as the permanent backup (a hard link,
 * or an exact copy across file systems) and the name goes at vp_txn_rename_all. An
 * interrupted or aborted transaction puts it back. */
int vp_txn_stage_drop(struct vp_txn *t, const char *path, int fd, const struct stat *st,
                      const char *backup, const char *orig_b3);
/* Stages renaming path (lstat st) to a new name `to` that must not exist (the inode
 * moves; nothing is copied). */
int vp_txn_stage_move(struct vp_txn *t, const char *path, const struct stat *st, const char *to);
/* Renames every staged file over its path, in order; -EAGAIN when a path no longer holds
 * what was staged against (an upgrade replaced it meanwhile). */
int vp_txn_rename_all(struct vp_txn *t);
/* Makes it final together with the manifest m, which describes the result: temporary
 * links go, the journal goes. When it fails with t->committed false, nothing is final
 * yet: vp_txn_abort puts everything back. */
int vp_txn_commit(struct vp_txn *t, const struct vp_manifest *m);
/* Undoes everything (originals renamed back, staging files removed). */
int vp_txn_abort(struct vp_txn *t);

/* Crash injection for the recovery tests: with VGPU_FAULT=point[:n] in the environment
 * (builds with VGPU_FAULT_INJECTION only), the n-th time point is reached the process
 * kills itself with SIGKILL. */
void vp_fault(const char *point);

#endif
