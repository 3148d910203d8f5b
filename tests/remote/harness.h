/* harness: what the remote scenarios share — a vgpu-hostd child on a private socket,
 * client processes that load the shims with the remote backend pointed at it, shared
 * memory and pipes to steer them, and the CHECK macro. */
#ifndef VGPU_TEST_REMOTE_HARNESS_H
#define VGPU_TEST_REMOTE_HARNESS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "cuapi.h"

#define SKIP 77
#define MiB  ((size_t)1 << 20)

/* Prints "FAIL file:line: ..." and returns 1 from the calling function. */
#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fail_at(__FILE__, __LINE__, __VA_ARGS__);                                              \
            return 1;                                                                              \
        }                                                                                          \
    } while (0)
/* A CUDA/NVML call that must return want. */
#define CHECK_RC(call, want)                                                                       \
    do {                                                                                           \
        int rc_ = (call);                                                                          \
        CHECK(rc_ == (want), "%s returned %d, expected %d", #call, rc_, (int)(want));              \
    } while (0)

void fail_at(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

uint64_t now_ns(void);
void sleep_ms(unsigned ms);

/* A loopback tcp port nobody listens on right now (0 if none). */
unsigned free_tcp_port(void);

/* The scratch directory of this run (made by main, removed at exit). */
extern char test_dir[80];

struct daemon {
    pid_t pid;
    char endpoint[160];
    char sock[128]; /* unix: the socket file */
    char log[192];
};

/* Starts `vgpu-hostd --sim` ($VGPU_TEST_HOSTD) listening on a fresh endpoint of transport
 * ("unix": a socket in test_dir, "tcp": a free loopback port, else an endpoint as given),
 * with the extra arguments (NULL-terminated, may be NULL), and waits up to 10 s until it
 * accepts. 0, or 1 with a message. */
int daemon_start(struct daemon *d, const char *transport, const char *const *extra);
/* SIGTERM; the daemon must exit 0 within 10 s and (unix) remove its socket. 0 or 1. */
int daemon_stop(struct daemon *d);
/* Whether it still runs. */
bool daemon_alive(struct daemon *d);
/* SIGKILL if still running; for cleanup after a failure. */
void daemon_kill(struct daemon *d);
/* The tail of the daemon's log on stderr. */
void daemon_dump_log(const struct daemon *d);

/* A client process: forks, points the remote backend at endpoint (VGPU_CONFIG at nothing,
 * CUDA_VISIBLE_DEVICES unset), applies env ("K=V" sets, "K" unsets; may be NULL), arms a
 * watchdog of timeout_s and runs fn(arg); its return value is the exit status. */
typedef int client_fn(void *arg);
pid_t client_spawn(const char *endpoint, const char *const *env, unsigned timeout_s, client_fn *fn,
                   void *arg);
/* Waits for it: its exit status, 128+signal when killed, or -1 (after SIGKILL) when it did
 * not end within timeout_s. */
int client_wait(pid_t pid, unsigned timeout_s);
/* spawn + wait. */
int client_run(const char *endpoint, const char *const *env, unsigned timeout_s, client_fn *fn,
               void *arg);

/* Zeroed memory shared with the client processes forked afterwards. */
void *shared_alloc(size_t n);

/* One-byte messages between the harness and a client: a pair of pipes. */
struct chan {
    int up[2];   /* client -> harness */
    int down[2]; /* harness -> client */
};
int chan_open(struct chan *c);
/* One byte each way; the _harness variants are the client's side. */
int chan_tell(struct chan *c, char what);
/* The byte client pid sent, or -1 after timeout_ms or as soon as that process has ended. */
int chan_hear_from(struct chan *c, pid_t pid, unsigned timeout_ms);
int chan_tell_harness(struct chan *c, char what);
int chan_hear_harness(struct chan *c, unsigned timeout_ms);

/* Loads the CUDA shim, cuInit, device 0, its primary context made current. 0 or 1. */
int cu_open(struct cuapi *cu);

/* Fills buf with xorshift bytes from seed. */
void fill_random(void *buf, size_t n, uint64_t seed);

#endif
