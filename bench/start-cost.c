/* vgpu-bench-start: how long a command takes to start and finish, over many runs, for
 * the fallback benchmark (bench/fallback.sh). Each run is posix_spawn() + waitpid()
 * with stdout and stderr to /dev/null; the output is one line of microseconds:
 * "runs=N median_us=M min_us=M p95_us=M". A run that exits non-zero stops it (exit 1).
 *   vgpu-bench-start [--runs N] [--env NAME=VALUE]... -- COMMAND [ARGS...] */
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    long runs = 200;
    int i = 1;
    for (; i < argc && strcmp(argv[i], "--"); i++) {
        if (!strcmp(argv[i], "--runs") && i + 1 < argc)
            runs = atol(argv[++i]);
        else if (!strcmp(argv[i], "--env") && i + 1 < argc)
            putenv(argv[++i]);
        else
            break;
    }
    if (i >= argc - 1 || strcmp(argv[i], "--") || runs < 1) {
        fprintf(stderr, "usage: vgpu-bench-start [--runs N] [--env NAME=VALUE]... -- CMD...\n");
        return 2;
    }
    char **cmd = argv + i + 1;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    double *t = calloc((size_t)runs, sizeof(*t));
    if (!t)
        return 1;
    for (long r = 0; r < runs; r++) {
        pid_t pid;
        int status;
        double t0 = now_us();
        if (posix_spawnp(&pid, cmd[0], &fa, NULL, cmd, environ) != 0 ||
            waitpid(pid, &status, 0) != pid) {
            perror(cmd[0]);
            return 1;
        }
        t[r] = now_us() - t0;
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            fprintf(stderr, "vgpu-bench-start: %s failed (status %d)\n", cmd[0], status);
            return 1;
        }
    }
    qsort(t, (size_t)runs, sizeof(*t), cmp_double);
    long p95 = (long)(0.95 * (double)runs);
    printf("runs=%ld median_us=%.1f min_us=%.1f p95_us=%.1f\n", runs,
           runs % 2 ? t[runs / 2] : (t[runs / 2 - 1] + t[runs / 2]) / 2, t[0],
           t[p95 < runs ? p95 : runs - 1]);
    free(t);
    return 0;
}
