/* Fuzz target: the wire protocol's framed reader and endpoint parser (shims/remote/proto.h),
 * which the daemon runs on whatever a client sends and the shims on what the daemon sends.
 * The input is written into a socketpair and read back as a stream of messages — once as
 * requests (with the per-op bulk limit the daemon applies), once as replies — until the
 * reader stops. Whatever vr_read_msg accepts must be well-formed; it must stop at the end
 * of the bytes without hanging. The input as a string goes through vr_endpoint_parse, and
 * what it accepts must survive a format/parse round trip. The input is also a module image
 * for vr_image_fits. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Most of a socketpair's buffer: all of it is written before the reader starts. */
#define MAX_STREAM 65536

/* Bulk up to this size is read into memory (the reader's direct path), more is skipped. */
#define MAX_KEPT (1u << 20)

static void read_stream(const uint8_t *data, size_t size, bool reply)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        abort();
    size_t n = size < MAX_STREAM ? size : MAX_STREAM;
    int buf = 4 * MAX_STREAM;
    setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &buf, sizeof(buf));
    setsockopt(sv[0], SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
    /* All of it before the reader starts, and never blocking: what does not fit is cut. */
    ssize_t sent = n ? send(sv[1], data, n, MSG_NOSIGNAL | MSG_DONTWAIT) : 0;
    n = sent > 0 ? (size_t)sent : 0;
    close(sv[1]);

    struct vr_reader *r = malloc(sizeof(*r));
    if (!r)
        abort();
    vr_reader_init(r, sv[0]);
    size_t consumed = 0;
    for (int msgs = 0; msgs < 4096; msgs++) {
        struct vr_hdr h;
        union {
            struct vr_args a;
            struct vr_ret r;
        } fixed;
        int rc = vr_read_msg(r, reply, &h, &fixed);
        if (rc == -EPIPE || rc == -EPROTO)
            break;
        if (rc < 0)
            abort(); /* a socketpair with its writer closed gives data or end of stream */
        /* What the reader accepts is a well-formed header for this direction. */
        if (h.magic != VR_MAGIC || h.len != (reply ? sizeof(fixed.r) : sizeof(fixed.a)) ||
            h.flags != (reply ? VR_F_REPLY : 0) || h.bulk > VR_MAX_BULK)
            abort();
        consumed += sizeof(h) + h.len;
        if (consumed > n)
            abort(); /* it never returns more than it was given */
        /* The daemon's check on a request: bulk above the op's limit ends the connection. */
        if (!reply && h.bulk > vr_request_bulk_max(h.op))
            break;
        char namebuf[16];
        const char *name = vr_op_name(h.op, namebuf);
        if (!name || !*name)
            abort();
        if (h.bulk <= MAX_KEPT) {
            void *bulk = malloc(h.bulk ? h.bulk : 1);
            if (!bulk)
                abort();
            rc = vr_read(r, bulk, h.bulk);
            free(bulk);
        } else {
            rc = vr_read(r, NULL, h.bulk);
        }
        if (rc == -EPIPE)
            break;
        if (rc < 0)
            abort();
        consumed += h.bulk;
        if (consumed > n)
            abort();
    }
    free(r);
    close(sv[0]);
}

static void endpoint(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s)
        abort();
    memcpy(s, data, size);
    s[size] = '\0';
    struct vr_endpoint e, again;
    char err[256] = "";
    if (vr_endpoint_parse(s, &e, err, sizeof(err)) < 0) {
        if (!err[0])
            abort(); /* a refusal says why */
        free(s);
        return;
    }
    char text[512];
    vr_endpoint_format(&e, text, sizeof(text));
    /* Whatever parses formats back to the same endpoint. */
    if (vr_endpoint_parse(text, &again, err, sizeof(err)) < 0)
        abort();
    if (again.transport != e.transport || strcmp(again.path, e.path) ||
        strcmp(again.host, e.host) || again.port != e.port || again.cid != e.cid)
        abort();
    free(s);
}

/* The daemon's module image check: it reads only the input's bytes (a copy of exactly
 * that size, so that the sanitiser sees a read past it), and what it accepts the client's
 * size function measures the same way. */
static void image(const uint8_t *data, size_t size)
{
    unsigned char *img = malloc(size ? size : 1);
    if (!img)
        abort();
    memcpy(img, data, size);
    if (vr_image_fits(img, size)) {
        const void *start;
        size_t n = vr_image_size(img, &start);
        if (!n || n > size || start != img)
            abort();
    }
    free(img);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    image(data, size);
    read_stream(data, size, false);
    read_stream(data, size, true);
    endpoint(data, size);
    return 0;
}
