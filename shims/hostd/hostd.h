/* hostd: what vgpu-hostd's modules share: the daemon's settings, its listeners and
 * peer rules (listen.c), logging (log.c), and the session entry point (session.c). */
#ifndef VGPU_HOSTD_H
#define VGPU_HOSTD_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "device.h"
#include "proto.h"

#define HOSTD_VERSION "0.1.0"

/* ---- logging (log.c): one line per message on stderr ---- */
enum hd_level { HD_ERROR, HD_WARN, HD_INFO, HD_DEBUG };
extern enum hd_level hd_log_level;
void hd_log(enum hd_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- peers and listeners (listen.c) ---- */
enum hd_rule_kind { HD_RULE_UID, HD_RULE_CID, HD_RULE_IP };

struct hd_rule {
    enum hd_rule_kind kind;
    unsigned id;          /* uid, cid */
    unsigned char ip[16]; /* IPv6 or IPv4-mapped */
};

/* Who is on the other end of an accepted connection. */
struct hd_peer {
    enum vr_transport transport;
    bool has_id; /* the uid / cid / address below is known */
    unsigned id;
    unsigned char ip[16];
    char text[96]; /* "uid 1000 pid 42", "cid 3", "10.0.0.2:51000" for messages */
};

struct hd_listener {
    struct vr_endpoint ep;
    int fd;
    bool needs_secret; /* tcp with a secret file configured */
    bool loopback;     /* tcp bound to a loopback address */
    bool unlink_path;  /* a unix socket file this daemon created */
    char text[300];
};

/* Parses "uid:N", "cid:N" or "ip:ADDR". 0 or -EINVAL. */
int hd_rule_parse(const char *s, struct hd_rule *ret);
/* Whether peer matches one of the n rules (n == 0: everyone). */
bool hd_peer_allowed(const struct hd_peer *peer, const struct hd_rule *rules, size_t n);
/* Fills peer for an accepted fd on listener l. */
void hd_peer_identify(int fd, const struct hd_listener *l, struct hd_peer *peer);
/* Parses spec and opens its listening socket (non-blocking). 0, -EINVAL for a bad
 * spec, or -errno; a reason in err. */
int hd_listener_open(struct hd_listener *l, const char *spec, char *err, size_t errlen);
void hd_listener_close(struct hd_listener *l);
/* Reads the secret file with the checks of vgpu-hostd(8) and stores its lowercase hex
 * in *ret_hex (malloc'd). 0 or -errno with a reason in err. */
int hd_secret_load(const char *path, char **ret_hex, char *err, size_t errlen);
/* Constant-time comparison of the client's hex secret with the expected one. */
bool hd_secret_equal(const char *expected_hex, const char *given, size_t given_len);

/* ---- device naming (ops-nvml.c) ---- */
/* "GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" (41 bytes with the NUL). */
void hd_uuid_format(const unsigned char uuid[16], char out[41]);
/* Parses "DDDD:BB:DD.F" or "BB:DD.F" (hex; any domain width). 0 or -EINVAL. */
int hd_pci_parse(const char *s, unsigned *domain, unsigned *bus, unsigned *device,
                 unsigned *function);

/* ---- the daemon (main.c) ---- */
struct hd_daemon {
    const struct hd_backend *dev;
    const struct hd_dev_info *devs; /* the device's, by daemon index */
    int ndevs;
    uint64_t memory_limit; /* per client; 0: none */
    unsigned max_clients;
    const struct hd_rule *rules;
    size_t nrules;
    const char *secret_hex; /* NULL: no secret file */
    atomic_uint admitted;   /* clients past HELLO */
    atomic_uint pending;    /* connections accepted, their HELLO not yet answered */
    int wake_fd;            /* written to when pending drops: the accept loop goes on */
};

/* A connection's whole HELLO must arrive within this of the accept (vgpu-hostd(8)). */
#define HD_HELLO_DEADLINE_MS 5000
/* Connections waiting for their HELLO at once; while there are this many, the daemon
 * accepts no more and new ones wait in the listen backlog (bounded by the client's
 * connect_timeout), so that silent or trickling peers cannot take every thread and
 * a burst of honest connects is only delayed (vgpu-hostd(8)). */
#define HD_MAX_PENDING 16u

/* ---- sessions (session.c) ---- */
struct hd_session;
/* A session for an accepted fd; it does not own fd (the caller closes it after the
 * session's thread ended). NULL when out of memory. */
struct hd_session *hd_session_new(struct hd_daemon *d, int fd, unsigned id,
                                  const struct hd_listener *l, const struct hd_peer *peer);
/* The thread body: HELLO, requests until the client leaves, cleanup. */
void *hd_session_run(void *session);
void hd_session_free(struct hd_session *s);

#endif
