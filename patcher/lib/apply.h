/* apply: carries out a plan as one transaction — patched copies staged beside the
 * originals (same owner, mode and xattrs), hashed while copied, checked, fsynced,
 * renamed over; originals kept as backups; verified; recorded in the manifest. Any
 * failure before the manifest is written puts every original back. */
#ifndef VP_APPLY_H
#define VP_APPLY_H

#include "manifest.h"
#include "plan.h"
#include "txn.h"
#include "verify.h"

struct vp_apply_file {
    char *path;
    const char *action; /* patched, linked */
    const char *method;
    uint64_t bytes_written;
};

struct vp_apply_result {
    struct vp_apply_file *files;
    size_t n;
    uint64_t bytes_written;
    struct vp_write_stats wstats; /* patchelf children, when used */
    bool verified;
    struct vp_verify verify;
    struct vp_strv running; /* "PID (comm) runs PATH": a restart makes them use the patch */
    double ms_write, ms_verify;
};

struct vp_apply_opts {
    const char *patchelf;                 /* NULL: none available */
    const struct vp_verify_opts *verify;  /* NULL: do not verify */
    const char *version, *eras;           /* recorded in the manifest */
    const char *mechanism, *delivery;     /* recorded too (NULL: patch, elf) */
    const char *requested;                /* --mechanism, recorded (NULL: none) */
};

/* Applies the pending files of p and records the install's mechanism and delivery
 * (even when no file needed writing). Returns 0, or a negative errno with every
 * installed file as it was (a verification failure is -EIO, and ret->verify says why). */
int vp_apply(const struct vp_plan *p, struct vp_state *st, const struct vp_apply_opts *o,
             struct vp_apply_result *ret);
void vp_apply_result_release(struct vp_apply_result *r);

/* Processes whose executable is one of the given inodes (dev, ino pairs). */
void vp_find_running(const uint64_t *dev_ino, size_t n, struct vp_strv *ret);

#endif
