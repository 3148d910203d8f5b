/* migrate: the plan (what to do with each hook's file), its transaction, ldconfig and the
 * checks of the running system afterwards. */
#include "migrate.h"
#include "blake3.h"
#include "fileops.h"
#include "ldcache.h"
#include "spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#define DISABLED_SUFFIX ".disabled-by-vgpu-patch"
#define MAX_TEXT        (1 << 20)

const char *vp_migrate_action_name(enum vp_migrate_action a)
{
    static const char *const names[] = {"removed", "edited", "disabled", "kept-package-owned",
                                        "kept-manual"};
    return names[a];
}

/* ---- package ownership ---- */

/* A system program by absolute path (they run with an exact environment, no PATH). */
static const char *find_program(const char *const *paths, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (access(paths[i], X_OK) == 0)
            return paths[i];
    return NULL;
}

/* `dpkg-query -S path` (with --root=ROOT for another root: dpkg < 1.21 knows no --root,
 * and "/" needs none). 0 with *ret_owner the owning package(s) or NULL when dpkg says no
 * package has path; any other outcome is an error: the file may be a package's. */
static int dpkg_query(const char *bin, const char *root, const char *path, char **ret_owner)
{
    bool other = strcmp(root, "/") != 0;
    _cleanup_(freep) char *root_opt = vp_xasprintf("--root=%s", root);
    char *argv[] = {(char *)bin, other ? root_opt : "-S", other ? "-S" : (char *)path,
                    other ? (char *)path : NULL, NULL};
    char *envp[] = {"LC_ALL=C", "PATH=/usr/sbin:/usr/bin:/sbin:/bin", NULL};
    struct vp_spawn_result res;
    int r = vp_spawn(argv, envp, false, 30000, &res);
    if (r < 0)
        return vp_error_errno(r, "cannot run %s", bin);
    *ret_owner = NULL;
    if (!vp_spawn_ok(&res)) {
        bool none = !res.timed_out && WIFEXITED(res.status) && WEXITSTATUS(res.status) == 1 &&
                    res.err && strstr(res.err, "no path found");
        _cleanup_(freep) char *how =
            res.timed_out ? vp_xstrdup("timed out") : vp_xasprintf("status %d", res.status);
        if (!none)
            r = vp_error(-EIO, "%s -S %s failed (%s): %.200s", bin, path, how,
                         res.err ? res.err : "");
        vp_spawn_result_release(&res);
        return r;
    }
    /* "pkg[, pkg2]: path" per line; a pattern search could match more than path. */
    for (char *line = res.out, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        char *sep = strstr(line, ": ");
        if (vp_startswith(line, "diversion by ") || vp_startswith(line, "local diversion "))
            continue; /* "diversion by P from: path" names no owner */
        if (sep && !strcmp(sep + 2, path)) {
            *ret_owner = vp_xstrndup(line, (size_t)(sep - line));
            break;
        }
    }
    vp_spawn_result_release(&res);
    return 0;
}

int vp_dpkg_owner_by(const char *bin, const char *root, const char *path, char **ret_owner)
{
    *ret_owner = NULL;
    if (!bin || access(bin, X_OK) != 0) {
        /* No dpkg-query: nothing is a package's only where there is no dpkg database
         * (whose existence alone is tested; it is dpkg-query's to read). */
        _cleanup_(freep) char *lib = vp_path_join("/var/lib", "dpkg");
        _cleanup_(freep) char *db = vp_path_join(lib, "status");
        _cleanup_(freep) char *ondisk = NULL;
        struct stat st;
        if (vp_root_ondisk(root, db, &ondisk) == 0 && lstat(ondisk, &st) == 0)
            return vp_error(-ENOENT,
                            "dpkg-query is not installed but %s exists: cannot tell "
                            "whether a package owns %s",
                            db, path);
        vp_clear_error();
        return 0;
    }
    /* Packages list /lib/... or /usr/lib/... (lib64 likewise); on a merged /usr both
     * name one file. */
    _cleanup_(freep) char *alt = vp_startswith(path, "/usr/lib") ? vp_xstrdup(path + 4)
                                 : vp_startswith(path, "/lib")   ? vp_xasprintf("/usr%s", path)
                                                                 : NULL;
    int r = dpkg_query(bin, root, path, ret_owner);
    if (r < 0 || *ret_owner || !alt)
        return r;
    return dpkg_query(bin, root, alt, ret_owner);
}

int vp_dpkg_owner(const char *root, const char *path, char **ret_owner)
{
    static const char *const bins[] = {"/usr/bin/dpkg-query", "/bin/dpkg-query"};
    return vp_dpkg_owner_by(find_program(bins, VP_ARRAY_SIZE(bins)), root, path, ret_owner);
}

/* ---- the plan ---- */

static bool is_script(const char *path)
{
    return vp_startswith(path, "/etc/profile.d/") && vp_endswith(path, ".sh");
}

static bool is_unit_file(const char *path)
{
    return strstr(path, ".service.d/") || vp_endswith(path, ".service");
}

/* A drop-in or profile.d script is read by name pattern: another name disables it. */
static bool can_disable(const char *path)
{
    return (strstr(path, ".service.d/") && vp_endswith(path, ".conf")) || is_script(path);
}

static bool line_based(enum vp_hook_kind k)
{
    return k != VP_HOOK_SYSTEM_LIB && k != VP_HOOK_TREE_LIB;
}

static void add_drop(struct vp_migrate_file *f, unsigned line, enum vp_drop_how how,
                     const char *word)
{
    f->drops = vp_xrealloc(f->drops, (f->n_drops + 1) * sizeof(*f->drops));
    f->drops[f->n_drops++] = (struct vp_drop){line, how, NULL};
    if (word)
        vp_strv_push(&f->words, word);
}

/* The words are stored apart (the array may move): point the drops at them. */
static void bind_words(struct vp_migrate_file *f)
{
    size_t w = 0;
    for (size_t i = 0; i < f->n_drops; i++)
        if (f->drops[i].how != VP_DROP_LINE && f->drops[i].how != VP_DROP_SHELL_LINE)
            f->drops[i].word = f->words.v[w++];
}

static void hook_drops(struct vp_migrate_file *f, const struct vp_hook *k)
{
    switch (k->kind) {
    case VP_HOOK_PRELOAD_FILE:
        add_drop(f, k->line, VP_DROP_PRELOAD_WORD, k->arg);
        break;
    case VP_HOOK_UNIT_ENV:
        add_drop(f, k->line, VP_DROP_ASSIGNMENT, k->arg);
        break;
    case VP_HOOK_EXEC_WRAPPER:
        /* The drop-in's reset goes with it: the unit's own ExecStart= applies again. */
        add_drop(f, k->line, VP_DROP_LINE, NULL);
        if (k->reset_line)
            add_drop(f, k->reset_line, VP_DROP_LINE, NULL);
        break;
    default:
        add_drop(f, k->line, is_script(f->path) ? VP_DROP_SHELL_LINE : VP_DROP_LINE, NULL);
        break;
    }
}

/* The first free name of path.disabled-by-vgpu-patch[.N] (a runtime path). */
static char *disabled_name(const char *root, const char *path)
{
    for (unsigned i = 0;; i++) {
        char *to = i ? vp_xasprintf("%s%s.%u", path, DISABLED_SUFFIX, i)
                     : vp_xasprintf("%s%s", path, DISABLED_SUFFIX);
        _cleanup_(freep) char *ondisk = NULL;
        struct stat st;
        if (vp_root_ondisk(root, to, &ondisk) < 0 || lstat(ondisk, &st) < 0 || i >= 999)
            return to;
        free(to);
    }
}

static void keep_manual(struct vp_migrate_file *f, char *reason)
{
    f->action = VP_MIGRATE_KEEP_MANUAL;
    free(f->reason);
    f->reason = reason;
}

static void b3_of(const void *data, size_t len, char out[VP_B3_HEX]);

/* Reads the file and decides between editing and disabling it. A link is disabled by
 * renaming the link; edited, it is the file it points to (inside the root) that is. */
static int decide_edit(const char *root, struct vp_migrate_file *f)
{
    _cleanup_(freep) char *ondisk = NULL;
    _cleanup_(freep) char *text = NULL, *out = NULL;
    size_t len, olen;
    struct stat st;
    int r = vp_root_ondisk(root, f->path, &ondisk);
    if (r < 0) {
        keep_manual(f, vp_xasprintf("%s: left alone", vp_last_error()));
        return 0;
    }
    bool link = lstat(ondisk, &st) == 0 && S_ISLNK(st.st_mode);
    _cleanup_(freep) char *real = NULL, *target = NULL;
    if (link &&
        (vp_root_realpath(root, f->path, &real) < 0 || vp_root_ondisk(root, real, &target) < 0)) {
        keep_manual(f, vp_xasprintf("it is a link that cannot be followed inside the root (%s): "
                                    "edit the file it points to by hand",
                                    vp_last_error()));
        return 0;
    }
    if ((r = vp_read_file(link ? target : ondisk, MAX_TEXT, &text, &len)) < 0)
        return vp_error_errno(r, "cannot read %s", link ? target : ondisk);
    bind_words(f);
    b3_of(text, len, f->b3); /* what the drops were planned on: staging checks it */
    if ((r = vp_text_drop(text, len, f->drops, f->n_drops, &out, &olen)) < 0)
        return vp_error(-EPROTO,
                        "%s: migrate reported a hook it cannot find there to edit: "
                        "nothing was changed; remove it by hand",
                        f->path);
    f->action = VP_MIGRATE_EDIT;
    if (can_disable(f->path) && vp_text_sets_nothing(out, olen, !is_script(f->path))) {
        f->action = VP_MIGRATE_DISABLE;
        f->to = disabled_name(root, f->path);
    } else if (link) {
        f->via = f->path;
        f->path = vp_xstrdup(real);
    }
    return 0;
}

/* Keeps f (returns true) when a package owns path, or when that cannot be told: package
 * protection fails closed. */
static bool owner_check(const char *root, struct vp_migrate_file *f, const char *path)
{
    char *owner = NULL;
    if (vp_dpkg_owner(root, path, &owner) < 0) {
        keep_manual(f, vp_xasprintf("%s may belong to a package: %s", path, vp_last_error()));
        vp_clear_error();
        return true;
    }
    if (!owner)
        return false;
    free(f->package);
    f->package = owner;
    f->action = VP_MIGRATE_KEEP_PACKAGE;
    return true;
}

int vp_migrate_plan(const char *root, const struct vp_hooks *h, struct vp_migrate_plan *ret)
{
    struct vp_migrate_plan p = {.of_hook = vp_xcalloc(h->n + 1, sizeof(size_t)),
                                .n_hooks = h->n,
                                .shim_dir = h->shim_dir ? vp_xstrdup(h->shim_dir) : NULL};
    for (size_t i = 0; i < h->n; i++) {
        const struct vp_hook *k = &h->v[i];
        size_t f = 0;
        while (f < p.n && strcmp(p.files[f].path, k->file))
            f++;
        if (f == p.n) {
            p.files = vp_xrealloc(p.files, (p.n + 1) * sizeof(*p.files));
            p.files[p.n++] = (struct vp_migrate_file){
                .path = vp_xstrdup(k->file), .kind = k->kind, .action = VP_MIGRATE_REMOVE};
        }
        p.of_hook[i] = f;
        struct vp_migrate_file *mf = &p.files[f];
        if (k->in_unit)
            mf->action = VP_MIGRATE_KEEP_MANUAL;
        else if (k->manual && mf->action != VP_MIGRATE_KEEP_MANUAL)
            keep_manual(mf, vp_xasprintf("line %u: %s", k->line, k->manual));
        if (line_based(k->kind) && k->line)
            hook_drops(mf, k);
    }
    int r = 0;
    for (size_t f = 0; f < p.n && r == 0; f++) {
        struct vp_migrate_file *mf = &p.files[f];
        _cleanup_(freep) char *ondisk = NULL;
        if (mf->action == VP_MIGRATE_KEEP_MANUAL)
            continue;
        if (vp_root_ondisk(root, mf->path, &ondisk) < 0) {
            keep_manual(mf, vp_xasprintf("%s: left alone", vp_last_error()));
            vp_clear_error();
            continue;
        }
        if (owner_check(root, mf, mf->path))
            continue;
        if (line_based(mf->kind) && (r = decide_edit(root, mf)) < 0)
            break;
        /* After decide_edit: an edit through a link changes the file it leads to. */
        if (mf->via && mf->action == VP_MIGRATE_EDIT)
            owner_check(root, mf, mf->path);
    }
    if (r < 0) {
        vp_migrate_plan_release(&p);
        return r;
    }
    *ret = p;
    return 0;
}

void vp_migrate_plan_release(struct vp_migrate_plan *p)
{
    for (size_t i = 0; i < p->n; i++) {
        free(p->files[i].path);
        free(p->files[i].package);
        free(p->files[i].to);
        free(p->files[i].reason);
        free(p->files[i].via);
        free(p->files[i].drops);
        vp_strv_release(&p->files[i].words);
    }
    free(p->files);
    free(p->of_hook);
    free(p->shim_dir);
    *p = (struct vp_migrate_plan){0};
}

bool vp_migrate_changes_units(const struct vp_migrate_plan *p)
{
    for (size_t i = 0; i < p->n; i++)
        if (p->files[i].action <= VP_MIGRATE_DISABLE && is_unit_file(p->files[i].path))
            return true;
    return false;
}

size_t vp_migrate_kept(const struct vp_migrate_plan *p)
{
    size_t n = 0;
    for (size_t i = 0; i < p->n; i++)
        n += p->files[i].action >= VP_MIGRATE_KEEP_PACKAGE;
    return n;
}

/* ---- the transaction ---- */

struct apply_ctx {
    const char *root;
    const char *shim_dir;
    struct vp_txn *t;
    char *bdir;
    struct vp_manifest *m;
};

static int read_fd(int fd, const struct stat *st, char **ret)
{
    if ((uint64_t)st->st_size > MAX_TEXT)
        return vp_error(-EFBIG, "a file of %lld bytes is no configuration file",
                        (long long)st->st_size);
    char *buf = vp_xmalloc((size_t)st->st_size + 1);
    size_t got = 0;
    while (got < (size_t)st->st_size) {
        ssize_t n = pread(fd, buf + got, (size_t)st->st_size - got, (off_t)got);
        if (n <= 0) {
            free(buf);
            return vp_error_errno(n < 0 ? -errno : -EIO, "cannot read a file to migrate");
        }
        got += (size_t)n;
    }
    buf[got] = '\0';
    *ret = buf;
    return 0;
}

static void b3_of(const void *data, size_t len, char out[VP_B3_HEX])
{
    struct vp_b3 h;
    uint8_t d[32];
    vp_b3_init(&h);
    vp_b3_update(&h, data, len);
    vp_b3_final(&h, d);
    vp_b3_hex(d, out);
}

static char *describe_drops(const struct vp_migrate_file *f)
{
    char *s = vp_xstrdup("");
    for (size_t i = 0; i < f->n_drops; i++) {
        char *next = vp_xasprintf("%s%sline %u: %s", s, *s ? "; " : "", f->drops[i].line,
                                  f->drops[i].word ? f->drops[i].word : "the whole line");
        free(s);
        s = next;
    }
    return s;
}

static struct vp_entry entry_for(const struct vp_migrate_file *f, const char *method,
                                 const struct stat *st, const char *b3)
{
    struct vp_entry e = {.kind = VP_ENTRY_MIGRATED,
                         .path = vp_xstrdup(f->path),
                         .role = vp_xstrdup(vp_hook_kind_name(f->kind)),
                         .method = vp_xstrdup(method),
                         .mode = st->st_mode & 07777,
                         .uid = st->st_uid,
                         .gid = st->st_gid};
    vp_fileid_of(&e.orig, st, b3);
    return e;
}

/* Scans the staged edit of f (on disk at tmp) as the file itself was scanned: a hook
 * still found there means the edit took out something else, and nothing may change. */
static int check_staged(struct apply_ctx *c, const struct vp_migrate_file *f, const char *tmp)
{
    struct vp_hooks h;
    int r = vp_hooks_scan_file(c->root, c->shim_dir, f->kind, f->path, tmp, &h);
    if (r == 0 && h.n)
        r = vp_error(-EPROTO,
                     "%s: the edit would leave a hook in it (%s): nothing was changed; remove "
                     "it by hand",
                     f->path, h.v[0].what);
    vp_hooks_release(&h);
    return r;
}

/* Writes the edited text beside the file (same owner, mode and attributes) and keeps the
 * original inode as the backup; the rename comes with the others. */
static int stage_edit(struct apply_ctx *c, const struct vp_migrate_file *f)
{
    _cleanup_(freep) char *ondisk = NULL;
    int r = vp_root_ondisk(c->root, f->path, &ondisk);
    if (r < 0)
        return r;
    _cleanup_(closep) int fd = open(ondisk, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0)
        return vp_error_errno(-errno, "cannot open %s", ondisk);
    if (!S_ISREG(st.st_mode))
        return vp_error(-EAGAIN, "%s is no regular file any more", f->path);
    _cleanup_(freep) char *text = NULL, *out = NULL;
    size_t olen;
    r = read_fd(fd, &st, &text);
    if (r < 0)
        return r;
    char b3[VP_B3_HEX], nb3[VP_B3_HEX];
    b3_of(text, (size_t)st.st_size, b3);
    /* The drops name lines by number: they hold only for the text they were planned on. */
    if ((*f->b3 && strcmp(b3, f->b3)) ||
        vp_text_drop(text, (size_t)st.st_size, f->drops, f->n_drops, &out, &olen) < 0)
        return vp_error(-ESTALE, "%s changed while it was read; nothing was changed: run again",
                        f->path);
    b3_of(out, olen, nb3);
    int wfd;
    const char *tmp;
    if ((r = vp_txn_stage_file(c->t, ondisk, &wfd, &tmp)) < 0)
        return r;
    struct stat tst;
    if (write(wfd, out, olen) != (ssize_t)olen)
        r = vp_error_errno(-errno, "cannot write %s", tmp);
    else if ((r = vp_copy_attributes(fd, wfd, &st, false, ondisk)) == 0 &&
             (fsync(wfd) < 0 || fstat(wfd, &tst) < 0))
        r = vp_error_errno(-errno, "cannot sync %s", tmp);
    close(wfd);
    if (r < 0 || (r = check_staged(c, f, tmp)) < 0)
        return r;
    _cleanup_(freep) char *backup =
        vp_xasprintf("%s/migrated.%s.%llu", c->bdir, b3, (unsigned long long)st.st_ino);
    if ((r = vp_txn_keep_prev(c->t, ondisk, fd, &st, backup, true, b3)) < 0)
        return r;
    struct vp_entry e = entry_for(f, "edited", &st, b3);
    vp_fileid_of(&e.patched, &tst, nb3);
    e.backup = vp_xstrdup(backup);
    e.edits = describe_drops(f);
    vp_manifest_add_migrated(c->m, &e);
    return 0;
}

static int stage_disable(struct apply_ctx *c, const struct vp_migrate_file *f)
{
    _cleanup_(freep) char *ondisk = NULL, *to = NULL;
    struct stat st;
    char b3[VP_B3_HEX];
    int r;
    if ((r = vp_root_ondisk(c->root, f->path, &ondisk)) < 0 ||
        (r = vp_root_ondisk(c->root, f->to, &to)) < 0)
        return r;
    if (lstat(ondisk, &st) < 0 || !(S_ISREG(st.st_mode) || S_ISLNK(st.st_mode)))
        return vp_error(-EAGAIN, "%s changed since it was scanned; run again", f->path);
    /* A link is renamed as it is: its inode identifies it (no content of its own). */
    if (!S_ISLNK(st.st_mode) && (r = vp_b3_file(ondisk, b3)) < 0)
        return r;
    if (!S_ISLNK(st.st_mode) && *f->b3 && strcmp(b3, f->b3))
        return vp_error(-ESTALE, "%s changed while it was read; nothing was changed: run again",
                        f->path);
    if ((r = vp_txn_stage_move(c->t, ondisk, &st, to)) < 0)
        return r;
    struct vp_entry e = entry_for(f, "disabled", &st, S_ISLNK(st.st_mode) ? NULL : b3);
    e.patched = e.orig; /* the same inode, under its new name */
    e.target = vp_xstrdup(f->to);
    _cleanup_(freep) char *drops = describe_drops(f);
    e.edits = vp_xasprintf("renamed to %s (%s)", vp_basename(f->to), drops);
    vp_manifest_add_migrated(c->m, &e);
    return 0;
}

static int stage_remove(struct apply_ctx *c, const struct vp_migrate_file *f)
{
    _cleanup_(freep) char *ondisk = NULL;
    struct stat st;
    int r = vp_root_ondisk(c->root, f->path, &ondisk);
    if (r < 0)
        return r;
    if (lstat(ondisk, &st) < 0)
        return vp_error(-EAGAIN, "%s is gone since it was scanned; run again", f->path);
    bool link = S_ISLNK(st.st_mode);
    if (!link && !S_ISREG(st.st_mode))
        return vp_error(-EINVAL, "%s is neither a file nor a link: not removing it", f->path);
    _cleanup_(closep) int fd = open(ondisk, (link ? O_PATH : O_RDONLY) | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) < 0)
        return vp_error_errno(-errno, "cannot open %s", ondisk);
    char b3[VP_B3_HEX] = "", target[4096] = "";
    if (link) {
        ssize_t n = readlinkat(fd, "", target, sizeof(target) - 1);
        if (n < 0)
            return vp_error_errno(-errno, "cannot read the link %s", ondisk);
        target[n] = '\0';
    } else {
        _cleanup_(freep) char *self = vp_xasprintf("/proc/self/fd/%d", fd);
        if ((r = vp_b3_file(self, b3)) < 0)
            return r;
    }
    _cleanup_(freep) char *backup = vp_xasprintf("%s/migrated.%s.%llu", c->bdir, link ? "link" : b3,
                                                 (unsigned long long)st.st_ino);
    if ((r = vp_txn_stage_drop(c->t, ondisk, fd, &st, backup, link ? NULL : b3)) < 0)
        return r;
    struct vp_entry e = entry_for(f, "removed", &st, link ? NULL : b3);
    e.backup = vp_xstrdup(backup);
    if (link)
        e.target = vp_xstrdup(target);
    e.edits = vp_xstrdup(link ? "link removed" : "file removed");
    vp_manifest_add_migrated(c->m, &e);
    return 0;
}

int vp_migrate_apply(const char *root, struct vp_state *st, struct vp_manifest *m,
                     const struct vp_migrate_plan *p, struct vp_strv *changed,
                     struct vp_strv *removed)
{
    struct vp_txn t;
    int r = vp_txn_begin(st, &t);
    if (r < 0)
        return r;
    struct apply_ctx c = {
        .root = root, .shim_dir = p->shim_dir, .t = &t, .bdir = vp_state_backup_dir(st), .m = m};
    struct vp_strv ch = {0}, rm = {0};
    for (size_t i = 0; i < p->n && r == 0; i++) {
        const struct vp_migrate_file *f = &p->files[i];
        switch (f->action) {
        case VP_MIGRATE_EDIT:
            r = stage_edit(&c, f);
            break;
        case VP_MIGRATE_DISABLE:
            r = stage_disable(&c, f);
            break;
        case VP_MIGRATE_REMOVE:
            r = stage_remove(&c, f);
            if (r == 0)
                vp_strv_push(&rm, f->path);
            break;
        default:
            continue;
        }
        if (r == 0)
            vp_strv_push(&ch, f->path);
    }
    if (r == 0)
        r = vp_txn_rename_all(&t);
    if (r == 0) {
        r = vp_txn_commit(&t, m);
        if (r < 0 && !t.committed)
            vp_txn_abort(&t); /* it failed before its record: the tree goes back */
    } else {
        vp_txn_abort(&t);
    }
    /* The lists say what changed: only what a committed transaction did. */
    for (size_t i = 0; (r == 0 || t.committed) && i < ch.n; i++)
        vp_strv_push(changed, ch.v[i]);
    for (size_t i = 0; (r == 0 || t.committed) && i < rm.n; i++)
        vp_strv_push(removed, rm.v[i]);
    vp_strv_release(&ch);
    vp_strv_release(&rm);
    free(c.bdir);
    return r;
}

/* ---- ldconfig ---- */

/* A runtime path with its directory resolved under root (the cache may name it by
 * another spelling of the same directory, /lib for /usr/lib). */
static char *canonical(const char *root, const char *path)
{
    _cleanup_(freep) char *dir = vp_dirname(path);
    _cleanup_(freep) char *real = NULL;
    if (vp_root_realpath(root, dir, &real) < 0)
        return vp_xstrdup(path);
    return vp_path_join(real, vp_basename(path));
}

bool vp_migrate_cache_names(const char *root, const struct vp_strv *paths)
{
    _cleanup_(freep) char *f = NULL;
    _cleanup_(vp_ldcache_freep) struct vp_ldcache *cache = NULL;
    if (!paths->n || vp_root_ondisk(root, "/etc/ld.so.cache", &f) < 0 ||
        vp_ldcache_load(f, &cache) < 0)
        return false;
    struct vp_strv want = {0};
    for (size_t i = 0; i < paths->n; i++)
        vp_strv_push_take(&want, canonical(root, paths->v[i]));
    bool hit = false;
    for (size_t i = 0; i < cache->n && !hit; i++) {
        _cleanup_(freep) char *c = canonical(root, cache->entries[i].path);
        hit = vp_strv_contains(&want, c);
    }
    vp_strv_release(&want);
    return hit;
}

static const char *find_ldconfig(void)
{
    static const char *const paths[] = {"/sbin/ldconfig", "/usr/sbin/ldconfig", "/usr/bin/ldconfig",
                                        "/bin/ldconfig"};
    return find_program(paths, VP_ARRAY_SIZE(paths));
}

static char *status_text(const struct vp_spawn_result *res)
{
    if (res->timed_out)
        return vp_xstrdup("timed out");
    if (WIFSIGNALED(res->status))
        return vp_xasprintf("killed by signal %d", WTERMSIG(res->status));
    return vp_xasprintf("exit %d", WEXITSTATUS(res->status));
}

int vp_ldconfig_run(const char *root, char **ret_msg)
{
    const char *ldconfig = find_ldconfig();
    if (!ldconfig) {
        *ret_msg = vp_xstrdup("ldconfig is not installed: the loader cache still names the "
                              "removed files; run ldconfig once it is");
        return -ENOENT;
    }
    bool other = strcmp(root, "/") != 0;
    char *const argv[] = {(char *)ldconfig, "-X", other ? "-r" : NULL, (char *)root, NULL};
    char *const envp[] = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C", NULL};
    struct vp_spawn_result res;
    int r = vp_spawn(argv, envp, false, 120000, &res);
    if (r < 0) {
        *ret_msg = vp_xasprintf("cannot run %s: %s", ldconfig, strerror(-r));
        return r;
    }
    bool ok = vp_spawn_ok(&res);
    _cleanup_(freep) char *how = status_text(&res);
    *ret_msg = ok ? vp_xasprintf("%s -X%s%s rebuilt the loader cache", ldconfig,
                                 other ? " -r " : "", other ? root : "")
                  : vp_xasprintf("%s failed (%s): %s", ldconfig, how, res.err ? res.err : "");
    vp_spawn_result_release(&res);
    return ok ? 0 : -EIO;
}

int vp_migrate_ldconfig(const char *root, struct vp_state *st, struct vp_manifest *m,
                        char **ret_msg)
{
    _cleanup_(freep) char *cache = NULL;
    int r = vp_root_ondisk(root, "/etc/ld.so.cache", &cache);
    if (r < 0)
        return r;
    _cleanup_(freep) char *bdir = vp_state_backup_dir(st);
    _cleanup_(freep) char *backup = NULL;
    _cleanup_(closep) int fd = open(cache, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    struct stat before = {0}, after;
    char b3[VP_B3_HEX] = "", nb3[VP_B3_HEX];
    if (fd >= 0 && fstat(fd, &before) == 0) {
        _cleanup_(freep) char *self = vp_xasprintf("/proc/self/fd/%d", fd);
        if ((r = vp_b3_file(self, b3)) < 0)
            return r;
        backup = vp_xasprintf("%s/migrated.%s.%llu", bdir, b3, (unsigned long long)before.st_ino);
        if ((r = vp_keep_inode(fd, backup)) < 0 && r != -EEXIST)
            return r;
    }
    if ((r = vp_ldconfig_run(root, ret_msg)) < 0) {
        if (backup && !vp_manifest_uses_backup(m, backup))
            unlink(backup);
        return r;
    }
    if (lstat(cache, &after) < 0 || (r = vp_b3_file(cache, nb3)) < 0)
        return 0; /* no cache written (nothing to record) */
    struct vp_migrate_file f = {.path = "/etc/ld.so.cache"};
    struct vp_entry e =
        entry_for(&f, "regenerated", fd >= 0 ? &before : &after, fd >= 0 ? b3 : NULL);
    free(e.role);
    e.role = vp_xstrdup("ld.so.cache");
    if (fd < 0)
        e.orig = (struct vp_fileid){0}; /* there was none */
    vp_fileid_of(&e.patched, &after, nb3);
    e.backup = backup ? vp_xstrdup(backup) : NULL;
    e.edits = vp_xstrdup("ldconfig rebuilt it without the removed files");
    vp_manifest_add_migrated(m, &e);
    return vp_manifest_save(st->dir, m);
}

/* ---- checks ---- */

void vp_migrate_checks(struct vp_migrate_check **ret, size_t *ret_n)
{
    static const char *const lspci[] = {"/usr/bin/lspci", "/usr/sbin/lspci", "/sbin/lspci",
                                        "/bin/lspci"};
    const char *pci = find_program(lspci, VP_ARRAY_SIZE(lspci));
    char *const cmds[][4] = {{"/bin/ls", "/", NULL},
                             {"/bin/cat", "/dev/null", NULL},
                             {"/bin/sh", "-c", "true", NULL},
                             {(char *)pci, NULL}};
    char *const envp[] = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C", NULL};
    struct vp_migrate_check *c = vp_xcalloc(VP_ARRAY_SIZE(cmds), sizeof(*c));
    size_t n = 0;
    for (size_t i = 0; i < VP_ARRAY_SIZE(cmds); i++) {
        if (!cmds[i][0])
            continue;
        struct vp_migrate_check *k = &c[n++];
        k->program = vp_xstrdup(cmds[i][0]);
        struct vp_spawn_result res;
        int r = vp_spawn(cmds[i], envp, false, 10000, &res);
        if (r < 0) {
            k->message = vp_xasprintf("cannot run it: %s", strerror(-r));
            continue;
        }
        const char *complaint = res.err ? strstr(res.err, "ld.so") : NULL;
        k->ok = vp_spawn_ok(&res) && !complaint;
        k->loader_complaint = complaint != NULL;
        if (complaint)
            k->message = vp_xstrndup(complaint, strcspn(complaint, "\n"));
        else
            k->message = status_text(&res);
        vp_spawn_result_release(&res);
    }
    *ret = c;
    *ret_n = n;
}

bool vp_migrate_check_regressed(const struct vp_migrate_check *before,
                                const struct vp_migrate_check *after)
{
    if (after->ok)
        return false;
    return !before || before->ok || (after->loader_complaint && !before->loader_complaint);
}

void vp_migrate_checks_release(struct vp_migrate_check *c, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(c[i].program);
        free(c[i].message);
    }
    free(c);
}
