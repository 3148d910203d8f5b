/* remote: the shim's connection to vgpu-hostd — connect, HELLO, serialized calls,
 * reconnection after a loss or a fork. */
#include "remote.h"
#include "config.h"
#include "log.h"
#include "shim.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define SECRET_MAX  512  /* bytes of the secret, trimmed (hex doubles them) */
#define SECRET_FILE 4096 /* bytes of the file read, as vgpu-hostd reads its own */

/* One connection per shim (the core is linked into each shim separately). The lock
 * covers everything below: a request and its reply, and reconnecting. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int conn = -1;
static struct vr_reader reader;
static uint32_t next_id;
static enum vr_api conn_api;
static bool opened; /* vgpu_remote_open succeeded once: later calls may reconnect */
static uint16_t init_op;
static uint64_t init_a0;

static void drop_locked(void)
{
    if (conn >= 0)
        close(conn);
    conn = -1;
}

/* fork: the child must never speak on its parent's connection (its replies would go
 * to whichever process reads first). It closes its copy of the fd — the parent's
 * stays open — and connects afresh, with its own HELLO, at its first call. fork()
 * never waits for a call in flight in another thread: the child gets a fresh lock
 * (only the forking thread exists there; what the lock guarded is dropped). */
static pthread_mutex_t *reinit[8]; /* the shim's other locks (vgpu_remote_fork_reinit) */

static void atfork_child(void)
{
    pthread_mutex_init(&lock, NULL);
    for (size_t i = 0; i < VGPU_ARRAY_SIZE(reinit) && reinit[i]; i++)
        pthread_mutex_init(reinit[i], NULL);
    drop_locked();
}

static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void register_atfork(void)
{
    pthread_atfork(NULL, NULL, atfork_child);
}

/* The program's short name, for the daemon's log. */
static void program_name(char *buf, size_t n)
{
    int fd = open("/proc/self/comm", O_RDONLY | O_CLOEXEC);
    ssize_t k = fd >= 0 ? read(fd, buf, n - 1) : -1;
    if (fd >= 0)
        close(fd);
    if (k > 0) {
        buf[k] = '\0';
        buf[strcspn(buf, "\n")] = '\0';
        return;
    }
    vgpu_strlcpy(buf, program_invocation_short_name, n);
}

static void put_hex(char *out, const unsigned char *in, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

/* isspace() in the C locale, as vgpu-hostd trims its copy. */
static bool is_space(unsigned char c)
{
    return c == ' ' || (c >= '\t' && c <= '\r');
}

/* The secret file's content, trimmed, hex-encoded into hex (2 * SECRET_MAX + 1). */
static int read_secret(const char *path, char *hex, char *msg, size_t n)
{
    unsigned char buf[SECRET_FILE];
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        snprintf(msg, n, "cannot read the secret file %s: %s", path, strerror(errno));
        return -1;
    }
    size_t len = 0;
    ssize_t k;
    while (len < sizeof(buf) &&
           ((k = read(fd, buf + len, sizeof(buf) - len)) > 0 || (k < 0 && errno == EINTR)))
        len += k > 0 ? (size_t)k : 0;
    close(fd);
    size_t start = 0;
    while (start < len && is_space(buf[start]))
        start++;
    while (len > start && is_space(buf[len - 1]))
        len--;
    if (len - start > SECRET_MAX || len == start) {
        snprintf(msg, n, "the secret file %s is %s", path,
                 len == start ? "empty" : "longer than 512 bytes (trimmed)");
        return -1;
    }
    put_hex(hex, buf + start, len - start);
    return 0;
}

/* The HELLO text into buf (VR_MAX_HELLO); its length, or -1 with msg. */
static int hello_text(char *buf, char *msg, size_t n)
{
    const struct vgpu_config *c = vgpu_config();
    char prog[64], secret[2 * SECRET_MAX + 1] = "";
    program_name(prog, sizeof(prog));
    if (c->secret_file[0] && read_secret(c->secret_file, secret, msg, n) < 0)
        return -1;
    const char *visible = getenv("CUDA_VISIBLE_DEVICES");
    int len = snprintf(buf, VR_MAX_HELLO, "%s%.1024s%sprogram=%s\n%s%s%s",
                       visible ? "visible=" : "", visible ? visible : "", visible ? "\n" : "", prog,
                       secret[0] ? "secret=" : "", secret, secret[0] ? "\n" : "");
    return len < 0 || len >= (int)VR_MAX_HELLO ? (snprintf(msg, n, "the HELLO is too long"), -1)
                                               : len;
}

/* One request and its reply on the current connection; -errno when the wire fails
 * (the caller drops the connection). */
static int exchange_locked(uint16_t op, const struct vr_args *a, const void *bulk, size_t n,
                           struct vr_ret *ret, void *rbulk, size_t rbulk_max, size_t *rbulk_len)
{
    uint32_t id = ++next_id;
    int r = vr_send_request(conn, op, id, a, bulk, n);
    if (r < 0)
        return r;
    struct vr_hdr h;
    r = vr_read_msg(&reader, true, &h, ret);
    if (r < 0)
        return r;
    if (h.id != id || h.op != op)
        return -EPROTO;
    size_t take = h.bulk < rbulk_max ? (size_t)h.bulk : rbulk_max;
    if (take && (r = vr_read(&reader, rbulk, take)) < 0)
        return r;
    if (h.bulk > take && (r = vr_read(&reader, NULL, h.bulk - take)) < 0)
        return r;
    if (rbulk_len)
        *rbulk_len = take;
    return 0;
}

/* Bounds the blocking writes of fd (0: no bound); reads are bounded by the reader's
 * deadline. */
static void set_send_timeout(int fd, int64_t ms)
{
    if (ms < 0)
        ms = 1;
    struct timeval tv = {.tv_sec = (time_t)(ms / 1000), .tv_usec = (suseconds_t)(ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

/* Connects and says HELLO (then the init request, once there was one); fills info
 * when given. 0, or -1 with msg. */
static int connect_locked(struct vgpu_remote_info *info, char *msg, size_t n)
{
    const struct vgpu_config *c = vgpu_config();
    struct vr_endpoint e;
    char err[256];
    if (vr_endpoint_parse(c->endpoint, &e, err, sizeof(err)) < 0) {
        snprintf(msg, n, "bad endpoint %s", err);
        return -1;
    }
    char text[VR_MAX_HELLO];
    int len = hello_text(text, msg, n);
    if (len < 0)
        return -1;
    /* One deadline for all of it: connect, HELLO and the init request. (A tcp host name
     * is resolved by the system's resolver first, with its own timeouts: numeric
     * addresses avoid that.) */
    int64_t deadline = vr_now_ms() + (int64_t)c->connect_timeout_ms;
    int fd = vr_connect(&e, (int)c->connect_timeout_ms, err, sizeof(err));
    if (fd < 0) {
        snprintf(msg, n, "cannot reach vgpu-hostd at %s: %s", c->endpoint, err);
        return -1;
    }
    conn = fd;
    vr_reader_init(&reader, fd);
    struct vr_args a = {{VR_VERSION, VR_VERSION, conn_api, (uint64_t)getpid(), 0}};
    struct vr_ret ret;
    char desc[256] = "";
    size_t dlen = 0;
    /* Something that accepts and never answers (or trickles) must not hang the program. */
    reader.deadline_ms = deadline;
    set_send_timeout(fd, deadline - vr_now_ms());
    int r = exchange_locked(VR_HELLO, &a, text, (size_t)len, &ret, desc, sizeof(desc) - 1, &dlen);
    if (r < 0) {
        snprintf(msg, n, "%s at %s: HELLO failed: %s",
                 r == -EPROTO ? "no vgpu-hostd" : "vgpu-hostd", c->endpoint,
                 r == -EPROTO ? "the peer does not speak the vgpu protocol"
                 : r == -EPIPE || r == -ECONNRESET
                     ? "it closed the connection before answering (is this peer on its "
                       "--allow list? its log says why)"
                 : r == -EAGAIN || r == -ETIMEDOUT ? "no answer within connect_timeout"
                                                   : strerror(-r));
        drop_locked();
        return -1;
    }
    if (ret.status != VR_OK) {
        snprintf(msg, n, "vgpu-hostd at %s refused this client: %s%s", c->endpoint,
                 vr_status_text(ret.status), ret.status == VR_E_AUTH ? " (secret_file)" : "");
        drop_locked();
        return -1;
    }
    desc[dlen] = '\0';
    if (info) {
        *info = (struct vgpu_remote_info){.version = (unsigned)ret.r[0],
                                          .caps = (unsigned)ret.r[1],
                                          .devices = (unsigned)ret.r[2]};
        vgpu_strlcpy(info->endpoint, c->endpoint, sizeof(info->endpoint));
        vgpu_strlcpy(info->daemon, desc, sizeof(info->daemon));
    }
    if (init_op) {
        struct vr_args ia = {{init_a0}};
        r = exchange_locked(init_op, &ia, NULL, 0, &ret, NULL, 0, NULL);
        if (r < 0) {
            snprintf(msg, n, "vgpu-hostd at %s: lost after HELLO", c->endpoint);
            drop_locked();
            return -1;
        }
    }
    reader.deadline_ms = 0; /* calls may take as long as the device does */
    set_send_timeout(fd, 0);
    return 0;
}

int vgpu_remote_open(enum vr_api api, struct vgpu_remote_info *ret_info, char *msg, size_t n)
{
    pthread_once(&atfork_once, register_atfork);
    pthread_mutex_lock(&lock);
    conn_api = api;
    int r = conn >= 0 ? 0 : connect_locked(ret_info, msg, n);
    if (r == 0)
        opened = true;
    pthread_mutex_unlock(&lock);
    return r;
}

void vgpu_remote_fork_reinit(pthread_mutex_t *m)
{
    pthread_once(&atfork_once, register_atfork);
    pthread_mutex_lock(&lock);
    size_t i = 0;
    while (i < VGPU_ARRAY_SIZE(reinit) && reinit[i] && reinit[i] != m)
        i++;
    if (i < VGPU_ARRAY_SIZE(reinit))
        reinit[i] = m;
    pthread_mutex_unlock(&lock);
}

void vgpu_remote_set_init(uint16_t op, uint64_t a0)
{
    pthread_mutex_lock(&lock);
    init_op = op;
    init_a0 = a0;
    pthread_mutex_unlock(&lock);
}

int vgpu_remote_call(uint16_t op, const struct vr_args *a, const void *bulk, size_t n,
                     struct vr_ret *ret, void *rbulk, size_t rbulk_max, size_t *rbulk_len)
{
    char msg[512], name[16];
    pthread_mutex_lock(&lock);
    if (conn < 0) {
        if (!opened || connect_locked(NULL, msg, sizeof(msg)) < 0) {
            pthread_mutex_unlock(&lock);
            if (opened)
                vgpu_log(VGPU_LOG_WARN, "%s: %s", vr_op_name(op, name), msg);
            return VGPU_REMOTE_LOST;
        }
        vgpu_log(VGPU_LOG_INFO, "backend remote: connected again to %s", vgpu_config()->endpoint);
    }
    int r = exchange_locked(op, a, bulk, n, ret, rbulk, rbulk_max, rbulk_len);
    if (r < 0) {
        drop_locked();
        pthread_mutex_unlock(&lock);
        vgpu_log(VGPU_LOG_WARN, "%s: the connection to vgpu-hostd was lost: %s",
                 vr_op_name(op, name), r == -EPROTO ? "protocol error" : strerror(-r));
        return VGPU_REMOTE_LOST;
    }
    pthread_mutex_unlock(&lock);
    return 0;
}
