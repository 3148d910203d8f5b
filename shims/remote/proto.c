/* proto: endpoints, connecting and listening, and the framed I/O of the wire
 * protocol (proto.h). Used inside other programs (the shims): never prints, never
 * raises SIGPIPE, every fd close-on-exec. */
#include "proto.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/vm_sockets.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static const struct {
    uint16_t op;
    const char *name;
    uint64_t bulk_max;
} ops[] = {
#define VR_OP_ROW(name, value, bulk) {VR_##name, #name, bulk},
    VR_OPS(VR_OP_ROW)
#undef VR_OP_ROW
};

#define N_OPS (sizeof(ops) / sizeof(ops[0]))

uint64_t vr_request_bulk_max(uint16_t op)
{
    for (size_t i = 0; i < N_OPS; i++)
        if (ops[i].op == op)
            return ops[i].bulk_max;
    return VR_MAX_NAME;
}

const char *vr_op_name(uint16_t op, char buf[16])
{
    for (size_t i = 0; i < N_OPS; i++)
        if (ops[i].op == op)
            return ops[i].name;
    snprintf(buf, 16, "op 0x%04x", op);
    return buf;
}

const char *vr_status_text(int status)
{
    static const char *const texts[] = {
        [VR_OK] = "ok",
        [VR_E_VERSION] = "no common protocol version",
        [VR_E_DENIED] = "peer not allowed",
        [VR_E_AUTH] = "missing or wrong secret",
        [VR_E_UNKNOWN_OP] = "unknown op",
        [VR_E_BUSY] = "too many clients",
    };
    if (status >= 0 && (size_t)status < sizeof(texts) / sizeof(texts[0]) && texts[status])
        return texts[status];
    return "unknown status";
}

/* ---- module images ---- */

#define FATBIN_MAGIC  0xBA55ED50u
#define WRAPPER_MAGIC 0x466243b1u

static uint64_t rd(const unsigned char *p, unsigned n)
{
    uint64_t v = 0;
    memcpy(&v, p, n); /* little-endian, as both ends are */
    return v;
}

/* The end of an ELF64 image: the farthest of its header tables and what its section
 * and program headers describe; 0 when a value is out of bounds or a header lies past
 * avail. */
static uint64_t elf_size(const unsigned char *p, size_t avail)
{
    if (avail < 0x40 || p[4] != 2 /* ELFCLASS64 */ || p[5] != 1 /* little-endian */)
        return 0;
    uint64_t phoff = rd(p + 0x20, 8), shoff = rd(p + 0x28, 8);
    unsigned phentsize = (unsigned)rd(p + 0x36, 2), phnum = (unsigned)rd(p + 0x38, 2);
    unsigned shentsize = (unsigned)rd(p + 0x3a, 2), shnum = (unsigned)rd(p + 0x3c, 2);
    uint64_t end = rd(p + 0x34, 2);
    if ((phnum && (phentsize < 0x38 || phoff > VR_MAX_IMAGE)) ||
        (shnum && (shentsize < 0x40 || shoff > VR_MAX_IMAGE)))
        return 0;
    uint64_t pend = phoff + (uint64_t)phnum * phentsize;
    uint64_t send = shoff + (uint64_t)shnum * shentsize;
    if ((phnum && (pend > VR_MAX_IMAGE || pend > avail)) ||
        (shnum && (send > VR_MAX_IMAGE || send > avail)))
        return 0;
    end = phnum && pend > end ? pend : end;
    end = shnum && send > end ? send : end;
    for (unsigned i = 0; i < shnum; i++) {
        const unsigned char *sh = p + shoff + (uint64_t)i * shentsize;
        uint64_t off = rd(sh + 0x18, 8), size = rd(sh + 0x20, 8);
        if (rd(sh + 4, 4) == 8 /* SHT_NOBITS */)
            continue;
        if (off > VR_MAX_IMAGE || size > VR_MAX_IMAGE - off)
            return 0;
        end = off + size > end ? off + size : end;
    }
    for (unsigned i = 0; i < phnum; i++) {
        const unsigned char *ph = p + phoff + (uint64_t)i * phentsize;
        uint64_t off = rd(ph + 8, 8), size = rd(ph + 0x20, 8);
        if (off > VR_MAX_IMAGE || size > VR_MAX_IMAGE - off)
            return 0;
        end = off + size > end ? off + size : end;
    }
    return end;
}

/* The declared size of the fatbin, ELF or PTX image at p, reading no byte at or past
 * avail; 0 when it is none of them, declares more than VR_MAX_IMAGE, or its header (or
 * PTX's NUL) lies past avail. */
static size_t image_extent(const unsigned char *p, size_t avail)
{
    uint64_t size;
    if (avail >= 4 && (uint32_t)rd(p, 4) == FATBIN_MAGIC) {
        /* magic, version, header size, then the size of what follows the header */
        uint64_t fat = avail >= 16 ? rd(p + 8, 8) : UINT64_MAX;
        size = fat > VR_MAX_IMAGE ? 0 : rd(p + 6, 2) + fat;
    } else if (avail >= 4 && !memcmp(p, "\177ELF", 4)) {
        size = elf_size(p, avail);
    } else {
        size_t max = avail < VR_MAX_IMAGE ? avail : VR_MAX_IMAGE;
        size_t text = strnlen((const char *)p, max);
        size = text < max ? text + 1 : 0; /* PTX, with its NUL */
    }
    return size <= VR_MAX_IMAGE ? (size_t)size : 0;
}

size_t vr_image_size(const void *image, const void **ret_start)
{
    const unsigned char *p = image;
    *ret_start = image;
    if (!p)
        return 0;
    if ((uint32_t)rd(p, 4) == WRAPPER_MAGIC) {
        /* __fatBinC_Wrapper_t: int magic, int version, const void *data, ... */
        const unsigned char *data = (const unsigned char *)(uintptr_t)rd(p + 8, 8);
        if (!data || (uint32_t)rd(data, 4) != FATBIN_MAGIC)
            return 0;
        *ret_start = data;
        return image_extent(data, SIZE_MAX);
    }
    return image_extent(p, SIZE_MAX);
}

bool vr_image_fits(const void *image, size_t len)
{
    const unsigned char *p = image;
    if (!p || len < 4 || (uint32_t)rd(p, 4) == WRAPPER_MAGIC)
        return false;
    size_t size = image_extent(p, len);
    return size && size <= len;
}

/* ---- endpoints ---- */

static int bad(char *err, size_t errlen, const char *s, const char *why)
{
    if (err && errlen)
        snprintf(err, errlen, "'%s': %s", s, why);
    return -1;
}

/* A decimal number in [0, max]; the whole string. */
static bool parse_uint(const char *s, unsigned long max, unsigned *ret)
{
    if (*s < '0' || *s > '9')
        return false;
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || *end || v > max)
        return false;
    *ret = (unsigned)v;
    return true;
}

int vr_endpoint_parse(const char *s, struct vr_endpoint *ret, char *err, size_t errlen)
{
    struct vr_endpoint e = {0};
    if (!strncmp(s, "unix:", 5)) {
        const char *p = s + 5;
        if (p[0] != '/')
            return bad(err, errlen, s, "a unix endpoint wants an absolute path");
        if (strlen(p) >= sizeof(e.path))
            return bad(err, errlen, s, "the socket path is too long");
        e.transport = VR_UNIX;
        strcpy(e.path, p);
    } else if (!strncmp(s, "tcp:", 4)) {
        const char *p = s + 4, *colon;
        size_t hl;
        if (p[0] == '[') {
            const char *close = strchr(p, ']');
            if (!close || close[1] != ':')
                return bad(err, errlen, s, "expected tcp:[ADDRESS]:PORT");
            p++;
            hl = (size_t)(close - p);
            colon = close + 1;
        } else {
            colon = strrchr(p, ':');
            if (!colon)
                return bad(err, errlen, s, "expected tcp:HOST:PORT");
            hl = (size_t)(colon - p);
            if (memchr(p, ':', hl))
                return bad(err, errlen, s, "write an IPv6 address as tcp:[ADDRESS]:PORT");
        }
        if (hl >= sizeof(e.host))
            return bad(err, errlen, s, "the host name is too long");
        if (memchr(p, '[', hl) || memchr(p, ']', hl))
            return bad(err, errlen, s, "expected tcp:HOST:PORT or tcp:[ADDRESS]:PORT");
        memcpy(e.host, p, hl);
        if (!parse_uint(colon + 1, 65535, &e.port) || !e.port)
            return bad(err, errlen, s, "the port must be a number from 1 to 65535");
        e.transport = VR_TCP;
    } else if (!strncmp(s, "vsock:", 6)) {
        const char *p = s + 6, *colon = strchr(p, ':');
        if (!colon)
            return bad(err, errlen, s, "expected vsock:CID:PORT");
        char cid[16];
        size_t cl = (size_t)(colon - p);
        if (cl >= sizeof(cid))
            return bad(err, errlen, s, "the CID must be a number (or 'any')");
        memcpy(cid, p, cl);
        cid[cl] = '\0';
        if (!strcmp(cid, "any") || !cl)
            e.cid = VMADDR_CID_ANY;
        else if (!parse_uint(cid, UINT32_MAX, &e.cid))
            return bad(err, errlen, s, "the CID must be a number (or 'any')");
        if (!parse_uint(colon + 1, UINT32_MAX - 1, &e.port))
            return bad(err, errlen, s, "the port must be a number");
        e.transport = VR_VSOCK;
    } else {
        return bad(err, errlen, s, "expected unix:PATH, tcp:HOST:PORT or vsock:CID:PORT");
    }
    *ret = e;
    return 0;
}

void vr_endpoint_format(const struct vr_endpoint *e, char *buf, size_t len)
{
    switch (e->transport) {
    case VR_UNIX:
        snprintf(buf, len, "unix:%s", e->path);
        break;
    case VR_TCP:
        snprintf(buf, len, strchr(e->host, ':') ? "tcp:[%s]:%u" : "tcp:%s:%u", e->host, e->port);
        break;
    case VR_VSOCK:
        if (e->cid == VMADDR_CID_ANY)
            snprintf(buf, len, "vsock:any:%u", e->port);
        else
            snprintf(buf, len, "vsock:%u:%u", e->cid, e->port);
        break;
    }
}

static int fail(int r, char *err, size_t errlen, const char *what)
{
    if (err && errlen)
        snprintf(err, errlen, "%s: %s", what,
                 r == -EAFNOSUPPORT ? "vsock is not available in this kernel" : strerror(-r));
    return r;
}

/* A resolved socket address for e (tcp: the first address getaddrinfo gives). */
static int sockaddr_of(const struct vr_endpoint *e, bool listener, struct sockaddr_storage *ss,
                       socklen_t *sl, int *family, char *err, size_t errlen)
{
    memset(ss, 0, sizeof(*ss));
    switch (e->transport) {
    case VR_UNIX: {
        struct sockaddr_un *un = (struct sockaddr_un *)ss;
        un->sun_family = AF_UNIX;
        memcpy(un->sun_path, e->path, strlen(e->path) + 1);
        *sl = (socklen_t)sizeof(*un);
        *family = AF_UNIX;
        return 0;
    }
    case VR_VSOCK: {
        struct sockaddr_vm *vm = (struct sockaddr_vm *)ss;
        vm->svm_family = AF_VSOCK;
        vm->svm_cid = e->cid;
        vm->svm_port = e->port;
        *sl = (socklen_t)sizeof(*vm);
        *family = AF_VSOCK;
        return 0;
    }
    case VR_TCP:
        break;
    }
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = listener ? AI_PASSIVE : 0};
    struct addrinfo *res = NULL;
    char port[8];
    snprintf(port, sizeof(port), "%u", e->port);
    const char *host = e->host[0] ? e->host : "127.0.0.1";
    int g = getaddrinfo(host, port, &hints, &res);
    if (g || !res) {
        if (err && errlen)
            snprintf(err, errlen, "cannot resolve '%s': %s", host, gai_strerror(g));
        if (res)
            freeaddrinfo(res);
        return -EHOSTUNREACH;
    }
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *sl = res->ai_addrlen;
    *family = res->ai_family;
    freeaddrinfo(res);
    return 0;
}

int vr_connect(const struct vr_endpoint *e, int timeout_ms, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    int family, r = sockaddr_of(e, false, &ss, &sl, &family, err, errlen);
    if (r < 0)
        return r;
    int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return fail(-errno, err, errlen, "socket");
    if (connect(fd, (struct sockaddr *)&ss, sl) < 0) {
        r = -errno;
        if (r == -EINPROGRESS || r == -EAGAIN) {
            struct pollfd p = {.fd = fd, .events = POLLOUT};
            int n;
            do
                n = poll(&p, 1, timeout_ms);
            while (n < 0 && errno == EINTR);
            int soerr = 0;
            socklen_t el = sizeof(soerr);
            if (n == 0)
                r = -ETIMEDOUT;
            else if (n < 0)
                r = -errno;
            else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &el) < 0)
                r = -errno;
            else
                r = -soerr;
        }
        if (r < 0) {
            close(fd);
            return fail(r, err, errlen, "connect");
        }
    }
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) < 0) {
        r = -errno;
        close(fd);
        return fail(r, err, errlen, "fcntl");
    }
    if (e->transport == VR_TCP) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    return fd;
}

int vr_listen(const struct vr_endpoint *e, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    int family, r = sockaddr_of(e, true, &ss, &sl, &family, err, errlen);
    if (r < 0)
        return r;
    int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return fail(-errno, err, errlen, "socket");
    int one = 1;
    if (e->transport == VR_TCP) {
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    if (e->transport == VR_UNIX) {
        struct stat st;
        /* Replace a stale socket of an earlier run, never another kind of file ... */
        if (lstat(e->path, &st) == 0) {
            if (!S_ISSOCK(st.st_mode)) {
                close(fd);
                if (err && errlen)
                    snprintf(err, errlen, "%s exists and is not a socket", e->path);
                return -EEXIST;
            }
            /* ... unless something still answers on it. */
            int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
            bool live = probe >= 0 && connect(probe, (struct sockaddr *)&ss, sl) == 0;
            if (probe >= 0)
                close(probe);
            if (live) {
                close(fd);
                if (err && errlen)
                    snprintf(err, errlen, "%s: another daemon listens on it", e->path);
                return -EADDRINUSE;
            }
            unlink(e->path);
        }
    }
    /* A unix socket file is born 0660: it never exists with a wider mode. (umask is the
     * process's; listeners are opened before any thread starts.) */
    mode_t old = e->transport == VR_UNIX ? umask(0117) : 0;
    int b = bind(fd, (struct sockaddr *)&ss, sl);
    if (e->transport == VR_UNIX)
        umask(old);
    if (b < 0 || listen(fd, 64) < 0) {
        r = -errno;
        close(fd);
        return fail(r, err, errlen, "bind");
    }
    return fd;
}

/* ---- framed I/O ---- */

int64_t vr_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void vr_reader_init(struct vr_reader *r, int fd)
{
    r->fd = fd;
    r->start = r->end = 0;
    r->deadline_ms = 0;
}

/* With a deadline: waits until the socket is readable or the deadline passed. */
static int wait_readable(const struct vr_reader *r)
{
    if (!r->deadline_ms)
        return 0;
    for (;;) {
        int64_t left = r->deadline_ms - vr_now_ms();
        if (left <= 0)
            return -ETIMEDOUT;
        struct pollfd p = {.fd = r->fd, .events = POLLIN};
        int n = poll(&p, 1, left > INT32_MAX ? INT32_MAX : (int)left);
        if (n > 0)
            return 0;
        if (n == 0)
            return -ETIMEDOUT;
        if (errno != EINTR)
            return -errno;
    }
}

int vr_read(struct vr_reader *r, void *dst, size_t n)
{
    unsigned char *d = dst;
    size_t have = r->end - r->start;
    if (have) {
        size_t k = have < n ? have : n;
        if (d) {
            memcpy(d, r->buf + r->start, k);
            d += k;
        }
        r->start += k;
        n -= k;
    }
    while (n) {
        ssize_t k;
        int w = wait_readable(r);
        if (w < 0)
            return w;
        if (d && n >= sizeof(r->buf)) {
            /* Large: straight into the destination. */
            k = recv(r->fd, d, n, 0);
            if (k > 0) {
                d += k;
                n -= (size_t)k;
                continue;
            }
        } else {
            k = recv(r->fd, r->buf, sizeof(r->buf), 0);
            if (k > 0) {
                size_t take = (size_t)k < n ? (size_t)k : n;
                if (d) {
                    memcpy(d, r->buf, take);
                    d += take;
                }
                n -= take;
                r->start = take;
                r->end = (size_t)k;
                continue;
            }
        }
        if (k == 0)
            return -EPIPE;
        if (errno != EINTR)
            return -errno;
    }
    if (r->start == r->end)
        r->start = r->end = 0;
    return 0;
}

int vr_read_msg(struct vr_reader *r, bool reply, struct vr_hdr *hdr, void *fixed)
{
    int rc = vr_read(r, hdr, sizeof(*hdr));
    if (rc < 0)
        return rc;
    size_t want = reply ? sizeof(struct vr_ret) : sizeof(struct vr_args);
    if (hdr->magic != VR_MAGIC || hdr->len != want || (hdr->flags & ~VR_F_REPLY) ||
        !(hdr->flags & VR_F_REPLY) != !reply || hdr->bulk > VR_MAX_BULK)
        return -EPROTO;
    return vr_read(r, fixed, want);
}

/* Writes all of v[0..cnt) (v is consumed). 0 or -errno. */
static int send_iov(int fd, struct iovec *v, int cnt)
{
    while (cnt && !v->iov_len) {
        v++;
        cnt--;
    }
    while (cnt) {
        struct msghdr m = {.msg_iov = v, .msg_iovlen = (size_t)cnt};
        ssize_t k = sendmsg(fd, &m, MSG_NOSIGNAL);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        size_t left = (size_t)k;
        while (cnt && left >= v->iov_len) {
            left -= v->iov_len;
            v++;
            cnt--;
        }
        if (cnt) {
            v->iov_base = (char *)v->iov_base + left;
            v->iov_len -= left;
        }
        while (cnt && !v->iov_len) {
            v++;
            cnt--;
        }
    }
    return 0;
}

int vr_send(int fd, const struct vr_hdr *hdr, const void *fixed, const void *bulk1, size_t n1,
            const void *bulk2, size_t n2)
{
    struct iovec iov[4] = {
        {(void *)hdr, sizeof(*hdr)},
        {(void *)fixed, hdr->len},
        {(void *)bulk1, n1},
        {(void *)bulk2, n2},
    };
    return send_iov(fd, iov, 4);
}

int vr_send_bulk(int fd, const void *bulk, size_t n)
{
    struct iovec iov = {(void *)bulk, n};
    return send_iov(fd, &iov, 1);
}

int vr_send_request(int fd, uint16_t op, uint32_t id, const struct vr_args *a, const void *bulk,
                    size_t n)
{
    struct vr_hdr h = {.magic = VR_MAGIC, .op = op, .id = id, .len = sizeof(*a), .bulk = n};
    return vr_send(fd, &h, a, bulk, n, NULL, 0);
}

int vr_send_reply(int fd, uint16_t op, uint32_t id, const struct vr_ret *r, const void *bulk,
                  size_t n)
{
    struct vr_hdr h = {
        .magic = VR_MAGIC, .op = op, .flags = VR_F_REPLY, .id = id, .len = sizeof(*r), .bulk = n};
    return vr_send(fd, &h, r, bulk, n, NULL, 0);
}
