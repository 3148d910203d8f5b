/* elfwrite: in-place, appended-segment and patchelf writers for DT_NEEDED edits. */
#include "elfwrite.h"
#include "spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>

#define PAGE 4096u
#define SEGMENT_SPARE_SLOTS 4 /* DT_NULLs left after the terminator for later edits */

const char *vp_write_method_name(enum vp_write_method m)
{
    static const char *const names[] = {"none", "in-place", "segment", "patchelf", "impossible"};
    return names[m];
}

const char *vp_edit_kind_name(enum vp_edit_kind k)
{
    return k == VP_EDIT_ADD_NEEDED ? "add-needed" : "replace-needed";
}

static bool edit_done(const struct vp_elf *e, const struct vp_edit *ed)
{
    if (ed->kind == VP_EDIT_ADD_NEEDED)
        return vp_elf_needed_index(e, ed->new_name) >= 0;
    return vp_elf_needed_index(e, ed->old_name) < 0;
}

size_t vp_edits_pending(const struct vp_elf *e, const struct vp_edit *edits, size_t n,
                        bool *pending)
{
    size_t count = 0;
    for (size_t i = 0; i < n; i++) {
        pending[i] = !edit_done(e, &edits[i]);
        count += pending[i];
    }
    return count;
}

static uint64_t align_up(uint64_t v, uint64_t a)
{
    return (v + a - 1) & ~(a - 1);
}

static bool inplace_possible(const struct vp_elf *e, const struct vp_edit *ed, size_t *spares)
{
    if (ed->kind == VP_EDIT_ADD_NEEDED) {
        (*spares)++;
        return vp_elf_dynstr_find(e, ed->new_name) != UINT64_MAX;
    }
    if (vp_elf_dynstr_find(e, ed->new_name) != UINT64_MAX)
        return true;
    const struct vp_elf_needed *nd = &e->needed[vp_elf_needed_index(e, ed->old_name)];
    size_t oldlen = strlen(nd->name);
    return strlen(ed->new_name) <= oldlen &&
           !vp_elf_dynstr_shared(e, nd->stroff, oldlen + 1, nd->dynidx);
}

/* Whether the notes of a PT_NOTE segment include a GNU build-id. */
static bool note_has_build_id(const struct vp_elf *e, const Elf64_Phdr *p)
{
    uint64_t align = p->p_align == 8 ? 8 : 4, pos = 0;
    if (p->p_offset > e->size || p->p_filesz > e->size - p->p_offset)
        return false;
    const uint8_t *base = e->img + p->p_offset;
    while (pos + sizeof(Elf64_Nhdr) <= p->p_filesz) {
        Elf64_Nhdr nh;
        memcpy(&nh, base + pos, sizeof(nh));
        if (nh.n_type == NT_GNU_BUILD_ID && nh.n_namesz == 4)
            return true;
        pos += sizeof(nh) + align_up(nh.n_namesz, align) + align_up(nh.n_descsz, align);
    }
    return false;
}

/* Picks the program header to turn into the new PT_LOAD: a PT_NULL, else a PT_NOTE
 * that PT_GNU_PROPERTY duplicates, else a PT_NOTE without the build-id, else any. */
static int choose_slot(const struct vp_elf *e, bool *loses_build_id)
{
    int prop_dup = -1, plain = -1, with_id = -1;
    size_t id_notes = 0;
    for (size_t i = 0; i < e->phnum; i++) {
        const Elf64_Phdr *p = &e->ph[i];
        if (p->p_type == PT_NULL)
            return (int)i;
        if (p->p_type != PT_NOTE)
            continue;
        bool dup = false;
        for (size_t k = 0; k < e->phnum; k++)
            if (e->ph[k].p_type == PT_GNU_PROPERTY && e->ph[k].p_offset == p->p_offset &&
                e->ph[k].p_filesz == p->p_filesz)
                dup = true;
        bool id = note_has_build_id(e, p);
        id_notes += id;
        if (dup && prop_dup < 0)
            prop_dup = (int)i;
        else if (!id && plain < 0)
            plain = (int)i;
        else if (id && with_id < 0)
            with_id = (int)i;
    }
    *loses_build_id = false;
    if (prop_dup >= 0)
        return prop_dup;
    if (plain >= 0)
        return plain;
    *loses_build_id = with_id >= 0 && id_notes == 1;
    return with_id;
}

/* The program header of a segment this writer appended before: the last PT_LOAD, at the
 * end of the file, holding exactly the string table and then the dynamic array. -1 if
 * there is none. */
static int own_segment(const struct vp_elf *e)
{
    int last = -1;
    for (size_t i = 0; i < e->phnum; i++)
        if (e->ph[i].p_type == PT_LOAD)
            last = (int)i;
    if (last < 0 || !e->has_dynamic)
        return -1;
    const Elf64_Phdr *l = &e->ph[last], *d = &e->ph[e->dyn_phidx];
    uint64_t dyn_rel = align_up(e->strsz, 8);
    bool ours = l->p_flags == (PF_R | PF_W) && l->p_filesz == l->p_memsz &&
                l->p_offset + l->p_filesz == e->size && e->strtab_vaddr == l->p_vaddr &&
                d->p_vaddr == l->p_vaddr + dyn_rel &&
                l->p_filesz == dyn_rel + e->dyn_slots * sizeof(Elf64_Dyn);
    return ours ? last : -1;
}

void vp_elfwrite_choose(const struct vp_elf *e, const struct vp_edit *edits, size_t n,
                        const char *patchelf, struct vp_write_choice *ret)
{
    *ret = (struct vp_write_choice){.method = VP_WRITE_IMPOSSIBLE, .slot = -1};
    if (!e->has_dynamic || e->kind == VP_ELF_STATIC || e->kind == VP_ELF_STATIC_PIE) {
        snprintf(ret->reason, sizeof(ret->reason),
                 "statically linked: the dynamic loader never reads its DT_NEEDED list");
        return;
    }
    bool pending[n ? n : 1];
    if (vp_edits_pending(e, edits, n, pending) == 0) {
        ret->method = VP_WRITE_NONE;
        snprintf(ret->reason, sizeof(ret->reason), "already carries every edit");
        return;
    }
    bool inplace = true;
    size_t spares = 0;
    for (size_t i = 0; i < n; i++)
        if (pending[i] && !inplace_possible(e, &edits[i], &spares))
            inplace = false;
    if (inplace && spares <= e->dyn_spare) {
        ret->method = VP_WRITE_INPLACE;
        snprintf(ret->reason, sizeof(ret->reason), "the edits fit in the existing tables");
        return;
    }
    if ((ret->slot = own_segment(e)) >= 0) {
        ret->method = VP_WRITE_SEGMENT;
        ret->reuse = true;
        snprintf(ret->reason, sizeof(ret->reason),
                 "the segment added by an earlier patch is rewritten with the grown tables");
        return;
    }
    ret->slot = choose_slot(e, &ret->loses_build_id);
    if (ret->slot >= 0) {
        ret->method = VP_WRITE_SEGMENT;
        snprintf(ret->reason, sizeof(ret->reason),
                 "grown tables in a new PT_LOAD (program header %d was %s)", ret->slot,
                 e->ph[ret->slot].p_type == PT_NULL ? "PT_NULL" : "a PT_NOTE");
        return;
    }
    if (!patchelf) {
        snprintf(ret->reason, sizeof(ret->reason),
                 "no free program header and no patchelf to grow the file");
    } else if (e->go_internal_link) {
        snprintf(ret->reason, sizeof(ret->reason),
                 "no free program header, and patchelf corrupts Go internal-linker output "
                 "(patchelf #146/#457)");
    } else if (e->shnum == 0) {
        snprintf(ret->reason, sizeof(ret->reason),
                 "no free program header, and patchelf refuses files without section headers");
    } else if (e->size > UINT32_MAX) {
        snprintf(ret->reason, sizeof(ret->reason),
                 "no free program header, and patchelf 0.14.3 shifts files with 32-bit sizes "
                 "(this one is over 4 GiB)");
    } else {
        ret->method = VP_WRITE_PATCHELF;
        snprintf(ret->reason, sizeof(ret->reason),
                 "no free program header: patchelf, one edit per invocation");
    }
}

static void patch_add(struct vp_patchset *ps, uint64_t off, const void *data, uint64_t len)
{
    ps->v = vp_xrealloc(ps->v, (ps->n + 1) * sizeof(*ps->v));
    uint8_t *copy = vp_xmalloc(len);
    memcpy(copy, data, len);
    ps->v[ps->n++] = (struct vp_patch){.off = off, .len = len, .data = copy};
    if (off + len > ps->new_size)
        ps->new_size = off + len;
}

void vp_patchset_release(struct vp_patchset *ps)
{
    for (size_t i = 0; i < ps->n; i++)
        free(ps->v[i].data);
    free(ps->v);
    *ps = (struct vp_patchset){0};
}

static Elf64_Dyn *copy_dynamic(const struct vp_elf *e, size_t extra)
{
    Elf64_Dyn *d = vp_xcalloc(e->dyn_used + extra + 1, sizeof(Elf64_Dyn));
    memcpy(d, e->img + e->dyn_off, e->dyn_used * sizeof(Elf64_Dyn));
    return d;
}

/* Inserts a DT_NEEDED after the last one in d (used entries, room for one more). */
static void insert_needed(Elf64_Dyn *d, size_t *used, uint64_t stroff)
{
    size_t at = 0;
    for (size_t i = 0; i < *used; i++)
        if (d[i].d_tag == DT_NEEDED)
            at = i + 1;
    memmove(&d[at + 1], &d[at], (*used - at) * sizeof(*d));
    d[at] = (Elf64_Dyn){.d_tag = DT_NEEDED, .d_un.d_val = stroff};
    (*used)++;
}

static void set_verneed(const struct vp_elf *e, struct vp_patchset *ps, uint64_t old_off,
                        uint64_t new_off)
{
    const char *old = vp_elf_dynstr(e, old_off);
    for (size_t i = 0; i < e->n_verneed; i++) {
        const char *s = vp_elf_dynstr(e, e->verneed[i].vn_file);
        if (!s || strcmp(s, old) != 0)
            continue;
        uint32_t v = (uint32_t)new_off;
        patch_add(ps, e->verneed[i].field_off, &v, sizeof(v));
    }
}

static void prepare_inplace(const struct vp_elf *e, const struct vp_edit *edits, size_t n,
                            const bool *pending, struct vp_patchset *ps)
{
    _cleanup_(freep) Elf64_Dyn *d = copy_dynamic(e, n);
    size_t used = e->dyn_used;
    for (size_t i = 0; i < n; i++) {
        if (!pending[i])
            continue;
        const struct vp_edit *ed = &edits[i];
        uint64_t have = vp_elf_dynstr_find(e, ed->new_name);
        if (ed->kind == VP_EDIT_ADD_NEEDED) {
            insert_needed(d, &used, have);
            continue;
        }
        const struct vp_elf_needed *nd = &e->needed[vp_elf_needed_index(e, ed->old_name)];
        size_t slot;
        for (slot = 0; slot < used; slot++)
            if (d[slot].d_tag == DT_NEEDED && d[slot].d_un.d_val == nd->stroff)
                break;
        if (have != UINT64_MAX) {
            d[slot].d_un.d_val = have;
            set_verneed(e, ps, nd->stroff, have);
            continue;
        }
        /* Same or shorter name over the old bytes; vn_file shares the offset. */
        size_t oldlen = strlen(nd->name);
        _cleanup_(freep) char *buf = vp_xcalloc(1, oldlen + 1);
        memcpy(buf, ed->new_name, strlen(ed->new_name));
        patch_add(ps, e->strtab_off + nd->stroff, buf, oldlen + 1);
    }
    d[used] = (Elf64_Dyn){.d_tag = DT_NULL};
    patch_add(ps, e->dyn_off, d, (used + 1) * sizeof(*d));
}

static void update_section(const struct vp_elf *e, struct vp_patchset *ps, int idx,
                           uint64_t off, uint64_t addr, uint64_t size)
{
    if (idx < 0)
        return;
    Elf64_Shdr sh;
    memcpy(&sh, e->img + e->ehdr.e_shoff + (uint64_t)idx * sizeof(sh), sizeof(sh));
    sh.sh_offset = off;
    sh.sh_addr = addr;
    sh.sh_size = size;
    patch_add(ps, e->ehdr.e_shoff + (uint64_t)idx * sizeof(sh), &sh, sizeof(sh));
}

static void prepare_segment(const struct vp_elf *e, const struct vp_edit *edits, size_t n,
                            const bool *pending, int slot, bool reuse, struct vp_patchset *ps)
{
    /* The grown string table: the old one unchanged (every offset stays valid) plus
     * the new names. */
    size_t cap = e->strsz;
    for (size_t i = 0; i < n; i++)
        cap += strlen(edits[i].new_name) + 1;
    _cleanup_(freep) char *str = vp_xmalloc(cap);
    memcpy(str, e->img + e->strtab_off, e->strsz);
    size_t strsz = e->strsz;
    uint64_t offs[n ? n : 1];
    for (size_t i = 0; i < n; i++) {
        if (!pending[i])
            continue;
        offs[i] = vp_elf_dynstr_find(e, edits[i].new_name);
        for (size_t k = 0; k < i && offs[i] == UINT64_MAX; k++)
            if (pending[k] && strcmp(edits[k].new_name, edits[i].new_name) == 0)
                offs[i] = offs[k];
        if (offs[i] == UINT64_MAX) {
            offs[i] = strsz;
            size_t len = strlen(edits[i].new_name) + 1;
            memcpy(str + strsz, edits[i].new_name, len);
            strsz += len;
        }
    }

    uint64_t seg_off = align_up(e->size, PAGE), seg_vaddr = 0;
    for (size_t i = 0; i < e->phnum; i++)
        if (e->ph[i].p_type == PT_LOAD && e->ph[i].p_vaddr + e->ph[i].p_memsz > seg_vaddr)
            seg_vaddr = e->ph[i].p_vaddr + e->ph[i].p_memsz;
    seg_vaddr = align_up(seg_vaddr, PAGE);
    if (reuse) { /* our earlier segment: same place, new contents, the file cut after it */
        seg_off = e->ph[slot].p_offset;
        seg_vaddr = e->ph[slot].p_vaddr;
    }
    uint64_t dyn_rel = align_up(strsz, 8);

    _cleanup_(freep) Elf64_Dyn *d = copy_dynamic(e, n + SEGMENT_SPARE_SLOTS);
    size_t used = e->dyn_used;
    for (size_t i = 0; i < used; i++) {
        if (d[i].d_tag == DT_STRTAB)
            d[i].d_un.d_ptr = seg_vaddr;
        else if (d[i].d_tag == DT_STRSZ)
            d[i].d_un.d_val = strsz;
    }
    for (size_t i = 0; i < n; i++) {
        if (!pending[i])
            continue;
        if (edits[i].kind == VP_EDIT_ADD_NEEDED) {
            insert_needed(d, &used, offs[i]);
            continue;
        }
        const struct vp_elf_needed *nd = &e->needed[vp_elf_needed_index(e, edits[i].old_name)];
        for (size_t k = 0; k < used; k++)
            if (d[k].d_tag == DT_NEEDED && d[k].d_un.d_val == nd->stroff)
                d[k].d_un.d_val = offs[i];
        set_verneed(e, ps, nd->stroff, offs[i]);
    }
    size_t slots = used + 1 + SEGMENT_SPARE_SLOTS;
    memset(&d[used], 0, (slots - used) * sizeof(*d));
    uint64_t dyn_size = slots * sizeof(*d), seg_len = dyn_rel + dyn_size;

    _cleanup_(freep) uint8_t *seg = vp_xcalloc(1, seg_len);
    memcpy(seg, str, strsz);
    memcpy(seg + dyn_rel, d, dyn_size);
    patch_add(ps, seg_off, seg, seg_len); /* the gap before it reads as zeros */
    ps->new_size = seg_off + seg_len;

    /* Program headers: the chosen slot becomes the new PT_LOAD, placed after the
     * last PT_LOAD so the loads stay sorted by address; PT_DYNAMIC moves. A reused
     * segment keeps its place. */
    _cleanup_(freep) Elf64_Phdr *ph = vp_xcalloc(e->phnum, sizeof(*ph));
    const Elf64_Phdr load = {.p_type = PT_LOAD, .p_flags = PF_R | PF_W, .p_offset = seg_off,
                             .p_vaddr = seg_vaddr, .p_paddr = seg_vaddr, .p_filesz = seg_len,
                             .p_memsz = seg_len, .p_align = PAGE};
    if (reuse) {
        memcpy(ph, e->ph, e->phnum * sizeof(*ph));
        ph[slot] = load;
    } else {
        size_t k = 0, at = 0;
        for (size_t i = 0; i < e->phnum; i++)
            if ((int)i != slot)
                ph[k++] = e->ph[i];
        for (size_t i = 0; i < k; i++)
            if (ph[i].p_type == PT_LOAD)
                at = i + 1;
        memmove(&ph[at + 1], &ph[at], (k - at) * sizeof(*ph));
        ph[at] = load;
    }
    for (size_t i = 0; i < e->phnum; i++)
        if (ph[i].p_type == PT_DYNAMIC) {
            ph[i].p_offset = seg_off + dyn_rel;
            ph[i].p_vaddr = ph[i].p_paddr = seg_vaddr + dyn_rel;
            ph[i].p_filesz = ph[i].p_memsz = dyn_size;
        }
    patch_add(ps, e->ehdr.e_phoff, ph, e->phnum * sizeof(*ph));
    update_section(e, ps, e->shidx_dynstr, seg_off, seg_vaddr, strsz);
    update_section(e, ps, e->shidx_dynamic, seg_off + dyn_rel, seg_vaddr + dyn_rel, dyn_size);
}

/* Runs patchelf (argv[0] is its path) with a clean environment. */
static int run_patchelf(char *const argv[], const char *path, struct vp_write_stats *st)
{
    static char *const env[] = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C", NULL};
    struct vp_spawn_result res;
    int r = vp_spawn(argv, env, false, 600 * 1000, &res);
    if (r < 0)
        return r;
    st->patchelf_runs++;
    st->patchelf_usage.ru_utime.tv_sec += res.usage.ru_utime.tv_sec;
    st->patchelf_usage.ru_utime.tv_usec += res.usage.ru_utime.tv_usec;
    st->patchelf_usage.ru_stime.tv_sec += res.usage.ru_stime.tv_sec;
    st->patchelf_usage.ru_stime.tv_usec += res.usage.ru_stime.tv_usec;
    if (res.usage.ru_maxrss > st->patchelf_maxrss_kb)
        st->patchelf_maxrss_kb = res.usage.ru_maxrss;
    if (!vp_spawn_ok(&res)) {
        char *msg = *res.err ? res.err : res.out;
        msg[strcspn(msg, "\n")] = '\0';
        r = vp_error(-EIO, "patchelf failed on %s (status %d): %s", path, res.status,
                     *msg ? msg : "no message");
    }
    vp_spawn_result_release(&res);
    return r;
}

static int apply_patchelf(const char *patchelf, const char *path, const struct vp_edit *edits,
                          size_t n, const bool *pending, struct vp_write_stats *st)
{
    for (size_t i = 0; i < n; i++) {
        if (!pending[i])
            continue;
        char *argv[6];
        size_t a = 0;
        argv[a++] = (char *)patchelf;
        if (edits[i].kind == VP_EDIT_ADD_NEEDED) {
            argv[a++] = (char *)"--add-needed";
        } else {
            argv[a++] = (char *)"--replace-needed";
            argv[a++] = edits[i].old_name;
        }
        argv[a++] = edits[i].new_name;
        argv[a++] = (char *)path;
        argv[a] = NULL;
        int r = run_patchelf(argv, path, st);
        if (r < 0)
            return r;
    }
    return 0;
}

int vp_elfwrite_prepare(const struct vp_elf *e, const struct vp_edit *edits, size_t n,
                        const struct vp_write_choice *c, struct vp_patchset *ret)
{
    bool pending[n ? n : 1];
    vp_edits_pending(e, edits, n, pending);
    struct vp_patchset ps = {.new_size = e->size};
    switch (c->method) {
    case VP_WRITE_NONE:
        break;
    case VP_WRITE_INPLACE:
        prepare_inplace(e, edits, n, pending, &ps);
        break;
    case VP_WRITE_SEGMENT:
        prepare_segment(e, edits, n, pending, c->slot, c->reuse, &ps);
        break;
    default:
        return vp_error(-ENOTSUP, "%s: no byte patch for method %s", e->path,
                        vp_write_method_name(c->method));
    }
    *ret = ps;
    return 0;
}

int vp_elfwrite_patchelf(const struct vp_elf *e, const char *copy_path,
                         const struct vp_edit *edits, size_t n, const char *patchelf,
                         struct vp_write_stats *stats)
{
    bool pending[n ? n : 1];
    vp_edits_pending(e, edits, n, pending);
    return apply_patchelf(patchelf, copy_path, edits, n, pending, stats);
}

static bool same_str(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

int vp_elfwrite_check(const struct vp_elf *orig, const char *path, const struct vp_edit *edits,
                      size_t n)
{
    _cleanup_(vp_elf_freep) struct vp_elf *c = NULL;
    int r = vp_elf_open(path, &c);
    if (r < 0)
        return vp_error(r, "the patched copy does not read back: %s", vp_last_error());

    struct vp_strv want = {0};
    for (size_t i = 0; i < orig->n_needed; i++) {
        const char *name = orig->needed[i].name;
        for (size_t k = 0; k < n; k++)
            if (edits[k].kind == VP_EDIT_REPLACE_NEEDED && strcmp(edits[k].old_name, name) == 0)
                name = edits[k].new_name;
        vp_strv_push(&want, name);
    }
    for (size_t k = 0; k < n; k++)
        if (edits[k].kind == VP_EDIT_ADD_NEEDED && !vp_strv_contains(&want, edits[k].new_name))
            vp_strv_push(&want, edits[k].new_name);

    r = 0;
    if (c->n_needed != want.n)
        r = vp_error(-EIO, "%s: expected %zu DT_NEEDED entries after patching, found %zu",
                     path, want.n, c->n_needed);
    for (size_t i = 0; r == 0 && i < want.n; i++)
        if (vp_elf_needed_index(c, want.v[i]) < 0)
            r = vp_error(-EIO, "%s: DT_NEEDED %s missing after patching", path, want.v[i]);
    if (r == 0 && (!same_str(c->interp, orig->interp) || !same_str(c->soname, orig->soname) ||
                   !same_str(c->rpath, orig->rpath) || !same_str(c->runpath, orig->runpath) ||
                   c->kind != orig->kind))
        r = vp_error(-EIO, "%s: interpreter, soname, RPATH/RUNPATH or type changed by patching",
                     path);
    for (size_t i = 0; r == 0 && i < c->n_verneed; i++) {
        const char *f = vp_elf_dynstr(c, c->verneed[i].vn_file);
        bool listed = false;
        for (size_t k = 0; f && k < c->n_needed; k++)
            listed |= strcmp(c->needed[k].name, f) == 0;
        if (!listed)
            r = vp_error(-EIO, "%s: version requirement names %s, which is not needed", path,
                         f ? f : "(bad offset)");
    }
    if (r == 0) {
        bool writable = false;
        const Elf64_Phdr *dp = &c->ph[c->dyn_phidx];
        for (size_t i = 0; i < c->phnum; i++) {
            const Elf64_Phdr *p = &c->ph[i];
            if (p->p_type == PT_LOAD && (p->p_flags & PF_W) && dp->p_vaddr >= p->p_vaddr &&
                dp->p_vaddr + dp->p_memsz <= p->p_vaddr + p->p_memsz)
                writable = true;
        }
        if (!writable)
            r = vp_error(-EIO,
                         "%s: the dynamic section is not in a writable segment after patching "
                         "(ld.so would crash writing DT_DEBUG)",
                         path);
    }
    vp_strv_release(&want);
    return r;
}
