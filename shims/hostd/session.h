/* session: one client connection, shared by session.c (HELLO, the request loop,
 * teardown) and the op handlers (ops-cuda.c, ops-nvml.c). */
#ifndef VGPU_HOSTD_SESSION_H
#define VGPU_HOSTD_SESSION_H

#include "hostd.h"
#include "objects.h"

/* The largest request bulk the loop reads for a handler (names, kernel arguments);
 * handlers flagged OP_BULK_SELF read theirs (copies, images). */
#define HD_AUTO_BULK_MAX VR_MAX_KERNEL_ARG

/* Per-client limits besides the memory quota (vgpu-hostd(8), LIMITS): contexts beyond
 * one per visible device (each costs hundreds of MiB of device memory on a real GPU)
 * and bytes of module images. */
#define HD_MAX_CONTEXTS    8u
#define HD_MAX_IMAGE_BYTES ((size_t)512 << 20)

struct hd_session {
    struct hd_daemon *d;
    const struct hd_backend *dev;
    int fd;
    unsigned id;
    const struct hd_listener *l;
    struct hd_peer peer;
    enum vr_api api;
    int admitted;
    char program[64];

    int ndev;                         /* devices visible to the client */
    int devmap[VR_MAX_DEVICES];       /* client ordinal -> daemon index */
    uint64_t primary[VR_MAX_DEVICES]; /* the client's primary context id per ordinal */
    unsigned primary_flags[VR_MAX_DEVICES];
    void *current; /* the backend context current on this thread */

    struct hd_objects o;
    size_t image_bytes; /* module images held, at most HD_MAX_IMAGE_BYTES */
    struct vr_reader r;

    /* per request */
    unsigned char *bulk; /* HD_AUTO_BULK_MAX + 1 bytes: the request's bulk, NUL after it */
    const void *reply_bulk;
    size_t reply_n;
    union {
        char text[VR_MAX_NAME];
        unsigned char uuid[16];
        struct vr_nvml_device nvml;
        struct vr_param params[VR_MAX_PARAMS];
    } out;
    void *args[VR_MAX_PARAMS];
};

#define SLOG(s, level, fmt, ...)                                                                   \
    hd_log(level, "client %u (%s): " fmt, (s)->id, (s)->peer.text, ##__VA_ARGS__)

/* A handler fills ret (status and results) and may point reply_bulk at its reply's
 * bulk. Returns 0 (the loop replies), 1 (it replied itself), or -errno (the connection
 * is closed). */
typedef int (*hd_op_fn)(struct hd_session *s, const struct vr_hdr *h, const struct vr_args *a,
                        struct vr_ret *ret);

#define OP_BULK_SELF 0x1u

struct hd_op {
    uint16_t op;
    unsigned flags;
    hd_op_fn fn;
};

/* The handlers, in tables terminated by an entry with fn NULL: devices, contexts and
 * memory (ops-cuda.c); modules, kernels, streams, events and PING (ops-exec.c); NVML
 * (ops-nvml.c). */
extern const struct hd_op hd_cuda_ops[];
extern const struct hd_op hd_exec_ops[];
extern const struct hd_op hd_nvml_ops[];

/* Sets a failed status; for `return hd_fail(ret, CU_...)` in handlers. */
static inline int hd_fail(struct vr_ret *ret, int status)
{
    ret->status = status;
    return 0;
}

/* The daemon's index of the client's device ordinal, or -1. */
static inline int hd_client_dev(const struct hd_session *s, uint64_t dev)
{
    return dev < (uint64_t)s->ndev ? s->devmap[dev] : -1;
}

/* ---- used by the handlers (session.c) ---- */
/* Makes context id current. A CUresult: CU_INVALID_CONTEXT for 0 or unknown ids. */
int hd_use_ctx(struct hd_session *s, uint64_t id, struct hd_obj **ret);
/* Releases everything held in context id and, unless keep, the context itself. */
void hd_ctx_teardown(struct hd_session *s, uint64_t id, int keep);
/* The backend handle of stream id (0, 1, 2: CUDA's special streams). A CUresult. */
int hd_stream(struct hd_session *s, uint64_t id, void **ret);
/* Unloads module id (its functions and global ranges go with it). */
void hd_module_teardown(struct hd_session *s, struct hd_obj *mod);

#endif
