/* elfmodel: read-only ELF model (libelf for headers and sections, raw range-checked
 * reads for the dynamic tables). */
#include "elfmodel.h"
#include "buildinfo.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

#define BAD(...) vp_error(-EBADMSG, __VA_ARGS__)

/* a + b <= limit without overflow. */
static bool fits(uint64_t a, uint64_t b, uint64_t limit)
{
    return a <= limit && b <= limit - a;
}

bool vp_elf_vaddr_to_off(const struct vp_elf *e, uint64_t vaddr, uint64_t len, uint64_t *ret)
{
    for (size_t i = 0; i < e->phnum; i++) {
        const Elf64_Phdr *p = &e->ph[i];
        if (p->p_type != PT_LOAD || vaddr < p->p_vaddr)
            continue;
        uint64_t delta = vaddr - p->p_vaddr;
        if (!fits(delta, len, p->p_filesz))
            continue;
        if (!fits(p->p_offset, delta + len, e->size))
            return false;
        *ret = p->p_offset + delta;
        return true;
    }
    return false;
}

const char *vp_elf_dynstr(const struct vp_elf *e, uint64_t off)
{
    if (off >= e->strsz)
        return NULL;
    const char *s = (const char *)e->img + e->strtab_off + off;
    if (!memchr(s, '\0', e->strsz - off))
        return NULL;
    return s;
}

uint64_t vp_elf_dynstr_find(const struct vp_elf *e, const char *s)
{
    size_t len = strlen(s) + 1;
    const char *tab = (const char *)e->img + e->strtab_off;
    for (uint64_t off = 0; off + len <= e->strsz; off++) {
        const char *hit = memmem(tab + off, e->strsz - off, s, len);
        if (!hit)
            break;
        off = (uint64_t)(hit - tab);
        if (off == 0 || tab[off - 1] == '\0')
            return off;
    }
    return UINT64_MAX;
}

static bool overlaps(uint64_t ref, const char *refstr, uint64_t off, uint64_t len)
{
    uint64_t rlen = strlen(refstr) + 1;
    return ref < off + len && off < ref + rlen;
}

bool vp_elf_dynstr_shared(const struct vp_elf *e, uint64_t off, uint64_t len, size_t skip_dynidx)
{
    const Elf64_Dyn *d = (const Elf64_Dyn *)(e->img + e->dyn_off);
    for (size_t i = 0; i < e->dyn_used; i++) {
        if (i == skip_dynidx)
            continue;
        switch (d[i].d_tag) {
        case DT_NEEDED:
        case DT_SONAME:
        case DT_RPATH:
        case DT_RUNPATH:
        case DT_AUXILIARY:
        case DT_FILTER: {
            const char *s = vp_elf_dynstr(e, d[i].d_un.d_val);
            if (!s || overlaps(d[i].d_un.d_val, s, off, len))
                return true;
            break;
        }
        default:
            break;
        }
    }
    /* Symbol names and version names may share tails too. */
    uint64_t symoff;
    for (size_t i = 0; i < e->dyn_used; i++) {
        if (d[i].d_tag != DT_SYMTAB)
            continue;
        if (!vp_elf_vaddr_to_off(e, d[i].d_un.d_ptr, e->n_dynsym * sizeof(Elf64_Sym), &symoff) ||
            symoff % 8)
            return true;
        const Elf64_Sym *sym = (const Elf64_Sym *)(e->img + symoff);
        for (size_t k = 0; k < e->n_dynsym; k++) {
            const char *s = vp_elf_dynstr(e, sym[k].st_name);
            if (s && sym[k].st_name && overlaps(sym[k].st_name, s, off, len))
                return true;
        }
    }
    for (size_t i = 0; i < e->n_verneed; i++) {
        const char *s = vp_elf_dynstr(e, e->verneed[i].vn_file);
        /* A vn_file equal to the entry's own string is rewritten with it. */
        if (s && e->verneed[i].vn_file != off && overlaps(e->verneed[i].vn_file, s, off, len))
            return true;
    }
    return false;
}

int vp_elf_needed_index(const struct vp_elf *e, const char *name)
{
    for (size_t i = 0; i < e->n_needed; i++)
        if (strcmp(e->needed[i].name, name) == 0)
            return (int)i;
    return -1;
}

const char *vp_elf_kind_name(enum vp_elf_kind k)
{
    switch (k) {
    case VP_ELF_EXEC:
        return "executable";
    case VP_ELF_PIE:
        return "pie-executable";
    case VP_ELF_LIB:
        return "shared-library";
    case VP_ELF_STATIC:
        return "static-executable";
    case VP_ELF_STATIC_PIE:
        return "static-pie-executable";
    }
    return "unknown";
}

bool vp_elf_is_executable(const struct vp_elf *e)
{
    return e->kind == VP_ELF_EXEC || e->kind == VP_ELF_PIE;
}

static int check_ident(const unsigned char *id, uint64_t size, const char *path)
{
    if (size < EI_NIDENT || memcmp(id, ELFMAG, SELFMAG) != 0)
        return vp_error(-ENOEXEC, "%s: not an ELF file", path);
    if (id[EI_CLASS] == ELFCLASS32)
        return vp_error(-EPROTONOSUPPORT,
                        "%s: 32-bit ELF is out of scope (only x86_64 objects are handled)", path);
    if (id[EI_CLASS] != ELFCLASS64)
        return BAD("%s: corrupt ELF header (unknown class %u)", path, id[EI_CLASS]);
    if (id[EI_DATA] == ELFDATA2MSB)
        return vp_error(-EPROTONOSUPPORT,
                        "%s: big-endian ELF is out of scope (only x86_64 objects are handled)",
                        path);
    if (id[EI_DATA] != ELFDATA2LSB)
        return BAD("%s: corrupt ELF header (unknown byte order %u)", path, id[EI_DATA]);
    if (size < sizeof(Elf64_Ehdr))
        return BAD("%s: truncated: the file ends inside the ELF header", path);
    return 0;
}

static int load_headers(struct vp_elf *e)
{
    memcpy(&e->ehdr, e->img, sizeof(e->ehdr));
    const Elf64_Ehdr *h = &e->ehdr;
    if (h->e_machine != EM_X86_64)
        return vp_error(-EPROTONOSUPPORT,
                        "%s: ELF for machine %u is out of scope (only x86_64 objects are handled)",
                        e->path, h->e_machine);
    if (h->e_type != ET_EXEC && h->e_type != ET_DYN)
        return vp_error(-ENOEXEC, "%s: ELF type %u is neither an executable nor a shared library",
                        e->path, h->e_type);
    if (elf_getphdrnum(e->elf, &e->phnum) != 0)
        return BAD("%s: corrupt program header count: %s", e->path, elf_errmsg(-1));
    if (e->phnum == 0)
        return BAD("%s: no program headers", e->path);
    if (h->e_phentsize != sizeof(Elf64_Phdr) ||
        !fits(h->e_phoff, (uint64_t)e->phnum * sizeof(Elf64_Phdr), e->size))
        return BAD("%s: truncated or corrupt: the program headers lie outside the file", e->path);
    e->ph = vp_xcalloc(e->phnum, sizeof(Elf64_Phdr));
    memcpy(e->ph, e->img + h->e_phoff, e->phnum * sizeof(Elf64_Phdr));
    for (size_t i = 0; i < e->phnum; i++) {
        const Elf64_Phdr *p = &e->ph[i];
        if (p->p_type == PT_LOAD && !fits(p->p_offset, p->p_filesz, e->size))
            return BAD("%s: truncated: segment %zu ends at %#llx, past the end of the file "
                       "(%#llx)",
                       e->path, i, (unsigned long long)(p->p_offset + p->p_filesz),
                       (unsigned long long)e->size);
    }

    if (h->e_shoff == 0) {
        e->shnum = 0;
    } else if (elf_getshdrnum(e->elf, &e->shnum) != 0) {
        return BAD("%s: corrupt section header table: %s", e->path, elf_errmsg(-1));
    } else if (e->shnum && (h->e_shentsize != sizeof(Elf64_Shdr) ||
                            !fits(h->e_shoff, (uint64_t)e->shnum * sizeof(Elf64_Shdr), e->size))) {
        return BAD("%s: truncated or corrupt: the section header table lies outside the file",
                   e->path);
    }
    return 0;
}

static int load_interp(struct vp_elf *e)
{
    for (size_t i = 0; i < e->phnum; i++) {
        const Elf64_Phdr *p = &e->ph[i];
        if (p->p_type != PT_INTERP)
            continue;
        if (!fits(p->p_offset, p->p_filesz, e->size) || p->p_filesz == 0 ||
            e->img[p->p_offset + p->p_filesz - 1] != '\0' || e->interp)
            return BAD("%s: corrupt PT_INTERP", e->path);
        e->interp = vp_xstrdup((const char *)e->img + p->p_offset);
    }
    return 0;
}

static const char *dyn_string(struct vp_elf *e, uint64_t off, const char *what, int *r)
{
    const char *s = vp_elf_dynstr(e, off);
    if (!s)
        *r = BAD("%s: corrupt dynamic section: %s points outside the string table", e->path, what);
    return s;
}

static int count_gnu_hash(struct vp_elf *e, uint64_t vaddr, size_t *ret)
{
    uint64_t off;
    if (!vp_elf_vaddr_to_off(e, vaddr, 16, &off) || off % 4)
        return BAD("%s: corrupt dynamic section: DT_GNU_HASH is not mapped", e->path);
    const uint32_t *hdr = (const uint32_t *)(e->img + off);
    uint64_t nbuckets = hdr[0], symoffset = hdr[1], bloom = hdr[2];
    uint64_t buckets_off = off + 16 + bloom * 8;
    if (!fits(buckets_off, nbuckets * 4, e->size))
        return BAD("%s: corrupt DT_GNU_HASH", e->path);
    const uint32_t *buckets = (const uint32_t *)(e->img + buckets_off);
    uint64_t last = 0;
    for (uint64_t i = 0; i < nbuckets; i++)
        if (buckets[i] > last)
            last = buckets[i];
    if (last < symoffset) {
        *ret = (size_t)symoffset;
        return 0;
    }
    uint64_t chain_off = buckets_off + nbuckets * 4;
    for (uint64_t i = last;; i++) {
        uint64_t at = chain_off + (i - symoffset) * 4;
        if (!fits(at, 4, e->size) || i - symoffset > (1u << 26))
            return BAD("%s: corrupt DT_GNU_HASH chain", e->path);
        if (*(const uint32_t *)(e->img + at) & 1) {
            *ret = (size_t)i + 1;
            return 0;
        }
    }
}

static int count_dynsym(struct vp_elf *e, const uint64_t *tags)
{
    /* Section headers are the cheapest answer; the hash tables the loader uses work
     * without them. */
    for (size_t i = 1; i < e->shnum; i++) {
        Elf_Scn *scn = elf_getscn(e->elf, i);
        const Elf64_Shdr *sh = scn ? elf64_getshdr(scn) : NULL;
        if (sh && sh->sh_type == SHT_DYNSYM && sh->sh_entsize == sizeof(Elf64_Sym)) {
            e->n_dynsym = sh->sh_size / sizeof(Elf64_Sym);
            return 0;
        }
    }
    if (tags[DT_HASH]) {
        uint64_t off;
        if (!vp_elf_vaddr_to_off(e, tags[DT_HASH], 8, &off) || off % 4)
            return BAD("%s: corrupt dynamic section: DT_HASH is not mapped", e->path);
        e->n_dynsym = ((const uint32_t *)(e->img + off))[1];
        return 0;
    }
    return 0;
}

static int load_symbols(struct vp_elf *e, uint64_t symtab, uint64_t gnu_hash, const uint64_t *tags)
{
    int r = count_dynsym(e, tags);
    if (r < 0)
        return r;
    if (!e->n_dynsym && gnu_hash && (r = count_gnu_hash(e, gnu_hash, &e->n_dynsym)) < 0)
        return r;
    if (!e->n_dynsym || !symtab)
        return 0;
    uint64_t off;
    if (!vp_elf_vaddr_to_off(e, symtab, (uint64_t)e->n_dynsym * sizeof(Elf64_Sym), &off) || off % 8)
        return BAD("%s: corrupt dynamic section: the symbol table lies outside the file", e->path);
    const Elf64_Sym *sym = (const Elf64_Sym *)(e->img + off);
    for (size_t i = 1; i < e->n_dynsym; i++) {
        const char *name = vp_elf_dynstr(e, sym[i].st_name);
        if (!name)
            return BAD("%s: corrupt dynamic symbol %zu (name outside the string table)", e->path,
                       i);
        bool defined = sym[i].st_shndx != SHN_UNDEF;
        if (!defined) {
            if (strcmp(name, "dlopen") == 0 || strcmp(name, "dlmopen") == 0)
                e->imports_dlopen = true;
            continue;
        }
        if (strcmp(name, VP_SHIM_MARKER) == 0)
            e->exports_marker = true;
        if (!strcmp(name, "dlopen") || !strcmp(name, "dlmopen") || !strcmp(name, "dlsym") ||
            !strcmp(name, "dlvsym"))
            e->exports_dl = true;
        if (vp_startswith(name, "la_"))
            e->exports_la = true;
        if (ELF64_ST_TYPE(sym[i].st_info) != STT_FUNC)
            continue;
        /* Driver API names only: cuInit, nvmlInit_v2 (not cudaMalloc, curl_easy_init). */
        if (vp_startswith(name, "cu") && name[2] >= 'A' && name[2] <= 'Z')
            e->n_cu_exports++;
        if (vp_startswith(name, "nvml") && name[4] >= 'A' && name[4] <= 'Z')
            e->n_nvml_exports++;
        if (strcmp(name, "cuGetExportTable") == 0)
            e->exports_cu_export_table = true;
    }
    return 0;
}

static int load_verneed(struct vp_elf *e, uint64_t vaddr, uint64_t num)
{
    uint64_t off;
    if (!vp_elf_vaddr_to_off(e, vaddr, sizeof(Elf64_Verneed), &off))
        return BAD("%s: corrupt dynamic section: DT_VERNEED is not mapped", e->path);
    /* Each record takes 16 bytes of the file: a larger count is a lie. */
    if (num > e->size / sizeof(Elf64_Verneed))
        return BAD("%s: corrupt DT_VERNEEDNUM (%llu)", e->path, (unsigned long long)num);
    e->verneed = vp_xcalloc(num, sizeof(*e->verneed));
    for (uint64_t i = 0; i < num; i++) {
        if (!fits(off, sizeof(Elf64_Verneed), e->size))
            return BAD("%s: corrupt version requirements", e->path);
        Elf64_Verneed vn;
        memcpy(&vn, e->img + off, sizeof(vn));
        if (!vp_elf_dynstr(e, vn.vn_file))
            return BAD("%s: corrupt version requirement (file name outside the string table)",
                       e->path);
        e->verneed[e->n_verneed++] = (struct vp_elf_verneed){
            .field_off = off + offsetof(Elf64_Verneed, vn_file), .vn_file = vn.vn_file};
        if (!vn.vn_next)
            break;
        off += vn.vn_next;
    }
    return 0;
}

static int load_dynamic(struct vp_elf *e)
{
    const Elf64_Phdr *dp = NULL;
    for (size_t i = 0; i < e->phnum; i++)
        if (e->ph[i].p_type == PT_DYNAMIC) {
            dp = &e->ph[i];
            e->dyn_phidx = i;
        }
    if (!dp) {
        e->kind = VP_ELF_STATIC;
        return 0;
    }
    e->has_dynamic = true;
    if (!fits(dp->p_offset, dp->p_filesz, e->size) || dp->p_filesz < sizeof(Elf64_Dyn))
        return BAD("%s: truncated or corrupt: the dynamic section lies outside the file", e->path);
    if (dp->p_offset % 8)
        return BAD("%s: corrupt dynamic section (misaligned)", e->path);
    e->dyn_off = dp->p_offset;
    e->dyn_vaddr = dp->p_vaddr;
    e->dyn_slots = dp->p_filesz / sizeof(Elf64_Dyn);
    const Elf64_Dyn *d = (const Elf64_Dyn *)(e->img + e->dyn_off);

    uint64_t tags[DT_NUM] = {0};
    uint64_t gnu_hash = 0, verneed = 0, verneednum = 0;
    size_t i;
    for (i = 0; i < e->dyn_slots && d[i].d_tag != DT_NULL; i++) {
        int64_t t = d[i].d_tag;
        if (t >= 0 && t < DT_NUM)
            tags[t] = d[i].d_un.d_val;
        if (t == DT_GNU_HASH)
            gnu_hash = d[i].d_un.d_ptr;
        else if (t == DT_VERNEED)
            verneed = d[i].d_un.d_ptr;
        else if (t == DT_VERNEEDNUM)
            verneednum = d[i].d_un.d_val;
        else if (t == DT_FLAGS_1)
            e->flags_1 = d[i].d_un.d_val;
    }
    if (i == e->dyn_slots)
        return BAD("%s: corrupt dynamic section: no DT_NULL terminator", e->path);
    e->dyn_used = i;
    for (i++; i < e->dyn_slots && d[i].d_tag == DT_NULL; i++)
        e->dyn_spare++;
    e->flags = tags[DT_FLAGS];
    e->has_init = tags[DT_INIT] || tags[DT_INIT_ARRAY];

    e->strtab_vaddr = tags[DT_STRTAB];
    e->strsz = tags[DT_STRSZ];
    if (!e->strtab_vaddr || !e->strsz ||
        !vp_elf_vaddr_to_off(e, e->strtab_vaddr, e->strsz, &e->strtab_off))
        return BAD("%s: corrupt dynamic section: DT_STRTAB/DT_STRSZ do not describe bytes of "
                   "the file",
                   e->path);

    int r = 0;
    e->rpath_dynidx = e->runpath_dynidx = SIZE_MAX;
    e->needed = vp_xcalloc(e->dyn_used, sizeof(*e->needed));
    for (i = 0; i < e->dyn_used && r == 0; i++) {
        const char *s;
        switch (d[i].d_tag) {
        case DT_NEEDED:
            if ((s = dyn_string(e, d[i].d_un.d_val, "DT_NEEDED", &r)))
                e->needed[e->n_needed++] = (struct vp_elf_needed){
                    .name = vp_xstrdup(s), .stroff = d[i].d_un.d_val, .dynidx = i};
            break;
        case DT_SONAME:
            if ((s = dyn_string(e, d[i].d_un.d_val, "DT_SONAME", &r))) {
                free(e->soname); /* the loader keeps the last of repeated tags */
                e->soname = vp_xstrdup(s);
            }
            break;
        case DT_RPATH:
            if ((s = dyn_string(e, d[i].d_un.d_val, "DT_RPATH", &r))) {
                free(e->rpath);
                e->rpath = vp_xstrdup(s);
                e->rpath_dynidx = i;
            }
            break;
        case DT_RUNPATH:
            if ((s = dyn_string(e, d[i].d_un.d_val, "DT_RUNPATH", &r))) {
                free(e->runpath);
                e->runpath = vp_xstrdup(s);
                e->runpath_dynidx = i;
            }
            break;
        default:
            break;
        }
    }
    if (r < 0)
        return r;
    if (verneed && verneednum && (r = load_verneed(e, verneed, verneednum)) < 0)
        return r;
    return load_symbols(e, tags[DT_SYMTAB], gnu_hash, tags);
}

static void classify(struct vp_elf *e)
{
    if (!e->has_dynamic)
        e->kind = VP_ELF_STATIC;
    else if (e->ehdr.e_type == ET_EXEC)
        e->kind = e->interp ? VP_ELF_EXEC : VP_ELF_STATIC;
    else if (e->interp)
        e->kind = VP_ELF_PIE;
    else if ((e->flags_1 & DF_1_PIE) && e->n_needed == 0)
        e->kind = VP_ELF_STATIC_PIE;
    else
        e->kind = VP_ELF_LIB;
}

static const char *section_name(struct vp_elf *e, size_t shstrndx, const Elf64_Shdr *sh)
{
    return elf_strptr(e->elf, shstrndx, sh->sh_name);
}

static void load_sections(struct vp_elf *e, const uint8_t **buildinfo, uint64_t *buildinfo_len)
{
    size_t shstrndx;
    e->shidx_dynamic = e->shidx_dynstr = -1;
    if (!e->shnum || elf_getshdrstrndx(e->elf, &shstrndx) != 0)
        return;
    for (size_t i = 1; i < e->shnum; i++) {
        Elf_Scn *scn = elf_getscn(e->elf, i);
        const Elf64_Shdr *sh = scn ? elf64_getshdr(scn) : NULL;
        const char *name = sh ? section_name(e, shstrndx, sh) : NULL;
        if (!name)
            continue;
        if (sh->sh_type == SHT_DYNAMIC)
            e->shidx_dynamic = (int)i;
        else if (strcmp(name, ".dynstr") == 0)
            e->shidx_dynstr = (int)i;
        else if (strcmp(name, ".note.go.buildid") == 0)
            e->go = true;
        else if (strcmp(name, ".go.buildinfo") == 0 && sh->sh_type == SHT_PROGBITS &&
                 fits(sh->sh_offset, sh->sh_size, e->size)) {
            e->go = true;
            *buildinfo = e->img + sh->sh_offset;
            *buildinfo_len = sh->sh_size;
        }
    }
}

/* Section-less files: look for the build info header in writable segments. */
static void find_buildinfo_raw(struct vp_elf *e, const uint8_t **ret, uint64_t *ret_len)
{
    for (size_t i = 0; i < e->phnum; i++) {
        const Elf64_Phdr *p = &e->ph[i];
        if (p->p_type != PT_LOAD || !(p->p_flags & PF_W))
            continue;
        const uint8_t *base = e->img + p->p_offset;
        for (uint64_t off = 0; off + VP_BUILDINFO_MAGIC_LEN <= p->p_filesz; off += 16) {
            if (memcmp(base + off, VP_BUILDINFO_MAGIC, VP_BUILDINFO_MAGIC_LEN) == 0) {
                *ret = base + off;
                *ret_len = p->p_filesz - off;
                return;
            }
        }
    }
}

static void load_go(struct vp_elf *e)
{
    const uint8_t *bi = NULL;
    uint64_t bi_len = 0;
    load_sections(e, &bi, &bi_len);
    if (!bi && e->shnum == 0)
        find_buildinfo_raw(e, &bi, &bi_len);
    if (bi) {
        struct vp_buildinfo info;
        if (vp_buildinfo_parse(bi, bi_len, &info) == 0) {
            e->go = true;
            e->go_toolchain = info.toolchain;
            e->ollama_version = info.ollama_version;
        }
    }
    /* Go's internal linker emits no DT_INIT/DT_INIT_ARRAY (it has no crt objects);
     * an external link through gcc always has them. */
    e->go_internal_link = e->go && e->has_dynamic && !e->has_init;
}

int vp_elf_open(const char *path, struct vp_elf **ret)
{
    static bool ready;
    if (!ready) {
        if (elf_version(EV_CURRENT) == EV_NONE)
            return vp_error(-ENOSYS, "libelf is out of date");
        ready = true;
    }
    struct vp_elf *e = vp_xcalloc(1, sizeof(*e));
    e->path = vp_xstrdup(path);
    e->fd = -1;
    e->shidx_dynamic = e->shidx_dynstr = -1;
    int r = 0;
    e->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (e->fd < 0) {
        r = vp_error_errno(-errno, "cannot open %s", path);
        goto fail;
    }
    struct stat st;
    if (fstat(e->fd, &st) < 0) {
        r = vp_error_errno(-errno, "cannot stat %s", path);
        goto fail;
    }
    if (!S_ISREG(st.st_mode)) {
        r = vp_error(-ENOEXEC, "%s: not a regular file", path);
        goto fail;
    }
    unsigned char id[EI_NIDENT] = {0};
    ssize_t n = pread(e->fd, id, sizeof(id), 0);
    if (n < 0) {
        r = vp_error_errno(-errno, "cannot read %s", path);
        goto fail;
    }
    if ((r = check_ident(id, (uint64_t)st.st_size, path)) < 0)
        goto fail;
    e->elf = elf_begin(e->fd, ELF_C_READ_MMAP, NULL);
    size_t sz = 0;
    if (!e->elf || elf_kind(e->elf) != ELF_K_ELF ||
        !(e->img = (uint8_t *)elf_rawfile(e->elf, &sz))) {
        r = BAD("%s: libelf cannot read it: %s", path, elf_errmsg(-1));
        goto fail;
    }
    e->size = sz;
    if ((r = load_headers(e)) < 0 || (r = load_interp(e)) < 0 || (r = load_dynamic(e)) < 0)
        goto fail;
    classify(e);
    load_go(e);
    *ret = e;
    return 0;
fail:
    vp_elf_free(e);
    return r;
}

void vp_elf_free(struct vp_elf *e)
{
    if (!e)
        return;
    for (size_t i = 0; i < e->n_needed; i++)
        free(e->needed[i].name);
    for (size_t i = 0; i < e->n_routes; i++)
        free(e->routes[i].text);
    free(e->routes);
    free(e->needed);
    free(e->verneed);
    free(e->soname);
    free(e->rpath);
    free(e->runpath);
    free(e->interp);
    free(e->ph);
    free(e->go_toolchain);
    free(e->ollama_version);
    if (e->elf)
        elf_end(e->elf);
    if (e->fd >= 0)
        close(e->fd);
    free(e->path);
    free(e);
}
