/* spawn: runs a helper program with an exact environment and collects its output
 * (stdout, stderr and optionally a report pipe given to it as fd 3), with a timeout. */
#ifndef VP_SPAWN_H
#define VP_SPAWN_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <sys/resource.h>

struct vp_spawn_result {
    int status;      /* as from waitpid */
    bool timed_out;  /* killed after the timeout */
    char *out, *err; /* what it wrote (NUL-terminated, truncated at 1 MiB) */
    char *report;    /* what it wrote to fd 3, when asked for */
    struct rusage usage;
};

/* Runs argv[0] (a path) with envp (never the caller's environment). With report, the
 * child gets a pipe as fd 3. Returns 0 when it ran (whatever its status) or a negative
 * errno when it could not be started. */
int vp_spawn(char *const argv[], char *const envp[], bool report, int timeout_ms,
             struct vp_spawn_result *ret);

void vp_spawn_result_release(struct vp_spawn_result *r);

/* One program to run with vp_spawn_all. */
struct vp_spawn_job {
    char *const *argv, *const *envp;
    bool report;
    int timeout_ms;
    bool drop; /* run as uid:gid with no supplementary groups */
    uid_t uid;
    gid_t gid;
    int rc; /* vp_spawn's return */
    char error[256]; /* its message when rc < 0 */
    struct vp_spawn_result res;
};

/* Runs one job (with its privilege drop); fills j->res, returns like vp_spawn. */
int vp_spawn_job_run(struct vp_spawn_job *j);

/* Runs the jobs, at most parallel at a time (the probes are independent processes: on
 * a machine with several cores they overlap). Each job's rc and res are filled. */
void vp_spawn_all(struct vp_spawn_job *jobs, size_t n, unsigned parallel);
/* Whether it exited with status 0. */
bool vp_spawn_ok(const struct vp_spawn_result *r);

#endif
