/* listen: who may talk to vgpu-hostd: its listening sockets, the identity of each
 * peer (uid over unix, CID over vsock, address over tcp), the --allow rules, and the
 * shared secret that tcp clients present. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/vm_sockets.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hostd.h"

#define SECRET_MIN  16
#define SECRET_MAX  512  /* trimmed bytes: the most the shims send (remote.c) */
#define SECRET_FILE 4096 /* bytes of the file, surrounding white space included */

/* addr as an IPv6 address, IPv4 ones mapped (::ffff:a.b.c.d). */
static int ip_parse(const char *s, unsigned char ret[16])
{
    struct in_addr v4;
    if (inet_pton(AF_INET, s, &v4) == 1) {
        memset(ret, 0, 10);
        ret[10] = ret[11] = 0xff;
        memcpy(ret + 12, &v4, 4);
        return 0;
    }
    return inet_pton(AF_INET6, s, ret) == 1 ? 0 : -EINVAL;
}

int hd_rule_parse(const char *s, struct hd_rule *ret)
{
    char *end;
    if (strncmp(s, "ip:", 3) == 0) {
        ret->kind = HD_RULE_IP;
        return ip_parse(s + 3, ret->ip);
    }
    if (strncmp(s, "uid:", 4) == 0)
        ret->kind = HD_RULE_UID;
    else if (strncmp(s, "cid:", 4) == 0)
        ret->kind = HD_RULE_CID;
    else
        return -EINVAL;
    if (!isdigit((unsigned char)s[4]))
        return -EINVAL;
    errno = 0;
    unsigned long v = strtoul(s + 4, &end, 10);
    if (*end || errno || v > 0xffffffffUL)
        return -EINVAL;
    ret->id = (unsigned)v;
    return 0;
}

bool hd_peer_allowed(const struct hd_peer *peer, const struct hd_rule *rules, size_t n)
{
    static const enum vr_transport of_kind[] = {
        [HD_RULE_UID] = VR_UNIX, [HD_RULE_CID] = VR_VSOCK, [HD_RULE_IP] = VR_TCP};
    if (n == 0)
        return true;
    if (!peer->has_id)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (of_kind[rules[i].kind] != peer->transport)
            continue;
        if (rules[i].kind == HD_RULE_IP ? memcmp(rules[i].ip, peer->ip, 16) == 0
                                        : rules[i].id == peer->id)
            return true;
    }
    return false;
}

static void peer_tcp(int fd, struct hd_peer *peer)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    char addr[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;

    if (getpeername(fd, (struct sockaddr *)&ss, &len) < 0)
        return;
    if (ss.ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)&ss;
        inet_ntop(AF_INET, &in->sin_addr, addr, sizeof(addr));
        port = ntohs(in->sin_port);
    } else if (ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&ss;
        inet_ntop(AF_INET6, &in6->sin6_addr, addr, sizeof(addr));
        port = ntohs(in6->sin6_port);
    } else {
        return;
    }
    /* A v4-mapped address reads as plain IPv4 in messages. */
    const char *shown = strncmp(addr, "::ffff:", 7) == 0 && strchr(addr, '.') ? addr + 7 : addr;
    peer->has_id = ip_parse(shown, peer->ip) == 0;
    snprintf(peer->text, sizeof(peer->text), "tcp %s:%u", shown, port);
}

void hd_peer_identify(int fd, const struct hd_listener *l, struct hd_peer *peer)
{
    memset(peer, 0, sizeof(*peer));
    peer->transport = l->ep.transport;
    snprintf(peer->text, sizeof(peer->text), "unknown peer");
    if (l->ep.transport == VR_UNIX) {
        struct ucred cr;
        socklen_t len = sizeof(cr);
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) == 0) {
            peer->has_id = true;
            peer->id = cr.uid;
            snprintf(peer->text, sizeof(peer->text), "unix uid %u pid %d", (unsigned)cr.uid,
                     (int)cr.pid);
        }
    } else if (l->ep.transport == VR_VSOCK) {
        struct sockaddr_vm vm;
        socklen_t len = sizeof(vm);
        if (getpeername(fd, (struct sockaddr *)&vm, &len) == 0 && vm.svm_family == AF_VSOCK) {
            peer->has_id = true;
            peer->id = vm.svm_cid;
            snprintf(peer->text, sizeof(peer->text), "vsock cid %u port %u", vm.svm_cid,
                     vm.svm_port);
        }
    } else {
        peer_tcp(fd, peer);
    }
}

static bool bound_to_loopback(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
        return false;
    if (ss.ss_family == AF_INET)
        return (ntohl(((struct sockaddr_in *)&ss)->sin_addr.s_addr) >> 24) == 127;
    if (ss.ss_family == AF_INET6) {
        const struct in6_addr *a = &((struct sockaddr_in6 *)&ss)->sin6_addr;
        return IN6_IS_ADDR_LOOPBACK(a) || (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
    }
    return false;
}

int hd_listener_open(struct hd_listener *l, const char *spec, char *err, size_t errlen)
{
    memset(l, 0, sizeof(*l));
    l->fd = -1;
    if (vr_endpoint_parse(spec, &l->ep, err, errlen) < 0)
        return -EINVAL;
    int fd = vr_listen(&l->ep, err, errlen);
    if (fd < 0)
        return fd;
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    l->fd = fd;
    l->unlink_path = l->ep.transport == VR_UNIX;
    l->loopback = l->ep.transport == VR_TCP && bound_to_loopback(fd);
    vr_endpoint_format(&l->ep, l->text, sizeof(l->text));
    return 0;
}

void hd_listener_close(struct hd_listener *l)
{
    if (l->fd >= 0)
        close(l->fd);
    l->fd = -1;
    if (l->unlink_path)
        unlink(l->ep.path);
    l->unlink_path = false;
}

/* The file's trimmed content into buf (SECRET_FILE + 1); its length or -errno with a
 * reason. */
static ssize_t secret_read(const char *path, char *buf, char *err, size_t errlen)
{
    struct stat st;
    ssize_t n;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
    if (fd < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -errno;
    }
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%s: not a regular file", path);
        close(fd);
        return -EINVAL;
    }
    if ((st.st_uid != 0 && st.st_uid != geteuid()) || (st.st_mode & 077)) {
        snprintf(err, errlen,
                 "%s: must be owned by root or uid %u and not accessible to "
                 "group or others (chmod 600)",
                 path, (unsigned)geteuid());
        close(fd);
        return -EPERM;
    }
    n = read(fd, buf, SECRET_FILE + 1);
    close(fd);
    if (n < 0 || n > SECRET_FILE) {
        snprintf(err, errlen, "%s: %s", path, n < 0 ? strerror(errno) : "larger than 4 KiB");
        return -EINVAL;
    }
    while (n > 0 && isspace((unsigned char)buf[n - 1]))
        n--;
    size_t start = 0;
    while ((ssize_t)start < n && isspace((unsigned char)buf[start]))
        start++;
    memmove(buf, buf + start, (size_t)n - start);
    if (n - (ssize_t)start > SECRET_MAX) {
        snprintf(err, errlen, "%s: the secret is longer than %d bytes (the shims' limit)", path,
                 SECRET_MAX);
        return -EINVAL;
    }
    return n - (ssize_t)start;
}

int hd_secret_load(const char *path, char **ret_hex, char *err, size_t errlen)
{
    char buf[SECRET_FILE + 1];
    ssize_t n = secret_read(path, buf, err, errlen);
    if (n < 0)
        return (int)n;
    if (n < SECRET_MIN) {
        snprintf(err, errlen, "%s: the secret must be at least %d bytes", path, SECRET_MIN);
        return -EINVAL;
    }
    char *hex = malloc((size_t)n * 2 + 1);
    if (!hex) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    for (ssize_t i = 0; i < n; i++)
        snprintf(hex + 2 * i, 3, "%02x", (unsigned char)buf[i]);
    memset(buf, 0, sizeof(buf));
    *ret_hex = hex;
    return 0;
}

bool hd_secret_equal(const char *expected_hex, const char *given, size_t given_len)
{
    size_t n = strlen(expected_hex);
    unsigned diff = given_len != n;
    for (size_t i = 0; i < n; i++) {
        unsigned char g = i < given_len ? (unsigned char)given[i] : 0;
        g |= (unsigned char)((g >= 'A' && g <= 'F') << 5); /* lower case */
        diff |= g ^ (unsigned char)expected_hex[i];
    }
    return diff == 0;
}
