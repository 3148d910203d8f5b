/* rawproto: a bare wire-protocol client (rawproto.h). */
#include "rawproto.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int raw_connect(struct raw *ret, const char *endpoint, int timeout_ms, char *err, size_t errlen)
{
    struct vr_endpoint e;
    if (vr_endpoint_parse(endpoint, &e, err, errlen) < 0)
        return -EINVAL;
    int fd = vr_connect(&e, timeout_ms, err, errlen);
    if (fd < 0)
        return fd;
    ret->fd = fd;
    ret->next_id = 1;
    vr_reader_init(&ret->rd, fd);
    return 0;
}

void raw_close(struct raw *r)
{
    if (r->fd >= 0)
        close(r->fd);
    r->fd = -1;
}

int raw_call(struct raw *r, uint16_t op, const struct vr_args *a, const void *bulk, size_t n,
             struct vr_ret *ret, void *rbulk, size_t cap, uint64_t *rlen)
{
    static const struct vr_args none;
    uint32_t id = r->next_id++;
    int rc = vr_send_request(r->fd, op, id, a ? a : &none, bulk, n);
    if (rc < 0)
        return rc;
    struct vr_hdr h;
    rc = vr_read_msg(&r->rd, true, &h, ret);
    if (rc < 0)
        return rc;
    if (h.op != op || h.id != id)
        return -EPROTO;
    uint64_t keep = h.bulk < cap ? h.bulk : cap;
    if (keep && (rc = vr_read(&r->rd, rbulk, (size_t)keep)) < 0)
        return rc;
    if (h.bulk > keep && (rc = vr_read(&r->rd, NULL, (size_t)(h.bulk - keep))) < 0)
        return rc;
    if (rlen)
        *rlen = h.bulk;
    return 0;
}

int raw_hello(struct raw *r, uint32_t api, const char *extra, struct vr_ret *ret)
{
    char text[VR_MAX_HELLO];
    int n = snprintf(text, sizeof(text), "program=vgpu-remote-test\n%s", extra ? extra : "");
    struct vr_args a = {{VR_VERSION, VR_VERSION, api, (uint64_t)getpid(), 0}};
    return raw_call(r, VR_HELLO, &a, text, (size_t)n, ret, NULL, 0, NULL);
}

int raw_wait_closed(struct raw *r, int timeout_ms)
{
    char buf[4096];
    for (;;) {
        struct pollfd p = {.fd = r->fd, .events = POLLIN};
        int n = poll(&p, 1, timeout_ms);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -ETIMEDOUT;
        ssize_t k = recv(r->fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (k == 0 || (k < 0 && errno != EAGAIN && errno != EINTR))
            return 0;
    }
}
