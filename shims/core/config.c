/* config: load vgpu.conf and the environment once, check every value. */
#include "config.h"
#include "shim.h"
#include "vgpu-conf.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CONFIG_MAX_BYTES (64 * 1024)

const char *vgpu_backend_name(enum vgpu_backend_kind k)
{
    static const char *const names[] = {"none", "native", "remote"};
    return names[k];
}

static void problem(struct vgpu_config *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Appends one problem; problems are joined with "; " into one message. */
static void problem(struct vgpu_config *c, const char *fmt, ...)
{
    size_t n = strlen(c->problem);
    if (n && n + 2 < sizeof(c->problem)) {
        memcpy(c->problem + n, "; ", 3);
        n += 2;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->problem + n, sizeof(c->problem) - n, fmt, ap);
    va_end(ap);
    c->ok = false;
}

static void set(struct vgpu_config *c, enum vgpu_conf_key k, const char *v, const char *where)
{
    const char *bad = vgpu_conf_check(k, v);
    if (bad) {
        bool printable = !strstr(bad, "control"); /* never echo control characters */
        problem(c, "%s: bad value%s%.64s%s for %s (%s)", where, printable ? " '" : "",
                printable ? v : "", printable ? "'" : "", vgpu_conf_key_name(k), bad);
        return;
    }
    switch (k) {
    case VGPU_CONF_BACKEND:
        c->backend = !strcmp(v, "native")   ? VGPU_BACKEND_NATIVE
                     : !strcmp(v, "remote") ? VGPU_BACKEND_REMOTE
                                            : VGPU_BACKEND_NONE;
        break;
    case VGPU_CONF_NATIVE_CUDA:
        vgpu_strlcpy(c->native_cuda, v, sizeof(c->native_cuda));
        break;
    case VGPU_CONF_NATIVE_NVML:
        vgpu_strlcpy(c->native_nvml, v, sizeof(c->native_nvml));
        break;
    case VGPU_CONF_MEMORY_LIMIT:
        vgpu_conf_parse_size(v, &c->memory_limit);
        break;
    case VGPU_CONF_LOG:
        c->log = !strcmp(v, "error")  ? VGPU_LOG_ERROR
                 : !strcmp(v, "warn") ? VGPU_LOG_WARN
                 : !strcmp(v, "info") ? VGPU_LOG_INFO
                                      : VGPU_LOG_DEBUG;
        break;
    case VGPU_CONF_LOG_FILE:
        vgpu_strlcpy(c->log_file, v, sizeof(c->log_file));
        break;
    case VGPU_CONF_ENDPOINT:
        vgpu_strlcpy(c->endpoint, v, sizeof(c->endpoint));
        break;
    case VGPU_CONF_CONNECT_TIMEOUT:
        vgpu_conf_parse_timeout(v, &c->connect_timeout_ms);
        break;
    case VGPU_CONF_SECRET_FILE:
        vgpu_strlcpy(c->secret_file, v, sizeof(c->secret_file));
        break;
    case VGPU_CONF_SHIM_DIR: /* vgpu-patch's key; the shims do not need it */
    case VGPU_CONF_NKEYS:
        break;
    }
}

static void file_line(void *ctx, unsigned lineno, const char *key, const char *value)
{
    struct vgpu_config *c = ctx;
    char where[PATH_MAX + 16];
    snprintf(where, sizeof(where), "%s:%u", c->file, lineno);
    if (!key) {
        problem(c, "%s: expected 'key = value'", where);
        return;
    }
    int k = vgpu_conf_find_key(key);
    if (k < 0) {
        problem(c, "%s: unknown key '%s'", where, key);
        return;
    }
    set(c, (enum vgpu_conf_key)k, value, where);
}

/* Reads the file into a heap buffer; absent is fine. */
static void load_file(struct vgpu_config *c, const char *path)
{
    /* O_NONBLOCK and the type check: a FIFO named here must not hang the program. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        if (errno != ENOENT)
            problem(c, "cannot read %s: %s", path, strerror(errno));
        return;
    }
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        problem(c, "%s is not a regular file", path);
        close(fd);
        return;
    }
    vgpu_strlcpy(c->file, path, sizeof(c->file));
    char *text = malloc(CONFIG_MAX_BYTES + 1);
    size_t len = 0;
    ssize_t r = 0;
    while (text && len < CONFIG_MAX_BYTES &&
           ((r = read(fd, text + len, CONFIG_MAX_BYTES - len)) > 0 || (r < 0 && errno == EINTR)))
        len += r > 0 ? (size_t)r : 0;
    char extra;
    if (!text)
        problem(c, "cannot read %s: out of memory", path);
    else if (r < 0)
        problem(c, "cannot read %s: %s", path, strerror(errno));
    else if (len == CONFIG_MAX_BYTES && read(fd, &extra, 1) > 0)
        problem(c, "%s is larger than %d bytes", path, CONFIG_MAX_BYTES);
    else if (memchr(text, '\0', len))
        problem(c, "%s is not a text file", path);
    else {
        text[len] = '\0';
        vgpu_conf_scan(text, file_line, c);
    }
    free(text);
    close(fd);
}

void vgpu_config_load(struct vgpu_config *c)
{
    *c = (struct vgpu_config){.ok = true,
                              .backend = VGPU_BACKEND_REMOTE,
                              .connect_timeout_ms = VGPU_CONF_DEFAULT_CONNECT_TIMEOUT,
                              .log = VGPU_LOG_WARN};
    vgpu_strlcpy(c->endpoint, VGPU_CONF_DEFAULT_ENDPOINT, sizeof(c->endpoint));
    const char *path = secure_getenv("VGPU_CONFIG");
    if (path && *path && path[0] != '/')
        problem(c, "environment VGPU_CONFIG: bad value (expected an absolute path)");
    else
        load_file(c, path && *path ? path : VGPU_CONF_PATH);
    for (int k = 0; k < VGPU_CONF_NKEYS; k++) {
        char name[VGPU_CONF_ENV_MAX];
        vgpu_conf_key_env((enum vgpu_conf_key)k, name);
        const char *v = secure_getenv(name);
        if (v && *v) {
            char where[VGPU_CONF_ENV_MAX + 16];
            snprintf(where, sizeof(where), "environment %s", name);
            set(c, (enum vgpu_conf_key)k, v, where);
        }
    }
}

static struct vgpu_config config;
static pthread_once_t config_once = PTHREAD_ONCE_INIT;

static void config_init(void)
{
    vgpu_config_load(&config);
    int r = vgpu_log_setup(config.log, config.log_file[0] ? config.log_file : NULL);
    if (r < 0)
        vgpu_log(VGPU_LOG_WARN, "cannot open the log file %s: %s; logging to stderr",
                 config.log_file, strerror(-r));
    if (!config.ok)
        vgpu_log_stderr("bad configuration, the API reports errors: %s", config.problem);
    else
        vgpu_log(VGPU_LOG_DEBUG, "configuration: backend=%s file=%s memory_limit=%llu",
                 vgpu_backend_name(config.backend), config.file[0] ? config.file : "(none)",
                 config.memory_limit);
}

const struct vgpu_config *vgpu_config(void)
{
    pthread_once(&config_once, config_init);
    return &config;
}
