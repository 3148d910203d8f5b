/* ldcache: a strict, bounds-checked reader of glibc's /etc/ld.so.cache (the
 * "glibc-ld.so.cache1.1" format, alone or behind the old "ld.so-1.7.0" table). */
#ifndef VP_LDCACHE_H
#define VP_LDCACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Entry flags (glibc's ldconfig.h): the kind of library and its ABI. */
#define VP_LDCACHE_FLAG_ELF_LIBC6   0x0003
#define VP_LDCACHE_FLAG_X8664_LIB64 0x0300
/* The only flags ld.so accepts on x86_64 (its _DL_CACHE_DEFAULT_ID). */
#define VP_LDCACHE_FLAGS_X86_64 (VP_LDCACHE_FLAG_ELF_LIBC6 | VP_LDCACHE_FLAG_X8664_LIB64)

struct vp_ldcache_entry {
    char *soname;  /* the key ld.so compares a bare name with */
    char *path;    /* the file ld.so opens */
    int32_t flags; /* VP_LDCACHE_FLAG_* */
    uint64_t hwcap;
    char *hwcaps; /* glibc-hwcaps subdirectory ("x86-64-v3") for such entries, else NULL */
};

struct vp_ldcache {
    struct vp_ldcache_entry *entries; /* in file order */
    size_t n;
    bool old_format; /* only the old libc5-era table was present */
};

/* Parses a cache image. Returns 0 and *ret (free with vp_ldcache_free), or -EBADMSG with a
 * message when anything in it is inconsistent (bad magic, a count or an offset pointing past
 * the end, an unterminated string, a corrupt extension directory). Never reads outside
 * [data, data + len). */
int vp_ldcache_parse(const void *data, size_t len, struct vp_ldcache **ret);

/* Reads and parses the cache file at path (an on-disk path). -ENOENT when it does not exist:
 * callers treat that as an empty cache, as ld.so does. */
int vp_ldcache_load(const char *path, struct vp_ldcache **ret);

/* The path ld.so takes from the cache for a bare soname on x86_64, ignoring glibc-hwcaps
 * entries: the first entry in file order with flags VP_LDCACHE_FLAGS_X86_64, no hwcap bits and
 * that soname. NULL if none. The string belongs to the cache. */
const char *vp_ldcache_lookup(const struct vp_ldcache *c, const char *soname);

/* Like vp_ldcache_lookup, but also considers glibc-hwcaps entries whose subdirectory appears
 * in `supported` (NULL-terminated, best first, e.g. {"x86-64-v3", "x86-64-v2", NULL}): the
 * best such entry wins over the plain one, as in ld.so 2.33+. */
const char *vp_ldcache_lookup_hwcaps(const struct vp_ldcache *c, const char *soname,
                                     const char *const *supported);

/* glibc's _dl_cache_libcmp: compares names with digit runs compared as numbers (so
 * "libfoo.so.01" equals "libfoo.so.1"). */
int vp_ldcache_libcmp(const char *a, const char *b);

void vp_ldcache_free(struct vp_ldcache *c);
static inline void vp_ldcache_freep(struct vp_ldcache **c)
{
    if (*c)
        vp_ldcache_free(*c);
}

#endif
