/* loader: ld.so's search (glibc 2.36 elf/dl-load.c _dl_map_object, open_path, open_verify,
 * _dl_dst_substitute; dl-deps.c _dl_map_object_deps; dl-object.c origins; rtld.c preloads),
 * re-done over a root directory with every decision recorded. */
#include "loader.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

static const char *const debian12_dirs[] = {"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu",
                                            "/lib", "/usr/lib"};
/* What `ld.so --help` lists here: glibc-hwcaps levels, then the legacy hwcaps subdirectories
 * (AT_PLATFORM x86_64, tls) that 2.36 still searches. */
static const char *const debian12_subdirs[] = {"glibc-hwcaps/x86-64-v4/",
                                               "glibc-hwcaps/x86-64-v3/",
                                               "glibc-hwcaps/x86-64-v2/",
                                               "tls/x86_64/x86_64/",
                                               "tls/x86_64/",
                                               "tls/",
                                               "x86_64/x86_64/",
                                               "x86_64/",
                                               ""};

/* What a lookup saw on the way: a candidate of another ELF class, any candidate at all (ld.so
 * appends errno's text to "cannot open shared object file" only when it tried one). */
struct seen {
    bool other_class, tried;
};

/* A file a search found and verified (open_verify), not yet in the namespace. */
struct cand {
    char *file;
    struct vp_elf *elf;
    dev_t dev;
    ino_t ino;
};

static void cand_release(struct cand *c)
{
    free(c->file);
    vp_elf_free(c->elf);
    *c = (struct cand){0};
}

void vp_lfound_release(struct vp_lfound *f)
{
    free(f->path);
    free(f->dir);
    *f = (struct vp_lfound){.obj = SIZE_MAX};
}

static struct vp_lfound found_of(enum vp_how how, const char *path, size_t obj, size_t entry,
                                 const char *dir)
{
    return (struct vp_lfound){.how = how,
                              .path = path ? vp_xstrdup(path) : NULL,
                              .obj = obj,
                              .entry = entry,
                              .dir = dir ? vp_xstrdup(dir) : NULL};
}

static char *abs_path(const struct vp_lspace *ls, const char *path)
{
    return path[0] == '/' ? vp_xstrdup(path) : vp_path_join(ls->cwd, path);
}

/* The runtime path abs with symlinks resolved inside the root (chroot semantics). */
static int resolve(const struct vp_lspace *ls, const char *abs, char **ret)
{
    return vp_root_realpath(ls->root, abs, ret);
}

/* The same for a search candidate: its directory is resolved once per space (a search
 * tries the same few directories for every name), then only the last component is looked
 * at. Under the real root this costs one lstat instead of a readlink per component. */
static int resolve_candidate(const struct vp_lspace *cls, const char *abs, char **ret)
{
    /* The cache changes nothing the space means: searches stay logically read-only. */
    struct vp_lspace *ls = (struct vp_lspace *)cls;
    _cleanup_(freep) char *dir = vp_dirname(abs);
    const char *rdir = NULL;
    for (size_t i = 0; i < ls->dir_keys.n; i++)
        if (!strcmp(ls->dir_keys.v[i], dir)) {
            rdir = ls->dir_vals.v[i];
            break;
        }
    if (!rdir) {
        char *r = NULL;
        struct stat dst;
        if (resolve(ls, dir, &r) == 0) {
            _cleanup_(freep) char *d = vp_rooted(ls->root, r);
            if (stat(d, &dst) < 0 || !S_ISDIR(dst.st_mode)) {
                free(r);
                r = NULL;
            }
        }
        if (!r)
            r = vp_xstrdup(""); /* remembered as absent: nothing in it to find */
        vp_strv_push(&ls->dir_keys, dir);
        vp_strv_push_take(&ls->dir_vals, r);
        rdir = r;
    }
    if (!*rdir)
        return -ENOENT;
    _cleanup_(freep) char *cand = vp_path_join(rdir, vp_basename(abs));
    _cleanup_(freep) char *ondisk = vp_rooted(ls->root, cand);
    struct stat st;
    if (lstat(ondisk, &st) == 0 && S_ISLNK(st.st_mode))
        return resolve(ls, cand, ret);
    *ret = cand;
    cand = NULL;
    return 0;
}

/* open_verify: 1 = an x86_64 ELF file (c filled); 0 = absent, or an ELF file of another class
 * or machine, which ld.so skips (*other_class for ELFCLASS32); < 0 = ld.so's fatal error. */
static int try_file(const struct vp_lspace *ls, const char *path, struct cand *c, struct seen *sn)
{
    _cleanup_(freep) char *abs = abs_path(ls, path);
    _cleanup_(freep) char *inside = NULL;
    struct stat st;
    sn->tried = true;
    /* Most candidates do not exist: with the real root one stat() says so. */
    if (strcmp(ls->root, "/") == 0 && stat(abs, &st) < 0)
        return 0;
    bool host = false;
    for (size_t i = 0; i < ls->host_dirs.n && !host; i++) {
        size_t n = strlen(ls->host_dirs.v[i]);
        host = strncmp(abs, ls->host_dirs.v[i], n) == 0 && abs[n] == '/';
    }
    if (resolve_candidate(ls, abs, &inside) < 0 && !host)
        return 0;
    _cleanup_(freep) char *file = host ? realpath(abs, NULL) : vp_rooted(ls->root, inside);
    if (!file)
        return 0;
    if (stat(file, &st) < 0)
        return 0; /* ENOENT, ENOTDIR, EACCES: the search goes on */
    if (S_ISDIR(st.st_mode))
        return vp_error(-EISDIR, "%s: cannot read file data: Is a directory", path);
    unsigned char id[EI_NIDENT] = {0};
    _cleanup_(closep) int fd = open(file, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    if (st.st_size < (off_t)sizeof(Elf64_Ehdr) || pread(fd, id, sizeof(id), 0) != sizeof(id))
        return vp_error(-ENOEXEC, "%s: file too short", path);
    if (memcmp(id, ELFMAG, SELFMAG) != 0)
        return vp_error(-ENOEXEC, "%s: invalid ELF header", path);
    if (id[EI_CLASS] == ELFCLASS32) {
        sn->other_class = true;
        return 0;
    }
    struct vp_elf *e = NULL;
    int r = vp_elf_open(file, &e);
    if (r == -EPROTONOSUPPORT)
        return 0; /* another machine: skipped like ELFCLASS32 */
    if (r < 0) {
        char why[512];
        snprintf(why, sizeof(why), "%s", vp_last_error());
        return vp_error(r, "%s: cannot be loaded (%s)", path, why);
    }
    *c = (struct cand){.file = file, .elf = e, .dev = st.st_dev, .ino = st.st_ino};
    file = NULL;
    return 1;
}

/* The checks _dl_map_object_from_fd makes after the same-file check, for a library. */
static int check_loadable(const struct vp_elf *e, const char *name)
{
    if (e->ehdr.e_type != ET_DYN)
        return vp_error(-ENOEXEC, "%s: cannot dynamically load executable", name);
    if (!e->has_dynamic)
        return vp_error(-ENOEXEC, "%s: object file has no dynamic section", name);
    if (e->flags_1 & DF_1_PIE)
        return vp_error(-ENOEXEC, "%s: cannot dynamically load position-independent executable",
                        name);
    return 0;
}

/* is_dst: the length of token ref ("ORIGIN") at in (just past the '$'), or 0. */
static size_t is_dst(const char *in, const char *ref)
{
    size_t len = strlen(ref);
    bool curly = in[0] == '{';
    const char *p = in + curly;
    if (strncmp(p, ref, len) != 0)
        return 0;
    char c = p[len];
    if (curly ? c != '}'
              : ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                 c == '_'))
        return 0;
    return curly ? len + 2 : len;
}

/* A directory as ld.so keeps it in a search list: ending in '/'. */
static char *with_slash(const char *dir)
{
    return vp_endswith(dir, "/") ? vp_xstrdup(dir) : vp_xasprintf("%s/", dir);
}

static bool under_default_dir(const struct vp_lspace *ls, const char *path)
{
    for (size_t i = 0; i < ls->default_dirs.n; i++) {
        _cleanup_(freep) char *d = with_slash(ls->default_dirs.v[i]);
        if (vp_startswith(path, d))
            return true;
    }
    return false;
}

/* _dl_dst_substitute for one path element or DT_NEEDED name of object obj. NULL when a known
 * token has no value (ld.so then drops the element). *had_dst tells whether one was seen. */
static char *expand(const struct vp_lspace *ls, size_t obj, const char *in, bool *had_dst)
{
    const char *origin = obj < ls->n ? ls->objs[obj].origin : NULL;
    size_t cap = strlen(in) + 1, len = 0;
    char *out = vp_xmalloc(cap);
    bool trusted_check = false;
    for (const char *p = in; *p;) {
        const char *repl = NULL, *lit = p;
        size_t skip = 0, n = 1;
        if (*p == '$') {
            bool known = true;
            if ((skip = is_dst(p + 1, "ORIGIN"))) {
                if (!ls->secure || (p == in && (p[1 + skip] == '\0' || p[1 + skip] == '/')))
                    repl = origin;
                trusted_check = ls->secure && obj == ls->exe;
            } else if ((skip = is_dst(p + 1, "PLATFORM"))) {
                repl = ls->platform;
            } else if ((skip = is_dst(p + 1, "LIB"))) {
                repl = ls->lib;
            } else {
                known = false;
            }
            if (known) {
                *had_dst = true;
                if (!repl) {
                    free(out);
                    return NULL;
                }
                lit = repl;
                n = strlen(repl);
                skip++;
            }
        }
        if (len + n + 1 > cap) {
            cap = (len + n + 1) * 2;
            out = vp_xrealloc(out, cap);
        }
        memcpy(out + len, lit, n);
        len += n;
        p += skip ? skip : 1;
    }
    out[len] = '\0';
    if (trusted_check) {
        _cleanup_(freep) char *norm = vp_path_normalize(out);
        if (!under_default_dir(ls, norm)) {
            free(out);
            return NULL;
        }
    }
    return out;
}

/* A search list: directories ending in '/' (or "" for the working directory), each with the
 * index of the element it came from. */
struct slist {
    struct vp_strv dirs;
    size_t *entry;
};

static void slist_release(struct slist *l)
{
    vp_strv_release(&l->dirs);
    free(l->entry);
    l->entry = NULL;
}

/* fillin_rpath: splits s at seps, expands tokens with obj's values, drops elements that
 * expand to nothing and duplicates, normalises trailing slashes. */
static void slist_build(const struct vp_lspace *ls, size_t obj, const char *s, const char *seps,
                        struct slist *l)
{
    *l = (struct slist){0};
    size_t cap = strlen(s) + 1, entry = 0;
    l->entry = vp_xcalloc(cap, sizeof(size_t));
    for (const char *p = s;; entry++) {
        size_t n = strcspn(p, seps);
        _cleanup_(freep) char *elem = vp_xstrndup(p, n);
        char *dir = NULL;
        bool had = false;
        if (!*elem) {
            dir = vp_xstrdup("");
        } else {
            _cleanup_(freep) char *x = expand(ls, obj, elem, &had);
            size_t xl = x ? strlen(x) : 0;
            while (xl > 1 && x[xl - 1] == '/')
                xl--;
            if (xl)
                dir = xl == 1 && x[0] == '/' ? vp_xstrdup("/") : vp_xasprintf("%.*s/", (int)xl, x);
        }
        if (dir && !vp_strv_contains(&l->dirs, dir)) {
            l->entry[l->dirs.n] = entry;
            vp_strv_push_take(&l->dirs, dir);
        } else {
            free(dir);
        }
        if (!p[n])
            break;
        p += n + 1;
    }
}

/* open_path: the first verified file among dir + subdir + name. */
static int open_list(const struct vp_lspace *ls, const struct slist *l, const char *name,
                     enum vp_how how, size_t obj, struct vp_lfound *f, struct cand *c,
                     struct seen *sn)
{
    size_t nsub = ls->subdirs.n ? ls->subdirs.n : 1;
    for (size_t i = 0; i < l->dirs.n; i++)
        for (size_t k = 0; k < nsub; k++) {
            const char *sub = ls->subdirs.n ? ls->subdirs.v[k] : "";
            _cleanup_(freep) char *path = vp_xasprintf("%s%s%s", l->dirs.v[i], sub, name);
            int r = try_file(ls, path, c, sn);
            if (r > 0)
                *f = found_of(how, path, obj, l->entry[i], l->dirs.v[i]);
            if (r != 0)
                return r;
        }
    return 0;
}

static const struct vp_elf *elf_of(const struct vp_lspace *ls, size_t i)
{
    return i < ls->n ? ls->objs[i].elf : NULL;
}

/* Searches the DT_RPATH (tag 'P') or DT_RUNPATH ('U') of object i; an object with a
 * DT_RUNPATH has no DT_RPATH for ld.so. Sets *searched when the list was not empty. */
static int open_dyn_list(const struct vp_lspace *ls, size_t i, char tag, const char *name,
                         struct vp_lfound *f, struct cand *c, struct seen *sn, bool *searched)
{
    const struct vp_elf *e = elf_of(ls, i);
    const char *s = !e ? NULL : tag == 'U' ? e->runpath : e->runpath ? NULL : e->rpath;
    if (!s || !*s)
        return 0;
    struct slist l;
    slist_build(ls, i, s, ":", &l);
    int r = 0;
    if (l.dirs.n) {
        *searched = true;
        r = open_list(ls, &l, name, tag == 'U' ? VP_HOW_RUNPATH : VP_HOW_RPATH, i, f, c, sn);
    }
    slist_release(&l);
    return r;
}

static int try_cache(const struct vp_lspace *ls, size_t dl, const char *name, struct vp_lfound *f,
                     struct cand *c, struct seen *sn)
{
    /* The glibc-hwcaps levels searched are the ones the cache may answer with. */
    char lvl[16][64];
    const char *supported[17];
    size_t ns = 0;
    for (size_t k = 0; k < ls->subdirs.n && ns < 16; k++) {
        const char *s = ls->subdirs.v[k];
        if (!vp_startswith(s, "glibc-hwcaps/"))
            continue;
        s += strlen("glibc-hwcaps/");
        snprintf(lvl[ns], sizeof(lvl[ns]), "%.*s", (int)strcspn(s, "/"), s);
        supported[ns] = lvl[ns];
        ns++;
    }
    supported[ns] = NULL;
    const char *hit = vp_ldcache_lookup_hwcaps(ls->cache, name, supported);
    const struct vp_elf *e = elf_of(ls, dl);
    if (!hit || (e && (e->flags_1 & DF_1_NODEFLIB) && under_default_dir(ls, hit)))
        return 0;
    int r = try_file(ls, hit, c, sn);
    if (r > 0)
        *f = found_of(VP_HOW_CACHE, hit, SIZE_MAX, SIZE_MAX, NULL);
    return r;
}

/* The search for a bare name requested by object loader (SIZE_MAX: none). */
static int search(const struct vp_lspace *ls, size_t loader, const char *name, struct vp_lfound *f,
                  struct cand *c, struct seen *sn)
{
    const struct vp_elf *le = elf_of(ls, loader);
    bool searched = false;
    int r = 0;
    if (!le || !le->runpath) {
        bool did_main = false;
        for (size_t i = loader; r == 0 && i < ls->n; i = ls->objs[i].loader) {
            searched = false;
            r = open_dyn_list(ls, i, 'P', name, f, c, sn, &searched);
            did_main |= searched && i == ls->exe;
        }
        if (r == 0 && !did_main)
            r = open_dyn_list(ls, ls->exe, 'P', name, f, c, sn, &searched);
    }
    if (r == 0 && ls->llp && *ls->llp && !ls->secure) {
        struct slist l;
        slist_build(ls, ls->exe, ls->llp, ":;", &l);
        r = open_list(ls, &l, name, VP_HOW_LD_LIBRARY_PATH, SIZE_MAX, f, c, sn);
        slist_release(&l);
    }
    if (r == 0 && le)
        r = open_dyn_list(ls, loader, 'U', name, f, c, sn, &searched);
    size_t dl = loader < ls->n ? loader : ls->exe;
    if (r == 0 && ls->cache)
        r = try_cache(ls, dl, name, f, c, sn);
    const struct vp_elf *de = elf_of(ls, dl);
    if (r == 0 && !(de && (de->flags_1 & DF_1_NODEFLIB))) {
        struct slist l = {.dirs = {0}, .entry = vp_xcalloc(ls->default_dirs.n + 1, sizeof(size_t))};
        for (size_t i = 0; i < ls->default_dirs.n; i++) {
            l.entry[i] = i;
            vp_strv_push_take(&l.dirs, with_slash(ls->default_dirs.v[i]));
        }
        r = open_list(ls, &l, name, VP_HOW_DEFAULT, SIZE_MAX, f, c, sn);
        slist_release(&l);
    }
    return r;
}

static ssize_t match_loaded(const struct vp_lspace *ls, const char *name, enum vp_how *how)
{
    for (size_t i = 0; i < ls->n; i++) {
        const struct vp_lobj *o = &ls->objs[i];
        if (o->faked)
            continue;
        /* The executable's l_name is "" in a real process: it never matches by name. */
        if (i != ls->exe && (strcmp(o->name, name) == 0 || vp_strv_contains(&o->aliases, name))) {
            *how = VP_HOW_LOADED_NAME;
            return (ssize_t)i;
        }
        if (o->elf && o->elf->soname && strcmp(o->elf->soname, name) == 0) {
            *how = VP_HOW_LOADED_SONAME;
            return (ssize_t)i;
        }
    }
    return -1;
}

ssize_t vp_lspace_find_loaded(const struct vp_lspace *ls, const char *name)
{
    enum vp_how how;
    return match_loaded(ls, name, &how);
}

/* _dl_map_object without the side effects: an object already loaded (by name, soname or the
 * same file), a new verified file (c filled), or VP_HOW_NOT_FOUND. */
static int lookup(const struct vp_lspace *ls, size_t loader, const char *name, struct vp_lfound *f,
                  struct cand *c, struct seen *sn)
{
    enum vp_how how;
    ssize_t m = match_loaded(ls, name, &how);
    if (m >= 0) {
        *f = found_of(how, ls->objs[m].name, (size_t)m, SIZE_MAX, NULL);
        return 0;
    }
    int r;
    if (!strchr(name, '/')) {
        r = search(ls, loader, name, f, c, sn);
    } else {
        bool had = false;
        _cleanup_(freep) char *x =
            loader < ls->n ? expand(ls, loader, name, &had) : vp_xstrdup(name);
        r = x && *x ? try_file(ls, x, c, sn) : 0;
        if (r > 0)
            *f = found_of(VP_HOW_PATH, x, SIZE_MAX, SIZE_MAX, NULL);
    }
    if (r <= 0) {
        if (r == 0)
            *f = found_of(VP_HOW_NOT_FOUND, NULL, SIZE_MAX, SIZE_MAX, NULL);
        return r;
    }
    for (size_t i = 0; i < ls->n; i++) {
        const struct vp_lobj *o = &ls->objs[i];
        if (!o->faked && o->ino && o->dev == c->dev && o->ino == c->ino) {
            cand_release(c);
            vp_lfound_release(f);
            *f = found_of(VP_HOW_LOADED_INODE, o->name, i, SIZE_MAX, NULL);
            break;
        }
    }
    return 0;
}

static char *origin_of(const struct vp_lspace *ls, const char *path)
{
    /* dl-object.c: the directory of l_name, made absolute with the cwd, not normalised. */
    char *abs = path[0] == '/'
                    ? vp_xstrdup(path)
                    : vp_xasprintf("%s%s%s", ls->cwd, vp_endswith(ls->cwd, "/") ? "" : "/", path);
    char *slash = strrchr(abs, '/');
    slash[slash == abs ? 1 : 0] = '\0';
    return abs;
}

static size_t add_obj(struct vp_lspace *ls, const struct vp_lobj *o)
{
    if (ls->n == ls->cap) {
        ls->cap = ls->cap ? ls->cap * 2 : 16;
        ls->objs = vp_xrealloc(ls->objs, ls->cap * sizeof(*ls->objs));
    }
    ls->objs[ls->n] = *o;
    return ls->n++;
}

static void obj_release(struct vp_lobj *o)
{
    free(o->name);
    free(o->file);
    vp_elf_free(o->elf);
    vp_strv_release(&o->aliases);
    free(o->origin);
    vp_lfound_release(&o->found);
}

/* _dl_map_object: the object that answers name for loader, loaded if need be. callmap: a
 * dlopen (the new object gets no l_loader). trace: a missing library becomes a placeholder. */
static int map_object(struct vp_lspace *ls, size_t loader, const char *name, bool callmap,
                      bool trace, size_t *ret_idx, struct vp_lfound *ret_found)
{
    struct vp_lfound f = {0};
    struct cand c = {0};
    struct seen sn = {0};
    int r = lookup(ls, loader, name, &f, &c, &sn);
    if (r < 0)
        return r;
    if (f.how == VP_HOW_NOT_FOUND && !trace) {
        vp_lfound_release(&f);
        return vp_error(-ENOENT, "%s: %s", name,
                        sn.other_class ? "wrong ELF class: ELFCLASS32"
                        : sn.tried     ? "cannot open shared object file: No such file or directory"
                                       : "cannot open shared object file");
    }
    if (f.how != VP_HOW_NOT_FOUND && c.elf && (r = check_loadable(c.elf, name)) < 0) {
        cand_release(&c);
        vp_lfound_release(&f);
        return r;
    }
    size_t idx = f.obj;
    if (f.how == VP_HOW_LOADED_INODE && !vp_strv_contains(&ls->objs[idx].aliases, name))
        vp_strv_push(&ls->objs[idx].aliases, name);
    if (f.how == VP_HOW_NOT_FOUND || c.elf) {
        struct vp_lobj o = {
            .name = vp_xstrdup(c.elf ? f.path : name),
            .file = c.file,
            .elf = c.elf,
            .loader = callmap ? SIZE_MAX : loader,
            .origin = c.elf ? origin_of(ls, f.path) : NULL,
            .faked = !c.elf,
            .dev = c.dev,
            .ino = c.ino,
        };
        vp_strv_push(&o.aliases, name);
        o.found = found_of(f.how, f.path, f.obj, f.entry, f.dir);
        idx = add_obj(ls, &o);
    }
    *ret_idx = idx;
    if (ret_found)
        *ret_found = f;
    else
        vp_lfound_release(&f);
    return 0;
}

/* _dl_map_object_deps: the DT_NEEDED of objects first..n (and of what they bring in), breadth
 * first, each looked up with the needing object as loader. */
static int load_deps(struct vp_lspace *ls, size_t first, bool trace)
{
    for (size_t q = first; q < ls->n; q++) {
        for (size_t k = 0; ls->objs[q].elf && k < ls->objs[q].elf->n_needed; k++) {
            const char *raw = ls->objs[q].elf->needed[k].name;
            bool had = false;
            _cleanup_(freep) char *name = expand(ls, q, raw, &had);
            if (had && ls->secure)
                return vp_error(-EPERM, "%s: DST not allowed in SUID/SGID programs", raw);
            if (!name || !*name)
                return vp_error(-ENOENT, "%s: empty dynamic string token substitution", raw);
            size_t idx;
            int r = map_object(ls, q, name, false, trace, &idx, NULL);
            if (r < 0)
                return r;
        }
    }
    return 0;
}

static void truncate_objs(struct vp_lspace *ls, size_t n)
{
    while (ls->n > n)
        obj_release(&ls->objs[--ls->n]);
}

int vp_lspace_init(struct vp_lspace *ls, const char *root, const char *ld_library_path,
                   const char *cwd)
{
    if (cwd && cwd[0] != '/')
        return vp_error(-EINVAL, "the working directory must be absolute: %s", cwd);
    *ls = (struct vp_lspace){
        .root = vp_xstrdup(root && *root ? root : "/"),
        .cwd = vp_xstrdup(cwd ? cwd : "/"),
        .llp = ld_library_path ? vp_xstrdup(ld_library_path) : NULL,
        .platform = "x86_64",
        .lib = "lib/x86_64-linux-gnu",
        .exe = SIZE_MAX,
    };
    for (size_t i = 0; i < VP_ARRAY_SIZE(debian12_dirs); i++)
        vp_strv_push(&ls->default_dirs, debian12_dirs[i]);
    for (size_t i = 0; i < VP_ARRAY_SIZE(debian12_subdirs); i++)
        vp_strv_push(&ls->subdirs, debian12_subdirs[i]);
    _cleanup_(freep) char *inside = NULL;
    int r = resolve(ls, "/etc/ld.so.cache", &inside);
    if (r == 0) {
        _cleanup_(freep) char *file = vp_rooted(ls->root, inside);
        r = vp_ldcache_load(file, &ls->cache);
    }
    ls->cache_error = r < 0 ? r : 0;
    return 0;
}

void vp_lspace_release(struct vp_lspace *ls)
{
    truncate_objs(ls, 0);
    free(ls->objs);
    vp_ldcache_free(ls->cache);
    vp_strv_release(&ls->default_dirs);
    vp_strv_release(&ls->subdirs);
    vp_strv_release(&ls->warnings);
    vp_strv_release(&ls->host_dirs);
    vp_strv_release(&ls->dir_keys);
    vp_strv_release(&ls->dir_vals);
    free(ls->root);
    free(ls->cwd);
    free(ls->llp);
    *ls = (struct vp_lspace){.exe = SIZE_MAX};
}

/* rtld.c: ld.so is in the namespace from the start, under its PT_INTERP path and soname. */
static void add_interp(struct vp_lspace *ls, const char *interp)
{
    struct vp_lobj o = {.name = vp_xstrdup(interp), .loader = SIZE_MAX};
    _cleanup_(freep) char *inside = NULL;
    if (resolve(ls, interp, &inside) == 0) {
        o.file = vp_rooted(ls->root, inside);
        if (vp_elf_open(o.file, &o.elf) < 0)
            o.elf = NULL;
    }
    vp_strv_push(&o.aliases, interp);
    vp_strv_push(&o.aliases, o.elf && o.elf->soname ? o.elf->soname : vp_basename(interp));
    o.origin = origin_of(ls, interp);
    o.found = found_of(VP_HOW_PATH, interp, ls->exe, SIZE_MAX, NULL);
    add_obj(ls, &o);
}

static void preload_one(struct vp_lspace *ls, const char *name, const char *where)
{
    size_t idx;
    if (ls->secure && strchr(name, '/'))
        return; /* dso_name_valid_for_suid: dropped without a word */
    int r = map_object(ls, ls->exe, name, false, false, &idx, NULL);
    if (r < 0) {
        /* ld.so prints its error string without the object name and errno text. */
        char why[512];
        const char *m = vp_last_error();
        size_t nl = strlen(name);
        if (strncmp(m, name, nl) == 0 && m[nl] == ':' && m[nl + 1] == ' ')
            m += nl + 2;
        snprintf(why, sizeof(why), "%s", m);
        if (r == -ENOENT && vp_endswith(why, ": No such file or directory"))
            why[strlen(why) - strlen(": No such file or directory")] = '\0';
        vp_strv_push_take(&ls->warnings,
                          vp_xasprintf("ERROR: ld.so: object '%s' from %s cannot be preloaded "
                                       "(%s): ignored.",
                                       name, where, why));
    }
}

/* rtld.c: /etc/ld.so.preload holds names separated by white space or ':', '#' comments. */
static void system_preload(struct vp_lspace *ls)
{
    _cleanup_(freep) char *inside = NULL, *file = NULL, *text = NULL;
    if (resolve(ls, "/etc/ld.so.preload", &inside) < 0)
        return;
    file = vp_rooted(ls->root, inside);
    if (vp_read_file(file, 1u << 20, &text, NULL) < 0)
        return;
    for (char *p = text; (p = strchr(p, '#'));)
        while (*p && *p != '\n')
            *p++ = ' ';
    struct vp_strv names = {0};
    vp_strv_split(&names, text, ": \t\n");
    for (size_t i = 0; i < names.n; i++)
        preload_one(ls, names.v[i], "/etc/ld.so.preload");
    vp_strv_release(&names);
}

int vp_lspace_load_exe(struct vp_lspace *ls, const char *exe, const char *const *preload)
{
    if (ls->exe != SIZE_MAX)
        return vp_error(-EALREADY, "%s: an executable is already loaded", exe);
    struct cand c = {0};
    struct seen sn = {0};
    int r = try_file(ls, exe, &c, &sn);
    if (r == 0)
        return vp_error(-ENOENT, "%s: %s", exe,
                        sn.other_class ? "not an x86_64 ELF file" : "No such file or directory");
    if (r < 0)
        return r;
    if (!c.elf->has_dynamic) {
        cand_release(&c);
        return vp_error(-ENOEXEC, "%s: not a dynamic executable", exe);
    }
    /* A real process's $ORIGIN is the directory of /proc/self/exe: symlinks resolved. */
    _cleanup_(freep) char *abs = abs_path(ls, exe), *real = NULL;
    if (resolve(ls, abs, &real) < 0)
        real = vp_path_normalize(abs);
    struct vp_lobj o = {.name = vp_xstrdup(exe),
                        .file = c.file,
                        .elf = c.elf,
                        .loader = SIZE_MAX,
                        .origin = vp_dirname(real)};
    vp_strv_push(&o.aliases, exe);
    o.found = found_of(VP_HOW_PATH, exe, SIZE_MAX, SIZE_MAX, NULL);
    ls->exe = add_obj(ls, &o);
    if (c.elf->interp)
        add_interp(ls, c.elf->interp);
    for (size_t i = 0; preload && preload[i]; i++)
        preload_one(ls, preload[i], "LD_PRELOAD");
    system_preload(ls);
    r = load_deps(ls, ls->exe, ls->trace);
    if (r < 0) {
        char why[512];
        snprintf(why, sizeof(why), "%s", vp_last_error());
        return vp_error(r, "%s: error while loading shared libraries: %s", exe, why);
    }
    return 0;
}

int vp_lspace_dlopen(struct vp_lspace *ls, size_t caller, const char *name, size_t *ret_idx,
                     struct vp_lfound *ret_found)
{
    if (caller >= ls->n)
        return vp_error(-EINVAL, "dlopen(%s): no object %zu to call it", name, caller);
    size_t mark = ls->n, idx;
    struct vp_lfound f = {0};
    int r = map_object(ls, caller, name, true, false, &idx, &f);
    if (r == 0 && idx >= mark)
        r = load_deps(ls, mark, false);
    if (r < 0) {
        truncate_objs(ls, mark);
        vp_lfound_release(&f);
        return r;
    }
    *ret_idx = idx;
    if (ret_found)
        *ret_found = f;
    else
        vp_lfound_release(&f);
    return 0;
}

int vp_lspace_resolve(struct vp_lspace *ls, size_t caller, const char *name, struct vp_lfound *ret)
{
    struct vp_lfound f = {0};
    struct cand c = {0};
    struct seen sn = {0};
    int r = lookup(ls, caller, name, &f, &c, &sn);
    if (r == 0 && c.elf)
        r = check_loadable(c.elf, name);
    cand_release(&c);
    if (r < 0) {
        vp_lfound_release(&f);
        return r;
    }
    *ret = f;
    return 0;
}

const char *vp_how_name(enum vp_how h)
{
    static const char *const names[] = {
        [VP_HOW_NOT_FOUND] = "not found",
        [VP_HOW_LOADED_NAME] = "loaded (name)",
        [VP_HOW_LOADED_SONAME] = "loaded (soname)",
        [VP_HOW_LOADED_INODE] = "loaded (same file)",
        [VP_HOW_PATH] = "path",
        [VP_HOW_RPATH] = "RPATH",
        [VP_HOW_LD_LIBRARY_PATH] = "LD_LIBRARY_PATH",
        [VP_HOW_RUNPATH] = "RUNPATH",
        [VP_HOW_CACHE] = "ld.so.cache",
        [VP_HOW_DEFAULT] = "default directory",
    };
    return (size_t)h < VP_ARRAY_SIZE(names) && names[h] ? names[h] : "unknown";
}

char *vp_lfound_describe(const struct vp_lspace *ls, const struct vp_lfound *f)
{
    const char *obj = f->obj < ls->n ? ls->objs[f->obj].name : "?";
    const char *dir = f->dir && *f->dir ? f->dir : "(the working directory)";
    switch (f->how) {
    case VP_HOW_NOT_FOUND:
        return vp_xstrdup("not found");
    case VP_HOW_LOADED_NAME:
        return vp_xasprintf("already loaded as %s", obj);
    case VP_HOW_LOADED_SONAME:
        return vp_xasprintf("already loaded %s, whose DT_SONAME matches", obj);
    case VP_HOW_LOADED_INODE:
        return vp_xasprintf("the same file as the already loaded %s", obj);
    case VP_HOW_PATH:
        return vp_xstrdup("the path itself (no search)");
    case VP_HOW_RPATH:
        return vp_xasprintf("via DT_RPATH entry %zu of %s (%s)", f->entry + 1, obj, dir);
    case VP_HOW_RUNPATH:
        return vp_xasprintf("via DT_RUNPATH entry %zu of %s (%s)", f->entry + 1, obj, dir);
    case VP_HOW_LD_LIBRARY_PATH:
        return vp_xasprintf("via LD_LIBRARY_PATH entry %zu (%s)", f->entry + 1, dir);
    case VP_HOW_CACHE:
        return vp_xstrdup("via /etc/ld.so.cache");
    case VP_HOW_DEFAULT:
        return vp_xasprintf("via default directory %s", dir);
    }
    return vp_xstrdup("unknown");
}
