/* proto: the wire protocol between the shims' remote backend and vgpu-hostd
 * (docs/protocol.md is its prose; this header is the contract both sides compile).
 *
 * A connection carries one client: a HELLO first, then requests, each answered by
 * exactly one reply, in order. Every message is
 *
 *     struct vr_hdr (24 bytes) | fixed part (hdr.len bytes) | bulk (hdr.bulk bytes)
 *
 * little-endian (both ends are x86-64; the structs below have no implicit padding and
 * their sizes are checked at compile time). A request's fixed part is struct vr_args
 * (eight 64-bit arguments, their meaning per op below), a reply's is struct vr_ret (a
 * status and four 64-bit results). Bulk carries what has no fixed size — copied bytes,
 * module images, names, kernel arguments — and goes straight between the caller's
 * buffer and the socket, never through a staging copy on the client. Anything that
 * breaks these rules (bad magic, a wrong fixed size, bulk above the op's limit, a reply
 * flag on a request) ends the connection: the daemon closes that client only.
 *
 * Handles (contexts, modules, functions, streams, events) are opaque non-zero 64-bit
 * ids the daemon gives out per client; device pointers are addresses in the device's
 * space (real ones under the native device, synthetic ones under --sim), checked by the
 * daemon against the client's own allocations. Stream ids 0, 1 and 2 are CUDA's
 * default, legacy and per-thread streams. */
#ifndef VGPU_REMOTE_PROTO_H
#define VGPU_REMOTE_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#define VR_MAGIC   0x31505256u /* "VRP1" */
#define VR_VERSION 1           /* the only version so far; HELLO negotiates */

/* hdr.flags */
#define VR_F_REPLY 0x1u

/* Limits. A request's bulk above its op's limit is a protocol error. */
#define VR_MAX_BULK       (1ull << 30) /* one copy message; larger copies are split */
#define VR_MAX_IMAGE      (256u << 20) /* a module image */
#define VR_MAX_NAME       256u         /* a symbol or device name, with its NUL */
#define VR_MAX_HELLO      4096u        /* the HELLO text */
#define VR_MAX_KERNEL_ARG 32768u       /* packed kernel arguments (CUDA 12.1+ allows 32764) */
#define VR_MAX_PARAMS     1024u        /* parameters of one kernel */
#define VR_MAX_DEVICES    64u

struct vr_hdr {
    uint32_t magic;
    uint16_t op;    /* enum vr_op; a reply repeats the request's */
    uint16_t flags; /* VR_F_REPLY on replies */
    uint32_t id;    /* request id, chosen by the client, echoed by the reply */
    uint32_t len;   /* size of the fixed part: sizeof(vr_args) or sizeof(vr_ret) */
    uint64_t bulk;  /* bytes after the fixed part */
};

struct vr_args {
    uint64_t a[8];
};

struct vr_ret {
    int32_t status; /* CUresult for VR_CU_*, nvmlReturn_t for VR_NVML_*, enum vr_status
                       for HELLO and PING */
    uint32_t aux;   /* op-specific (see below), else 0 */
    uint64_t r[4];
};

_Static_assert(sizeof(struct vr_hdr) == 24, "vr_hdr is 24 bytes on the wire");
_Static_assert(sizeof(struct vr_args) == 64, "vr_args is 64 bytes on the wire");
_Static_assert(sizeof(struct vr_ret) == 40, "vr_ret is 40 bytes on the wire");

/* Status of HELLO and PING (and of a reply to an op the daemon does not know). */
enum vr_status {
    VR_OK = 0,
    VR_E_VERSION = 1,    /* no common protocol version */
    VR_E_DENIED = 2,     /* the peer is not on the daemon's allowlist */
    VR_E_AUTH = 3,       /* missing or wrong shared secret (tcp) */
    VR_E_UNKNOWN_OP = 4, /* with aux VR_AUX_UNKNOWN_OP, whatever the op's namespace */
    VR_E_BUSY = 5,       /* the daemon has as many clients as it takes */
};

/* aux of a reply to an op the daemon does not know (status VR_E_UNKNOWN_OP): 4 alone is
 * also a CUresult and an nvmlReturn_t, so the marker is what tells. */
#define VR_AUX_UNKNOWN_OP 0x4b4e4b55u /* "UKNK" */

/* Capabilities (HELLO): what the daemon's device can do. */
#define VR_CAP_SIM    0x1u /* a simulated device: host RAM, no kernels */
#define VR_CAP_LAUNCH 0x2u /* kernels run */

/* API of a connection (HELLO a[2]): each shim opens its own. */
enum vr_api { VR_API_CUDA = 1, VR_API_NVML = 2 };

/* The ops: X(name, value, largest request bulk), one table for the enum, the names and
 * the limits (docs/protocol.md has a row for each; a unit test checks both ways). In the
 * comments: a[i] of the request, then what the reply carries besides its status; "ctx"
 * is the client's current context (0: none). Values are stable. */
#define VR_OPS(X)                                                                                  \
    /* a0 lowest version, a1 highest, a2 enum vr_api, a3 pid, a4 client caps (0); bulk:            \
     * text, "key=value\n" lines: visible=<CUDA_VISIBLE_DEVICES> (present only when it is          \
     * set), secret=<hex> (tcp), program=<name>; unknown keys are ignored. Reply: r0 version,      \
     * r1 VR_CAP_*, r2 devices visible to this client; bulk: the daemon's description. */          \
    X(HELLO, 0x001, VR_MAX_HELLO)                                                                  \
    /* Request bulk is discarded; the reply carries a0 bytes of bulk (0..VR_MAX_NAME). */          \
    X(PING, 0x002, VR_MAX_NAME)                                                                    \
    /* ---- CUDA driver API ---- */                                                                \
    X(CU_INIT, 0x100, 0)                  /* a0 flags (no device visible: NO_DEVICE) */            \
    X(CU_DRIVER_GET_VERSION, 0x101, 0)    /* -> r0 version (e.g. 13000) */                         \
    X(CU_DEVICE_GET_COUNT, 0x102, 0)      /* -> r0 count (after CUDA_VISIBLE_DEVICES) */           \
    X(CU_DEVICE_GET, 0x103, 0)            /* a0 ordinal -> r0 device */                            \
    X(CU_DEVICE_GET_ATTRIBUTE, 0x104, 0)  /* a0 attribute, a1 dev -> r0 value (int) */             \
    X(CU_DEVICE_GET_NAME, 0x105, 0)       /* a0 dev -> bulk: name with its NUL */                  \
    X(CU_DEVICE_GET_UUID, 0x106, 0)       /* a0 dev -> bulk: 16 bytes */                           \
    X(CU_DEVICE_TOTAL_MEM, 0x107, 0)      /* a0 dev -> r0 bytes */                                 \
    X(CU_DEVICE_GET_PCI_BUS_ID, 0x108, 0) /* a0 dev -> bulk: "0000:01:00.0" + NUL */               \
    X(CU_DEVICE_GET_BY_PCI_BUS_ID, 0x109, VR_MAX_NAME) /* bulk: bus id + NUL -> r0 dev */          \
    X(CU_CTX_CREATE, 0x120, 0)                         /* a0 flags, a1 dev -> r0 ctx */            \
    X(CU_CTX_DESTROY, 0x121, 0)                        /* a0 ctx */                                \
    X(CU_CTX_SYNCHRONIZE, 0x122, 0)                    /* a0 ctx */                                \
    X(CU_PRIMARY_CTX_RETAIN, 0x123, 0)                 /* a0 dev -> r0 ctx (the client's own) */   \
    X(CU_PRIMARY_CTX_RELEASE, 0x124, 0)                /* a0 dev */                                \
    X(CU_PRIMARY_CTX_RESET, 0x125, 0)                  /* a0 dev */                                \
    X(CU_PRIMARY_CTX_GET_STATE, 0x126, 0)              /* a0 dev -> r0 flags, r1 active (0/1) */   \
    X(CU_PRIMARY_CTX_SET_FLAGS, 0x127, 0)              /* a0 dev, a1 flags */                      \
    X(CU_CTX_GET_DEVICE, 0x128, 0)                     /* a0 ctx -> r0 dev */                      \
    X(CU_MEM_GET_INFO, 0x140, 0)                       /* a0 ctx -> r0 free, r1 total (quota) */   \
    X(CU_MEM_ALLOC, 0x141, 0)                          /* a0 ctx, a1 bytes -> r0 dptr */           \
    X(CU_MEM_FREE, 0x142, 0)                           /* a0 ctx, a1 dptr */                       \
    /* a0 ctx, a1 dst, a2 stream, a3 async; bulk: the bytes */                                     \
    X(CU_MEMCPY_HTOD, 0x143, VR_MAX_BULK)                                                          \
    /* a0 ctx, a1 src, a2 bytes, a3 stream, a4 async -> bulk: the bytes (a2 on success) */         \
    X(CU_MEMCPY_DTOH, 0x144, 0)                                                                    \
    X(CU_MEMCPY_DTOD, 0x145, 0) /* a0 ctx, a1 dst, a2 src, a3 bytes, a4 stream, a5 async */        \
    /* a0 ctx, a1 dst, a2 value, a3 element size (1, 2, 4), a4 count, a5 stream, a6 async */       \
    X(CU_MEMSET, 0x146, 0)                                                                         \
    X(CU_MEM_GET_ADDRESS_RANGE, 0x147, 0) /* a0 ctx, a1 dptr -> r0 base, r1 size */                \
    /* a0 ctx; bulk: the image (PTX with its NUL, cubin or fatbin) -> r0 module */                 \
    X(CU_MODULE_LOAD, 0x160, VR_MAX_IMAGE)                                                         \
    X(CU_MODULE_UNLOAD, 0x161, 0) /* a0 ctx, a1 module */                                          \
    /* a0 ctx, a1 module; bulk: name + NUL -> r0 function, r1 parameter count n; bulk: n           \
     * struct vr_param */                                                                          \
    X(CU_MODULE_GET_FUNCTION, 0x162, VR_MAX_NAME)                                                  \
    /* a0 ctx, a1 module; bulk: name + NUL -> r0 dptr, r1 bytes */                                 \
    X(CU_MODULE_GET_GLOBAL, 0x163, VR_MAX_NAME)                                                    \
    /* a0 ctx, a1 function, a2 grid x | y << 32, a3 grid z, a4 block x | y << 32, a5 block z,      \
     * a6 shared bytes, a7 stream; bulk: the packed arguments, laid out by the vr_params */        \
    X(CU_LAUNCH_KERNEL, 0x164, VR_MAX_KERNEL_ARG)                                                  \
    X(CU_FUNC_GET_ATTRIBUTE, 0x165, 0) /* a0 ctx, a1 attribute, a2 function -> r0 value */         \
    X(CU_STREAM_CREATE, 0x180, 0)      /* a0 ctx, a1 flags, a2 priority (int) -> r0 stream */      \
    /* The ops on a stream or event use the handle's own context, current or not (as CUDA          \
     * lets any thread): a0 is ignored, except as the context of streams 0, 1 and 2. */            \
    X(CU_STREAM_DESTROY, 0x181, 0)     /* a0 ignored, a1 stream */                                 \
    X(CU_STREAM_SYNCHRONIZE, 0x182, 0) /* a0 ctx (streams 0-2 only), a1 stream */                  \
    X(CU_STREAM_QUERY, 0x183, 0)       /* a0 ctx (streams 0-2 only), a1 stream */                  \
    /* a0 ctx (streams 0-2 only), a1 stream, a2 event, a3 flags */                                 \
    X(CU_STREAM_WAIT_EVENT, 0x184, 0)                                                              \
    X(CU_EVENT_CREATE, 0x185, 0)      /* a0 ctx, a1 flags -> r0 event */                           \
    X(CU_EVENT_DESTROY, 0x186, 0)     /* a0 ignored, a1 event */                                   \
    X(CU_EVENT_RECORD, 0x187, 0)      /* a0 ignored, a1 event, a2 stream */                        \
    X(CU_EVENT_SYNCHRONIZE, 0x188, 0) /* a0 ignored, a1 event */                                   \
    X(CU_EVENT_QUERY, 0x189, 0)       /* a0 ignored, a1 event */                                   \
    /* a0 ignored, a1 start, a2 end -> r0 float ms (its bit pattern in the low 32 bits) */         \
    X(CU_EVENT_ELAPSED_TIME, 0x18a, 0)                                                             \
    /* ---- NVML (devices by the daemon's index; NVML ignores CUDA_VISIBLE_DEVICES, as             \
     * NVIDIA's does) ---- */                                                                      \
    X(NVML_INIT, 0x200, 0) /* a0 flags */                                                          \
    X(NVML_SHUTDOWN, 0x201, 0)                                                                     \
    X(NVML_SYSTEM_DRIVER_VERSION, 0x202, 0) /* -> bulk: "580.65.06" + NUL */                       \
    X(NVML_SYSTEM_CUDA_VERSION, 0x203, 0)   /* -> r0 e.g. 13000 */                                 \
    X(NVML_DEVICE_COUNT, 0x204, 0)          /* -> r0 count */                                      \
    X(NVML_DEVICE_INFO, 0x205, 0)           /* a0 index -> bulk: struct vr_nvml_device */          \
    X(NVML_DEVICE_MEMORY, 0x206, 0)         /* a0 index -> r0 total, r1 free, r2 used,             \
                                               r3 reserved */

enum vr_op {
#define VR_OP_ENUM(name, value, bulk) VR_##name = value,
    VR_OPS(VR_OP_ENUM)
#undef VR_OP_ENUM
};

/* A kernel parameter: where it goes in the packed argument buffer. */
struct vr_param {
    uint32_t offset;
    uint32_t size;
};

/* What NVML needs of a device, in one reply. The UUID is the CUDA one's bytes as
 * "GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx", so both APIs name the same device. */
struct vr_nvml_device {
    char name[96];
    char uuid[80];
    char pci_bus_id[32]; /* NVML's form, "00000000:01:00.0" */
    uint32_t pci_domain, pci_bus, pci_device, pci_device_id, pci_subsystem_id;
    int32_t cc_major, cc_minor;
    uint32_t index;
    uint64_t total_memory;
};
_Static_assert(sizeof(struct vr_nvml_device) == 248, "vr_nvml_device layout");

/* The largest bulk a request of op may carry (0: none); for ops this version does not
 * know, VR_MAX_NAME. */
uint64_t vr_request_bulk_max(uint16_t op);
/* A short name of the op for messages ("CU_MEMCPY_HTOD"), or "op 0x1234". buf gets the
 * latter (16 bytes). */
const char *vr_op_name(uint16_t op, char buf[16]);

/* A refusal's reason in words ("no common protocol version"), for logs and error
 * messages on both ends; "status N" for others (a static string either way). */
const char *vr_status_text(int status);

/* ---- module images ----
 * How many bytes cuModuleLoadData reads of an image: a fatbin its header plus the size
 * that header declares, an ELF (cubin) the farthest of its headers and the sections and
 * segments they describe, PTX its text and NUL. */

/* The size of the image the client was given as a bare pointer (no length), following a
 * __fatBinC_Wrapper_t to its fatbin: *ret_start gets where the bytes to send begin. 0
 * when the image is not one of those or declares more than VR_MAX_IMAGE. Reads as far
 * as the headers say, as the driver would. */
size_t vr_image_size(const void *image, const void **ret_start);
/* Whether the len bytes at image are a whole image: a fatbin, ELF or PTX (with its NUL)
 * whose declared size is at most len, every read within the len bytes. A wrapper is not
 * (its pointer means nothing on another host). For the daemon, before the driver reads. */
bool vr_image_fits(const void *image, size_t len);

/* ---- endpoints ---- */

enum vr_transport { VR_UNIX, VR_TCP, VR_VSOCK };

struct vr_endpoint {
    enum vr_transport transport;
    char path[108]; /* unix */
    char host[256]; /* tcp: a name or address; "" for the listener's loopback default */
    unsigned port;  /* tcp, vsock */
    unsigned cid;   /* vsock */
};

/* The default endpoint (the host's vsock CID 2, port 7735) is the configuration's:
 * VGPU_CONF_DEFAULT_ENDPOINT in shims/common/vgpu-conf.h. */

/* Parses "unix:PATH" (absolute), "tcp:HOST:PORT" ("tcp:[v6]:PORT" too; HOST may be
 * empty for a listener), "vsock:CID:PORT". Returns 0, or -1 with a reason in err. */
int vr_endpoint_parse(const char *s, struct vr_endpoint *ret, char *err, size_t errlen);
/* "unix:/run/vgpu/hostd.sock" etc. into buf. */
void vr_endpoint_format(const struct vr_endpoint *e, char *buf, size_t len);

/* Connects within timeout_ms (non-blocking connect + poll); the socket is blocking and
 * close-on-exec afterwards, TCP_NODELAY on tcp. Returns the fd, or -errno with a reason
 * in err ("connection refused", "vsock is not available in this kernel", ...). */
int vr_connect(const struct vr_endpoint *e, int timeout_ms, char *err, size_t errlen);
/* A listening socket (unix: an existing socket file is replaced, mode 0660; tcp: a
 * host "" binds 127.0.0.1). Returns the fd or -errno with a reason in err. */
int vr_listen(const struct vr_endpoint *e, char *err, size_t errlen);

/* ---- framed I/O ----
 * A buffered reader over a blocking socket: one recv() usually brings a whole small
 * message; bulk larger than what is buffered is read straight into its destination. */
struct vr_reader {
    int fd;
    size_t start, end;
    /* An absolute deadline for every read (CLOCK_MONOTONIC milliseconds, vr_now_ms());
     * 0: none. With one, a read waits with poll() for what is left of it and fails with
     * -ETIMEDOUT: a peer that trickles bytes cannot stretch it. */
    int64_t deadline_ms;
    unsigned char buf[16384];
};

/* Milliseconds of CLOCK_MONOTONIC. */
int64_t vr_now_ms(void);
void vr_reader_init(struct vr_reader *r, int fd);
/* Reads exactly n bytes into dst (NULL: discards them). 0, -EPIPE at end of stream,
 * or -errno. */
int vr_read(struct vr_reader *r, void *dst, size_t n);
/* Reads a header and its fixed part, checking magic, the fixed size for the direction
 * (reply: vr_ret, else vr_args) and the flags; fixed gets hdr.len bytes. 0, -EPIPE,
 * -EPROTO for a malformed message, or -errno. */
int vr_read_msg(struct vr_reader *r, bool reply, struct vr_hdr *hdr, void *fixed);

/* Writes header + fixed part + up to two bulk pieces with as few syscalls as the kernel
 * allows (writev, resumed after short writes; MSG_NOSIGNAL). 0 or -errno. */
int vr_send(int fd, const struct vr_hdr *hdr, const void *fixed, const void *bulk1, size_t n1,
            const void *bulk2, size_t n2);
/* More bulk of a message whose header vr_send wrote with part of it. 0 or -errno. */
int vr_send_bulk(int fd, const void *bulk, size_t n);
/* A request (hdr filled from op, id, sizes) and a reply likewise. */
int vr_send_request(int fd, uint16_t op, uint32_t id, const struct vr_args *a, const void *bulk,
                    size_t n);
int vr_send_reply(int fd, uint16_t op, uint32_t id, const struct vr_ret *r, const void *bulk,
                  size_t n);

#endif
