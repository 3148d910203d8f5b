/* vgpu-conf: configuration keys, value checks and the vgpu.conf line syntax. */
#include "vgpu-conf.h"

#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static bool is_abs_path(const char *v)
{
    return v[0] == '/';
}

static bool is_backend(const char *v)
{
    return !strcmp(v, "native") || !strcmp(v, "remote") || !strcmp(v, "none");
}

static bool is_log_level(const char *v)
{
    return !strcmp(v, "error") || !strcmp(v, "warn") || !strcmp(v, "info") || !strcmp(v, "debug");
}

static bool is_size(const char *v)
{
    unsigned long long n;
    return vgpu_conf_parse_size(v, &n) == 0;
}

/* A decimal number in [min, max], the whole string. */
static bool is_number(const char *p, unsigned long long min, unsigned long long max)
{
    char *end;
    errno = 0;
    unsigned long long n = strtoull(p, &end, 10);
    return *p >= '0' && *p <= '9' && !errno && !*end && n >= min && n <= max;
}

static bool starts(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* An endpoint a client can connect to, in the syntax of shims/remote/proto.c's
 * vr_endpoint_parse, which vgpu-patch does not link (tests/unit/test-proto.c checks that
 * the parser takes all this accepts): a unix path that fits sun_path; tcp:HOST:PORT or
 * tcp:[ADDRESS]:PORT with a host and a 16-bit port; vsock:CID:PORT with a 32-bit CID and
 * port (the listener-only forms — no host, CID "any", port 0 — are refused). */
static bool is_endpoint(const char *v)
{
    if (starts(v, "unix:"))
        return v[5] == '/' && strlen(v + 5) < 108;
    if (starts(v, "vsock:")) {
        const char *p = v + 6, *colon = strchr(p, ':');
        if (!colon || (size_t)(colon - p) >= 16)
            return false;
        char cid[16];
        memcpy(cid, p, (size_t)(colon - p));
        cid[colon - p] = '\0';
        return is_number(cid, 0, UINT32_MAX - 1) && is_number(colon + 1, 1, UINT32_MAX - 1);
    }
    if (starts(v, "tcp:")) {
        const char *p = v + 4, *colon;
        size_t hl;
        if (*p == '[') {
            const char *close = strchr(p, ']');
            if (!close || close[1] != ':')
                return false;
            p++;
            hl = (size_t)(close - p);
            colon = close + 1;
        } else {
            colon = strrchr(p, ':');
            if (!colon)
                return false;
            hl = (size_t)(colon - p);
            if (memchr(p, ':', hl))
                return false;
        }
        return hl > 0 && hl < 256 && !memchr(p, '[', hl) && !memchr(p, ']', hl) &&
               is_number(colon + 1, 1, 65535);
    }
    return false;
}

static bool is_timeout(const char *v)
{
    unsigned ms;
    return vgpu_conf_parse_timeout(v, &ms) == 0;
}

static const struct {
    const char *name;
    bool (*valid)(const char *v);
    const char *expect;
} keys[VGPU_CONF_NKEYS] = {
    [VGPU_CONF_BACKEND] = {"backend", is_backend, "expected native, remote or none"},
    [VGPU_CONF_NATIVE_CUDA] = {"native_cuda", is_abs_path, "expected an absolute path"},
    [VGPU_CONF_NATIVE_NVML] = {"native_nvml", is_abs_path, "expected an absolute path"},
    [VGPU_CONF_MEMORY_LIMIT] = {"memory_limit", is_size,
                                "expected a size such as 8G, 8GiB, or none"},
    [VGPU_CONF_LOG] = {"log", is_log_level, "expected error, warn, info or debug"},
    [VGPU_CONF_LOG_FILE] = {"log_file", is_abs_path, "expected an absolute path"},
    [VGPU_CONF_SHIM_DIR] = {"shim_dir", is_abs_path, "expected an absolute path"},
    [VGPU_CONF_ENDPOINT] = {"endpoint", is_endpoint,
                            "expected vsock:CID:PORT, unix:/PATH or tcp:HOST:PORT"},
    [VGPU_CONF_CONNECT_TIMEOUT] = {"connect_timeout", is_timeout,
                                   "expected seconds such as 2 or 0.5, at most 60"},
    [VGPU_CONF_SECRET_FILE] = {"secret_file", is_abs_path, "expected an absolute path"},
};

const char *vgpu_conf_key_name(enum vgpu_conf_key k)
{
    return keys[k].name;
}

void vgpu_conf_key_env(enum vgpu_conf_key k, char buf[VGPU_CONF_ENV_MAX])
{
    size_t n = 0;
    for (const char *p = "VGPU_"; *p; p++)
        buf[n++] = *p;
    for (const char *p = keys[k].name; *p && n + 1 < VGPU_CONF_ENV_MAX; p++)
        buf[n++] = (char)toupper((unsigned char)*p);
    buf[n] = '\0';
}

int vgpu_conf_find_key(const char *name)
{
    for (int k = 0; k < VGPU_CONF_NKEYS; k++)
        if (!strcmp(keys[k].name, name))
            return k;
    return -1;
}

static bool has_control(const char *v)
{
    for (; *v; v++)
        if ((unsigned char)*v < 0x20 || *v == 0x7f)
            return true;
    return false;
}

const char *vgpu_conf_check(enum vgpu_conf_key k, const char *v)
{
    if (has_control(v))
        return "it contains a control character";
    return keys[k].valid(v) ? NULL : keys[k].expect;
}

int vgpu_conf_parse_size(const char *v, unsigned long long *ret)
{
    static const struct {
        const char *suffix;
        unsigned shift;
    } units[] = {
        {"", 0},     {"K", 10},   {"M", 20},   {"G", 30},   {"T", 40},
        {"KiB", 10}, {"MiB", 20}, {"GiB", 30}, {"TiB", 40},
    };
    if (!strcmp(v, "none")) {
        *ret = 0;
        return 0;
    }
    if (*v < '0' || *v > '9')
        return -1; /* strtoull would take "-8G" or " 8G" */
    char *end;
    errno = 0;
    unsigned long long n = strtoull(v, &end, 10);
    if (errno || !n)
        return -1;
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (strcmp(end, units[i].suffix))
            continue;
        if (n > (UINT64_MAX >> units[i].shift))
            return -1;
        *ret = n << units[i].shift;
        return 0;
    }
    return -1;
}

int vgpu_conf_parse_timeout(const char *v, unsigned *ret_ms)
{
    /* By hand: strtod follows the locale and takes "inf", "1e3" and hex. */
    unsigned long long ms = 0;
    const char *p = v;
    for (; *p >= '0' && *p <= '9'; p++) {
        ms = ms * 10 + (unsigned)(*p - '0') * 1000;
        if (ms > VGPU_CONF_MAX_CONNECT_TIMEOUT)
            return -1;
    }
    if (p == v)
        return -1;
    if (*p == '.') {
        const char *frac = ++p;
        bool rest = false; /* digits past milliseconds round up */
        for (unsigned scale = 100; *p >= '0' && *p <= '9'; p++, scale /= 10) {
            ms += (unsigned)(*p - '0') * scale;
            rest |= !scale && *p != '0';
        }
        if (p == frac)
            return -1;
        ms += rest;
    }
    if (*p || !ms || ms > VGPU_CONF_MAX_CONNECT_TIMEOUT)
        return -1;
    *ret_ms = (unsigned)ms;
    return 0;
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    return s;
}

void vgpu_conf_scan(char *text, vgpu_conf_line_fn fn, void *ctx)
{
    unsigned lineno = 0;
    for (char *line = text, *next; line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        lineno++;
        char *hash = strchr(line, '#');
        if (hash)
            *hash = '\0';
        char *s = trim(line);
        if (!*s)
            continue;
        char *eq = strchr(s, '=');
        if (!eq) {
            fn(ctx, lineno, NULL, s);
            continue;
        }
        *eq = '\0';
        char *key = trim(s), *val = trim(eq + 1);
        size_t n = strlen(val);
        if (n >= 2 && val[0] == '"' && val[n - 1] == '"') {
            val[n - 1] = '\0';
            val++;
        }
        fn(ctx, lineno, key, val);
    }
}
