/* vgpu-launch: the exec wrapper of the LD_AUDIT fallback (DESIGN §4, §8; issue 4).
 * It checks, in a child process, that the shims and the audit module load and export
 * what they must, then execs PROGRAM with its argv intact and LD_AUDIT, VGPU_SHIM_DIR
 * (and LD_BIND_NOW=1 on glibc older than 2.35) set. The check only proves the files
 * load: exec replaces the address space, so nothing it loads reaches PROGRAM. The
 * shims never go into LD_PRELOAD. If the check fails, PROGRAM runs unchanged (and
 * loudly without the vGPU), or with --strict not at all (exit 69).
 *
 * Only main() exits, and the exec path; helpers return negative errno. Nothing but
 * --help and --version output goes to stdout. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <gnu/libc-version.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "launch-check.h"
#include "vgpu-conf.h"

#define EXIT_USAGE       2
#define EXIT_UNAVAILABLE 69 /* EX_UNAVAILABLE: --strict and the shims are unusable */
#define EXIT_CANNOT_EXEC 126
#define EXIT_NOT_FOUND   127

#define AUDIT_MODULE      "libvgpu-audit.so"
#define GLIBC_VERSION_ENV "VGPU_LAUNCH_GLIBC_VERSION"

/* Where the shims are, and which setting named it. */
struct shim_dir {
    char path[PATH_MAX];
    const char *source;       /* "--shim-dir", "VGPU_SHIM_DIR", the conf file, the default */
    char why[PATH_MAX + 256]; /* what is wrong with the setting */
};

struct options {
    const char *shim_dir; /* --shim-dir, or NULL */
    bool strict;
    char **argv; /* PROGRAM [ARGS...], NULL-terminated */
};

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* One line on stderr, prefixed "vgpu-launch: ". */
static void say(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("vgpu-launch: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static void usage(FILE *f)
{
    fputs("Usage: vgpu-launch [--shim-dir DIR] [--strict] [--] PROGRAM [ARGS...]\n"
          "Run PROGRAM with the vGPU shims answering for libcuda.so.1 and libnvidia-ml.so.1,\n"
          "through the LD_AUDIT module libvgpu-audit.so in the shim dir.\n"
          "\n"
          "  --shim-dir DIR  where the shims and the audit module are (absolute); default:\n"
          "                  $VGPU_SHIM_DIR, else shim_dir in " VGPU_CONF_PATH ",\n"
          "                  else ../lib/vgpu beside this program\n"
          "  --strict        exit 69 if the shims do not load, instead of running PROGRAM\n"
          "                  without the vGPU\n"
          "  -h, --help      show this help\n"
          "      --version   show the version\n",
          f);
}

/* Parses the command line into *ret. Returns 0, 1 when --help or --version was
 * handled, or -EINVAL after saying what is wrong. */
static int parse_args(int argc, char **argv, struct options *ret)
{
    enum { OPT_SHIM_DIR = 0x100, OPT_STRICT, OPT_VERSION };
    static const struct option longopts[] = {
        {"shim-dir", required_argument, NULL, OPT_SHIM_DIR},
        {"strict", no_argument, NULL, OPT_STRICT},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, OPT_VERSION},
        {0},
    };
    struct options o = {0};
    int c;
    opterr = 0;
    /* '+': stop at PROGRAM, so its own options are left alone. */
    while ((c = getopt_long(argc, argv, "+:h", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_SHIM_DIR:
            if (vgpu_conf_check(VGPU_CONF_SHIM_DIR, optarg)) {
                say("--shim-dir '%s': expected an absolute path", optarg);
                return -EINVAL;
            }
            o.shim_dir = optarg;
            break;
        case OPT_STRICT:
            o.strict = true;
            break;
        case 'h':
            usage(stdout);
            return 1;
        case OPT_VERSION:
            puts("vgpu-launch " VGPU_VERSION);
            return 1;
        case ':':
            say("option '%s' needs an argument", argv[optind - 1]);
            return -EINVAL;
        default:
            say("unknown option '%s'", argv[optind - 1]);
            return -EINVAL;
        }
    }
    if (optind >= argc) {
        say("no PROGRAM to run (try --help)");
        return -EINVAL;
    }
    o.argv = argv + optind;
    *ret = o;
    return 0;
}

/* Parses "MAJOR.MINOR[.anything]". Returns 0, or -EINVAL. */
static int parse_glibc_version(const char *v, unsigned long *ret_major, unsigned long *ret_minor)
{
    char *end;
    if (*v < '0' || *v > '9')
        return -EINVAL;
    errno = 0;
    unsigned long major = strtoul(v, &end, 10);
    if (errno || *end != '.' || end[1] < '0' || end[1] > '9')
        return -EINVAL;
    unsigned long minor = strtoul(end + 1, &end, 10);
    if (errno || (*end && *end != '.' && *end != '-'))
        return -EINVAL;
    *ret_major = major;
    *ret_minor = minor;
    return 0;
}

/* Whether glibc has bug 15533 (every lazily bound PLT call profiled under any auditor,
 * fixed in 2.35): from VGPU_LAUNCH_GLIBC_VERSION when set (tests), else the running
 * glibc. The variable is removed so PROGRAM never sees it. Returns 0 or 1, or -EINVAL
 * after saying that the variable is not a version. */
static int glibc_needs_bind_now(void)
{
    const char *env = getenv(GLIBC_VERSION_ENV);
    const char *v = env ? env : gnu_get_libc_version();
    unsigned long major, minor;
    int r = parse_glibc_version(v, &major, &minor);
    if (r < 0 && env) {
        /* A test knob left behind must not keep the program from starting. */
        say("%s='%s' is not a glibc version (expected such as 2.31): ignored",
            GLIBC_VERSION_ENV, v);
        v = gnu_get_libc_version();
        r = parse_glibc_version(v, &major, &minor);
    }
    if (env)
        unsetenv(GLIBC_VERSION_ENV);
    if (r < 0) {
        say("gnu_get_libc_version() says '%s', not a glibc version", v);
        return r;
    }
    return major < 2 || (major == 2 && minor < 35);
}

/* d->path = value. Returns 0, or -ENAMETOOLONG with d->why. */
static int set_path(struct shim_dir *d, const char *value)
{
    int n = snprintf(d->path, sizeof(d->path), "%s", value);
    if (n >= 0 && (size_t)n < sizeof(d->path))
        return 0;
    snprintf(d->why, sizeof(d->why), "the shim dir from %s is too long", d->source);
    return -ENAMETOOLONG;
}

static void conf_line(void *ctx, unsigned lineno, const char *key, const char *value)
{
    struct shim_dir *d = ctx;
    if (!key || strcmp(key, vgpu_conf_key_name(VGPU_CONF_SHIM_DIR)))
        return;
    const char *bad = vgpu_conf_check(VGPU_CONF_SHIM_DIR, value);
    d->source = VGPU_CONF_PATH;
    if (bad)
        snprintf(d->why, sizeof(d->why), "%s line %u: bad value '%s' for shim_dir (%s)",
                 VGPU_CONF_PATH, lineno, value, bad);
    else
        set_path(d, value);
}

/* shim_dir from vgpu.conf into *d (the last such line wins, as in the audit module).
 * Returns 0 (d->source stays NULL when the file has none), or -errno with d->why. */
static int shim_dir_from_conf(struct shim_dir *d)
{
    static char text[64 * 1024];
    int fd = open(VGPU_CONF_PATH, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        int err = errno;
        if (err == ENOENT)
            return 0;
        snprintf(d->why, sizeof(d->why), "cannot read %s: %s", VGPU_CONF_PATH, strerror(err));
        return -err;
    }
    size_t n = 0;
    ssize_t r = 1;
    while (n < sizeof(text) - 1 && (r = read(fd, text + n, sizeof(text) - 1 - n)) != 0) {
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            break;
        n += (size_t)r;
    }
    int err = errno;
    close(fd);
    if (r < 0) {
        snprintf(d->why, sizeof(d->why), "cannot read %s: %s", VGPU_CONF_PATH, strerror(err));
        return -err;
    }
    text[n] = '\0';
    vgpu_conf_scan(text, conf_line, d);
    return d->why[0] ? -EINVAL : 0;
}

/* <directory of the real executable>/../lib/vgpu, normalised. */
static int shim_dir_beside_self(struct shim_dir *d)
{
    char self[PATH_MAX];
    d->source = "the default beside vgpu-launch";
    if (!realpath("/proc/self/exe", self)) {
        int err = errno;
        snprintf(d->why, sizeof(d->why), "cannot resolve /proc/self/exe: %s", strerror(err));
        return -err;
    }
    for (int up = 0; up < 2; up++) {
        char *slash = strrchr(self, '/');
        slash[slash == self] = '\0'; /* "/x" -> "/", "/a/b" -> "/a" */
    }
    int n = snprintf(d->path, sizeof(d->path), "%s/lib/vgpu", strcmp(self, "/") ? self : "");
    if (n < 0 || (size_t)n >= sizeof(d->path)) {
        snprintf(d->why, sizeof(d->why), "the path of vgpu-launch is too long");
        return -ENAMETOOLONG;
    }
    return 0;
}

/* The shim dir: --shim-dir, else $VGPU_SHIM_DIR, else shim_dir in vgpu.conf, else
 * beside the executable. Trailing slashes are dropped. Returns 0, or a negative errno
 * with d->why saying what is wrong. */
static int find_shim_dir(const char *opt, struct shim_dir *d)
{
    const char *env = secure_getenv("VGPU_SHIM_DIR");
    int r = 0;
    if (opt) {
        d->source = "--shim-dir";
        if ((r = set_path(d, opt)) < 0)
            return r;
    } else if (env && *env) {
        d->source = "VGPU_SHIM_DIR";
        const char *bad = vgpu_conf_check(VGPU_CONF_SHIM_DIR, env);
        if (bad) {
            snprintf(d->why, sizeof(d->why), "bad value '%s' for VGPU_SHIM_DIR (%s)", env, bad);
            return -EINVAL;
        }
        if ((r = set_path(d, env)) < 0)
            return r;
    } else if ((r = shim_dir_from_conf(d)) < 0) {
        return r;
    } else if (!d->source && (r = shim_dir_beside_self(d)) < 0) {
        return r;
    }
    size_t n = strlen(d->path);
    while (n > 1 && d->path[n - 1] == '/')
        d->path[--n] = '\0';
    return 0;
}

/* Whether the ':'-separated list has item as one of its entries. */
static bool list_has(const char *list, const char *item)
{
    size_t n = strlen(item);
    for (const char *p = list; p; p = strchr(p, ':') ? strchr(p, ':') + 1 : NULL)
        if (!strncmp(p, item, n) && (p[n] == ':' || !p[n]))
            return true;
    return false;
}

/* LD_AUDIT (ours first, an inherited list after it, never twice), VGPU_SHIM_DIR and,
 * where glibc needs it, LD_BIND_NOW=1. Returns 0 or -errno. */
static int set_audit_env(const char *dir, bool bind_now)
{
    char audit[PATH_MAX];
    int n = snprintf(audit, sizeof(audit), "%s/%s", !strcmp(dir, "/") ? "" : dir, AUDIT_MODULE);
    if (n < 0 || (size_t)n >= sizeof(audit))
        return -ENAMETOOLONG;
    const char *inherited = getenv("LD_AUDIT");
    int r;
    if (inherited && *inherited && list_has(inherited, audit)) {
        r = 0;
    } else if (inherited && *inherited) {
        char *joined;
        if (asprintf(&joined, "%s:%s", audit, inherited) < 0)
            return -ENOMEM;
        r = setenv("LD_AUDIT", joined, 1);
        free(joined);
    } else {
        r = setenv("LD_AUDIT", audit, 1);
    }
    if (r < 0 || setenv("VGPU_SHIM_DIR", dir, 1) < 0 ||
        (bind_now && setenv("LD_BIND_NOW", "1", 1) < 0))
        return -errno;
    return 0;
}

/* Replaces this process with PROGRAM; returns only on failure, with the exit status a
 * shell would give (127 not found, 126 otherwise). */
static int run(char **argv)
{
    fflush(stderr);
    execvp(argv[0], argv);
    int err = errno;
    say("cannot run '%s': %s", argv[0], strerror(err));
    return err == ENOENT || err == ENOTDIR ? EXIT_NOT_FOUND : EXIT_CANNOT_EXEC;
}

int main(int argc, char **argv)
{
    struct options o;
    int r = parse_args(argc, argv, &o);
    if (r != 0)
        return r > 0 ? (fflush(stdout) == 0 ? EXIT_SUCCESS : EXIT_FAILURE) : EXIT_USAGE;
    int bind_now = glibc_needs_bind_now();
    if (bind_now < 0)
        return EXIT_USAGE;

    struct shim_dir dir = {0};
    char why[sizeof(dir.why)];
    r = find_shim_dir(o.shim_dir, &dir);
    if (r < 0)
        snprintf(why, sizeof(why), "%s", dir.why);
    else if ((r = launch_check(dir.path, why, sizeof(why))) < 0)
        snprintf(why + strlen(why), sizeof(why) - strlen(why), " (shim dir from %s)", dir.source);
    else if ((r = set_audit_env(dir.path, bind_now)) < 0)
        snprintf(why, sizeof(why), "cannot set the environment: %s", strerror(-r));
    if (r < 0 && o.strict) {
        say("the vGPU shims are unusable, not running '%s': %s", o.argv[0], why);
        return EXIT_UNAVAILABLE;
    }
    if (r < 0) {
        say("WARNING: the vGPU shims are unusable: %s", why);
        say("WARNING: '%s' runs WITHOUT the vGPU (vgpu-launch sets no variable%s; --strict "
            "refuses instead)",
            o.argv[0], getenv("LD_AUDIT") ? ", and the LD_AUDIT it inherited is passed on as is"
                                          : "");
    }
    return run(o.argv);
}
