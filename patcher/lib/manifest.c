/* manifest: the record of every change, in a line format that is easy to check. */
#include "manifest.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <sys/stat.h>

int64_t vp_mtime_ns(const struct stat *st)
{
    return (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
}

void vp_fileid_of(struct vp_fileid *id, const struct stat *st, const char *b3)
{
    *id = (struct vp_fileid){.size = (uint64_t)st->st_size,
                             .mtime_ns = vp_mtime_ns(st),
                             .ino = st->st_ino,
                             .dev = st->st_dev};
    if (b3)
        memcpy(id->b3, b3, VP_B3_HEX);
}

static void put_kv(FILE *f, const char *k, const char *v)
{
    _cleanup_(freep) char *e = vp_escape(v ? v : "");
    fprintf(f, " %s=%s", k, e);
}

static void put_id(FILE *f, const char *pfx, const struct vp_fileid *id)
{
    fprintf(f,
            " %s_blake3=%s %s_size=%" PRIu64 " %s_mtime_ns=%" PRId64 " %s_ino=%" PRIu64
            " %s_dev=%" PRIu64,
            pfx, id->b3[0] ? id->b3 : "-", pfx, id->size, pfx, id->mtime_ns, pfx, id->ino, pfx,
            id->dev);
}

static void put_entry(FILE *f, const struct vp_entry *e)
{
    static const char *const kinds[] = {"file", "link", "unit", "migrated"};
    fputs(kinds[e->kind], f);
    put_kv(f, "path", e->path);
    put_kv(f, "role", e->role);
    if (e->kind == VP_ENTRY_UNIT) {
        put_id(f, "patched", &e->patched);
    } else if (e->kind == VP_ENTRY_LINK) {
        put_kv(f, "target", e->target);
        if (e->prev_target)
            put_kv(f, "prev_target", e->prev_target);
    } else {
        put_id(f, "orig", &e->orig);
        put_id(f, "patched", &e->patched);
        fprintf(f, " mode=%04o uid=%u gid=%u", (unsigned)e->mode, (unsigned)e->uid,
                (unsigned)e->gid);
        put_kv(f, "backup", e->backup);
        put_kv(f, "method", e->method);
        put_kv(f, "edits", e->edits);
        if (e->kind == VP_ENTRY_MIGRATED && e->target)
            put_kv(f, "target", e->target);
    }
    fputc('\n', f);
}

char *vp_manifest_format(const struct vp_manifest *m)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        abort();
    fprintf(f, "%s\n", VP_MANIFEST_MAGIC);
    fputs("root", f);
    put_kv(f, "path", m->root ? m->root : "/");
    fputc('\n', f);
    for (size_t i = 0; i < m->n; i++) {
        const struct vp_manifest_install *in = &m->installs[i];
        if (!in->n && !in->mechanism)
            continue; /* nothing of it is patched any more */
        fputs("install", f);
        put_kv(f, "prefix", in->prefix);
        put_kv(f, "shim_dir", in->shim_dir);
        put_kv(f, "version", in->version);
        put_kv(f, "eras", in->eras);
        if (in->mechanism)
            put_kv(f, "mechanism", in->mechanism);
        if (in->delivery)
            put_kv(f, "delivery", in->delivery);
        if (in->requested)
            put_kv(f, "requested", in->requested);
        if (in->restored)
            put_kv(f, "restored", in->restored);
        if (in->systemd_dir)
            put_kv(f, "systemd_dir", in->systemd_dir);
        if (in->keep_vulkan)
            put_kv(f, "keep_vulkan", in->keep_vulkan);
        if (in->tree_stamp)
            put_kv(f, "tree_stamp", in->tree_stamp);
        fputc('\n', f);
        for (size_t k = 0; k < in->n; k++)
            put_entry(f, &in->entries[k]);
    }
    for (size_t k = 0; k < m->n_migrated; k++)
        put_entry(f, &m->migrated[k]);
    fputs("end\n", f);
    fclose(f);
    return buf;
}

int vp_manifest_save(const char *state_dir, const struct vp_manifest *m)
{
    _cleanup_(freep) char *text = vp_manifest_format(m);
    _cleanup_(freep) char *path = vp_path_join(state_dir, "manifest");
    return vp_write_file_atomic(path, text, strlen(text), 0600);
}

static bool parse_u64(const char *v, uint64_t *ret)
{
    char *end;
    errno = 0;
    unsigned long long n = strtoull(v, &end, 10);
    if (errno || end == v || *end || *v == '-')
        return false;
    *ret = n;
    return true;
}

static bool parse_id_field(struct vp_fileid *id, const char *field, const char *v)
{
    uint64_t n;
    if (!strcmp(field, "blake3")) {
        if (!strcmp(v, "-")) {
            id->b3[0] = '\0';
            return true;
        }
        if (strlen(v) != 64 || strspn(v, "0123456789abcdef") != 64)
            return false;
        memcpy(id->b3, v, VP_B3_HEX);
        return true;
    }
    if (!strcmp(field, "mtime_ns")) {
        char *end;
        errno = 0;
        long long t = strtoll(v, &end, 10);
        if (errno || end == v || *end)
            return false;
        id->mtime_ns = t;
        return true;
    }
    if (!parse_u64(v, &n))
        return false;
    if (!strcmp(field, "size"))
        id->size = n;
    else if (!strcmp(field, "ino"))
        id->ino = n;
    else if (!strcmp(field, "dev"))
        id->dev = n;
    else
        return false;
    return true;
}

/* Applies one key=value token to an entry; false on an unknown key or bad value. */
static bool entry_field(struct vp_entry *e, const char *k, char *v)
{
    char **s = NULL;
    if (!strcmp(k, "path"))
        s = &e->path;
    else if (!strcmp(k, "role"))
        s = &e->role;
    else if (!strcmp(k, "target"))
        s = &e->target;
    else if (!strcmp(k, "prev_target"))
        s = &e->prev_target;
    else if (!strcmp(k, "backup"))
        s = &e->backup;
    else if (!strcmp(k, "method"))
        s = &e->method;
    else if (!strcmp(k, "edits"))
        s = &e->edits;
    if (s) {
        free(*s);
        *s = v;
        return true;
    }
    _cleanup_(freep) char *val = v;
    if (vp_startswith(k, "orig_"))
        return parse_id_field(&e->orig, k + 5, val);
    if (vp_startswith(k, "patched_"))
        return parse_id_field(&e->patched, k + 8, val);
    char *end;
    unsigned long n = strtoul(val, &end, !strcmp(k, "mode") ? 8 : 10);
    if (end == val || *end)
        return false;
    if (!strcmp(k, "mode") && n <= 07777)
        e->mode = (mode_t)n;
    else if (!strcmp(k, "uid"))
        e->uid = (uid_t)n;
    else if (!strcmp(k, "gid"))
        e->gid = (gid_t)n;
    else
        return false;
    return true;
}

static bool install_field(struct vp_manifest_install *in, const char *k, char *v)
{
    char **s = !strcmp(k, "prefix")        ? &in->prefix
               : !strcmp(k, "shim_dir")    ? &in->shim_dir
               : !strcmp(k, "version")     ? &in->version
               : !strcmp(k, "eras")        ? &in->eras
               : !strcmp(k, "mechanism")   ? &in->mechanism
               : !strcmp(k, "delivery")    ? &in->delivery
               : !strcmp(k, "requested")   ? &in->requested
               : !strcmp(k, "restored")    ? &in->restored
               : !strcmp(k, "systemd_dir") ? &in->systemd_dir
               : !strcmp(k, "keep_vulkan") ? &in->keep_vulkan
               : !strcmp(k, "tree_stamp")  ? &in->tree_stamp
                                           : NULL;
    if (!s) {
        free(v);
        return false;
    }
    free(*s);
    *s = v;
    return true;
}

static int parse_line(struct vp_manifest *m, char *line, bool *ended)
{
    struct vp_strv tok = {0};
    vp_strv_split(&tok, line, " ");
    int r = 0;
    if (!tok.n)
        goto out;
    const char *kind = tok.v[0];
    struct vp_entry e = {0};
    bool migrated = !strcmp(kind, "migrated");
    bool is_entry = !strcmp(kind, "file") || !strcmp(kind, "link") || !strcmp(kind, "unit");
    if (!strcmp(kind, "end")) {
        *ended = true;
        goto out;
    }
    if (is_entry && !m->n) {
        r = -EBADMSG;
        goto out;
    }
    if (!strcmp(kind, "install")) {
        m->installs = vp_xrealloc(m->installs, (m->n + 1) * sizeof(*m->installs));
        m->installs[m->n++] = (struct vp_manifest_install){0};
    } else if (!is_entry && !migrated && strcmp(kind, "root") != 0) {
        r = -EBADMSG;
        goto out;
    }
    e.kind = !strcmp(kind, "link")   ? VP_ENTRY_LINK
             : !strcmp(kind, "unit") ? VP_ENTRY_UNIT
             : migrated              ? VP_ENTRY_MIGRATED
                                     : VP_ENTRY_FILE;
    for (size_t i = 1; i < tok.n && r == 0; i++) {
        char *eq = strchr(tok.v[i], '=');
        char *val;
        if (!eq || vp_unescape(eq + 1, &val) < 0) {
            r = -EBADMSG;
            break;
        }
        *eq = '\0';
        bool ok;
        if (!strcmp(kind, "root")) {
            ok = !strcmp(tok.v[i], "path");
            free(ok ? m->root : val);
            if (ok)
                m->root = val;
        } else if (!strcmp(kind, "install"))
            ok = install_field(&m->installs[m->n - 1], tok.v[i], val);
        else
            ok = entry_field(&e, tok.v[i], val);
        if (!ok)
            r = -EBADMSG;
    }
    if (migrated) {
        /* An empty backup or target is none. */
        char **opt[] = {&e.backup, &e.target};
        for (size_t i = 0; i < VP_ARRAY_SIZE(opt); i++)
            if (*opt[i] && !**opt[i]) {
                free(*opt[i]);
                *opt[i] = NULL;
            }
        if (r == 0 && (!e.path || e.path[0] != '/' || !e.method))
            r = -EBADMSG;
        if (r == 0)
            vp_manifest_add_migrated(m, &e);
        else
            vp_entry_release(&e);
    }
    if (is_entry) {
        if (r == 0 && (!e.path || e.path[0] != '/' || (e.kind == VP_ENTRY_LINK && !e.target) ||
                       (e.kind == VP_ENTRY_FILE && !e.backup)))
            r = -EBADMSG;
        if (r == 0)
            vp_manifest_put(&m->installs[m->n - 1], &e);
        else
            vp_entry_release(&e);
    }
out:
    vp_strv_release(&tok);
    return r;
}

int vp_manifest_parse(const char *text, size_t len, struct vp_manifest *ret)
{
    struct vp_manifest m = {0};
    _cleanup_(freep) char *copy = vp_xstrndup(text, len);
    if (strlen(copy) != len) {
        vp_manifest_release(&m);
        return vp_error(-EBADMSG, "manifest: NUL byte in the file");
    }
    char *next, *line = copy;
    unsigned lineno = 1;
    bool ended = false;
    next = strchr(line, '\n');
    if (!next || (size_t)(next - line) != strlen(VP_MANIFEST_MAGIC) ||
        strncmp(line, VP_MANIFEST_MAGIC, strlen(VP_MANIFEST_MAGIC)) != 0)
        return vp_error(-EBADMSG, "manifest: not a version 1 vgpu-patch manifest");
    for (line = next + 1; *line && !ended; line = next) {
        lineno++;
        next = strchr(line, '\n');
        if (!next) {
            vp_manifest_release(&m);
            return vp_error(-EBADMSG, "manifest: line %u is cut short", lineno);
        }
        *next++ = '\0';
        if (parse_line(&m, line, &ended) < 0) {
            vp_manifest_release(&m);
            return vp_error(-EBADMSG, "manifest: line %u is corrupt", lineno);
        }
    }
    if (!ended) {
        vp_manifest_release(&m);
        return vp_error(-EBADMSG, "manifest: no end record (truncated)");
    }
    *ret = m;
    return 0;
}

int vp_manifest_load(const char *state_dir, struct vp_manifest *ret)
{
    _cleanup_(freep) char *path = vp_path_join(state_dir, "manifest");
    _cleanup_(freep) char *text = NULL;
    size_t len;
    int r = vp_read_file(path, 64 << 20, &text, &len);
    if (r == -ENOENT) {
        *ret = (struct vp_manifest){0};
        return 0;
    }
    if (r < 0)
        return vp_error_errno(r, "cannot read %s", path);
    r = vp_manifest_parse(text, len, ret);
    if (r < 0)
        return vp_error(r, "%s: %s", path, vp_last_error());
    return 0;
}

void vp_entry_release(struct vp_entry *e)
{
    free(e->path);
    free(e->role);
    free(e->backup);
    free(e->method);
    free(e->edits);
    free(e->target);
    free(e->prev_target);
    *e = (struct vp_entry){0};
}

size_t vp_install_tree_entries(const struct vp_manifest_install *in)
{
    size_t n = 0;
    for (size_t k = 0; k < in->n; k++)
        n += in->entries[k].kind != VP_ENTRY_UNIT;
    return n;
}

struct vp_manifest_install *vp_manifest_install(struct vp_manifest *m, const char *prefix)
{
    for (size_t i = 0; i < m->n; i++)
        if (m->installs[i].prefix && !strcmp(m->installs[i].prefix, prefix))
            return &m->installs[i];
    m->installs = vp_xrealloc(m->installs, (m->n + 1) * sizeof(*m->installs));
    m->installs[m->n] = (struct vp_manifest_install){.prefix = vp_xstrdup(prefix)};
    return &m->installs[m->n++];
}

struct vp_entry *vp_manifest_find(struct vp_manifest_install *in, const char *path)
{
    for (size_t i = 0; i < in->n; i++)
        if (!strcmp(in->entries[i].path, path))
            return &in->entries[i];
    return NULL;
}

void vp_manifest_put(struct vp_manifest_install *in, struct vp_entry *e)
{
    struct vp_entry *old = vp_manifest_find(in, e->path);
    if (old) {
        vp_entry_release(old);
        *old = *e;
    } else {
        in->entries = vp_xrealloc(in->entries, (in->n + 1) * sizeof(*in->entries));
        in->entries[in->n++] = *e;
    }
    *e = (struct vp_entry){0};
}

void vp_manifest_remove(struct vp_manifest_install *in, const char *path)
{
    for (size_t i = 0; i < in->n; i++)
        if (!strcmp(in->entries[i].path, path)) {
            vp_entry_release(&in->entries[i]);
            memmove(&in->entries[i], &in->entries[i + 1], (in->n - i - 1) * sizeof(*in->entries));
            in->n--;
            return;
        }
}

void vp_manifest_add_migrated(struct vp_manifest *m, struct vp_entry *e)
{
    m->migrated = vp_xrealloc(m->migrated, (m->n_migrated + 1) * sizeof(*m->migrated));
    m->migrated[m->n_migrated++] = *e;
    *e = (struct vp_entry){0};
}

bool vp_manifest_uses_backup(const struct vp_manifest *m, const char *b)
{
    for (size_t k = 0; k < m->n_migrated; k++)
        if (m->migrated[k].backup && !strcmp(m->migrated[k].backup, b))
            return true;
    for (size_t i = 0; i < m->n; i++)
        for (size_t k = 0; k < m->installs[i].n; k++)
            if (m->installs[i].entries[k].backup && !strcmp(m->installs[i].entries[k].backup, b))
                return true;
    return false;
}

size_t vp_manifest_count(const struct vp_manifest *m)
{
    size_t n = 0;
    for (size_t i = 0; i < m->n; i++)
        n += m->installs[i].n;
    return n;
}

const char *vp_install_mechanism(const struct vp_manifest_install *in)
{
    return in->mechanism ? in->mechanism : in->n ? "patch" : "none";
}

const char *vp_install_delivery(const struct vp_manifest_install *in)
{
    return in->delivery ? in->delivery : in->n ? "elf" : NULL;
}

const char *vp_manifest_mechanism(const struct vp_manifest *m)
{
    for (size_t i = 0; i < m->n; i++)
        if (strcmp(vp_install_mechanism(&m->installs[i]), "none"))
            return vp_install_mechanism(&m->installs[i]);
    return "none";
}

const char *vp_manifest_delivery(const struct vp_manifest *m)
{
    for (size_t i = 0; i < m->n; i++)
        if (vp_install_delivery(&m->installs[i]))
            return vp_install_delivery(&m->installs[i]);
    return NULL;
}

void vp_manifest_install_release(struct vp_manifest_install *in)
{
    for (size_t k = 0; k < in->n; k++)
        vp_entry_release(&in->entries[k]);
    free(in->entries);
    free(in->prefix);
    free(in->shim_dir);
    free(in->version);
    free(in->eras);
    free(in->mechanism);
    free(in->delivery);
    free(in->requested);
    free(in->restored);
    free(in->systemd_dir);
    free(in->keep_vulkan);
    free(in->tree_stamp);
    *in = (struct vp_manifest_install){0};
}

void vp_manifest_release(struct vp_manifest *m)
{
    for (size_t i = 0; i < m->n; i++)
        vp_manifest_install_release(&m->installs[i]);
    free(m->installs);
    for (size_t k = 0; k < m->n_migrated; k++)
        vp_entry_release(&m->migrated[k]);
    free(m->migrated);
    free(m->root);
    *m = (struct vp_manifest){0};
}
