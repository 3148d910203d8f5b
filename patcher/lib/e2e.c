/* e2e: Ollama's compute-library log lines; `ollama serve` started, watched and stopped. */
#include "e2e.h"
#include "trust.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#define DEFAULT_TIMEOUT_MS 60000
#define DEFAULT_GRACE_MS   5000
#define SETTLE_MS          300 /* after the first decisive line, for the other devices' lines */
#define SHIM_TIMEOUT_MS    20000
#define TAIL_LINES         15
#define MAX_LINE           4096
#define NOBODY             65534
#define MAX_DEVICES        64

/* ---- the log lines ---- */

/* The value at v (bare, or quoted as Go's strconv.Quote does), unquoted; *ret_end: after it. */
static char *read_value(const char *v, const char **ret_end)
{
    if (*v != '"') {
        size_t n = strcspn(v, " \t");
        *ret_end = v + n;
        return vp_xstrndup(v, n);
    }
    char *out = vp_xmalloc(strlen(v) + 1), *o = out;
    const char *p = v + 1;
    for (; *p && *p != '"'; p++) {
        if (*p != '\\' || !p[1]) {
            *o++ = *p;
            continue;
        }
        p++;
        if (*p == 'n')
            *o++ = '\n';
        else if (*p == 't')
            *o++ = '\t';
        else if (*p == 'x' && isxdigit((unsigned char)p[1]) && isxdigit((unsigned char)p[2])) {
            char hex[3] = {p[1], p[2], '\0'};
            *o++ = (char)strtol(hex, NULL, 16);
            p += 2;
        } else
            *o++ = *p; /* \" \\ and anything else: the character itself */
    }
    *o = '\0';
    *ret_end = *p == '"' ? p + 1 : p;
    return out;
}

/* The value of key= in a line of key=value words; NULL when absent. Other words (a journal
 * prefix, log.Printf text) are skipped, a quoted stretch in them whole. */
static char *field(const char *line, const char *key)
{
    size_t klen = strlen(key);
    const char *p = line, *end;
    for (;;) {
        p += strspn(p, " \t");
        if (!*p)
            return NULL;
        size_t n = strcspn(p, " \t=\"");
        if (n > 0 && p[n] == '=') {
            char *v = read_value(p + n + 1, &end);
            if (n == klen && !strncmp(p, key, klen))
                return v;
            free(v);
            p = end;
            continue;
        }
        while (*p && *p != ' ' && *p != '\t') {
            if (*p == '"') {
                free(read_value(p, &end));
                p = end;
            } else {
                p++;
            }
        }
    }
}

enum vp_e2e_kind vp_e2e_parse_line(const char *line, struct vp_e2e_line *ret)
{
    struct vp_e2e_line l = {.text = vp_xstrdup(line)};
    _cleanup_(freep) char *msg = field(line, "msg");
    const char *said = msg ? msg : line; /* v0.1.20 wrote with log.Printf: no msg= */
    if (msg && !strcmp(msg, "inference compute")) {
        l.kind = VP_E2E_COMPUTE;
        l.library = field(line, "library");
        l.name = field(line, "name");
        l.description = field(line, "description");
        l.id = field(line, "id");
    } else if (strstr(said, "Nvidia GPU detected")) {
        l.kind = VP_E2E_GPU_DETECTED;
        l.library = vp_xstrdup("cuda");
    } else if (strstr(said, "no compatible GPUs were discovered") ||
               strstr(said, "Falling back to CPU mode")) {
        l.kind = VP_E2E_CPU_FALLBACK;
        l.library = vp_xstrdup("cpu");
    }
    *ret = l;
    return l.kind;
}

void vp_e2e_line_release(struct vp_e2e_line *l)
{
    free(l->text);
    free(l->library);
    free(l->name);
    free(l->description);
    free(l->id);
    *l = (struct vp_e2e_line){0};
}

const char *vp_e2e_line_device(const struct vp_e2e_line *l)
{
    if (l->description && l->description[0])
        return l->description;
    return l->name && l->name[0] ? l->name : NULL;
}

bool vp_e2e_line_is_cuda(const struct vp_e2e_line *l)
{
    return l->library && (!strcmp(l->library, "cuda") || !strcmp(l->library, "CUDA"));
}

static char *joined(const struct vp_strv *sv)
{
    char *out = vp_xstrdup("");
    for (size_t i = 0; i < sv->n; i++) {
        char *next = vp_xasprintf("%s%s\"%s\"", out, i ? ", " : "", sv->v[i]);
        free(out);
        out = next;
    }
    return out;
}

/* Why a compute line that is not a pass fails. */
static char *compute_failure(const struct vp_e2e_line *l, const struct vp_strv *devices)
{
    const char *dev = vp_e2e_line_device(l);
    if (!l->library)
        return vp_xstrdup("the inference compute line names no library");
    if (!strcmp(l->library, "cpu"))
        return vp_xstrdup("library=cpu: Ollama found no CUDA device and runs on the CPU");
    if (!strcasecmp(l->library, "vulkan"))
        return vp_xasprintf("library=%s: the GPU%s%s%s is reached through Vulkan, bypassing CUDA "
                            "and the shims",
                            l->library, dev ? " \"" : "", dev ? dev : "", dev ? "\"" : "");
    if (!vp_e2e_line_is_cuda(l))
        return vp_xasprintf("library=%s is not CUDA", l->library);
    if (!dev)
        return vp_xasprintf("library=%s but the line names no device", l->library);
    if (!devices->n)
        return vp_xasprintf("library=%s, device \"%s\", but the shim reports no device: the "
                            "driver that answered is not the shim",
                            l->library, dev);
    _cleanup_(freep) char *list = joined(devices);
    return vp_xasprintf("library=%s, device \"%s\", which is not a device the shim reports (%s): "
                        "another driver answered",
                        l->library, dev, list);
}

bool vp_e2e_judge(const struct vp_e2e_line *lines, size_t n, const struct vp_strv *shim_devices,
                  size_t *ret_line, char **ret_why)
{
    size_t first = SIZE_MAX, detected = SIZE_MAX;
    bool compute = false, fallback = false;
    char *why = NULL;
    for (size_t i = 0; i < n; i++) {
        const struct vp_e2e_line *l = &lines[i];
        if (l->kind == VP_E2E_COMPUTE) {
            compute = true;
            const char *dev = vp_e2e_line_device(l);
            if (vp_e2e_line_is_cuda(l) && dev && vp_strv_contains(shim_devices, dev)) {
                free(why);
                *ret_line = i;
                *ret_why = vp_xasprintf("library=%s, device \"%s\", which the shim reports",
                                        l->library, dev);
                return true;
            }
            if (!why) {
                why = compute_failure(l, shim_devices);
                first = i;
            }
        } else if (l->kind == VP_E2E_GPU_DETECTED && detected == SIZE_MAX) {
            detected = i;
        } else if (l->kind == VP_E2E_CPU_FALLBACK) {
            fallback = true;
            if (!why) {
                why = vp_xasprintf("Ollama falls back to the CPU");
                first = i;
            }
        }
    }
    if (!compute && !fallback && detected != SIZE_MAX) {
        *ret_line = detected;
        if (shim_devices->n) { /* v0.1.x: the line names no device to compare */
            _cleanup_(freep) char *list = joined(shim_devices);
            *ret_why = vp_xasprintf("Ollama detected an NVIDIA GPU (this release logs no device "
                                    "name) and the shim reports %s",
                                    list);
            return true;
        }
        *ret_why = vp_xstrdup("Ollama detected an NVIDIA GPU, but the shim reports no device: "
                              "the driver that answered is not the shim");
        return false;
    }
    *ret_line = first;
    *ret_why = why ? why : vp_xstrdup("no line says which compute library Ollama chose");
    return false;
}

/* ---- setting up: port, private dir, environment, trust ---- */

/* A loopback port nobody listens on now (bound to port 0, then released). */
static int free_port(int *ret)
{
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0)
        return vp_error_errno(-errno, "socket");
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    int r = 0;
    if (bind(s, (struct sockaddr *)&a, sizeof(a)) < 0 ||
        getsockname(s, (struct sockaddr *)&a, &len) < 0)
        r = vp_error_errno(-errno, "cannot find a free loopback port");
    close(s);
    if (r == 0)
        *ret = ntohs(a.sin_port);
    return r;
}

/* Removes name under at and everything below it, never following a link. */
static void rm_at(int at, const char *name)
{
    int fd = openat(at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        unlinkat(at, name, 0);
        return;
    }
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return;
    }
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            rm_at(dirfd(d), e->d_name);
    closedir(d);
    unlinkat(at, name, AT_REMOVEDIR);
}

/* <tmp>/vgpu-e2e-XXXXXX (0700) with home, models and tmp (0700), owned by nobody with drop. */
static int private_dir(bool drop, char **ret)
{
    const char *base = secure_getenv("TMPDIR");
    char *dir = vp_xasprintf("%s/vgpu-e2e-XXXXXX", base && base[0] == '/' ? base : "/tmp");
    if (!mkdtemp(dir)) {
        int e = vp_error_errno(-errno, "cannot create a private directory in %s",
                               base && base[0] == '/' ? base : "/tmp");
        free(dir);
        return e;
    }
    static const char *const sub[] = {"home", "models", "tmp"};
    int r = drop && chown(dir, NOBODY, NOBODY) < 0 ? -errno : 0;
    for (size_t i = 0; r == 0 && i < VP_ARRAY_SIZE(sub); i++) {
        _cleanup_(freep) char *p = vp_path_join(dir, sub[i]);
        if (mkdir(p, 0700) < 0 || (drop && chown(p, NOBODY, NOBODY) < 0))
            r = -errno;
    }
    if (r < 0) {
        r = vp_error_errno(r, "cannot prepare the private directory %s", dir);
        rm_at(AT_FDCWD, dir);
        free(dir);
        return r;
    }
    *ret = dir;
    return 0;
}

static bool env_key_ok(const char *s, size_t n)
{
    if (n == 0 || isdigit((unsigned char)s[0]))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '_')
            return false;
    return true;
}

/* Adds the KEY=VALUE lines of an environment file as systemd's EnvironmentFile= reads the
 * ones vgpu-patch writes (comments, blank lines, one pair of surrounding quotes); a variable
 * the check sets itself is kept as the check sets it. */
static void add_env_file(struct vp_e2e *r, const char *path, struct vp_strv *env)
{
    char *text = NULL;
    size_t len = 0;
    if (vp_read_file(path, 1 << 20, &text, &len) < 0) {
        vp_strv_push_take(&r->notes, vp_xasprintf("%s cannot be read (%s): serve gets none of "
                                                  "the audit mechanism's variables",
                                                  path, vp_last_error()));
        return;
    }
    struct vp_strv lines = {0};
    vp_strv_split(&lines, text, "\n");
    for (size_t i = 0; i < lines.n; i++) {
        char *l = lines.v[i] + strspn(lines.v[i], " \t");
        char *eq = strchr(l, '=');
        if (!*l || *l == '#' || *l == ';' || !eq || !env_key_ok(l, (size_t)(eq - l)))
            continue;
        _cleanup_(freep) char *key = vp_xstrndup(l, (size_t)(eq - l));
        _cleanup_(freep) char *val = vp_xstrdup(eq + 1);
        size_t vn = strlen(val);
        if (vn >= 2 && (val[0] == '"' || val[0] == '\'') && val[vn - 1] == val[0]) {
            memmove(val, val + 1, vn - 2);
            val[vn - 2] = '\0';
        }
        bool ours = false;
        for (size_t k = 0; k < env->n && !ours; k++)
            ours = vp_startswith(env->v[k], key) && env->v[k][strlen(key)] == '=';
        if (ours) {
            vp_strv_push_take(&r->notes, vp_xasprintf("%s from %s is not used: the check sets "
                                                      "it",
                                                      key, path));
            continue;
        }
        vp_strv_push_take(env, vp_xasprintf("%s=%s", key, val));
        vp_strv_push(&r->env_keys, key);
    }
    if (!r->env_keys.n)
        vp_strv_push_take(&r->notes, vp_xasprintf("%s holds no variable: serve runs without "
                                                  "the audit mechanism's",
                                                  path));
    vp_strv_release(&lines);
    free(text);
}

/* The first thing serve may run code from — the binary, everything under lib/ollama (runners,
 * backends and the libraries they load) — that is not as trusted as the shims must be
 * (trust.h); NULL when all are. */
static char *untrusted_below(const char *dir, int depth)
{
    DIR *d = opendir(dir);
    if (!d)
        return NULL;
    char *why = NULL;
    struct dirent *e;
    while (!why && (e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        _cleanup_(freep) char *p = vp_path_join(dir, e->d_name);
        struct stat st;
        if (lstat(p, &st) < 0)
            continue;
        if (vp_trust_check(p) < 0)
            why = vp_xstrdup(vp_last_error());
        else if (S_ISDIR(st.st_mode) && depth < 16)
            why = untrusted_below(p, depth + 1);
    }
    closedir(d);
    return why;
}

static char *untrusted(const char *binary, const char *libdir)
{
    if (vp_trust_check(binary) < 0)
        return vp_xstrdup(vp_last_error());
    if (access(libdir, F_OK) == 0 && vp_trust_check(libdir) < 0)
        return vp_xstrdup(vp_last_error());
    return untrusted_below(libdir, 0);
}

/* ---- child processes ---- */

/* In a child: the user to run as (nobody with drop) and default signals. Returns 0 or -errno. */
static int child_setup(bool drop)
{
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    static const int sigs[] = {SIGPIPE, SIGTERM, SIGINT, SIGHUP, SIGCHLD};
    for (size_t i = 0; i < VP_ARRAY_SIZE(sigs); i++)
        signal(sigs[i], SIG_DFL);
    if (drop && (setgroups(0, NULL) < 0 || setgid(NOBODY) < 0 || setuid(NOBODY) < 0))
        return -errno;
    return 0;
}

/* Reads everything from fd until EOF or the deadline; kills pid when it passes. */
static char *read_all(int fd, pid_t pid, int timeout_ms, bool *ret_timed_out)
{
    char *out = vp_xstrdup("");
    size_t len = 0;
    long deadline = (long)vp_now_ms() + timeout_ms;
    *ret_timed_out = false;
    for (;;) {
        long left = deadline - (long)vp_now_ms();
        if (left <= 0) {
            kill(pid, SIGKILL);
            *ret_timed_out = true;
            break;
        }
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, (int)left) <= 0)
            continue;
        char buf[4096];
        ssize_t k = read(fd, buf, sizeof(buf));
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break;
        if (len < (1u << 16)) {
            out = vp_xrealloc(out, len + (size_t)k + 1);
            memcpy(out + len, buf, (size_t)k);
            out[len += (size_t)k] = '\0';
        }
    }
    return out;
}

/* What the CUDA shim itself answers, in a child with serve's environment and user: cuInit,
 * then cuDeviceGetName of every device. Lines "device NAME" or "error WHY" on fd. */
static _Noreturn void shim_child(const char *shim, char *const envp[], bool drop, int fd)
{
    int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
    dup2(devnull, STDIN_FILENO);
    dup2(fd, STDOUT_FILENO);
    dup2(fd, STDERR_FILENO); /* what the shim says about its configuration */
    if (child_setup(drop) < 0) {
        dprintf(fd, "\nerror cannot drop to nobody: %s\n", strerror(errno));
        _exit(126);
    }
    clearenv();
    for (size_t i = 0; envp[i]; i++)
        putenv(envp[i]);
    void *h = dlopen(shim, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        dprintf(fd, "\nerror %s\n", dlerror());
        _exit(1);
    }
    union {
        void *p;
        int (*fn)(unsigned);
    } init = {.p = dlsym(h, "cuInit")};
    union {
        void *p;
        int (*fn)(int *);
    } count = {.p = dlsym(h, "cuDeviceGetCount")};
    union {
        void *p;
        int (*fn)(int *, int);
    } get = {.p = dlsym(h, "cuDeviceGet")};
    union {
        void *p;
        int (*fn)(char *, int, int);
    } name = {.p = dlsym(h, "cuDeviceGetName")};
    int rc, n = 0;
    if (!init.p || !count.p || !get.p || !name.p) {
        dprintf(fd, "\nerror %s lacks the device calls\n", shim);
        _exit(1);
    }
    if ((rc = init.fn(0)) != 0 || (rc = count.fn(&n)) != 0) {
        dprintf(fd, "\nerror the shim's cuInit/cuDeviceGetCount returned %d\n", rc);
        _exit(1);
    }
    for (int i = 0; i < n && i < MAX_DEVICES; i++) {
        char buf[256] = "";
        int dev = 0;
        if (get.fn(&dev, i) == 0 && name.fn(buf, (int)sizeof(buf), dev) == 0)
            dprintf(fd, "\ndevice %s\n", buf);
    }
    if (n == 0)
        dprintf(fd, "\nerror the shim reports 0 devices\n");
    _exit(0);
}

static void shim_devices(struct vp_e2e *r, const char *shim, char *const envp[], bool drop)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0) {
        r->shim_error = vp_xasprintf("pipe: %s", strerror(errno));
        return;
    }
    pid_t pid = fork();
    if (pid == 0)
        shim_child(shim, envp, drop, p[1]);
    close(p[1]);
    if (pid < 0) {
        r->shim_error = vp_xasprintf("fork: %s", strerror(errno));
        close(p[0]);
        return;
    }
    bool timed_out;
    _cleanup_(freep) char *out = read_all(p[0], pid, SHIM_TIMEOUT_MS, &timed_out);
    close(p[0]);
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
        ;
    struct vp_strv lines = {0};
    vp_strv_split(&lines, out, "\n");
    const char *other = NULL;
    for (size_t i = 0; i < lines.n; i++) {
        if (vp_startswith(lines.v[i], "device "))
            vp_strv_push(&r->shim_devices, lines.v[i] + 7);
        else if (vp_startswith(lines.v[i], "error ") && !r->shim_error)
            r->shim_error = vp_xstrdup(lines.v[i] + 6);
        else
            other = lines.v[i];
    }
    if (!r->shim_devices.n && !r->shim_error)
        r->shim_error = vp_xstrdup(timed_out ? "the shim did not answer in time"
                                   : other   ? other
                                             : "the shim reports no device");
    else if (r->shim_error && other) {
        char *next = vp_xasprintf("%s (%s)", r->shim_error, other);
        free(r->shim_error);
        r->shim_error = next;
    }
    vp_strv_release(&lines);
}

/* serve, in its own process group, its stdout and stderr on fd. */
static pid_t start_serve(const char *binary, char *const envp[], const char *home, bool drop,
                         int fd)
{
    pid_t pid = fork();
    if (pid != 0) {
        if (pid > 0)
            setpgid(pid, pid); /* also done by the child: whichever comes first */
        return pid;
    }
    setpgid(0, 0);
    int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
    dup2(devnull, STDIN_FILENO);
    dup2(fd, STDOUT_FILENO);
    dup2(fd, STDERR_FILENO);
    if (child_setup(drop) < 0) {
        dprintf(STDERR_FILENO, "cannot drop to nobody: %s\n", strerror(errno));
        _exit(126);
    }
    if (chdir(home) < 0 && chdir("/") < 0)
        _exit(126);
    char *const argv[] = {(char *)binary, "serve", NULL};
    execve(binary, argv, envp);
    dprintf(STDERR_FILENO, "cannot run %s: %s\n", binary, strerror(errno));
    _exit(127);
}

/* What comes out of serve, line by line. */
struct watch {
    struct vp_e2e *r;
    char line[MAX_LINE + 1];
    size_t len;
    bool collect, decisive;
    long settle_at;
};

static void take_line(struct watch *w)
{
    w->line[w->len] = '\0';
    w->len = 0;
    if (w->line[0] && w->line[strlen(w->line) - 1] == '\r')
        w->line[strlen(w->line) - 1] = '\0';
    struct vp_strv *t = &w->r->tail;
    if (t->n == TAIL_LINES) {
        free(t->v[0]);
        memmove(t->v, t->v + 1, (t->n - 1) * sizeof(*t->v));
        t->v[--t->n] = NULL;
    }
    vp_strv_push(t, w->line);
    struct vp_e2e_line l;
    if (!w->collect || vp_e2e_parse_line(w->line, &l) == VP_E2E_OTHER) {
        if (w->collect)
            vp_e2e_line_release(&l);
        return;
    }
    struct vp_e2e *r = w->r;
    r->lines = vp_xrealloc(r->lines, (r->n_lines + 1) * sizeof(*r->lines));
    r->lines[r->n_lines++] = l;
    if (!w->decisive)
        w->settle_at = (long)vp_now_ms() + SETTLE_MS;
    w->decisive = true;
}

static void take_bytes(struct watch *w, const char *data, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (data[i] == '\n')
            take_line(w);
        else if (w->len < MAX_LINE) /* the rest of an overlong line is dropped */
            w->line[w->len++] = data[i];
    }
}

/* Reads what comes within wait_ms: 1 when something was read, 0 when nothing came, -1 at EOF. */
static int pump(struct watch *w, int fd, int wait_ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, wait_ms) <= 0)
        return 0;
    char buf[8192];
    ssize_t k = read(fd, buf, sizeof(buf));
    if (k < 0 && (errno == EINTR || errno == EAGAIN))
        return 0;
    if (k <= 0)
        return -1;
    take_bytes(w, buf, (size_t)k);
    return 1;
}

static bool leader_exited(pid_t pid)
{
    siginfo_t si = {0};
    return waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid == pid;
}

/* Until a decisive line has settled, serve exits, or the timeout. */
static void watch_serve(struct watch *w, pid_t pid, int fd, int timeout_ms)
{
    long start = (long)vp_now_ms(), deadline = start + timeout_ms;
    bool open = true;
    for (;;) {
        long t = (long)vp_now_ms();
        if (w->decisive && t >= w->settle_at)
            break;
        if (t >= deadline) {
            w->r->timed_out = !w->decisive;
            break;
        }
        long until = w->decisive ? w->settle_at : deadline;
        if (open)
            open = pump(w, fd, (int)(until - t < 100 ? until - t : 100)) >= 0;
        else
            poll(NULL, 0, 20); /* its output is closed: it is about to exit */
        if (leader_exited(pid)) {
            while (open && pump(w, fd, 0) > 0)
                ; /* what it wrote last */
            w->r->exited = true;
            break;
        }
    }
    w->r->elapsed_ms = (long)vp_now_ms() - start;
}

/* SIGTERM to the group, SIGKILL to whatever is left of it after the grace period; reaps it. */
static void stop_serve(struct watch *w, pid_t pid, int fd, int grace_ms)
{
    w->collect = false;
    if (!leader_exited(pid))
        kill(-pid, SIGTERM);
    long end = (long)vp_now_ms() + grace_ms;
    bool open = true;
    while (!leader_exited(pid) && (long)vp_now_ms() < end) {
        if (open)
            open = pump(w, fd, 20) >= 0;
        else
            poll(NULL, 0, 20);
    }
    kill(-pid, SIGKILL); /* its children too, and itself after the grace period */
    while (waitpid(pid, &w->r->status, 0) < 0 && errno == EINTR)
        ;
    while (open && pump(w, fd, 0) > 0)
        ;
    if (w->len)
        take_line(w);
}

static char *status_words(int status)
{
    if (WIFEXITED(status))
        return vp_xasprintf("exit status %d", WEXITSTATUS(status));
    if (WIFSIGNALED(status))
        return vp_xasprintf("killed by signal %d", WTERMSIG(status));
    return vp_xasprintf("status %d", status);
}

/* The verdict from what was seen. */
static void conclude(struct vp_e2e *r, int timeout_ms)
{
    char *why = NULL;
    if (r->n_lines) {
        r->ok = vp_e2e_judge(r->lines, r->n_lines, &r->shim_devices, &r->chosen, &why);
        if (r->ok && r->exited) {
            _cleanup_(freep) char *st = status_words(r->status);
            char *next = vp_xasprintf("%s, but serve exited by itself (%s)", why, st);
            free(why);
            why = next;
            r->ok = false;
        }
    } else if (r->exited) {
        _cleanup_(freep) char *st = status_words(r->status);
        why = vp_xasprintf("ollama serve exited (%s) before it logged which compute library it "
                           "chose",
                           st);
    } else {
        why = vp_xasprintf("no line saying which compute library Ollama chose within %d.%d s",
                           timeout_ms / 1000, timeout_ms % 1000 / 100);
    }
    if (!r->ok && r->shim_error && !r->shim_devices.n) {
        char *next = vp_xasprintf("%s (the shim: %s)", why, r->shim_error);
        free(why);
        why = next;
    }
    r->message = why;
}

static void serve_env(const struct vp_e2e_opts *o, const char *dir, struct vp_e2e *r,
                      struct vp_strv *env)
{
    vp_strv_push(env, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    vp_strv_push(env, "LANG=C");
    vp_strv_push_take(env, vp_xasprintf("HOME=%s/home", dir));
    vp_strv_push_take(env, vp_xasprintf("OLLAMA_MODELS=%s/models", dir));
    vp_strv_push_take(env, vp_xasprintf("TMPDIR=%s/tmp", dir));
    vp_strv_push_take(env, vp_xasprintf("OLLAMA_HOST=%s", r->address));
    if (o->no_vulkan)
        vp_strv_push(env, "OLLAMA_VULKAN=0");
    if (o->env_file)
        add_env_file(r, o->env_file, env);
}

/* The check; *dir is the private directory to remove afterwards. */
static int run(const struct vp_e2e_opts *o, struct vp_e2e *r, char **dir)
{
    int timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : DEFAULT_TIMEOUT_MS;
    _cleanup_(freep) char *rel = vp_path_join(o->prefix, "bin/ollama");
    _cleanup_(freep) char *librel = vp_path_join(o->prefix, "lib/ollama");
    _cleanup_(freep) char *libdir = vp_rooted(o->root, librel);
    r->binary = vp_rooted(o->root, rel);
    struct stat st;
    if (stat(r->binary, &st) < 0 || !S_ISREG(st.st_mode) || access(r->binary, X_OK) < 0) {
        r->message = vp_xasprintf("there is no ollama binary to start at %s", r->binary);
        return 0;
    }
    /* Code from a tree another user can change never runs as root. */
    r->as_nobody = geteuid() == 0 ? untrusted(r->binary, libdir) : NULL;
    bool drop = r->as_nobody != NULL;
    if (drop)
        r->uid = NOBODY;
    struct vp_shims shims;
    if (vp_shims_open(o->shim_dir, &shims) < 0) {
        r->message = vp_xasprintf("the shim cannot be asked for its devices: %s", vp_last_error());
        return 0;
    }
    _cleanup_(freep) char *shim = vp_xstrdup(shims.cuda);
    vp_shims_release(&shims);
    int port = 0, rc;
    if ((rc = free_port(&port)) < 0 || (rc = private_dir(drop, dir)) < 0)
        return rc;
    r->address = vp_xasprintf("127.0.0.1:%d", port);
    struct vp_strv env = {0};
    serve_env(o, *dir, r, &env);
    shim_devices(r, shim, env.v, drop);
    _cleanup_(freep) char *home = vp_path_join(*dir, "home");
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0) {
        vp_strv_release(&env);
        return vp_error_errno(-errno, "pipe");
    }
    pid_t pid = start_serve(r->binary, env.v, home, drop, p[1]);
    int e = errno;
    close(p[1]);
    vp_strv_release(&env);
    if (pid < 0) {
        close(p[0]);
        return vp_error_errno(-e, "cannot start %s", r->binary);
    }
    r->started = true;
    struct watch w = {.r = r, .collect = true};
    watch_serve(&w, pid, p[0], timeout_ms);
    stop_serve(&w, pid, p[0], o->grace_ms > 0 ? o->grace_ms : DEFAULT_GRACE_MS);
    close(p[0]);
    conclude(r, timeout_ms);
    return 0;
}

int vp_e2e_run(const struct vp_e2e_opts *o, struct vp_e2e *ret)
{
    struct vp_e2e r = {.chosen = SIZE_MAX, .uid = geteuid()};
    char *dir = NULL;
    int rc = run(o, &r, &dir);
    if (rc < 0 && !r.message)
        r.message = vp_xstrdup(vp_last_error());
    if (dir)
        rm_at(AT_FDCWD, dir);
    free(dir);
    *ret = r;
    return rc;
}

void vp_e2e_release(struct vp_e2e *r)
{
    free(r->binary);
    free(r->address);
    free(r->as_nobody);
    vp_strv_release(&r->env_keys);
    for (size_t i = 0; i < r->n_lines; i++)
        vp_e2e_line_release(&r->lines[i]);
    free(r->lines);
    vp_strv_release(&r->shim_devices);
    free(r->shim_error);
    vp_strv_release(&r->tail);
    vp_strv_release(&r->notes);
    free(r->message);
    *r = (struct vp_e2e){0};
}
