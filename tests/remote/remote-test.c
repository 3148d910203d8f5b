/* remote-test: runs one scenario of the remote backend against `vgpu-hostd --sim`.
 *   remote-test SCENARIO [ARG]
 * Environment: VGPU_TEST_HOSTD (the daemon), VGPU_TEST_SHIM_DIR (libvgpu-cuda.so.1 and
 * libvgpu-nvml.so.1). Exit 0 passed, 1 failed, 77 skipped, 2 usage. */
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "scenarios.h"

static int run_discovery(const char *arg)
{
    return scenario_discovery(arg ? arg : "unix");
}

static int run_copies(const char *arg)
{
    return scenario_copies(arg ? arg : "unix");
}

static int run_module(const char *arg)
{
    return arg ? scenario_module(arg) : 2;
}

#define NOARG(fn)                                                                                  \
    static int run_##fn(const char *arg)                                                           \
    {                                                                                              \
        (void)arg;                                                                                 \
        return scenario_##fn();                                                                    \
    }
NOARG(killed_client)
NOARG(quotas)
NOARG(fork)
NOARG(malformed)
NOARG(host_down)
NOARG(vsock)
NOARG(sigterm)
NOARG(images)
NOARG(slow_hello)
NOARG(burst)
NOARG(handles)
NOARG(limits)

static int run_launch_extra(const char *arg)
{
    return arg ? scenario_launch_extra(arg) : 2;
}

static const struct {
    const char *name;
    int (*fn)(const char *arg);
    const char *arg;
} scenarios[] = {
    {"discovery", run_discovery, "unix|tcp"},
    {"copies", run_copies, "unix|tcp"},
    {"module", run_module, "PTX-FILE"},
    {"killed-client", run_killed_client, NULL},
    {"quotas", run_quotas, NULL},
    {"fork", run_fork, NULL},
    {"malformed", run_malformed, NULL},
    {"host-down", run_host_down, NULL},
    {"vsock", run_vsock, NULL},
    {"sigterm", run_sigterm, NULL},
    {"images", run_images, NULL},
    {"slow-hello", run_slow_hello, NULL},
    {"burst", run_burst, NULL},
    {"handles", run_handles, NULL},
    {"launch-extra", run_launch_extra, "PTX-FILE"},
    {"limits", run_limits, NULL},
};

static int rm_entry(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
    (void)sb;
    (void)type;
    (void)ftw;
    remove(path);
    return 0;
}

static int usage(void)
{
    fprintf(stderr, "usage: remote-test SCENARIO [ARG]\nscenarios:");
    for (size_t i = 0; i < sizeof(scenarios) / sizeof(scenarios[0]); i++)
        fprintf(stderr, " %s%s%s", scenarios[i].name, scenarios[i].arg ? " " : "",
                scenarios[i].arg ? scenarios[i].arg : "");
    fputc('\n', stderr);
    return 2;
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 3)
        return usage();
    for (size_t i = 0; i < sizeof(scenarios) / sizeof(scenarios[0]); i++) {
        if (strcmp(argv[1], scenarios[i].name))
            continue;
        signal(SIGPIPE, SIG_IGN);
        const char *tmp = getenv("TMPDIR");
        if (!tmp || !*tmp || strlen(tmp) > 50)
            tmp = "/tmp"; /* the unix socket paths must stay under 108 bytes */
        snprintf(test_dir, sizeof(test_dir), "%s/vgpu-remote-XXXXXX", tmp);
        if (!mkdtemp(test_dir)) {
            perror(test_dir);
            return 1;
        }
        int rc = scenarios[i].fn(argc == 3 ? argv[2] : NULL);
        if (rc == 2)
            return usage();
        if (rc == 0 || getenv("VGPU_TEST_KEEP") == NULL)
            nftw(test_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
        else
            fprintf(stderr, "kept %s (VGPU_TEST_KEEP)\n", test_dir);
        printf("%s %s%s%s\n",
               rc == 0      ? "PASS"
               : rc == SKIP ? "SKIP"
                            : "FAIL",
               argv[1], argc == 3 ? " " : "", argc == 3 ? argv[2] : "");
        return rc;
    }
    return usage();
}
