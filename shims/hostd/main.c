/* vgpu-hostd: the daemon on the GPU host that serves the shims' remote backend
 * (DESIGN §5, shims/remote/proto.h, vgpu-hostd(8)). This file owns the command line,
 * the device backend, the listeners, the accept loop with a thread per client, logging,
 * and the clean shutdown on SIGTERM/SIGINT. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hostd.h"
#include "vgpu-conf.h"

#define MAX_LISTENERS 16
#define MAX_RULES     64
#define STOP_GRACE_MS 5000 /* SIGTERM: how long sessions get to end before _exit */

enum hd_level hd_log_level = HD_INFO;

void hd_log(enum hd_level level, const char *fmt, ...)
{
    static const char *const names[] = {"error", "warning", "info", "debug"};
    char line[1024];
    va_list ap;
    if (level > hd_log_level)
        return;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    fprintf(stderr, "vgpu-hostd: %s: %s\n", names[level], line);
}

struct options {
    const char *listen[MAX_LISTENERS];
    size_t nlisten;
    struct hd_rule rules[MAX_RULES];
    size_t nrules;
    unsigned long long memory_limit;
    unsigned long long sim_memory; /* the simulated device's size (0: 16 GiB) */
    const char *native_cuda, *native_nvml, *secret_file;
    bool sim;
    unsigned max_clients;
};

struct client {
    struct client *next;
    pthread_t thread;
    struct hd_session *s;
    int fd;
    atomic_int done;
};

static int wake[2] = {-1, -1};
static volatile sig_atomic_t stopping;

static void on_signal(int sig)
{
    int saved = errno;
    char c = 's';
    (void)sig;
    stopping = 1;
    if (write(wake[1], &c, 1) < 0) { /* the pipe is full: a wakeup is pending anyway */
    }
    errno = saved;
}

static void usage(FILE *f)
{
    fputs("Usage: vgpu-hostd --listen ENDPOINT [--listen ENDPOINT...] [OPTION...]\n"
          "Serve the vGPU shims' remote backend on this GPU host.\n\n"
          "  -l, --listen ENDPOINT    unix:PATH, tcp:[HOST]:PORT or vsock:CID:PORT\n"
          "                           (vsock::PORT listens on any CID)\n"
          "  -a, --allow PEER         uid:N, cid:N or ip:ADDR; repeatable\n"
          "                           (none: any peer that reaches an endpoint)\n"
          "  -m, --memory-limit SIZE  device memory per client (K, M, G, T)\n"
          "      --native-cuda PATH   the CUDA driver to load (libcuda.so.1)\n"
          "      --native-nvml PATH   NVML to load (libnvidia-ml.so.1; optional)\n"
          "      --secret-file PATH   shared secret tcp clients present\n"
          "      --sim                serve a simulated device (host RAM, no kernels)\n"
          "      --sim-memory SIZE    the simulated device's memory (16G)\n"
          "      --max-clients N      clients served at once (64)\n"
          "      --log-level LEVEL    error, warn, info (default) or debug\n"
          "  -h, --help               show this help\n"
          "  -V, --version            show the version\n",
          f);
}

__attribute__((format(printf, 1, 2))) static int usage_error(const char *fmt, ...)
{
    va_list ap;
    fputs("vgpu-hostd: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\nTry 'vgpu-hostd --help'.\n", stderr);
    return 2;
}

static int parse_level(const char *s)
{
    static const char *const names[] = {"error", "warn", "info", "debug"};
    for (int i = 0; i < 4; i++)
        if (strcmp(s, names[i]) == 0)
            return i;
    return -1;
}

/* 0 to run, or the exit code (-1: exit 0 after --help / --version). */
static int parse_args(int argc, char **argv, struct options *o)
{
    enum { O_CUDA = 256, O_NVML, O_SECRET, O_SIM, O_SIM_MEMORY, O_MAX, O_LOG };
    static const struct option longs[] = {
        {"listen", required_argument, NULL, 'l'},
        {"allow", required_argument, NULL, 'a'},
        {"memory-limit", required_argument, NULL, 'm'},
        {"native-cuda", required_argument, NULL, O_CUDA},
        {"native-nvml", required_argument, NULL, O_NVML},
        {"secret-file", required_argument, NULL, O_SECRET},
        {"sim", no_argument, NULL, O_SIM},
        {"sim-memory", required_argument, NULL, O_SIM_MEMORY},
        {"max-clients", required_argument, NULL, O_MAX},
        {"log-level", required_argument, NULL, O_LOG},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    char *end;
    int c, lvl;

    memset(o, 0, sizeof(*o));
    o->max_clients = 64;
    while ((c = getopt_long(argc, argv, "l:a:m:hV", longs, NULL)) != -1) {
        switch (c) {
        case 'l':
            if (o->nlisten == MAX_LISTENERS)
                return usage_error("at most %s --listen", "16");
            o->listen[o->nlisten++] = optarg;
            break;
        case 'a':
            if (o->nrules == MAX_RULES || hd_rule_parse(optarg, &o->rules[o->nrules]) < 0)
                return usage_error("bad --allow '%s' (uid:N, cid:N or ip:ADDR)", optarg);
            o->nrules++;
            break;
        case 'm':
            if (vgpu_conf_parse_size(optarg, &o->memory_limit) < 0)
                return usage_error("bad --memory-limit '%s' (e.g. 8G)", optarg);
            break;
        case O_CUDA:
            o->native_cuda = optarg;
            break;
        case O_NVML:
            o->native_nvml = optarg;
            break;
        case O_SECRET:
            o->secret_file = optarg;
            break;
        case O_SIM:
            o->sim = true;
            break;
        case O_SIM_MEMORY:
            if (vgpu_conf_parse_size(optarg, &o->sim_memory) < 0 || !o->sim_memory)
                return usage_error("bad --sim-memory '%s' (e.g. 16G)", optarg);
            break;
        case O_MAX:
            errno = 0;
            o->max_clients = (unsigned)strtoul(optarg, &end, 10);
            if (*end || errno || o->max_clients == 0 || o->max_clients > 65535)
                return usage_error("bad --max-clients '%s' (1..65535)", optarg);
            break;
        case O_LOG:
            if ((lvl = parse_level(optarg)) < 0)
                return usage_error("bad --log-level '%s' (error, warn, info, debug)", optarg);
            hd_log_level = (enum hd_level)lvl;
            break;
        case 'h':
            usage(stdout);
            return -1;
        case 'V':
            printf("vgpu-hostd %s\n", HOSTD_VERSION);
            return -1;
        default:
            return usage_error("%s", "bad usage");
        }
    }
    if (optind < argc)
        return usage_error("unexpected argument '%s'", argv[optind]);
    if (o->nlisten == 0)
        return usage_error("%s", "no --listen endpoint (e.g. --listen vsock::7735)");
    if (o->sim && (o->native_cuda || o->native_nvml))
        return usage_error("%s", "--sim excludes --native-cuda and --native-nvml");
    if (o->sim_memory && !o->sim)
        return usage_error("%s", "--sim-memory needs --sim");
    return 0;
}

/* The backend and its devices' descriptions. 0 or 1. */
static int open_device(const struct options *o, struct hd_daemon *d)
{
    char err[512];
    if (o->sim) {
        d->dev = hd_sim_open(o->sim_memory);
    } else {
        setenv("CUDA_DEVICE_ORDER", "PCI_BUS_ID", 0); /* CUDA's indices are NVML's */
        d->dev =
            hd_native_open(o->native_cuda ? o->native_cuda : "libcuda.so.1",
                           o->native_nvml ? o->native_nvml : "libnvidia-ml.so.1", err, sizeof(err));
        if (!d->dev) {
            hd_log(HD_ERROR, "%s", err);
            return 1;
        }
    }
    d->ndevs =
        d->dev->device_count < (int)VR_MAX_DEVICES ? d->dev->device_count : (int)VR_MAX_DEVICES;
    struct hd_dev_info *devs = calloc((size_t)d->ndevs + 1, sizeof(*devs));
    if (!devs)
        return 1;
    for (int i = 0; i < d->ndevs; i++) {
        unsigned fn;
        int st = d->dev->dev_info(i, &devs[i]);
        if (st) {
            hd_log(HD_ERROR, "device %d: cannot describe it (CUresult %d)", i, st);
            free(devs);
            return 1;
        }
        if (hd_pci_parse(devs[i].pci_bus_id, &devs[i].pci_domain, &devs[i].pci_bus,
                         &devs[i].pci_device, &fn) < 0)
            devs[i].pci_domain = devs[i].pci_bus = devs[i].pci_device = 0;
        hd_log(HD_INFO, "device %d: %s (%s, compute %d.%d, %llu MiB)", i, devs[i].name,
               devs[i].pci_bus_id, devs[i].cc_major, devs[i].cc_minor,
               (unsigned long long)(devs[i].total_mem >> 20));
    }
    d->devs = devs;
    return 0;
}

/* Opens every listener. 0, 1 (cannot listen) or 2 (refused configuration). */
static int open_listeners(const struct options *o, const struct hd_daemon *d,
                          struct hd_listener *ls)
{
    char err[512];
    for (size_t i = 0; i < o->nlisten; i++) {
        int e = hd_listener_open(&ls[i], o->listen[i], err, sizeof(err));
        if (e < 0) {
            hd_log(HD_ERROR, "--listen %s: %s", o->listen[i], err);
            return e == -EINVAL ? 2 : 1;
        }
        if (ls[i].ep.transport == VR_TCP && !ls[i].loopback && !d->secret_hex) {
            hd_log(HD_ERROR,
                   "--listen %s: a tcp endpoint beyond loopback needs --secret-file "
                   "(any client could run code on this host's GPU)",
                   o->listen[i]);
            return 2;
        }
        ls[i].needs_secret = ls[i].ep.transport == VR_TCP && d->secret_hex;
        hd_log(HD_INFO, "listening on %s%s", ls[i].text,
               ls[i].needs_secret ? " (secret required)" : "");
    }
    if (o->nrules == 0)
        hd_log(HD_WARN, "no --allow rule: any peer that reaches an endpoint may run code on "
                        "this host's GPU");
    return 0;
}

static void *client_main(void *arg)
{
    struct client *c = arg;
    char b = 'r';
    hd_session_run(c->s);
    atomic_store(&c->done, 1);
    if (write(wake[1], &b, 1) < 0) { /* full: the main loop is awake already */
    }
    return NULL;
}

static void start_client(struct hd_daemon *d, struct client **clients, unsigned *nthreads,
                         const struct hd_listener *l, int fd, unsigned id)
{
    static const int one = 1, idle = 60, intvl = 10, cnt = 6;
    struct hd_peer peer;
    sigset_t all, old;

    hd_peer_identify(fd, l, &peer);
    if (!hd_peer_allowed(&peer, d->rules, d->nrules)) {
        hd_log(HD_WARN, "connection from %s on %s refused: peer not allowed", peer.text, l->text);
        close(fd);
        return;
    }
    if (l->ep.transport == VR_TCP) { /* notice a peer that vanished without a FIN */
        setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    struct client *c = calloc(1, sizeof(*c));
    if (!c || !(c->s = hd_session_new(d, fd, id, l, &peer))) {
        hd_log(HD_ERROR, "client %u (%s): out of memory", id, peer.text);
        free(c);
        close(fd);
        return;
    }
    c->fd = fd;
    atomic_fetch_add(&d->pending, 1); /* hd_session_run takes it back after the HELLO */
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old); /* signals go to the main thread only */
    int e = pthread_create(&c->thread, NULL, client_main, c);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (e) {
        hd_log(HD_ERROR, "client %u (%s): cannot start a thread: %s", id, peer.text, strerror(e));
        atomic_fetch_sub(&d->pending, 1);
        hd_session_free(c->s);
        free(c);
        close(fd);
        return;
    }
    c->next = *clients;
    *clients = c;
    (*nthreads)++;
}

/* Joins the clients whose threads ended. */
static void reap(struct client **clients, unsigned *nthreads)
{
    for (struct client **p = clients; *p;) {
        struct client *c = *p;
        if (!atomic_load(&c->done)) {
            p = &c->next;
            continue;
        }
        pthread_join(c->thread, NULL);
        hd_session_free(c->s);
        close(c->fd);
        *p = c->next;
        free(c);
        (*nthreads)--;
    }
}

/* Ends every session: their connections are shut down, and each gets STOP_GRACE_MS to
 * clean up. A session stuck in a driver call past that would hang the daemon: it exits
 * instead (the process's exit frees the GPU). */
static void stop_clients(struct client **clients, unsigned *nthreads)
{
    for (struct client *c = *clients; c; c = c->next)
        shutdown(c->fd, SHUT_RDWR);
    int64_t until = vr_now_ms() + STOP_GRACE_MS;
    for (;;) {
        reap(clients, nthreads);
        if (!*clients)
            return;
        if (vr_now_ms() >= until)
            break;
        struct pollfd p = {.fd = wake[0], .events = POLLIN};
        char buf[64];
        if (poll(&p, 1, 100) > 0)
            while (read(wake[0], buf, sizeof(buf)) > 0) {
            }
    }
    hd_log(HD_WARN, "stopping: %u client(s) still busy after %d s (in the driver?); exiting",
           *nthreads, STOP_GRACE_MS / 1000);
    _exit(0);
}

/* Threads: the admitted clients (max_clients) and the connections still in their HELLO
 * (at most HD_MAX_PENDING, whose deadline bounds how long each holds its place). */
static bool may_accept(struct hd_daemon *d)
{
    return atomic_load(&d->pending) < HD_MAX_PENDING;
}

static void accept_all(struct hd_daemon *d, struct client **clients, unsigned *nthreads,
                       const struct hd_listener *l, unsigned *next_id)
{
    while (may_accept(d)) {
        int fd = accept4(l->fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                hd_log(HD_WARN, "accept on %s: %s", l->text, strerror(errno));
            if (errno == EMFILE || errno == ENFILE)
                usleep(100000); /* let clients leave before trying again */
            return;
        }
        start_client(d, clients, nthreads, l, fd, ++*next_id);
    }
}

static void serve(struct hd_daemon *d, struct hd_listener *ls, size_t nls)
{
    struct pollfd pfd[MAX_LISTENERS + 1];
    struct client *clients = NULL;
    unsigned nthreads = 0, next_id = 0;
    char buf[64];

    pfd[0] = (struct pollfd){.fd = wake[0], .events = POLLIN};
    for (size_t i = 0; i < nls; i++)
        pfd[i + 1] = (struct pollfd){.fd = ls[i].fd, .events = POLLIN};
    bool said = false;
    while (!stopping) {
        /* At the pending limit, the listeners are left out: new connections wait in
         * the backlog until a HELLO is answered (a wakeup on wake[0]). */
        bool open = may_accept(d);
        for (size_t i = 0; i < nls; i++)
            pfd[i + 1].fd = open ? ls[i].fd : -1;
        if (!open && !said)
            hd_log(HD_WARN, "%u connections await their HELLO: new ones wait in the backlog",
                   HD_MAX_PENDING);
        said = !open;
        if (poll(pfd, nls + 1, -1) < 0) {
            if (errno != EINTR)
                hd_log(HD_ERROR, "poll: %s", strerror(errno));
            continue;
        }
        if (pfd[0].revents & POLLIN) {
            while (read(wake[0], buf, sizeof(buf)) > 0) {
            }
            reap(&clients, &nthreads);
        }
        for (size_t i = 0; i < nls && !stopping; i++)
            if (pfd[i + 1].revents & POLLIN)
                accept_all(d, &clients, &nthreads, &ls[i], &next_id);
    }
    hd_log(HD_INFO, "stopping: %u client(s) to close", nthreads);
    for (size_t i = 0; i < nls; i++)
        hd_listener_close(&ls[i]); /* the unix socket files go now */
    stop_clients(&clients, &nthreads);
}

static int setup_signals(void)
{
    struct sigaction sa = {.sa_handler = on_signal};
    if (pipe2(wake, O_CLOEXEC | O_NONBLOCK) < 0)
        return -errno;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    return 0;
}

int main(int argc, char **argv)
{
    static struct options o;
    static struct hd_listener ls[MAX_LISTENERS];
    struct hd_daemon d = {0};
    char err[512];
    char *secret = NULL;
    int rc = parse_args(argc, argv, &o);

    if (rc)
        return rc < 0 ? 0 : rc;
    d.memory_limit = o.memory_limit;
    d.max_clients = o.max_clients;
    d.rules = o.rules;
    d.nrules = o.nrules;
    if (o.secret_file && hd_secret_load(o.secret_file, &secret, err, sizeof(err)) < 0) {
        hd_log(HD_ERROR, "--secret-file %s", err);
        return 2;
    }
    d.secret_hex = secret;
    d.wake_fd = -1;
    if (setup_signals() < 0) {
        hd_log(HD_ERROR, "cannot set up signals: %s", strerror(errno));
        rc = 1;
    }
    d.wake_fd = wake[1];
    if (!rc)
        rc = open_device(&o, &d);
    if (!rc)
        rc = open_listeners(&o, &d, ls);
    if (!rc) {
        hd_log(HD_INFO, "vgpu-hostd %s serving %d device(s) (%s backend)%s", HOSTD_VERSION, d.ndevs,
               d.dev->name, o.memory_limit ? ", with a per-client memory limit" : "");
        serve(&d, ls, o.nlisten);
        hd_log(HD_INFO, "stopped");
    }
    for (size_t i = 0; i < o.nlisten; i++)
        hd_listener_close(&ls[i]);
    free((void *)d.devs);
    free(secret);
    return rc;
}
