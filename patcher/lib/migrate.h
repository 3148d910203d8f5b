/* migrate: takes away the global loader hooks of earlier deployment methods (hooks.h),
 * exactly and with a way back. ld.so.preload entries and loader variables go word by
 * word, environment files lose only the hook lines, a drop-in we did not write is
 * edited (or disabled when nothing else is left in it), libraries posing as the driver
 * are removed. Everything changed is kept in the state dir, recorded in the manifest
 * ("migrated" entries; rollback.h undoes them) and written in one journalled
 * transaction (txn.h). The unit itself and files a package owns are never changed, nor
 * is a hook that cannot go alone (a value with other entries, a continued line, a script
 * line that does more): those are kept for the operator. Paths are acted on where they
 * lead inside the root (vp_root_ondisk), never through a link out of it. */
#ifndef VP_MIGRATE_H
#define VP_MIGRATE_H

#include "hooks.h"
#include "manifest.h"
#include "txn.h"

/* ---- text edits (migrate-edit.c) ---- */

enum vp_drop_how {
    VP_DROP_LINE,         /* the whole line */
    VP_DROP_PRELOAD_WORD, /* one entry of an ld.so.preload line (blanks and ':' separate
                           * entries, '#' starts a comment) */
    VP_DROP_ASSIGNMENT,   /* one VAR=value word (word: VAR) of a systemd Environment= line */
    VP_DROP_SHELL_LINE,   /* a script's line: becomes VP_SHELL_NOOP (indentation kept) */
};

/* What a script's hook line becomes: a no-op, so that `if ...; then` keeps a body. */
#define VP_SHELL_NOOP ": # removed by vgpu-patch migrate"

struct vp_drop {
    unsigned line; /* 1-based */
    enum vp_drop_how how;
    const char *word;
};

/* Returns in *ret (malloc'd, *ret_len bytes) text with the drops applied; every other
 * byte is kept. A line left blank by a drop goes whole, its newline included, and so
 * does an Environment= line left with no assignment. -ESTALE when a drop does not match
 * (the file changed since it was scanned). */
int vp_text_drop(const char *text, size_t len, const struct vp_drop *drops, size_t n, char **ret,
                 size_t *ret_len);

/* Whether text sets nothing: only blank lines and '#' comments; in a unit file (unit)
 * also ';' comments and [section] headers, in a script VP_SHELL_NOOP lines. */
bool vp_text_sets_nothing(const char *text, size_t len, bool unit);

/* ---- the plan ---- */

enum vp_migrate_action {
    VP_MIGRATE_REMOVE,       /* a library or link posing as the driver */
    VP_MIGRATE_EDIT,         /* the hook words or lines go, the rest of the file stays */
    VP_MIGRATE_DISABLE,      /* a drop-in or profile.d script with nothing else: renamed */
    VP_MIGRATE_KEEP_PACKAGE, /* a package owns the file: reported, left alone */
    VP_MIGRATE_KEEP_MANUAL,  /* in ollama.service itself, which we never edit */
};

const char *vp_migrate_action_name(enum vp_migrate_action a);

struct vp_migrate_file {
    char *path; /* runtime path */
    enum vp_hook_kind kind;
    enum vp_migrate_action action;
    char *package; /* KEEP_PACKAGE: the owner */
    char *to;      /* DISABLE: the new name (runtime path) */
    char *reason;  /* KEEP_MANUAL: why (NULL: in ollama.service itself) */
    char *via;     /* the link that named the file edited (NULL: none) */
    struct vp_drop *drops;
    size_t n_drops;
    struct vp_strv words; /* owns the drops' words */
    char b3[65];          /* EDIT, DISABLE: the text the plan read (BLAKE3, hex; "" none) */
};

struct vp_migrate_plan {
    struct vp_migrate_file *files;
    size_t n;
    size_t *of_hook; /* per hook of the scan: the index of its file */
    size_t n_hooks;
    char *shim_dir; /* the scan's, for the check of each edit (NULL: none) */
};

/* Decides what to do with each hook (file by file) under root; reads the files. */
int vp_migrate_plan(const char *root, const struct vp_hooks *h, struct vp_migrate_plan *ret);
void vp_migrate_plan_release(struct vp_migrate_plan *p);
/* Whether the plan edits or disables a unit file or drop-in (systemd must reload). */
bool vp_migrate_changes_units(const struct vp_migrate_plan *p);
/* How many files the plan leaves as they are (exit 5 for the caller). */
size_t vp_migrate_kept(const struct vp_migrate_plan *p);

/* The package that owns a runtime path, by `dpkg-query -S` (dpkg's own interface to
 * its database; --root=ROOT for a root other than "/"; /lib and /usr/lib are the same on
 * a merged /usr). 0 with *ret_owner (caller frees) the owner or NULL when dpkg says none
 * owns it or there is neither dpkg-query nor a dpkg database; a negative errno with a
 * message when it cannot be told (dpkg-query failed otherwise, timed out, or is missing
 * beside a database): the caller must then keep the file. */
int vp_dpkg_owner(const char *root, const char *path, char **ret_owner);
/* The same with dpkg-query at bin (NULL or not executable: not installed). */
int vp_dpkg_owner_by(const char *bin, const char *root, const char *path, char **ret_owner);

/* ---- doing it ---- */

/* Carries out the plan in one transaction under the locked st: every file edited,
 * disabled or removed is kept in the backups and appended to m as a migrated entry, and
 * m is committed with the files. On an error everything is put back (-EAGAIN: a file
 * changed meanwhile). changed gets the runtime paths changed, removed those removed. */
int vp_migrate_apply(const char *root, struct vp_state *st, struct vp_manifest *m,
                     const struct vp_migrate_plan *p, struct vp_strv *changed,
                     struct vp_strv *removed);

/* Whether the root's ld.so.cache names any of the (runtime) paths. */
bool vp_migrate_cache_names(const char *root, const struct vp_strv *paths);

/* Runs ldconfig for root (`ldconfig -X`, with `-r ROOT` for another root: the cache only,
 * no links). -ENOENT when there is no ldconfig. *ret_msg (caller frees) says what. */
int vp_ldconfig_run(const char *root, char **ret_msg);

/* Rebuilds the root's ld.so.cache with vp_ldconfig_run, keeping the old one in the
 * backups and recording it in m (method "regenerated"), saved under the locked st. */
int vp_migrate_ldconfig(const char *root, struct vp_state *st, struct vp_manifest *m,
                        char **ret_msg);

/* ---- checks after migrating the running system ---- */

struct vp_migrate_check {
    char *program;
    bool ok;
    bool loader_complaint; /* ld.so complained on stderr */
    char *message;         /* exit status, or what the loader complained about */
};

/* Runs ls, cat, sh and lspci (when present) of this machine, each with a timeout, and
 * says whether they run cleanly (exit 0, no ld.so complaint). Only for the root "/". */
void vp_migrate_checks(struct vp_migrate_check **ret, size_t *ret_n);
void vp_migrate_checks_release(struct vp_migrate_check *c, size_t n);
/* Whether the check after (of the migration) is worse than before (the same program's
 * check before it, NULL: none): it ran cleanly before and does not now, or the loader
 * complains now and did not before. A check already failing is no regression. */
bool vp_migrate_check_regressed(const struct vp_migrate_check *before,
                                const struct vp_migrate_check *after);

#endif
