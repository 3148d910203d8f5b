/* session: one client's thread: the HELLO (version, allowlist, secret, admission,
 * CUDA_VISIBLE_DEVICES), the request loop, and the teardown that frees everything the
 * client held, whether it said goodbye or died. A malformed message ends this client
 * only. */
#include "session.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

struct hd_session *hd_session_new(struct hd_daemon *d, int fd, unsigned id,
                                  const struct hd_listener *l, const struct hd_peer *peer)
{
    struct hd_session *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->bulk = malloc(HD_AUTO_BULK_MAX + 1);
    if (!s->bulk) {
        free(s);
        return NULL;
    }
    s->d = d;
    s->dev = d->dev;
    s->fd = fd;
    s->id = id;
    s->l = l;
    s->peer = *peer;
    hd_objects_init(&s->o);
    vr_reader_init(&s->r, fd);
    return s;
}

void hd_session_free(struct hd_session *s)
{
    if (!s)
        return;
    hd_objects_release(&s->o);
    free(s->bulk);
    free(s);
}

int hd_use_ctx(struct hd_session *s, uint64_t id, struct hd_obj **ret)
{
    struct hd_obj *c = hd_obj_find(&s->o, HD_CTX, id);
    if (!c)
        return CU_INVALID_CONTEXT;
    if (s->current != c->h) {
        int e = s->dev->ctx_set_current(c->h);
        if (e)
            return e;
        s->current = c->h;
    }
    *ret = c;
    return CU_OK;
}

int hd_stream(struct hd_session *s, uint64_t id, void **ret)
{
    if (id <= 2) {
        *ret = (void *)(uintptr_t)id;
        return CU_OK;
    }
    struct hd_obj *st = hd_obj_find(&s->o, HD_STREAM, id);
    if (!st)
        return CU_INVALID_HANDLE;
    *ret = st->h;
    return CU_OK;
}

void hd_module_teardown(struct hd_session *s, struct hd_obj *mod)
{
    uint64_t id = mod->id;
    void *h = mod->h;
    size_t bytes = mod->u.mod.bytes; /* mod moves as functions go */
    for (size_t i = 0; i < s->o.nobjs;) {
        struct hd_obj *f = &s->o.objs[i];
        if (hd_obj_kind(f->id) == HD_FUNCTION && f->u.fn.module == id)
            hd_obj_remove(&s->o, f->id); /* swaps the last one into i */
        else
            i++;
    }
    for (size_t i = 0; i < s->o.nallocs;) {
        if (s->o.allocs[i].module == id)
            hd_alloc_remove(&s->o, &s->o.allocs[i]);
        else
            i++;
    }
    s->image_bytes -= bytes;
    s->dev->module_unload(s->current, h);
    hd_obj_remove(&s->o, id);
}

void hd_ctx_teardown(struct hd_session *s, uint64_t id, int keep)
{
    const struct hd_backend *dev = s->dev;
    struct hd_obj *c, *ob;
    struct hd_alloc *a;

    if (hd_use_ctx(s, id, &c) != CU_OK && !(c = hd_obj_find(&s->o, HD_CTX, id)))
        return;
    void *h = c->h;
    while ((ob = hd_obj_any(&s->o, HD_MODULE, id)))
        hd_module_teardown(s, ob);
    while ((ob = hd_obj_any(&s->o, HD_EVENT, id))) {
        dev->event_destroy(h, ob->h);
        hd_obj_remove(&s->o, ob->id);
    }
    while ((ob = hd_obj_any(&s->o, HD_STREAM, id))) {
        dev->stream_destroy(h, ob->h);
        hd_obj_remove(&s->o, ob->id);
    }
    while ((a = hd_alloc_any(&s->o, id))) {
        if (!a->module)
            dev->mem_free(h, &a->m);
        hd_alloc_remove(&s->o, a);
    }
    if (keep)
        return;
    c = hd_obj_find(&s->o, HD_CTX, id);
    if (c->u.ctx.primary)
        s->primary[c->u.ctx.dev] = 0;
    hd_obj_remove(&s->o, id);
    s->current = NULL; /* destroying leaves the thread without a current context */
    dev->ctx_destroy(h);
}

/* ---- HELLO ---- */

/* One CUDA_VISIBLE_DEVICES entry: the daemon index, or -1 (the list stops there). */
static int visible_entry(const struct hd_session *s, const char *e)
{
    const struct hd_daemon *d = s->d;
    if (*e >= '0' && *e <= '9') {
        char *end;
        unsigned long v = strtoul(e, &end, 10);
        return *end || v >= (unsigned long)d->ndevs ? -1 : (int)v;
    }
    if (strncasecmp(e, "GPU-", 4) != 0 || !e[4])
        return -1;
    int found = -1;
    for (int i = 0; i < d->ndevs; i++) {
        char uuid[41];
        hd_uuid_format(d->devs[i].uuid, uuid);
        if (strncasecmp(uuid, e, strlen(e)) == 0) {
            if (found >= 0)
                return -1; /* an ambiguous prefix */
            found = i;
        }
    }
    return found;
}

/* CUDA's reading of CUDA_VISIBLE_DEVICES: a comma list that stops at the first entry
 * that is invalid, out of range, ambiguous or repeated. */
static void parse_visible(struct hd_session *s, char *v)
{
    s->ndev = 0;
    for (char *save = NULL, *e = strtok_r(v, ",", &save); e; e = strtok_r(NULL, ",", &save)) {
        e += strspn(e, " \t");
        e[strcspn(e, " \t")] = '\0';
        int idx = visible_entry(s, e);
        if (idx < 0 || s->ndev == VR_MAX_DEVICES)
            return;
        for (int i = 0; i < s->ndev; i++)
            if (s->devmap[i] == idx)
                return;
        s->devmap[s->ndev++] = idx;
    }
}

/* Applies the HELLO text; returns the VR_E_* status for the secret check. */
static int hello_text(struct hd_session *s, char *text)
{
    const char *secret = NULL;
    int have_visible = 0;

    for (char *save = NULL, *line = strtok_r(text, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        char *eq = strchr(line, '=');
        if (!eq)
            continue;
        *eq = '\0';
        if (strcmp(line, "visible") == 0) {
            have_visible = 1;
            parse_visible(s, eq + 1);
        } else if (strcmp(line, "secret") == 0) {
            secret = eq + 1;
        } else if (strcmp(line, "program") == 0) {
            snprintf(s->program, sizeof(s->program), "%s", eq + 1);
        }
    }
    if (!have_visible) {
        s->ndev = s->d->ndevs < (int)VR_MAX_DEVICES ? s->d->ndevs : (int)VR_MAX_DEVICES;
        for (int i = 0; i < s->ndev; i++)
            s->devmap[i] = i;
    }
    if (s->l->needs_secret &&
        (!secret || !hd_secret_equal(s->d->secret_hex, secret, strlen(secret))))
        return VR_E_AUTH;
    return VR_OK;
}

/* The allowlist was checked at accept (main.c). */
static int hello_status(struct hd_session *s, const struct vr_args *a, char *text)
{
    int st = hello_text(s, text);
    if (st != VR_OK)
        return st;
    if (a->a[0] > VR_VERSION || a->a[1] < VR_VERSION)
        return VR_E_VERSION;
    if (atomic_fetch_add(&s->d->admitted, 1) >= s->d->max_clients) {
        atomic_fetch_sub(&s->d->admitted, 1);
        return VR_E_BUSY;
    }
    s->admitted = 1;
    return VR_OK;
}

/* 0 when the client is admitted; -1 when the connection is to be closed. The whole
 * HELLO must arrive within HD_HELLO_DEADLINE_MS of the accept, however it trickles. */
static int hello(struct hd_session *s)
{
    struct vr_hdr h;
    struct vr_args a;
    char desc[160];

    s->r.deadline_ms = vr_now_ms() + HD_HELLO_DEADLINE_MS;
    int e = vr_read_msg(&s->r, false, &h, &a);
    if (e < 0 || h.op != VR_HELLO || h.bulk > VR_MAX_HELLO) {
        SLOG(s, e == -EPIPE ? HD_INFO : HD_WARN, "closed before a valid HELLO (%s)",
             e == -ETIMEDOUT ? "not complete within the HELLO deadline"
             : e < 0         ? strerror(-e)
                             : "protocol error");
        return -1;
    }
    if ((e = vr_read(&s->r, s->bulk, h.bulk)) < 0)
        return -1;
    s->bulk[h.bulk] = '\0';
    s->api = (enum vr_api)a.a[2];
    int st = hello_status(s, &a, (char *)s->bulk);

    struct vr_ret ret = {.status = st};
    snprintf(desc, sizeof(desc), "vgpu-hostd %s %s: %s", HOSTD_VERSION, s->dev->name,
             s->d->ndevs ? s->d->devs[0].name : "no device");
    if (st == VR_OK) {
        ret.r[0] = VR_VERSION;
        ret.r[1] = s->dev->caps;
        ret.r[2] = s->api == VR_API_NVML ? (uint64_t)s->d->ndevs : (uint64_t)s->ndev;
    }
    e = vr_send_reply(s->fd, VR_HELLO, h.id, &ret, st == VR_OK ? desc : NULL,
                      st == VR_OK ? strlen(desc) + 1 : 0);
    if (st != VR_OK) {
        SLOG(s, HD_WARN, "refused: %s", vr_status_text(st));
        return -1;
    }
    s->r.deadline_ms = 0;
    SLOG(s, HD_INFO, "connected: %s api, program '%s', pid %llu, %d device(s)",
         s->api == VR_API_NVML ? "NVML" : "CUDA", s->program, (unsigned long long)a.a[3], s->ndev);
    return e < 0 ? -1 : 0;
}

/* ---- requests ---- */

static const struct hd_op *find_op(uint16_t op)
{
    static const struct hd_op *const tables[] = {hd_cuda_ops, hd_exec_ops, hd_nvml_ops};
    for (size_t i = 0; i < sizeof(tables) / sizeof(tables[0]); i++)
        for (const struct hd_op *t = tables[i]; t->fn; t++)
            if (t->op == op)
                return t;
    return NULL;
}

/* One request whose header and arguments are read. 0, or -1 to close. */
static int dispatch(struct hd_session *s, const struct vr_hdr *h, const struct vr_args *a)
{
    const struct hd_op *op = find_op(h->op);
    struct vr_ret ret = {0};
    char name[16];
    int e;

    s->reply_bulk = NULL;
    s->reply_n = 0;
    if (!op || !(op->flags & OP_BULK_SELF)) {
        if (h->bulk > HD_AUTO_BULK_MAX) {
            SLOG(s, HD_WARN, "%s: bulk of %llu bytes; closing", vr_op_name(h->op, name),
                 (unsigned long long)h->bulk);
            return -1;
        }
        if (vr_read(&s->r, s->bulk, h->bulk) < 0)
            return -1;
        s->bulk[h->bulk] = '\0';
    }
    if (!op) {
        SLOG(s, HD_INFO, "unknown %s", vr_op_name(h->op, name));
        ret.status = VR_E_UNKNOWN_OP;
        ret.aux = VR_AUX_UNKNOWN_OP;
    } else if ((e = op->fn(s, h, a, &ret)) != 0) {
        if (e == -EPIPE || e == -ECONNRESET)
            SLOG(s, HD_INFO, "disconnected during %s", vr_op_name(h->op, name));
        else if (e < 0)
            SLOG(s, HD_WARN, "%s: %s; closing", vr_op_name(h->op, name), strerror(-e));
        return e < 0 ? -1 : 0;
    }
    if (hd_log_level >= HD_DEBUG)
        SLOG(s, HD_DEBUG, "%s -> %d", vr_op_name(h->op, name), ret.status);
    return vr_send_reply(s->fd, h->op, h->id, &ret, s->reply_bulk, s->reply_n) < 0 ? -1 : 0;
}

static void request_loop(struct hd_session *s)
{
    struct vr_hdr h;
    struct vr_args a;
    char name[16];

    for (;;) {
        int e = vr_read_msg(&s->r, false, &h, &a);
        if (e == -EPIPE) {
            SLOG(s, HD_INFO, "disconnected");
            return;
        }
        if (e < 0) {
            SLOG(s, HD_WARN, "%s; closing", e == -EPROTO ? "malformed message" : strerror(-e));
            return;
        }
        if (h.op == VR_HELLO || h.bulk > vr_request_bulk_max(h.op)) {
            SLOG(s, HD_WARN, "%s with %llu bytes of bulk: protocol error; closing",
                 vr_op_name(h.op, name), (unsigned long long)h.bulk);
            return;
        }
        if (dispatch(s, &h, &a) < 0)
            return;
    }
}

void *hd_session_run(void *arg)
{
    struct hd_session *s = arg;
    struct hd_obj *c;

    int admitted = hello(s) == 0;
    atomic_fetch_sub(&s->d->pending, 1); /* counted by main.c at accept */
    char b = 'p';
    if (s->d->wake_fd >= 0 && write(s->d->wake_fd, &b, 1) < 0) { /* full: awake already */
    }
    if (admitted)
        request_loop(s);
    while ((c = hd_obj_any(&s->o, HD_CTX, 0)))
        hd_ctx_teardown(s, c->id, 0);
    if (s->current)
        s->dev->ctx_set_current(NULL);
    if (s->admitted)
        atomic_fetch_sub(&s->d->admitted, 1);
    shutdown(s->fd, SHUT_RDWR);
    return NULL;
}
