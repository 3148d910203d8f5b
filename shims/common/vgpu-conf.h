/* vgpu-conf: the configuration keys of DESIGN §7, their validation and the line syntax
 * of vgpu.conf, shared by the shims and vgpu-patch so both read one language.
 * Allocation-free and silent: the shims run it inside other programs. */
#ifndef VGPU_CONF_H
#define VGPU_CONF_H

#include <stdbool.h>
#include <stddef.h>

enum vgpu_conf_key {
    VGPU_CONF_BACKEND,
    VGPU_CONF_NATIVE_CUDA,
    VGPU_CONF_NATIVE_NVML,
    VGPU_CONF_MEMORY_LIMIT,
    VGPU_CONF_LOG,
    VGPU_CONF_LOG_FILE,
    VGPU_CONF_SHIM_DIR,
    VGPU_CONF_ENDPOINT,
    VGPU_CONF_CONNECT_TIMEOUT,
    VGPU_CONF_SECRET_FILE,
    VGPU_CONF_NKEYS,
};

#define VGPU_CONF_PATH "/etc/vgpu/vgpu.conf"
/* The defaults of backend, endpoint (the host's vsock CID and vgpu-hostd's port that
 * docs/protocol.md names) and connect_timeout (milliseconds). */
#define VGPU_CONF_DEFAULT_BACKEND         "remote"
#define VGPU_CONF_DEFAULT_ENDPOINT        "vsock:2:7735"
#define VGPU_CONF_DEFAULT_CONNECT_TIMEOUT 2000u
#define VGPU_CONF_MAX_CONNECT_TIMEOUT     60000u
/* Longest environment name of a key ("VGPU_MEMORY_LIMIT"), with its NUL. */
#define VGPU_CONF_ENV_MAX 32

/* The key's name in vgpu.conf ("memory_limit"). */
const char *vgpu_conf_key_name(enum vgpu_conf_key k);
/* Writes the key's environment name ("VGPU_MEMORY_LIMIT") to buf. */
void vgpu_conf_key_env(enum vgpu_conf_key k, char buf[VGPU_CONF_ENV_MAX]);
/* The key called name, or -1. */
int vgpu_conf_find_key(const char *name);

/* Checks a value for key k. Returns NULL when it is good, else a static phrase that
 * completes "bad value 'v' for k (...)": "expected native, remote or none",
 * "it contains a control character", ... */
const char *vgpu_conf_check(enum vgpu_conf_key k, const char *v);

/* Parses a memory size: digits with an optional unit K, M, G, T (or KiB, MiB, GiB,
 * TiB; all binary), or "none" (no limit: *ret = 0). Returns 0, or -1 when v is not a
 * size or does not fit in 64 bits. */
int vgpu_conf_parse_size(const char *v, unsigned long long *ret);

/* Parses a timeout in seconds, decimals allowed ("2", "0.5"), more than 0 and at most
 * 60, into milliseconds (rounded up). Returns 0, or -1 when v is not such a number. */
int vgpu_conf_parse_timeout(const char *v, unsigned *ret_ms);

/* Called for each line of vgpu.conf that is neither blank nor a comment. For a
 * `key = value` line, key and value are trimmed (value without surrounding double
 * quotes); for any other line key is NULL and value is the trimmed line. */
typedef void (*vgpu_conf_line_fn)(void *ctx, unsigned lineno, const char *key, const char *value);
/* Splits text (NUL-terminated, modified in place) into lines and reports them. */
void vgpu_conf_scan(char *text, vgpu_conf_line_fn fn, void *ctx);

#endif
