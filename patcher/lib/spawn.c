/* spawn: fork/exec with pipes, a poll loop and a deadline. */
#include "spawn.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#define MAX_OUTPUT (1u << 20)

struct sink {
    char *buf;
    size_t len;
};

static void sink_add(struct sink *s, const char *data, size_t n)
{
    if (s->len + n > MAX_OUTPUT)
        n = MAX_OUTPUT - s->len;
    s->buf = vp_xrealloc(s->buf, s->len + n + 1);
    memcpy(s->buf + s->len, data, n);
    s->len += n;
    s->buf[s->len] = '\0';
}

static int spawn(char *const argv[], char *const envp[], bool report, int timeout_ms,
                 const struct vp_spawn_job *drop, struct vp_spawn_result *ret)
{
    int p[3][2] = {{-1, -1}, {-1, -1}, {-1, -1}};
    for (int i = 0; i < (report ? 3 : 2); i++)
        if (pipe2(p[i], O_CLOEXEC) < 0) {
            int e = -errno;
            for (int k = 0; k < i; k++)
                close(p[k][0]), close(p[k][1]);
            return vp_error_errno(e, "pipe");
        }
    pid_t pid = fork();
    if (pid < 0) {
        int e = -errno;
        for (int i = 0; i < 3; i++)
            if (p[i][0] >= 0)
                close(p[i][0]), close(p[i][1]);
        return vp_error_errno(e, "fork");
    }
    if (pid == 0) {
        int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
        dup2(devnull, STDIN_FILENO);
        dup2(p[0][1], STDOUT_FILENO);
        dup2(p[1][1], STDERR_FILENO);
        if (report)
            dup2(p[2][1], 3); /* dup2 clears close-on-exec */
        if (drop && (setgroups(0, NULL) < 0 || setgid(drop->gid) < 0 || setuid(drop->uid) < 0)) {
            dprintf(STDERR_FILENO, "cannot drop to uid %u: %s\n", (unsigned)drop->uid,
                    strerror(errno));
            _exit(126);
        }
        execve(argv[0], argv, envp);
        dprintf(STDERR_FILENO, "cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    struct sink sinks[3] = {0};
    struct pollfd pfd[3];
    int n = report ? 3 : 2, open_fds = n;
    for (int i = 0; i < n; i++) {
        close(p[i][1]);
        pfd[i] = (struct pollfd){.fd = p[i][0], .events = POLLIN};
    }
    long deadline = (long)vp_now_ms() + timeout_ms;
    bool timed_out = false;
    while (open_fds > 0) {
        long left = deadline - (long)vp_now_ms();
        if (left <= 0) {
            kill(pid, SIGKILL);
            timed_out = true;
            break;
        }
        if (poll(pfd, (nfds_t)n, (int)left) < 0 && errno != EINTR)
            break;
        for (int i = 0; i < n; i++) {
            if (pfd[i].fd < 0 || !(pfd[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            char buf[8192];
            ssize_t k = read(pfd[i].fd, buf, sizeof(buf));
            if (k > 0) {
                sink_add(&sinks[i], buf, (size_t)k);
            } else if (k == 0 || errno != EINTR) {
                close(pfd[i].fd);
                pfd[i].fd = -1;
                open_fds--;
            }
        }
    }
    for (int i = 0; i < n; i++)
        if (pfd[i].fd >= 0)
            close(pfd[i].fd);
    *ret = (struct vp_spawn_result){.timed_out = timed_out};
    while (wait4(pid, &ret->status, 0, &ret->usage) < 0 && errno == EINTR)
        ;
    for (int i = 0; i < 3; i++)
        if (!sinks[i].buf)
            sinks[i].buf = vp_xstrdup("");
    ret->out = sinks[0].buf;
    ret->err = sinks[1].buf;
    if (report)
        ret->report = sinks[2].buf;
    else
        free(sinks[2].buf);
    return 0;
}

int vp_spawn(char *const argv[], char *const envp[], bool report, int timeout_ms,
             struct vp_spawn_result *ret)
{
    return spawn(argv, envp, report, timeout_ms, NULL, ret);
}

int vp_spawn_job_run(struct vp_spawn_job *j)
{
    return spawn(j->argv, j->envp, j->report, j->timeout_ms, j->drop ? j : NULL, &j->res);
}

bool vp_spawn_ok(const struct vp_spawn_result *r)
{
    return !r->timed_out && WIFEXITED(r->status) && WEXITSTATUS(r->status) == 0;
}

void vp_spawn_result_release(struct vp_spawn_result *r)
{
    free(r->out);
    free(r->err);
    free(r->report);
    *r = (struct vp_spawn_result){0};
}

struct pool {
    struct vp_spawn_job *jobs;
    size_t n, next;
    pthread_mutex_t lock;
};

static void *worker(void *arg)
{
    struct pool *p = arg;
    for (;;) {
        pthread_mutex_lock(&p->lock);
        size_t i = p->next < p->n ? p->next++ : SIZE_MAX;
        pthread_mutex_unlock(&p->lock);
        if (i == SIZE_MAX)
            return NULL;
        struct vp_spawn_job *j = &p->jobs[i];
        j->rc = vp_spawn_job_run(j);
        if (j->rc < 0)
            snprintf(j->error, sizeof(j->error), "%s", vp_last_error());
    }
}

void vp_spawn_all(struct vp_spawn_job *jobs, size_t n, unsigned parallel)
{
    struct pool p = {.jobs = jobs, .n = n};
    pthread_mutex_init(&p.lock, NULL);
    if (parallel > 16)
        parallel = 16;
    pthread_t th[16];
    unsigned started = 0;
    for (unsigned i = 1; i < parallel && i < n; i++)
        if (pthread_create(&th[started], NULL, worker, &p) == 0)
            started++;
    worker(&p);
    for (unsigned i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    pthread_mutex_destroy(&p.lock);
}
