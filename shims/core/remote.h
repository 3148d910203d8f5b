/* remote: a shim process's connection to vgpu-hostd (DESIGN §5; the wire is
 * shims/remote/proto.h). One connection per shim, opened with a HELLO for the shim's
 * API; calls on it are serialized (one request, then its reply). A lost connection
 * fails the call in progress and is dropped; the next call connects again, and so does
 * the first call of a forked child, which never uses its parent's connection. */
#ifndef VGPU_REMOTE_H
#define VGPU_REMOTE_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "proto.h"

/* What the daemon said in its HELLO reply. */
struct vgpu_remote_info {
    unsigned version;
    unsigned caps;    /* VR_CAP_* */
    unsigned devices; /* visible to this client */
    char endpoint[300];
    char daemon[256]; /* its description */
};

/* Connects to the configured endpoint and says HELLO for api. Returns 0 and fills
 * *ret_info, or -1 with the reason in msg (size n). */
int vgpu_remote_open(enum vr_api api, struct vgpu_remote_info *ret_info, char *msg, size_t n);

/* A request sent first on every later connection (after a fork, after a lost one) once
 * the API was initialised on the first: CU_INIT or NVML_INIT with a0. Thread-safe. */
void vgpu_remote_set_init(uint16_t op, uint64_t a0);

/* Registers a lock of the caller's to be initialised afresh in a forked child (which
 * must not inherit one held by another thread of the parent). Idempotent; at most 8. */
void vgpu_remote_fork_reinit(pthread_mutex_t *m);

/* The call failed on the wire: the connection was lost (or could not be made again). */
#define VGPU_REMOTE_LOST (-1)

/* Sends op with a (and n bytes of bulk), and waits for its reply: ret gets its fixed
 * part; up to rbulk_max bytes of its bulk go straight to rbulk (the rest is read and
 * dropped) and *rbulk_len (may be NULL) says how many. Returns 0 (the API's status is
 * ret->status) or VGPU_REMOTE_LOST, after which the connection is closed. */
int vgpu_remote_call(uint16_t op, const struct vr_args *a, const void *bulk, size_t n,
                     struct vr_ret *ret, void *rbulk, size_t rbulk_max, size_t *rbulk_len);

/* vr_args from up to eight values. */
#define RARGS(...) (&(struct vr_args){{__VA_ARGS__}})

/* A reply's status in the API's terms: not_supported for an op the daemon does not
 * know (VR_E_UNKNOWN_OP with its marker), else the status itself. */
static inline int vgpu_remote_status(const struct vr_ret *ret, int not_supported)
{
    return ret->status == VR_E_UNKNOWN_OP && ret->aux == VR_AUX_UNKNOWN_OP ? not_supported
                                                                           : ret->status;
}

/* Shorthand for the common case: no bulk either way. */
static inline int vgpu_remote_call0(uint16_t op, const struct vr_args *a, struct vr_ret *ret)
{
    return vgpu_remote_call(op, a, NULL, 0, ret, NULL, 0, NULL);
}

/* A shim's remote entry points, sorted by name with strcmp: each shim defines
 * vgpu_remote_fns and vgpu_remote_nfns, which the remote backend's lookup searches. */
struct vgpu_remote_fn {
    const char *name;
    void *fn;
};
extern const struct vgpu_remote_fn vgpu_remote_fns[];
extern const unsigned vgpu_remote_nfns;

#endif
