/* rawproto: a bare client of the wire protocol (shims/remote/proto.h) for the tests and the
 * bench: connect, HELLO, one call at a time, and "did the daemon close this connection". */
#ifndef VGPU_TEST_RAWPROTO_H
#define VGPU_TEST_RAWPROTO_H

#include "proto.h"

struct raw {
    int fd;
    uint32_t next_id;
    struct vr_reader rd;
};

/* Connects to the endpoint string within timeout_ms. 0, or -errno with a reason in err. */
int raw_connect(struct raw *ret, const char *endpoint, int timeout_ms, char *err, size_t errlen);
void raw_close(struct raw *r);

/* One request and its reply: the reply's fixed part into ret, its bulk into rbulk (at most
 * cap bytes kept, the rest discarded; *rlen gets the reply's bulk size when not NULL).
 * 0, -EPROTO when the reply does not match the request, or -errno from the socket. */
int raw_call(struct raw *r, uint16_t op, const struct vr_args *a, const void *bulk, size_t n,
             struct vr_ret *ret, void *rbulk, size_t cap, uint64_t *rlen);

/* HELLO for api (enum vr_api) with the given extra "key=value\n" text (may be NULL). The
 * reply's status is in ret->status. 0 or -errno as raw_call. */
int raw_hello(struct raw *r, uint32_t api, const char *extra, struct vr_ret *ret);

/* Waits up to timeout_ms for the daemon to close the connection, reading and dropping
 * whatever it sends before that. 0 when it closed (EOF or reset), -ETIMEDOUT if not. */
int raw_wait_closed(struct raw *r, int timeout_ms);

#endif
