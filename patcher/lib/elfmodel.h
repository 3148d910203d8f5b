/* elfmodel: a read-only model of one x86_64 ELF file, read with libelf and, where
 * there are no section headers, through PT_DYNAMIC. Every offset taken from the file
 * is range-checked before it is used. */
#ifndef VP_ELFMODEL_H
#define VP_ELFMODEL_H

#include <elf.h>
#include <libelf.h>
#include <stdbool.h>
#include <stdint.h>

#include "util.h"

/* The redirected sonames and the marker our shims export. */
#define VP_SONAME_CUDA "libcuda.so.1"
#define VP_SONAME_NVML "libnvidia-ml.so.1"
#define VP_SHIM_MARKER "vgpu_shim_abi_version"

enum vp_elf_kind {
    VP_ELF_EXEC,       /* ET_EXEC with PT_INTERP */
    VP_ELF_PIE,        /* ET_DYN with PT_INTERP */
    VP_ELF_LIB,        /* ET_DYN without PT_INTERP */
    VP_ELF_STATIC,     /* no PT_DYNAMIC: the dynamic loader never sees it */
    VP_ELF_STATIC_PIE, /* ET_DYN with PT_DYNAMIC and no PT_INTERP nor DT_NEEDED, DF_1_PIE */
};

struct vp_elf_needed {
    char *name;
    uint64_t stroff; /* offset of the name in the dynamic string table */
    size_t dynidx;   /* index of the DT_NEEDED entry in the dynamic array */
};

/* One Elf64_Verneed record: where its vn_file field lives and what it names. */
struct vp_elf_verneed {
    uint64_t field_off; /* file offset of vn_file */
    uint32_t vn_file;   /* string offset */
};

/* A string in read-only data that names a redirected library (a dlopen route). */
struct vp_elf_route_string {
    char *text;
    bool absolute; /* contains '/' */
    bool glob;     /* contains '*' */
    bool nvml;     /* libnvidia-ml rather than libcuda */
};

struct vp_elf {
    char *path;
    int fd;
    Elf *elf;
    const uint8_t *img; /* the mapped file */
    uint64_t size;
    Elf64_Ehdr ehdr;
    Elf64_Phdr *ph;
    size_t phnum;
    size_t shnum; /* 0 for section-less files */
    enum vp_elf_kind kind;
    char *interp;

    /* Dynamic section (valid when has_dynamic). */
    bool has_dynamic;
    size_t dyn_phidx;
    uint64_t dyn_off, dyn_vaddr;
    size_t dyn_slots; /* entries that fit in PT_DYNAMIC's file size */
    size_t dyn_used;  /* entries before the first DT_NULL */
    size_t dyn_spare; /* DT_NULL slots after the terminator */
    uint64_t strtab_vaddr, strtab_off, strsz;
    struct vp_elf_needed *needed;
    size_t n_needed;
    char *soname, *rpath, *runpath;
    size_t rpath_dynidx, runpath_dynidx; /* SIZE_MAX when absent */
    uint64_t flags, flags_1;
    bool has_init; /* DT_INIT or DT_INIT_ARRAY */
    struct vp_elf_verneed *verneed;
    size_t n_verneed;
    int shidx_dynamic, shidx_dynstr; /* section indexes, -1 when absent */

    /* Dynamic symbols. */
    size_t n_dynsym;
    bool imports_dlopen;          /* undefined dlopen or dlmopen */
    bool exports_marker;          /* defines VP_SHIM_MARKER */
    size_t n_cu_exports;          /* defined functions named cu[A-Z]* (driver API) */
    size_t n_nvml_exports;        /* defined functions named nvml[A-Z]* */
    bool exports_cu_export_table; /* defines cuGetExportTable */
    bool exports_dl;              /* defines dlopen, dlmopen, dlsym or dlvsym (an interposer) */
    bool exports_la;              /* defines an la_* symbol (an LD_AUDIT module) */

    /* Go. */
    bool go;
    bool go_internal_link; /* linked by Go's own linker (patchelf #146/#457 territory) */
    char *go_toolchain;    /* "go1.22.0" */
    char *ollama_version;  /* from -X .../version.Version= in the build settings */

    /* Filled by vp_elf_scan_strings(). */
    bool strings_scanned;
    struct vp_elf_route_string *routes;
    size_t n_routes;
};

/* Opens and models path. Returns 0 and *ret (free with vp_elf_free), or a negative
 * errno with a message in vp_last_error(): -ENOEXEC not ELF, -EPROTONOSUPPORT
 * another class/byte order/machine, -EBADMSG truncated or corrupt tables. */
int vp_elf_open(const char *path, struct vp_elf **ret);
void vp_elf_free(struct vp_elf *e);
static inline void vp_elf_freep(struct vp_elf **e)
{
    if (*e)
        vp_elf_free(*e);
}

/* Scans read-only data for strings naming libcuda / libnvidia-ml. */
int vp_elf_scan_strings(struct vp_elf *e);

/* Maps a virtual address range to a file offset through PT_LOAD; false if it is not
 * fully backed by file bytes of one segment. */
bool vp_elf_vaddr_to_off(const struct vp_elf *e, uint64_t vaddr, uint64_t len, uint64_t *ret);
/* The string at offset off of the dynamic string table, or NULL when out of range or
 * unterminated. */
const char *vp_elf_dynstr(const struct vp_elf *e, uint64_t off);
/* Finds a NUL-terminated string in .dynstr that equals s and is not the tail of a
 * longer string at that offset; returns its offset or UINT64_MAX. */
uint64_t vp_elf_dynstr_find(const struct vp_elf *e, const char *s);
/* Whether any reference other than DT_NEEDED entry `skip_dynidx` points into the
 * bytes [off, off+len) of .dynstr (tail merging makes strings shared). */
bool vp_elf_dynstr_shared(const struct vp_elf *e, uint64_t off, uint64_t len, size_t skip_dynidx);
/* Index of the DT_NEEDED entry named name, or -1. */
int vp_elf_needed_index(const struct vp_elf *e, const char *name);

const char *vp_elf_kind_name(enum vp_elf_kind k);
bool vp_elf_is_executable(const struct vp_elf *e);

#endif
