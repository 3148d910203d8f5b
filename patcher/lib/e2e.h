/* e2e: the end-to-end check of DESIGN §6.3 — an installed `ollama serve` started on a free
 * loopback port with a private home, its compute-library log line (every era's spelling,
 * reference/ollama-loading.md §4) read from its stderr and judged against the devices the
 * shim itself reports, then the server stopped with its whole process group. */
#ifndef VP_E2E_H
#define VP_E2E_H

#include "util.h"

/* What a line of Ollama's log says about the compute library. */
enum vp_e2e_kind {
    VP_E2E_OTHER = 0,    /* anything else */
    VP_E2E_COMPUTE,      /* msg="inference compute" (v0.1.40 on), one per device */
    VP_E2E_GPU_DETECTED, /* "Nvidia GPU detected[ via cudart|nvidia-ml]" (v0.1.20–v0.1.39) */
    VP_E2E_CPU_FALLBACK, /* "no compatible GPUs were discovered", "... Falling back to CPU mode" */
};

struct vp_e2e_line {
    enum vp_e2e_kind kind;
    char *text;        /* the whole line */
    char *library;     /* library= as logged (cuda, CUDA, cpu, Vulkan, ...): "cuda" for a
                        * detection line, "cpu" for a fallback; NULL when a compute line has
                        * none */
    char *name;        /* name=, unquoted; NULL when absent */
    char *description; /* description= (v0.12.4 on: name= is then the backend's CUDA0) */
    char *id;
};

/* Parses one line of Ollama's stderr (Go slog text, log.Printf, or either behind a journal
 * prefix). Fills ret (release it) and returns its kind. */
enum vp_e2e_kind vp_e2e_parse_line(const char *line, struct vp_e2e_line *ret);
void vp_e2e_line_release(struct vp_e2e_line *l);
/* The device a compute line names: description= when not empty, else name=; NULL when none. */
const char *vp_e2e_line_device(const struct vp_e2e_line *l);
/* Whether a line shows the CUDA library (library=cuda up to v0.12.3, CUDA from v0.12.4). */
bool vp_e2e_line_is_cuda(const struct vp_e2e_line *l);

/* The verdict over the lines found (in log order) and the device names the CUDA shim reports:
 * true when a compute line says cuda/CUDA with a device the shim reports, or — v0.1.x, whose
 * lines name no device — when a detection line came, no fallback line, and the shim reports a
 * device. *ret_line: the line the verdict rests on (SIZE_MAX: none); *ret_why (owned): the
 * verdict in words. */
bool vp_e2e_judge(const struct vp_e2e_line *lines, size_t n, const struct vp_strv *shim_devices,
                  size_t *ret_line, char **ret_why);

struct vp_e2e_opts {
    const char *root;     /* what --root names ("/" for the machine) */
    const char *prefix;   /* the install (runtime path): <root><prefix>/bin/ollama is started */
    const char *shim_dir; /* its shim dir (runtime path), whose CUDA shim is asked for devices */
    const char *env_file; /* on-disk KEY=VALUE file whose variables serve gets (the audit
                           * mechanism's ollama.env), or NULL */
    bool no_vulkan;       /* OLLAMA_VULKAN=0, as our drop-in sets it for the service */
    int timeout_ms;       /* for the line (0: 60 s) */
    int grace_ms;         /* between SIGTERM and SIGKILL (0: 5 s) */
};

struct vp_e2e {
    bool ok;
    char *binary;              /* on-disk path of the executable started */
    char *address;             /* the OLLAMA_HOST it was given */
    uid_t uid;                 /* the user it ran as */
    char *as_nobody;           /* why it ran as nobody (root, code others can change), or NULL */
    struct vp_strv env_keys;   /* the variables taken from env_file */
    struct vp_e2e_line *lines; /* the decisive lines it logged, in order */
    size_t n_lines;
    size_t chosen;               /* the line the verdict rests on; SIZE_MAX: none */
    struct vp_strv shim_devices; /* what cuDeviceGetName of the shim answers, device by device */
    char *shim_error;            /* why the shim reported no device, or NULL */
    bool started, timed_out, exited; /* exited: on its own, before it was stopped */
    int status;                      /* its waitpid status */
    struct vp_strv tail;             /* its last lines of output */
    long elapsed_ms;                 /* from the start to the verdict */
    struct vp_strv notes;            /* what the reader should know (an unreadable env_file, ...) */
    char *message;                   /* the verdict, or why it could not be reached */
};

/* Runs the check for one install. Serve gets an environment built from scratch (PATH, LANG=C,
 * HOME, OLLAMA_MODELS and TMPDIR in a private 0700 directory removed afterwards, OLLAMA_HOST
 * on a free 127.0.0.1 port, then env_file's variables); run by root, it runs as nobody when
 * the binary or anything under lib/ollama is not as trusted as the shims must be. Returns 0
 * with ret->ok the verdict, or a negative errno (with a message, also in ret->message) when
 * the check could not be set up; ret is filled either way (release it). */
int vp_e2e_run(const struct vp_e2e_opts *o, struct vp_e2e *ret);
void vp_e2e_release(struct vp_e2e *r);

#endif
