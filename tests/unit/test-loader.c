/* The ld.so model against the real loader. Every scenario runs the real ld.so on the tree that
 * tests/unit/data/build-ldtree.sh builds: LD_TRACE_LOADED_OBJECTS=1 (ldd's mode, which lists a
 * missing library as "not found"), `ld.so --list` (which stops at one, like a real start), and
 * for dlopen a probe process that calls dlopen() from chosen objects. The model must give the
 * same objects, in the same order, under the same names, and the same errors; each scenario
 * also states which libcuda.so.1 it expects, so the two cannot agree on something wrong. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "loader.h"

#define T    VGPU_LDTREE
#define LDSO "/lib64/ld-linux-x86-64.so.2"

/* "@" in scenario strings stands for the tree. */
static char *at(const char *s)
{
    if (!s)
        return NULL;
    size_t n = 1;
    for (const char *p = s; *p; p++)
        n += *p == '@' ? strlen(T) : 1;
    char *out = vp_xmalloc(n), *o = out;
    for (const char *p = s; *p; p++)
        o = *p == '@' ? stpcpy(o, T) : (*o = *p, o + 1);
    *o = '\0';
    return out;
}

/* Runs argv in cwd with exactly the environment env; returns the exit status. */
static int spawn(const char *cwd, char *const argv[], char *const env[], char **out, char **err)
{
    int po[2], pe[2];
    assert_int_equal(pipe(po), 0);
    assert_int_equal(pipe(pe), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(po[1], 1);
        dup2(pe[1], 2);
        close(po[0]);
        close(pe[0]);
        if (chdir(cwd) < 0)
            _exit(126);
        execve(argv[0], argv, env);
        _exit(127);
    }
    close(po[1]);
    close(pe[1]);
    char *buf[2] = {vp_xcalloc(1, 1 << 16), vp_xcalloc(1, 1 << 16)};
    size_t len[2] = {0, 0};
    struct pollfd fds[2] = {{.fd = po[0], .events = POLLIN}, {.fd = pe[0], .events = POLLIN}};
    for (int open_fds = 2; open_fds;) {
        assert_true(poll(fds, 2, 10000) > 0);
        for (int i = 0; i < 2; i++) {
            if (fds[i].fd < 0 || !fds[i].revents)
                continue;
            ssize_t n = read(fds[i].fd, buf[i] + len[i], (1 << 16) - 1 - len[i]);
            if (n <= 0) {
                close(fds[i].fd);
                fds[i].fd = -1;
                open_fds--;
            } else {
                len[i] += (size_t)n;
            }
        }
    }
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    *out = buf[0];
    *err = buf[1];
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

/* One loaded object as ld.so prints it: the name it was requested under and the path it was
 * loaded from (NULL: not found). */
struct pair {
    char name[512], path[512];
    bool missing;
};
struct plist {
    struct pair v[64];
    size_t n;
};

static void parse_list(const char *text, struct plist *l)
{
    l->n = 0;
    _cleanup_(freep) char *copy = vp_xstrdup(text);
    for (char *line = strtok(copy, "\n"); line; line = strtok(NULL, "\n")) {
        while (*line == '\t' || *line == ' ')
            line++;
        char *arrow = strstr(line, " => "), *addr = strstr(line, " (0x");
        if (addr)
            *addr = '\0';
        struct pair p = {0};
        if (arrow) {
            *arrow = '\0';
            snprintf(p.name, sizeof(p.name), "%s", line);
            p.missing = strcmp(arrow + 4, "not found") == 0;
            if (!p.missing)
                snprintf(p.path, sizeof(p.path), "%s", arrow + 4);
        } else {
            snprintf(p.name, sizeof(p.name), "%s", line);
            snprintf(p.path, sizeof(p.path), "%s", line);
        }
        if (strcmp(p.name, "linux-vdso.so.1") == 0 || strcmp(p.name, LDSO) == 0)
            continue;
        assert_true(l->n < VP_ARRAY_SIZE(l->v));
        l->v[l->n++] = p;
    }
}

/* The model's list, in the same form (the executable and ld.so left out). */
static void model_list(const struct vp_lspace *ls, struct plist *l)
{
    l->n = 0;
    const char *interp = ls->objs[ls->exe].elf->interp;
    for (size_t i = 0; i < ls->n; i++) {
        const struct vp_lobj *o = &ls->objs[i];
        if (i == ls->exe || (interp && strcmp(o->name, interp) == 0))
            continue;
        struct pair p = {.missing = o->faked};
        snprintf(p.name, sizeof(p.name), "%s", o->aliases.v[0]);
        if (!o->faked)
            snprintf(p.path, sizeof(p.path), "%s", o->name);
        l->v[l->n++] = p;
    }
}

static void print_lists(const struct plist *real, const struct plist *model)
{
    for (size_t i = 0; i < real->n || i < model->n; i++)
        print_message("  real: %-60s | model: %s\n",
                      i < real->n ? (real->v[i].missing ? "not found" : real->v[i].path) : "",
                      i < model->n ? (model->v[i].missing ? "not found" : model->v[i].path) : "");
}

static void assert_same_lists(const struct plist *real, const struct plist *model)
{
    bool same = real->n == model->n;
    for (size_t i = 0; same && i < real->n; i++)
        same = strcmp(real->v[i].name, model->v[i].name) == 0 &&
               strcmp(real->v[i].path, model->v[i].path) == 0 &&
               real->v[i].missing == model->v[i].missing;
    if (!same)
        print_lists(real, model);
    assert_true(same);
}

struct scen {
    const char *exe, *llp, *preload, *cwd;
    const char *expect; /* the directory (basename, symlinks resolved) of the file that answers
                         * a bare libcuda.so.1 afterwards; "-" none; "!" loading fails */
};

/* The real loader in ldd's trace mode (trace) or in --list mode. */
static int real_ldso(const struct scen *s, bool trace, char **out, char **err)
{
    _cleanup_(freep) char *exe = at(s->exe), *llp = at(s->llp), *pre = at(s->preload),
                          *cwd = at(s->cwd ? s->cwd : "/");
    char *env[4] = {0}, **e = env;
    _cleanup_(freep) char *e1 = llp ? vp_xasprintf("LD_LIBRARY_PATH=%s", llp) : NULL;
    _cleanup_(freep) char *e2 = pre ? vp_xasprintf("LD_PRELOAD=%s", pre) : NULL;
    if (e1)
        *e++ = e1;
    if (e2)
        *e++ = e2;
    if (trace)
        *e++ = "LD_TRACE_LOADED_OBJECTS=1";
    char *argv[] = {LDSO, trace ? exe : "--list", trace ? NULL : exe, NULL};
    return spawn(cwd, argv, env, out, err);
}

static int model_load(const struct scen *s, bool trace, struct vp_lspace *ls)
{
    _cleanup_(freep) char *exe = at(s->exe), *llp = at(s->llp), *pre = at(s->preload),
                          *cwd = at(s->cwd ? s->cwd : "/");
    assert_int_equal(vp_lspace_init(ls, "/", llp, cwd), 0);
    ls->trace = trace;
    struct vp_strv pv = {0};
    vp_strv_split(&pv, pre, " :");
    int r = vp_lspace_load_exe(ls, exe, (const char *const *)pv.v);
    vp_strv_release(&pv);
    return r;
}

static void check_scenario(const struct scen *s)
{
    _cleanup_(freep) char *exe = at(s->exe);
    if (access(exe, F_OK) != 0) {
        print_message("scenario %s: not built on this system, skipped\n", s->exe);
        return;
    }
    print_message("scenario %s LD_LIBRARY_PATH=%s LD_PRELOAD=%s cwd=%s\n", s->exe,
                  s->llp ? s->llp : "-", s->preload ? s->preload : "-", s->cwd ? s->cwd : "/");
    /* 1. trace mode: the same objects in the same order. */
    _cleanup_(freep) char *out = NULL, *err = NULL;
    int rc = real_ldso(s, true, &out, &err);
    struct vp_lspace ls;
    int r = model_load(s, true, &ls);
    if (strcmp(s->expect, "!") == 0) {
        /* A fatal error: both stop, with the same message. */
        assert_int_not_equal(rc, 0);
        assert_true(r < 0);
        const char *m = strstr(vp_last_error(), "error while loading shared libraries: ");
        assert_non_null(m);
        if (!strstr(err, m))
            print_message("real: %smodel: %s\n", err, vp_last_error());
        assert_non_null(strstr(err, m));
        vp_lspace_release(&ls);
        return;
    }
    assert_int_equal(rc, 0);
    assert_int_equal(r, 0);
    struct plist real, model;
    parse_list(out, &real);
    model_list(&ls, &model);
    assert_same_lists(&real, &model);
    /* Warnings (a preload that is not there) are what ld.so printed. */
    for (size_t i = 0; i < ls.warnings.n; i++)
        assert_non_null(strstr(err, ls.warnings.v[i]));
    if (!ls.warnings.n)
        assert_null(strstr(err, "ERROR"));
    /* The stated expectation. */
    ssize_t cu = vp_lspace_find_loaded(&ls, "libcuda.so.1");
    if (strcmp(s->expect, "-") == 0) {
        assert_int_equal(cu, -1);
    } else {
        assert_true(cu >= 0);
        _cleanup_(freep) char *dir = vp_dirname(ls.objs[cu].file);
        if (strcmp(vp_basename(dir), s->expect) != 0)
            print_message("libcuda.so.1 answered by %s\n", ls.objs[cu].file);
        assert_string_equal(vp_basename(dir), s->expect);
    }
    bool any_missing = false;
    for (size_t i = 0; i < model.n; i++)
        any_missing |= model.v[i].missing;
    vp_lspace_release(&ls);

    /* 2. --list (a real start): fails exactly when something is missing, with ld.so's words. */
    free(out);
    free(err);
    rc = real_ldso(s, false, &out, &err);
    r = model_load(s, false, &ls);
    assert_int_equal(rc != 0, any_missing);
    assert_int_equal(r < 0, any_missing);
    if (any_missing) {
        const char *m = strstr(vp_last_error(), "error while loading shared libraries: ");
        assert_non_null(m);
        if (!strstr(err, m))
            print_message("real: %smodel: %s\n", err, vp_last_error());
        assert_non_null(strstr(err, m));
    }
    vp_lspace_release(&ls);
}

static const struct scen scenarios[] = {
    /* Plain search: LD_LIBRARY_PATH or nothing (libc.so.6 comes from ld.so.cache). */
    {"@/bin/plain", NULL, NULL, NULL, "-"},
    {"@/bin/plain", "@/alt", NULL, NULL, "alt"},
    /* §1: RPATH beats LD_LIBRARY_PATH; LD_LIBRARY_PATH beats RUNPATH. */
    {"@/bin/rpath-real", "@/alt", NULL, NULL, "real"},
    {"@/bin/runpath-real", NULL, NULL, NULL, "real"},
    {"@/bin/runpath-real", "@/alt", NULL, NULL, "alt"},
    /* §1: the executable's RPATH is inherited by its libraries, its RUNPATH is not. */
    {"@/bin/rpath-mid", "@/alt", NULL, NULL, "real"},
    {"@/bin/runpath-mid", NULL, NULL, NULL, "-"},
    {"@/bin/runpath-mid", "@/alt", NULL, NULL, "alt"},
    /* §1: RPATH up the loader chain (exe -> A -> B -> libcuda); A's RUNPATH is not. */
    {"@/bin/chain-rpath", NULL, NULL, NULL, "real"},
    {"@/bin/chain-runpath", NULL, NULL, NULL, "-"},
    {"@/bin/chain-runpath", "@/alt", NULL, NULL, "alt"},
    /* A library's own RPATH / RUNPATH against LD_LIBRARY_PATH. */
    {"@/bin/mid-rpath", "@/alt", NULL, NULL, "real"},
    {"@/bin/mid-runpath", NULL, NULL, NULL, "real"},
    {"@/bin/mid-runpath", "@/alt", NULL, NULL, "alt"},
    /* §3: $ORIGIN in RPATH, ${ORIGIN} in RUNPATH, $ORIGIN in DT_NEEDED; $LIB, ${PLATFORM};
     * LD_LIBRARY_PATH's $ORIGIN is the executable's. */
    {"@/bin/origin-rpath", NULL, NULL, NULL, "real"},
    {"@/bin/origin-runpath", NULL, NULL, NULL, "real"},
    {"@/bin/origin-runpath", "@/alt", NULL, NULL, "alt"},
    {"@/bin/origin-needed", "@/alt", NULL, NULL, "shim"},
    {"@/bin/dst-lib", NULL, NULL, NULL, "x86_64-linux-gnu"},
    {"@/bin/dst-platform", NULL, NULL, NULL, "x86_64"},
    {"@/bin/plain", "$ORIGIN/../shim", NULL, NULL, "shim"},
    /* §3: a relative DT_NEEDED and an empty RPATH / LD_LIBRARY_PATH element use the cwd. */
    {"@/bin/relative-needed", NULL, NULL, "@", "shim"},
    {"@/bin/relative-needed", NULL, NULL, "/", "-"},
    {"@/bin/empty-rpath-elem", NULL, NULL, "@/real", "real"},
    {"@/bin/empty-rpath-elem", NULL, NULL, "/", "alt"},
    {"@/bin/plain", ":", NULL, "@/shim", "shim"},
    /* §3: $ORIGIN of a library is the directory it was found in, symlinks not resolved. */
    {"@/bin/sym", NULL, NULL, NULL, "sym"},
    {"@/bin/symd", NULL, NULL, NULL, "realdir"},
    /* §2: soname match of an already loaded shim (absolute DT_NEEDED) beats a RUNPATH. */
    {"@/bin/abs-shim", NULL, NULL, NULL, "shim"},
    /* §2: breadth first: the shim appended last still wins over LD_LIBRARY_PATH... */
    {"@/bin/abs-shim-last", "@/real", NULL, NULL, "shim"},
    /* ...unless the executable itself lists libcuda.so.1 earlier (two copies load). */
    {"@/bin/cuda-first-shim-last", "@/real", NULL, NULL, "real"},
    /* §2: the same file under another name is the loaded object. */
    {"@/bin/inode-alias", NULL, NULL, NULL, "shim"},
    /* DF_1_NODEFLIB: no cache hit in a system dir, no default dirs (for the flagged object). */
    {"@/bin/nodeflib", "@/alt", NULL, NULL, "alt"},
    {"@/bin/lib-nodeflib", NULL, NULL, NULL, "-"},
    /* A name only a default directory holds (zlib's full version name); DF_1_NODEFLIB. */
    {"@/bin/default-dir", NULL, NULL, NULL, "-"},
    {"@/bin/default-dir-nodeflib", NULL, NULL, NULL, "-"},
    /* glibc-hwcaps subdirectories first. */
    {"@/bin/plain", "@/hw", NULL, NULL, "x86-64-v2"},
    /* Candidates for another class or machine are skipped; a non-ELF file or a PIE stops. */
    {"@/bin/plain", "@/c32:@/alt", NULL, NULL, "alt"},
    {"@/bin/plain", "@/mach:@/alt", NULL, NULL, "alt"},
    {"@/bin/plain", "@/txt:@/alt", NULL, NULL, "!"},
    {"@/bin/plain", "@/pie:@/alt", NULL, NULL, "!"},
    /* LD_PRELOAD: before DT_NEEDED, by path or searched; a missing one is ignored. */
    {"@/bin/plain", "@/real", "@/shim/libcuda.so.1", NULL, "shim"},
    {"@/bin/plain", "@/alt", "libcuda.so.1", NULL, "alt"},
    {"@/bin/rpath-real", "@/alt", "/nonexistent/libx.so @/shim/libcuda.so.1", NULL, "shim"},
};

static void every_scenario_matches_the_real_loader(void **state)
{
    (void)state;
    for (size_t i = 0; i < VP_ARRAY_SIZE(scenarios); i++)
        check_scenario(&scenarios[i]);
}

/* ---- dlopen, against a probe process that calls dlopen() from a chosen object ---- */

struct step {
    const char *caller; /* "-": the executable; else a library dlopen()ed first */
    const char *in;     /* the object inside caller's dependencies that calls dlopen */
    const char *name;
};

static void model_step(struct vp_lspace *ls, const struct step *st, char *res, size_t len)
{
    size_t caller = ls->exe, idx;
    _cleanup_(freep) char *lib = at(st->caller), *in = at(st->in), *name = at(st->name);
    if (strcmp(st->caller, "-") != 0) {
        if (vp_lspace_dlopen(ls, ls->exe, lib, &caller, NULL) < 0) {
            snprintf(res, len, "ERR caller %s: %s", lib, vp_last_error());
            return;
        }
        for (size_t i = 0; in && i < ls->n; i++)
            if (strcmp(ls->objs[i].name, in) == 0)
                caller = i;
    }
    if (vp_lspace_dlopen(ls, caller, name, &idx, NULL) < 0)
        snprintf(res, len, "ERR %s", vp_last_error());
    else
        snprintf(res, len, "OK %s", ls->objs[idx].name);
}

/* Runs the steps in one probe process and in one model namespace; returns the last answer. */
static void check_steps(const char *probe, const char *llp, const struct step *steps, size_t n,
                        const char *expect)
{
    _cleanup_(freep) char *exe = at(probe), *lp = at(llp);
    char *argv[16] = {exe};
    char *env[2] = {lp ? vp_xasprintf("LD_LIBRARY_PATH=%s", lp) : NULL, NULL};
    for (size_t i = 0; i < n; i++) {
        _cleanup_(freep) char *c = at(steps[i].caller), *nm = at(steps[i].name);
        argv[i + 1] = vp_xasprintf("%s@%s", c, nm);
    }
    _cleanup_(freep) char *out = NULL, *err = NULL;
    assert_int_equal(spawn("/", argv, env, &out, &err), 0);
    struct vp_lspace ls;
    assert_int_equal(vp_lspace_init(&ls, "/", lp, "/"), 0);
    assert_int_equal(vp_lspace_load_exe(&ls, exe, NULL), 0);
    char *line = out, res[4096] = "";
    for (size_t i = 0; i < n; i++) {
        char *nl = strchr(line, '\n');
        assert_non_null(nl);
        *nl = '\0';
        model_step(&ls, &steps[i], res, sizeof(res));
        if (strcmp(line, res) != 0)
            print_message("%s LD_LIBRARY_PATH=%s step %zu %s@%s\n  real:  %s\n  model: %s\n", probe,
                          llp ? llp : "-", i, steps[i].caller, steps[i].name, line, res);
        assert_string_equal(line, res);
        line = nl + 1;
    }
    _cleanup_(freep) char *want = at(expect);
    if (strcmp(res, want) != 0)
        print_message("expected %s, got %s\n", want, res);
    assert_string_equal(res, want);
    vp_lspace_release(&ls);
    for (size_t i = 0; i < n; i++)
        free(argv[i + 1]);
    free(env[0]);
}

#define NOTFOUND "ERR libcuda.so.1: cannot open shared object file: No such file or directory"

static void dlopen_cases_match_the_real_loader(void **state)
{
    (void)state;
    const struct {
        const char *probe, *llp;
        struct step st;
        const char *expect;
    } cases[] = {
        /* §1: the caller's RUNPATH, and LD_LIBRARY_PATH before it. */
        {"@/bin/probe",
         NULL,
         {"@/lib/libcaller-runpath.so", NULL, "libcuda.so.1"},
         "OK @/real/libcuda.so.1"},
        {"@/bin/probe",
         "@/alt",
         {"@/lib/libcaller-runpath.so", NULL, "libcuda.so.1"},
         "OK @/alt/libcuda.so.1"},
        /* §1: the caller's RPATH before LD_LIBRARY_PATH. */
        {"@/bin/probe",
         "@/alt",
         {"@/lib/libcaller-rpath.so", NULL, "libcuda.so.1"},
         "OK @/real/libcuda.so.1"},
        /* §1: a caller without paths gets the executable's RPATH, not its RUNPATH. */
        {"@/bin/probe-rpath-real",
         NULL,
         {"@/lib/libcaller.so", NULL, "libcuda.so.1"},
         "OK @/real/libcuda.so.1"},
        {"@/bin/probe-runpath-real", NULL, {"@/lib/libcaller.so", NULL, "libcuda.so.1"}, NOTFOUND},
        {"@/bin/probe", NULL, {"@/lib/libcaller.so", NULL, "libcuda.so.1"}, NOTFOUND},
        /* The executable's own RUNPATH applies to its own dlopen calls. */
        {"@/bin/probe-runpath-real", NULL, {"-", NULL, "libcuda.so.1"}, "OK @/real/libcuda.so.1"},
        {"@/bin/probe-runpath-real", "@/alt", {"-", NULL, "libcuda.so.1"}, "OK @/alt/libcuda.so.1"},
        /* §1: RPATH up the loader chain: B (no paths, A's DT_NEEDED) calls dlopen. */
        {"@/bin/probe",
         NULL,
         {"@/lib/liba-rpath.so", "@/lib/libb.so", "libcuda.so.1"},
         "OK @/real/libcuda.so.1"},
        {"@/bin/probe",
         "@/alt",
         {"@/lib/liba-runpath.so", "@/lib/libb.so", "libcuda.so.1"},
         "OK @/alt/libcuda.so.1"},
        {"@/bin/probe",
         NULL,
         {"@/lib/liba-runpath.so", "@/lib/libb.so", "libcuda.so.1"},
         "ERR caller @/lib/liba-runpath.so: libcuda.so.1: cannot open shared object file: No such "
         "file or directory"},
        {"@/bin/probe-rpath-real",
         NULL,
         {"@/lib/liba-runpath.so", "@/lib/libb.so", "libcuda.so.1"},
         "OK @/real/libcuda.so.1"},
        /* §1: a dlopen()ed object has no l_loader: its needs do not see the caller's RPATH. */
        {"@/bin/probe", NULL, {"@/lib/libcaller-rpath.so", NULL, "libmid.so"}, NOTFOUND},
        {"@/bin/probe-rpath-real",
         NULL,
         {"@/lib/libcaller-rpath.so", NULL, "libmid.so"},
         "OK @/lib/libmid.so"},
    };
    for (size_t i = 0; i < VP_ARRAY_SIZE(cases); i++)
        check_steps(cases[i].probe, cases[i].llp, &cases[i].st, 1, cases[i].expect);

    /* §2: once the shim is loaded by path, every bare-name dlopen gets it, whatever the
     * caller's paths say. */
    const struct step shim_first[] = {
        {"-", NULL, "@/shim/libcuda.so.1"},
        {"@/lib/libcaller-runpath.so", NULL, "libcuda.so.1"},
        {"@/lib/libcaller-rpath.so", NULL, "libcuda.so.1"},
        {"-", NULL, "libcuda.so.1"},
    };
    check_steps("@/bin/probe", "@/alt", shim_first, 4, "OK @/shim/libcuda.so.1");
    /* §2: loaded after the real one, the shim is a second copy and the first still answers. */
    const struct step real_first[] = {
        {"@/lib/libcaller-runpath.so", NULL, "libcuda.so.1"},
        {"-", NULL, "@/shim/libcuda.so.1"},
        {"-", NULL, "libcuda.so.1"},
    };
    check_steps("@/bin/probe", NULL, real_first, 3, "OK @/real/libcuda.so.1");
    /* The same file through a symlink is the loaded object (st_dev/st_ino). */
    const struct step alias[] = {
        {"-", NULL, "@/shim/libcuda.so.1"},
        {"-", NULL, "@/shimalias/libcuda-shim.so"},
    };
    check_steps("@/bin/probe", NULL, alias, 2, "OK @/shim/libcuda.so.1");
}

/* ---- what the model records and explains ---- */

static size_t obj_named(const struct vp_lspace *ls, const char *name)
{
    _cleanup_(freep) char *n = at(name);
    for (size_t i = 0; i < ls->n; i++)
        if (strcmp(ls->objs[i].name, n) == 0)
            return i;
    fail_msg("no object %s", n);
    return SIZE_MAX;
}

static void load(struct vp_lspace *ls, const char *exe, const char *llp, bool trace)
{
    struct scen s = {exe, llp, NULL, NULL, NULL};
    assert_int_equal(model_load(&s, trace, ls), 0);
}

static void assert_describes(const struct vp_lspace *ls, const struct vp_lfound *f,
                             const char *want)
{
    _cleanup_(freep) char *d = vp_lfound_describe(ls, f), *w = at(want);
    assert_string_equal(d, w);
}

static void explanations_name_the_rule_that_matched(void **state)
{
    (void)state;
    struct vp_lspace ls;
    load(&ls, "@/bin/plain", "@/c32:@/alt", false);
    size_t cu = (size_t)vp_lspace_find_loaded(&ls, "libcuda.so.1");
    assert_int_equal(ls.objs[cu].found.how, VP_HOW_LD_LIBRARY_PATH);
    assert_int_equal(ls.objs[cu].found.entry, 1);
    assert_describes(&ls, &ls.objs[cu].found, "via LD_LIBRARY_PATH entry 2 (@/alt/)");
    size_t libc = (size_t)vp_lspace_find_loaded(&ls, "libc.so.6");
    assert_int_equal(ls.objs[libc].found.how, VP_HOW_CACHE);
    assert_int_equal(ls.objs[libc].loader, ls.exe);
    vp_lspace_release(&ls);

    load(&ls, "@/bin/rpath-mid", "@/alt", false);
    cu = (size_t)vp_lspace_find_loaded(&ls, "libcuda.so.1");
    assert_int_equal(ls.objs[cu].found.how, VP_HOW_RPATH);
    assert_int_equal(ls.objs[cu].found.obj, ls.exe);
    assert_int_equal(ls.objs[cu].loader, obj_named(&ls, "@/lib/libmid.so"));
    assert_describes(&ls, &ls.objs[cu].found, "via DT_RPATH entry 1 of @/bin/rpath-mid (@/real/)");
    vp_lspace_release(&ls);

    load(&ls, "@/bin/chain-rpath", NULL, false);
    cu = (size_t)vp_lspace_find_loaded(&ls, "libcuda.so.1");
    assert_int_equal(ls.objs[cu].found.how, VP_HOW_RPATH);
    assert_int_equal(ls.objs[cu].found.obj, obj_named(&ls, "@/lib/liba-rpath.so"));
    vp_lspace_release(&ls);

    load(&ls, "@/bin/mid-runpath", NULL, false);
    cu = (size_t)vp_lspace_find_loaded(&ls, "libcuda.so.1");
    assert_int_equal(ls.objs[cu].found.how, VP_HOW_RUNPATH);
    assert_describes(&ls, &ls.objs[cu].found,
                     "via DT_RUNPATH entry 1 of @/lib/libmid-runpath.so (@/real/)");
    vp_lspace_release(&ls);

    /* The shim by path; then the name the RUNPATH library asks for is its soname. */
    load(&ls, "@/bin/abs-shim", NULL, false);
    size_t shim = obj_named(&ls, "@/shim/libcuda.so.1");
    assert_int_equal(ls.objs[shim].found.how, VP_HOW_PATH);
    struct vp_lfound f;
    size_t n = ls.n;
    assert_int_equal(
        vp_lspace_resolve(&ls, obj_named(&ls, "@/lib/libmid-runpath.so"), "libcuda.so.1", &f), 0);
    assert_int_equal(f.how, VP_HOW_LOADED_SONAME);
    assert_int_equal(f.obj, shim);
    assert_describes(&ls, &f, "already loaded @/shim/libcuda.so.1, whose DT_SONAME matches");
    vp_lfound_release(&f);
    /* resolve() loads nothing; an unknown name is an answer, not an error. */
    assert_int_equal(vp_lspace_resolve(&ls, ls.exe, "libnothere.so.3", &f), 0);
    assert_int_equal(f.how, VP_HOW_NOT_FOUND);
    assert_null(f.path);
    vp_lfound_release(&f);
    assert_int_equal(ls.n, n);
    vp_lspace_release(&ls);

    /* The symlinked name of a loaded file becomes an alias of that object. */
    load(&ls, "@/bin/inode-alias", NULL, false);
    shim = obj_named(&ls, "@/shim/libcuda.so.1");
    assert_true(vp_strv_contains(&ls.objs[shim].aliases, "libcuda-shim.so"));
    assert_int_equal(vp_lspace_find_loaded(&ls, "libcuda-shim.so"), (ssize_t)shim);
    assert_int_equal(vp_lspace_resolve(&ls, ls.exe, "libcuda-shim.so", &f), 0);
    assert_int_equal(f.how, VP_HOW_LOADED_NAME);
    vp_lfound_release(&f);
    vp_lspace_release(&ls);

    for (int h = VP_HOW_NOT_FOUND; h <= VP_HOW_DEFAULT; h++)
        for (int k = h + 1; k <= VP_HOW_DEFAULT; k++)
            assert_string_not_equal(vp_how_name(h), vp_how_name(k));
}

static void failed_dlopen_leaves_nothing_behind(void **state)
{
    (void)state;
    struct vp_lspace ls;
    load(&ls, "@/bin/plain", "@/alt", false);
    size_t n = ls.n, idx = 12345;
    /* libmid.so loads, its libcuda.so.1 is found through LD_LIBRARY_PATH... */
    _cleanup_(freep) char *mid = at("@/lib/libmid.so"), *caller = at("@/lib/liba-runpath.so");
    struct vp_lfound f;
    assert_int_equal(vp_lspace_dlopen(&ls, ls.exe, mid, &idx, &f), 0);
    assert_int_equal(f.how, VP_HOW_PATH);
    assert_int_equal(ls.objs[idx].loader, SIZE_MAX);
    vp_lfound_release(&f);
    assert_int_equal(vp_lspace_dlopen(&ls, ls.exe, "libcuda.so.1", &idx, &f), 0);
    assert_int_equal(f.how, VP_HOW_LOADED_NAME);
    vp_lfound_release(&f);
    vp_lspace_release(&ls);
    /* ...but without it the whole dlopen fails and is undone. */
    load(&ls, "@/bin/plain", NULL, true);
    n = ls.n;
    idx = 12345;
    assert_int_equal(vp_lspace_dlopen(&ls, ls.exe, caller, &idx, NULL), -ENOENT);
    assert_int_equal(idx, 12345);
    assert_int_equal(ls.n, n);
    assert_int_equal(vp_lspace_find_loaded(&ls, "liba-runpath.so"), -1);
    assert_int_equal(vp_lspace_find_loaded(&ls, "libb.so"), -1);
    assert_int_equal(vp_lspace_dlopen(&ls, 999, "libc.so.6", &idx, NULL), -EINVAL);
    vp_lspace_release(&ls);
}

/* Secure mode (setuid programs), as reference §3-§4 documents it. */
static void secure_mode_restrictions(void **state)
{
    (void)state;
    struct vp_lspace ls;
    struct scen s = {"@/bin/plain", "@/alt", "@/shim/libcuda.so.1", NULL, NULL};
    _cleanup_(freep) char *llp = at(s.llp), *exe = at(s.exe), *pre = at(s.preload);
    const char *preload[] = {pre, NULL};
    /* LD_LIBRARY_PATH is ignored and a preload with a '/' is dropped without a word. */
    assert_int_equal(vp_lspace_init(&ls, "/", llp, "/"), 0);
    ls.secure = ls.trace = true;
    assert_int_equal(vp_lspace_load_exe(&ls, exe, preload), 0);
    assert_int_equal(vp_lspace_find_loaded(&ls, "libcuda.so.1"), -1);
    assert_int_equal(ls.warnings.n, 0);
    vp_lspace_release(&ls);
    /* Any DST in a DT_NEEDED is fatal. */
    _cleanup_(freep) char *on = at("@/bin/origin-needed"), *orp = at("@/bin/origin-rpath");
    assert_int_equal(vp_lspace_init(&ls, "/", NULL, "/"), 0);
    ls.secure = true;
    assert_int_equal(vp_lspace_load_exe(&ls, on, NULL), -EPERM);
    assert_non_null(strstr(vp_last_error(), "DST not allowed in SUID/SGID programs"));
    vp_lspace_release(&ls);
    /* $ORIGIN in the executable's RPATH counts only under a trusted directory. */
    assert_int_equal(vp_lspace_init(&ls, "/", NULL, "/"), 0);
    ls.secure = ls.trace = true;
    assert_int_equal(vp_lspace_load_exe(&ls, orp, NULL), 0);
    assert_int_equal(vp_lspace_find_loaded(&ls, "libcuda.so.1"), -1);
    vp_lspace_release(&ls);
}

static void copy_file(const char *from, const char *to)
{
    _cleanup_(freep) char *cmd = vp_xasprintf("cp '%s' '%s'", from, to);
    assert_int_equal(system(cmd), 0);
}

/* A fake root behaves as a chroot: absolute symlinks stay inside it, its own ld.so.cache and
 * ld.so.preload count, the host's do not. */
static void fake_root_is_a_chroot(void **state)
{
    (void)state;
    char root[] = "/tmp/vgpu-loader-root-XXXXXX";
    assert_non_null(mkdtemp(root));
    _cleanup_(freep) char *mk = vp_xasprintf(
        "cd %s && mkdir -p usr/lib/x86_64-linux-gnu usr/bin opt/cuda etc && ln -s /usr/lib lib",
        root);
    assert_int_equal(system(mk), 0);
    _cleanup_(freep) char *alt = at("@/alt/libcuda.so.1"), *shim = at("@/shim/libcuda.so.1"),
                          *plain = at("@/bin/plain");
    _cleanup_(freep) char *deflib = vp_xasprintf("%s/usr/lib/x86_64-linux-gnu/libcuda.so.1", root);
    _cleanup_(freep) char *app = vp_xasprintf("%s/usr/bin/app", root);
    _cleanup_(freep) char *opt = vp_xasprintf("%s/opt/cuda/libcuda.so.1", root);
    copy_file(alt, deflib);
    copy_file(plain, app);
    copy_file(shim, opt);

    struct vp_lspace ls;
    assert_int_equal(vp_lspace_init(&ls, root, NULL, "/"), 0);
    assert_null(ls.cache);
    assert_int_equal(ls.cache_error, -ENOENT);
    ls.trace = true;
    assert_int_equal(vp_lspace_load_exe(&ls, "/usr/bin/app", NULL), 0);
    ssize_t cu = vp_lspace_find_loaded(&ls, "libcuda.so.1");
    assert_true(cu >= 0);
    assert_string_equal(ls.objs[cu].name, "/lib/x86_64-linux-gnu/libcuda.so.1");
    assert_string_equal(ls.objs[cu].file, deflib);
    assert_int_equal(ls.objs[cu].found.how, VP_HOW_DEFAULT);
    assert_int_equal(ls.objs[cu].found.entry, 0);
    assert_string_equal(ls.objs[cu].origin, "/lib/x86_64-linux-gnu");
    /* No libc in this root: a placeholder, as ldd would print "not found". */
    assert_int_equal(vp_lspace_find_loaded(&ls, "libc.so.6"), -1);
    assert_true(ls.objs[ls.n - 1].faked);
    assert_string_equal(ls.objs[ls.n - 1].name, "libc.so.6");
    vp_lspace_release(&ls);

    /* Its /etc/ld.so.preload is read (with comments) before DT_NEEDED. */
    _cleanup_(freep) char *pre = vp_xasprintf(
        "printf '# vgpu\\n/opt/cuda/libcuda.so.1 # shim\\n' > %s/etc/ld.so.preload", root);
    assert_int_equal(system(pre), 0);
    assert_int_equal(vp_lspace_init(&ls, root, NULL, "/"), 0);
    ls.trace = true;
    assert_int_equal(vp_lspace_load_exe(&ls, "/usr/bin/app", NULL), 0);
    cu = vp_lspace_find_loaded(&ls, "libcuda.so.1");
    assert_string_equal(ls.objs[cu].name, "/opt/cuda/libcuda.so.1");
    assert_int_equal(ls.objs[cu].found.how, VP_HOW_PATH);
    vp_lspace_release(&ls);
    _cleanup_(freep) char *nopre = vp_xasprintf("rm %s/etc/ld.so.preload %s", root, deflib);
    assert_int_equal(system(nopre), 0);

    /* A relative symlink resolves from the directory that holds it. */
    _cleanup_(freep) char *rel = vp_xasprintf("ln -s cuda %s/opt/rel", root);
    assert_int_equal(system(rel), 0);
    assert_int_equal(vp_lspace_init(&ls, root, "/opt/rel", "/"), 0);
    ls.trace = true;
    assert_int_equal(vp_lspace_load_exe(&ls, "/usr/bin/app", NULL), 0);
    cu = vp_lspace_find_loaded(&ls, "libcuda.so.1");
    assert_true(cu >= 0);
    assert_string_equal(ls.objs[cu].name, "/opt/rel/libcuda.so.1");
    assert_string_equal(ls.objs[cu].file, opt);
    assert_string_equal(ls.objs[cu].origin, "/opt/rel");
    vp_lspace_release(&ls);

    /* Its own ld.so.cache (written by ldconfig -r, which needs root for its chroot). */
    if (geteuid() == 0) {
        _cleanup_(freep) char *lc = vp_xasprintf(
            "echo /opt/cuda > %s/etc/ld.so.conf && /sbin/ldconfig -X -r %s", root, root);
        assert_int_equal(system(lc), 0);
        assert_int_equal(vp_lspace_init(&ls, root, NULL, "/"), 0);
        assert_non_null(ls.cache);
        ls.trace = true;
        assert_int_equal(vp_lspace_load_exe(&ls, "/usr/bin/app", NULL), 0);
        cu = vp_lspace_find_loaded(&ls, "libcuda.so.1");
        assert_string_equal(ls.objs[cu].name, "/opt/cuda/libcuda.so.1");
        assert_int_equal(ls.objs[cu].found.how, VP_HOW_CACHE);
        vp_lspace_release(&ls);
    }
    _cleanup_(freep) char *rm = vp_xasprintf("rm -rf %s", root);
    assert_int_equal(system(rm), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_scenario_matches_the_real_loader),
        cmocka_unit_test(dlopen_cases_match_the_real_loader),
        cmocka_unit_test(explanations_name_the_rule_that_matched),
        cmocka_unit_test(failed_dlopen_leaves_nothing_behind),
        cmocka_unit_test(secure_mode_restrictions),
        cmocka_unit_test(fake_root_is_a_chroot),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
