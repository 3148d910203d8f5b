/* Fuzz target: the /etc/ld.so.cache reader, and lookups over whatever it accepts. */
#include <stdint.h>
#include <stdlib.h>

#include "ldcache.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct vp_ldcache *c = NULL;
    if (vp_ldcache_parse(data, size, &c) < 0)
        return 0;
    static const char *const levels[] = {"x86-64-v3", "x86-64-v2", NULL};
    vp_ldcache_lookup(c, "libcuda.so.1");
    vp_ldcache_lookup_hwcaps(c, "libc.so.6", levels);
    for (size_t i = 0; i < c->n && i < 64; i++)
        if (vp_ldcache_lookup_hwcaps(c, c->entries[i].soname, levels) == NULL &&
            c->entries[i].flags == VP_LDCACHE_FLAGS_X86_64 && !c->entries[i].hwcap)
            abort(); /* a plain x86-64 entry must be found under its own name */
    vp_ldcache_free(c);
    return 0;
}
