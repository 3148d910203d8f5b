/* elfscan: finds strings in read-only data that name libcuda / libnvidia-ml — the
 * names a program may hand to dlopen(). Device code and unwind tables are skipped so
 * a 1 GB CUDA library costs only its .rodata. */
#include "elfmodel.h"

#include <errno.h>
#include <string.h>

static const char *const needles[] = {"libcuda.so", "libnvidia-ml.so"};

static bool path_char(uint8_t c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '/' || c == '.' || c == '_' || c == '-' || c == '$' || c == '{' || c == '}' ||
           c == '*'; /* globs have wildcards in directories too */
}

static void add_route(struct vp_elf *e, const char *text, bool nvml)
{
    for (size_t i = 0; i < e->n_routes; i++)
        if (strcmp(e->routes[i].text, text) == 0)
            return;
    e->routes = vp_xrealloc(e->routes, (e->n_routes + 1) * sizeof(*e->routes));
    e->routes[e->n_routes++] = (struct vp_elf_route_string){
        .text = vp_xstrdup(text),
        .absolute = strchr(text, '/') != NULL,
        .glob = strchr(text, '*') != NULL,
        .nvml = nvml,
    };
}

static void scan_range(struct vp_elf *e, const uint8_t *base, uint64_t len)
{
    for (size_t k = 0; k < VP_ARRAY_SIZE(needles); k++) {
        size_t nlen = strlen(needles[k]);
        const uint8_t *p = base, *end = base + len;
        while (p < end) {
            const uint8_t *hit = memmem(p, (size_t)(end - p), needles[k], nlen);
            if (!hit)
                break;
            /* Go packs its strings without separators, so the bounds are guessed from
             * the shape of a library name: a version suffix and maybe a glob after it,
             * and a directory before it only when a '/' touches it. */
            const uint8_t *s = hit, *t = hit + nlen;
            while (t < end && ((*t >= '0' && *t <= '9') || *t == '.') && t - hit < 64)
                t++;
            if (t < end && *t == '*')
                t++;
            if (s > base && s[-1] == '/') {
                const uint8_t *q = s;
                while (q > base && path_char(q[-1]) && hit - q < 512)
                    q--;
                while (q < s && *q != '/' && *q != '$')
                    q++;
                s = q;
            }
            char *text = vp_xstrndup((const char *)s, (size_t)(t - s));
            add_route(e, text, k == 1);
            free(text);
            p = t;
        }
    }
}

static bool skipped_section(const char *name)
{
    static const char *const skip[] = {".nv_fatbin", ".nvFatBinSegment", "__nv_relfatbin",
                                       ".eh_frame", ".eh_frame_hdr", ".gcc_except_table",
                                       ".dynsym", ".dynstr", ".gnu.hash", ".hash",
                                       ".gnu.version", ".gnu.version_r", ".rela.dyn",
                                       ".rela.plt", ".note.gnu.build-id"};
    for (size_t i = 0; i < VP_ARRAY_SIZE(skip); i++)
        if (strcmp(name, skip[i]) == 0)
            return true;
    return false;
}

int vp_elf_scan_strings(struct vp_elf *e)
{
    if (e->strings_scanned)
        return 0;
    e->strings_scanned = true;
    size_t shstrndx;
    if (e->shnum && elf_getshdrstrndx(e->elf, &shstrndx) == 0) {
        for (size_t i = 1; i < e->shnum; i++) {
            Elf_Scn *scn = elf_getscn(e->elf, i);
            const Elf64_Shdr *sh = scn ? elf64_getshdr(scn) : NULL;
            if (!sh || sh->sh_type != SHT_PROGBITS || !(sh->sh_flags & SHF_ALLOC) ||
                (sh->sh_flags & (SHF_EXECINSTR | SHF_WRITE)))
                continue;
            const char *name = elf_strptr(e->elf, shstrndx, sh->sh_name);
            if (!name || skipped_section(name))
                continue;
            if (sh->sh_offset > e->size || sh->sh_size > e->size - sh->sh_offset)
                return vp_error(-EBADMSG, "%s: section %s lies outside the file", e->path,
                                name);
            scan_range(e, e->img + sh->sh_offset, sh->sh_size);
        }
        return 0;
    }
    /* No sections: read-only, non-executable segments hold the constant data. */
    for (size_t i = 0; i < e->phnum; i++) {
        const Elf64_Phdr *p = &e->ph[i];
        if (p->p_type == PT_LOAD && !(p->p_flags & (PF_X | PF_W)))
            scan_range(e, e->img + p->p_offset, p->p_filesz);
    }
    return 0;
}
