/* ldcache: reader of /etc/ld.so.cache. Layouts (glibc sysdeps/generic/dl-cache.h):
 *   old:  "ld.so-1.7.0" nlibs {flags,key,value}[nlibs] strings      (offsets from the strings)
 *   new:  "glibc-ld.so.cache1.1" nlibs len_strings flags pad[3] extension_offset unused[3]
 *         {flags,key,value,osversion,hwcap}[nlibs] strings           (offsets from the header)
 *   compat: the old table, then the new header at the next 8-byte boundary.
 * Every count and offset is checked against the buffer before it is used. */
#include "ldcache.h"
#include "util.h"

#include <errno.h>
#include <string.h>

#define OLD_MAGIC            "ld.so-1.7.0"
#define NEW_MAGIC            "glibc-ld.so.cache1.1"
#define OLD_HDR_SIZE         16 /* magic[11], pad, nlibs */
#define OLD_ENT_SIZE         12
#define NEW_HDR_SIZE         48
#define NEW_ENT_SIZE         24
#define EXT_MAGIC            0xeaa42174u /* (uint32_t)-358342284 */
#define EXT_HDR_SIZE         8
#define EXT_SECT_SIZE        16
#define EXT_TAG_HWCAPS       1
#define HWCAP_EXTENSION      (1ULL << 62)
#define HWCAP_ISA_LEVEL_MASK 0x3ffULL

#define BAD(...) vp_error(-EBADMSG, __VA_ARGS__)

static uint32_t rd32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof(v));
    return v;
}

static uint64_t rd64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof(v));
    return v;
}

/* a + b <= limit without overflow. */
static bool fits(uint64_t a, uint64_t b, uint64_t limit)
{
    return a <= limit && b <= limit - a;
}

/* The string table: strings must start inside [lo, hi) and end (NUL) before hi. Offsets are
 * relative to base. */
struct strtab {
    const uint8_t *d;
    uint64_t base, lo, hi;
};

static const char *str_at(const struct strtab *t, uint32_t off)
{
    uint64_t at = t->base + off;
    if (at < t->lo || at >= t->hi)
        return NULL;
    if (!memchr(t->d + at, '\0', t->hi - at))
        return NULL;
    return (const char *)t->d + at;
}

struct hwcaps_names {
    const uint8_t *idx; /* uint32 string offsets */
    uint32_t n;
};

static int load_extensions(const uint8_t *d, size_t len, uint32_t ext_off, const struct strtab *t,
                           struct hwcaps_names *ret)
{
    *ret = (struct hwcaps_names){0};
    if (ext_off == 0)
        return 0;
    if (ext_off % 4 || !fits(ext_off, EXT_HDR_SIZE, len))
        return BAD("ld.so.cache: extension directory at %#x lies outside the file", ext_off);
    if (rd32(d + ext_off) != EXT_MAGIC)
        return BAD("ld.so.cache: bad extension directory magic");
    uint32_t count = rd32(d + ext_off + 4);
    if (!fits((uint64_t)ext_off + EXT_HDR_SIZE, (uint64_t)count * EXT_SECT_SIZE, len))
        return BAD("ld.so.cache: %u extension sections do not fit in the file", count);
    for (uint32_t i = 0; i < count; i++) {
        const uint8_t *s = d + ext_off + EXT_HDR_SIZE + (size_t)i * EXT_SECT_SIZE;
        uint32_t tag = rd32(s), off = rd32(s + 8), size = rd32(s + 12);
        if (!fits(off, size, len))
            return BAD("ld.so.cache: extension section %u lies outside the file", i);
        /* ld.so drops a misshapen hwcaps section rather than the whole cache. */
        if (tag != EXT_TAG_HWCAPS || size == 0 || off % 4 || size % 4)
            continue;
        for (uint32_t k = 0; k < size / 4; k++)
            if (!str_at(t, rd32(d + off + (size_t)k * 4)))
                return BAD("ld.so.cache: glibc-hwcaps name %u lies outside the string table", k);
        *ret = (struct hwcaps_names){.idx = d + off, .n = size / 4};
    }
    return 0;
}

static struct vp_ldcache *cache_new(size_t n, bool old_format)
{
    struct vp_ldcache *c = vp_xcalloc(1, sizeof(*c));
    c->entries = vp_xcalloc(n, sizeof(*c->entries));
    c->old_format = old_format;
    return c;
}

static int add_entry(struct vp_ldcache *c, const struct strtab *t, size_t i, int32_t flags,
                     uint32_t key, uint32_t value, uint64_t hwcap, const struct hwcaps_names *hw)
{
    const char *soname = str_at(t, key), *path = str_at(t, value);
    if (!soname || !path)
        return BAD("ld.so.cache: entry %zu names a string outside the string table "
                   "(or one that is not terminated)",
                   i);
    const char *sub = NULL;
    if (((hwcap >> 32) & ~HWCAP_ISA_LEVEL_MASK) == (HWCAP_EXTENSION >> 32)) {
        uint32_t k = (uint32_t)hwcap;
        if (k >= hw->n)
            return BAD("ld.so.cache: entry %zu names glibc-hwcaps subdirectory %u of %u", i, k,
                       hw->n);
        sub = str_at(t, rd32(hw->idx + (size_t)k * 4));
    }
    c->entries[c->n++] = (struct vp_ldcache_entry){
        .soname = vp_xstrdup(soname),
        .path = vp_xstrdup(path),
        .flags = flags,
        .hwcap = hwcap,
        .hwcaps = sub ? vp_xstrdup(sub) : NULL,
    };
    return 0;
}

static int parse_new(const uint8_t *d, size_t len, size_t base, struct vp_ldcache **ret)
{
    if (!fits(base, NEW_HDR_SIZE, len))
        return BAD("ld.so.cache: truncated header");
    const uint8_t *h = d + base;
    uint32_t nlibs = rd32(h + 20), len_strings = rd32(h + 24);
    uint8_t endian = h[28] & 3;
    uint32_t ext_off = rd32(h + 32);
    if (endian == 1 || endian == 3)
        return BAD("ld.so.cache: written for another byte order (or marked invalid)");
    uint64_t ents = base + NEW_HDR_SIZE, ents_len = (uint64_t)nlibs * NEW_ENT_SIZE;
    if (!fits(ents, ents_len, len))
        return BAD("ld.so.cache: %u entries do not fit in %zu bytes", nlibs, len);
    if (!fits(ents + ents_len, len_strings, len))
        return BAD("ld.so.cache: the string table (%u bytes) runs past the end of the file",
                   len_strings);
    struct strtab t = {
        .d = d, .base = base, .lo = ents + ents_len, .hi = ents + ents_len + len_strings};
    struct hwcaps_names hw;
    int r = load_extensions(d, len, ext_off, &t, &hw);
    if (r < 0)
        return r;
    struct vp_ldcache *c = cache_new(nlibs, false);
    for (uint32_t i = 0; i < nlibs && r == 0; i++) {
        const uint8_t *e = d + ents + (size_t)i * NEW_ENT_SIZE;
        r = add_entry(c, &t, i, (int32_t)rd32(e), rd32(e + 4), rd32(e + 8), rd64(e + 16), &hw);
    }
    if (r < 0) {
        vp_ldcache_free(c);
        return r;
    }
    *ret = c;
    return 0;
}

static int parse_old(const uint8_t *d, size_t len, struct vp_ldcache **ret)
{
    if (len <= OLD_HDR_SIZE)
        return BAD("ld.so.cache: truncated header");
    uint32_t nlibs = rd32(d + 12);
    uint64_t tab_end = OLD_HDR_SIZE + (uint64_t)nlibs * OLD_ENT_SIZE;
    if (tab_end > len)
        return BAD("ld.so.cache: %u old-format entries do not fit in %zu bytes", nlibs, len);
    /* The new table hides at the start of the old string table, 8-byte aligned. */
    uint64_t new_off = (tab_end + 7) & ~(uint64_t)7;
    if (fits(new_off, NEW_HDR_SIZE, len) && memcmp(d + new_off, NEW_MAGIC, strlen(NEW_MAGIC)) == 0)
        return parse_new(d, len, (size_t)new_off, ret);

    struct strtab t = {.d = d, .base = tab_end, .lo = tab_end, .hi = len};
    struct hwcaps_names none = {0};
    struct vp_ldcache *c = cache_new(nlibs, true);
    int r = 0;
    for (uint32_t i = 0; i < nlibs && r == 0; i++) {
        const uint8_t *e = d + OLD_HDR_SIZE + (size_t)i * OLD_ENT_SIZE;
        r = add_entry(c, &t, i, (int32_t)rd32(e), rd32(e + 4), rd32(e + 8), 0, &none);
    }
    if (r < 0) {
        vp_ldcache_free(c);
        return r;
    }
    *ret = c;
    return 0;
}

int vp_ldcache_parse(const void *data, size_t len, struct vp_ldcache **ret)
{
    const uint8_t *d = data;
    /* Like ld.so, a file that is only a header (no byte past it) is not a cache. */
    if (len > NEW_HDR_SIZE && memcmp(d, NEW_MAGIC, strlen(NEW_MAGIC)) == 0)
        return parse_new(d, len, 0, ret);
    if (len >= strlen(OLD_MAGIC) && memcmp(d, OLD_MAGIC, strlen(OLD_MAGIC)) == 0)
        return parse_old(d, len, ret);
    if (len >= strlen(NEW_MAGIC) && memcmp(d, NEW_MAGIC, strlen(NEW_MAGIC)) == 0)
        return BAD("ld.so.cache: truncated header");
    return BAD("ld.so.cache: unknown format (no ld.so cache magic)");
}

int vp_ldcache_load(const char *path, struct vp_ldcache **ret)
{
    _cleanup_(freep) char *buf = NULL;
    size_t len;
    int r = vp_read_file(path, 256u << 20, &buf, &len);
    if (r == -ENOENT)
        return vp_error(r, "%s does not exist", path);
    if (r < 0)
        return vp_error_errno(r, "cannot read %s", path);
    r = vp_ldcache_parse(buf, len, ret);
    if (r < 0) {
        char why[512];
        snprintf(why, sizeof(why), "%s", vp_last_error());
        return vp_error(r, "%s: %s", path, why);
    }
    return 0;
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Compares the digit runs at *a and *b as numbers of any length and advances past them. */
static int cmp_number(const char **a, const char **b)
{
    const char *p = *a, *q = *b;
    while (*p == '0' && is_digit(p[1]))
        p++;
    while (*q == '0' && is_digit(q[1]))
        q++;
    size_t lp = 0, lq = 0;
    while (is_digit(p[lp]))
        lp++;
    while (is_digit(q[lq]))
        lq++;
    int r = lp != lq ? (lp < lq ? -1 : 1) : memcmp(p, q, lp);
    *a = p + lp;
    *b = q + lq;
    return r;
}

int vp_ldcache_libcmp(const char *a, const char *b)
{
    while (*a) {
        if (is_digit(*a)) {
            if (!is_digit(*b))
                return 1;
            int r = cmp_number(&a, &b);
            if (r)
                return r;
        } else if (is_digit(*b)) {
            return -1;
        } else if (*a != *b) {
            return *a - *b;
        } else {
            a++;
            b++;
        }
    }
    return *a - *b;
}

static size_t priority(const char *sub, const char *const *supported)
{
    for (size_t i = 0; supported && supported[i]; i++)
        if (strcmp(sub, supported[i]) == 0)
            return i + 1;
    return 0;
}

const char *vp_ldcache_lookup_hwcaps(const struct vp_ldcache *c, const char *soname,
                                     const char *const *supported)
{
    const char *best = NULL;
    size_t best_prio = 0;
    for (size_t i = 0; c && i < c->n; i++) {
        const struct vp_ldcache_entry *e = &c->entries[i];
        if (e->flags != VP_LDCACHE_FLAGS_X86_64 || vp_ldcache_libcmp(soname, e->soname) != 0)
            continue;
        if (e->hwcaps) {
            size_t p = priority(e->hwcaps, supported);
            if (p && (!best || p < best_prio)) {
                best = e->path;
                best_prio = p;
            }
            continue;
        }
        /* glibc-hwcaps entries sort first: a plain entry ends the search. Entries of the
         * legacy hwcap scheme are skipped (ld.so 2.37 dropped them; none exist here). */
        if (best)
            break;
        if (e->hwcap != 0)
            continue;
        return e->path;
    }
    return best;
}

const char *vp_ldcache_lookup(const struct vp_ldcache *c, const char *soname)
{
    return vp_ldcache_lookup_hwcaps(c, soname, NULL);
}

void vp_ldcache_free(struct vp_ldcache *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n; i++) {
        free(c->entries[i].soname);
        free(c->entries[i].path);
        free(c->entries[i].hwcaps);
    }
    free(c->entries);
    free(c);
}
