/* vgpu-bench-run: runs a command and reports its wall time, exit status and peak memory,
 * for the benchmark (bench/run-bench.sh). With --trace it follows the command and every
 * descendant with ptrace and reads each process's own peak RSS (VmHWM) at its exit stop,
 * so the command's own peak is reported apart from its children's.
 *
 * Why not rusage alone: wait4() on Linux returns the child's RUSAGE_BOTH, so its ru_maxrss
 * is the largest of the whole tree, and a child that fork()s and exec()s keeps the peak of
 * the pre-exec copy of its parent in ru_maxrss. VmHWM read before the mm goes away is the
 * peak of the program that actually ran, and nothing else. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define TRACE_OPTIONS                                                                              \
    (PTRACE_O_TRACEFORK | PTRACE_O_TRACEVFORK | PTRACE_O_TRACECLONE | PTRACE_O_TRACEEXEC |         \
     PTRACE_O_TRACEEXIT | PTRACE_O_EXITKILL)

/* One traced process (thread group), as seen at the exit stops of its threads. */
struct proc {
    pid_t tgid;
    long hwm_kb;  /* VmHWM: peak RSS of the last program it ran */
    char exe[64]; /* basename of /proc/PID/exe */
};

struct trace {
    pid_t root;
    pid_t *started; /* tracees past their first stop */
    size_t n_started, cap_started;
    struct proc *procs;
    size_t n_procs, cap_procs;
    unsigned long missed; /* exit stops whose /proc entry could not be read */
};

static void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n);
    if (!q) {
        fprintf(stderr, "vgpu-bench-run: out of memory\n");
        exit(125);
    }
    return q;
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static bool trace_started(struct trace *t, pid_t pid)
{
    for (size_t i = 0; i < t->n_started; i++)
        if (t->started[i] == pid)
            return true;
    if (t->n_started == t->cap_started) {
        t->cap_started = t->cap_started ? 2 * t->cap_started : 64;
        t->started = xrealloc(t->started, t->cap_started * sizeof(*t->started));
    }
    t->started[t->n_started++] = pid;
    return false;
}

static void trace_forget(struct trace *t, pid_t pid)
{
    for (size_t i = 0; i < t->n_started; i++)
        if (t->started[i] == pid) {
            t->started[i] = t->started[--t->n_started];
            return;
        }
}

/* Reads Tgid and VmHWM of a task at its exit stop (its mm is still there). */
static int read_status(pid_t pid, pid_t *ret_tgid, long *ret_hwm_kb)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return -errno;
    long tgid = -1, hwm = -1;
    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, "Tgid:", 5) == 0)
            tgid = strtol(line + 5, NULL, 10);
        else if (strncmp(line, "VmHWM:", 6) == 0)
            hwm = strtol(line + 6, NULL, 10);
    }
    fclose(f);
    if (tgid <= 0 || hwm < 0)
        return -ENODATA; /* a kernel thread, or the mm is gone already */
    *ret_tgid = (pid_t)tgid;
    *ret_hwm_kb = hwm;
    return 0;
}

static void trace_record_exit(struct trace *t, pid_t pid)
{
    pid_t tgid = 0;
    long hwm = 0;
    if (read_status(pid, &tgid, &hwm) < 0) {
        t->missed++;
        return;
    }
    char link[64], exe[PATH_MAX];
    snprintf(link, sizeof(link), "/proc/%d/exe", (int)pid);
    ssize_t n = readlink(link, exe, sizeof(exe) - 1);
    exe[n > 0 ? n : 0] = '\0';
    const char *base = strrchr(exe, '/') ? strrchr(exe, '/') + 1 : exe;
    struct proc *p = NULL;
    for (size_t i = 0; i < t->n_procs; i++)
        if (t->procs[i].tgid == tgid)
            p = &t->procs[i];
    if (!p) {
        if (t->n_procs == t->cap_procs) {
            t->cap_procs = t->cap_procs ? 2 * t->cap_procs : 64;
            t->procs = xrealloc(t->procs, t->cap_procs * sizeof(*t->procs));
        }
        p = &t->procs[t->n_procs++];
        *p = (struct proc){.tgid = tgid};
    }
    if (hwm >= p->hwm_kb) {
        p->hwm_kb = hwm;
        snprintf(p->exe, sizeof(p->exe), "%.63s", *base ? base : "?");
    }
}

/* Resumes a stopped tracee, passing on the signal it stopped with where that is one
 * meant for it (not our own event stops and not the first stop of a new tracee). */
static void trace_resume(struct trace *t, pid_t pid, int status)
{
    int sig = WSTOPSIG(status), event = (unsigned)status >> 16, inject = 0;
    if (sig == SIGTRAP && event != 0) {
        if (event == PTRACE_EVENT_EXIT)
            trace_record_exit(t, pid);
    } else if (!trace_started(t, pid) && sig == SIGSTOP) {
        /* the stop every auto-attached child starts with */
    } else {
        siginfo_t si;
        /* PTRACE_GETSIGINFO fails for a group-stop: resume without a signal. */
        if (ptrace(PTRACE_GETSIGINFO, pid, NULL, &si) == 0)
            inject = sig;
    }
    trace_started(t, pid);
    ptrace(PTRACE_CONT, pid, NULL, (void *)(intptr_t)inject);
}

static void trace_release(struct trace *t)
{
    free(t->started);
    free(t->procs);
    *t = (struct trace){0};
}

struct result {
    int status;
    int64_t wall_ns;
    struct rusage ru; /* the command's, with every descendant it waited for */
};

static pid_t start(char *const argv[], bool traced)
{
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    if (traced) {
        if (ptrace(PTRACE_TRACEME, 0, NULL, NULL) < 0) {
            fprintf(stderr, "vgpu-bench-run: PTRACE_TRACEME: %s\n", strerror(errno));
            _exit(126);
        }
        raise(SIGSTOP);
    }
    execvp(argv[0], argv);
    fprintf(stderr, "vgpu-bench-run: cannot run %s: %s\n", argv[0], strerror(errno));
    _exit(127);
}

static int run_plain(char *const argv[], struct result *ret)
{
    int64_t t0 = now_ns();
    pid_t pid = start(argv, false);
    if (pid < 0)
        return -errno;
    while (wait4(pid, &ret->status, 0, &ret->ru) < 0)
        if (errno != EINTR)
            return -errno;
    ret->wall_ns = now_ns() - t0;
    return 0;
}

static int run_traced(char *const argv[], struct result *ret, struct trace *t)
{
    int status;
    int64_t t0 = now_ns();
    pid_t root = start(argv, true);
    if (root < 0)
        return -errno;
    if (waitpid(root, &status, __WALL) < 0 || !WIFSTOPPED(status))
        return -ECHILD;
    if (ptrace(PTRACE_SETOPTIONS, root, NULL, (void *)(intptr_t)TRACE_OPTIONS) < 0) {
        int r = -errno;
        kill(root, SIGKILL);
        waitpid(root, &status, 0);
        return r;
    }
    t->root = root;
    trace_started(t, root);
    ptrace(PTRACE_CONT, root, NULL, NULL);
    bool root_done = false;
    for (;;) {
        struct rusage ru;
        pid_t pid = wait4(-1, &status, __WALL, &ru);
        if (pid < 0) {
            if (errno == EINTR)
                continue;
            break; /* ECHILD: every tracee is gone */
        }
        if (WIFEXITED(status) || WIFSIGNALED(status)) {
            if (pid == root) {
                ret->status = status;
                ret->ru = ru;
                ret->wall_ns = now_ns() - t0;
                root_done = true;
            }
            trace_forget(t, pid);
        } else if (WIFSTOPPED(status)) {
            trace_resume(t, pid, status);
        }
    }
    return root_done ? 0 : -ECHILD;
}

static void print_status(FILE *out, int status)
{
    if (WIFEXITED(status))
        fprintf(out, "exit=%d", WEXITSTATUS(status));
    else
        fprintf(out, "exit=signal%d", WTERMSIG(status));
}

/* One line per run: key=value fields (README.md lists them). */
static void report(FILE *out, unsigned run, const struct result *r, const struct trace *t)
{
    fprintf(out, "run=%u wall_ns=%lld ", run, (long long)r->wall_ns);
    print_status(out, r->status);
    fprintf(out, " tree_maxrss_kb=%ld", r->ru.ru_maxrss);
    if (t) {
        long self = -1, child_max = 0;
        const char *child_max_exe = "-";
        size_t children = 0;
        for (size_t i = 0; i < t->n_procs; i++) {
            const struct proc *p = &t->procs[i];
            if (p->tgid == t->root) {
                self = p->hwm_kb;
                continue;
            }
            children++;
            if (p->hwm_kb > child_max) {
                child_max = p->hwm_kb;
                child_max_exe = p->exe;
            }
        }
        fprintf(out, " self_hwm_kb=%ld children=%zu children_max_hwm_kb=%ld children_max_exe=%s",
                self, children, child_max, child_max_exe);
        /* per program: name:count:max, names as they ran (basename of the executable) */
        fprintf(out, " by_exe=");
        bool first = true;
        for (size_t i = 0; i < t->n_procs; i++) {
            const struct proc *p = &t->procs[i];
            bool seen = false;
            for (size_t k = 0; k < i; k++)
                if (strcmp(t->procs[k].exe, p->exe) == 0 && t->procs[k].tgid != t->root)
                    seen = true;
            if (p->tgid == t->root || seen)
                continue;
            size_t count = 0;
            long max = 0;
            for (size_t k = i; k < t->n_procs; k++)
                if (t->procs[k].tgid != t->root && strcmp(t->procs[k].exe, p->exe) == 0) {
                    count++;
                    if (t->procs[k].hwm_kb > max)
                        max = t->procs[k].hwm_kb;
                }
            fprintf(out, "%s%s:%zu:%ld", first ? "" : ",", p->exe, count, max);
            first = false;
        }
        fprintf(out, "%s unmeasured=%lu", first ? "-" : "", t->missed);
    }
    fputc('\n', out);
    fflush(out);
}

static void usage(FILE *out)
{
    fputs("Usage: vgpu-bench-run [--trace] [--repeat N] [--result FILE] [--] COMMAND [ARG]...\n"
          "Runs COMMAND (N times) and appends one line per run to FILE (default: stderr):\n"
          "wall time, exit status and peak RSS; with --trace, COMMAND's own peak RSS and\n"
          "its descendants' (ptrace exit stops, VmHWM), and it waits for every descendant.\n"
          "COMMAND's stdio is inherited.\n"
          "Exit status: COMMAND's last non-zero exit status (or 0); 125 on our own errors.\n",
          out);
}

int main(int argc, char **argv)
{
    bool traced = false;
    unsigned long repeat = 1;
    const char *result_path = NULL;
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "--") == 0) {
            i++;
            break;
        } else if (strcmp(argv[i], "--trace") == 0) {
            traced = true;
        } else if (strcmp(argv[i], "--repeat") == 0 && i + 1 < argc) {
            char *end;
            repeat = strtoul(argv[++i], &end, 10);
            if (*end || repeat == 0 || repeat > 100000) {
                fprintf(stderr, "vgpu-bench-run: bad --repeat %s\n", argv[i]);
                return 2;
            }
        } else if (strcmp(argv[i], "--result") == 0 && i + 1 < argc) {
            result_path = argv[++i];
        } else if (strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return 0;
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (i >= argc) {
        usage(stderr);
        return 2;
    }
    FILE *out = stderr;
    if (result_path && !(out = fopen(result_path, "ae"))) {
        fprintf(stderr, "vgpu-bench-run: cannot open %s: %s\n", result_path, strerror(errno));
        return 125;
    }
    int rc = 0;
    for (unsigned long run = 1; run <= repeat; run++) {
        struct result r = {0};
        struct trace t = {0};
        int err = traced ? run_traced(argv + i, &r, &t) : run_plain(argv + i, &r);
        if (err < 0) {
            fprintf(stderr, "vgpu-bench-run: %s: %s%s\n", argv[i], strerror(-err),
                    traced ? " (ptrace not allowed here? run without --trace)" : "");
            trace_release(&t);
            rc = 125;
            break;
        }
        report(out, (unsigned)run, &r, traced ? &t : NULL);
        trace_release(&t);
        if (!WIFEXITED(r.status))
            rc = 128 + WTERMSIG(r.status);
        else if (WEXITSTATUS(r.status) != 0)
            rc = WEXITSTATUS(r.status);
    }
    if (out != stderr)
        fclose(out);
    return rc;
}
