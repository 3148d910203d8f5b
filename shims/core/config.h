/* config: the shim's view of vgpu.conf and the VGPU_* environment (DESIGN §7), read
 * once, lazily, at the first API call. The environment beats the file, which beats
 * the default; VGPU_CONFIG names another file. Bad values are reported once on
 * stderr and make the configuration unusable: the API then returns an error. */
#ifndef VGPU_CONFIG_H
#define VGPU_CONFIG_H

#include <limits.h>
#include <stdbool.h>

#include "log.h"

enum vgpu_backend_kind {
    VGPU_BACKEND_NONE,   /* configured off */
    VGPU_BACKEND_NATIVE, /* a real driver on this machine */
    VGPU_BACKEND_REMOTE, /* vgpu-hostd (the default) */
};

struct vgpu_config {
    bool ok; /* false: the configuration is bad (the message is in problem) */
    enum vgpu_backend_kind backend;
    char native_cuda[PATH_MAX];
    char native_nvml[PATH_MAX];
    char endpoint[256];          /* default VGPU_CONF_DEFAULT_ENDPOINT */
    unsigned connect_timeout_ms; /* default VGPU_CONF_DEFAULT_CONNECT_TIMEOUT */
    char secret_file[PATH_MAX];  /* "" when unset */
    unsigned long long memory_limit; /* bytes; 0: no limit */
    enum vgpu_log_level log;
    char log_file[PATH_MAX];
    char file[PATH_MAX]; /* the configuration file that was read, or "" */
    char problem[1024];  /* "vgpu.conf:3: bad value ...; environment ...: ..." */
};

/* The process's configuration: loaded at the first call (thread-safe, once; the
 * logger is set up and problems are reported then). Never NULL. */
const struct vgpu_config *vgpu_config(void);

/* Loads a configuration into c without touching the logger or reporting anything:
 * the file named by VGPU_CONFIG or /etc/vgpu/vgpu.conf (absent is fine), then the
 * environment. */
void vgpu_config_load(struct vgpu_config *c);

const char *vgpu_backend_name(enum vgpu_backend_kind k);

#endif
