/* A library that calls dlopen() itself, so ld.so takes it as the caller (its RPATH/RUNPATH
 * decide the search). Built -O0 -fno-optimize-sibling-calls: a tail call would make the
 * executable the caller instead (reference §1). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <link.h>
#include <stdio.h>

const char *probe_open(const char *name)
{
    static char out[4096];
    void *h = dlopen(name, RTLD_LAZY | RTLD_LOCAL);
    struct link_map *lm = NULL;
    if (!h)
        snprintf(out, sizeof(out), "ERR %s", dlerror());
    else if (dlinfo(h, RTLD_DI_LINKMAP, &lm) != 0)
        snprintf(out, sizeof(out), "ERR dlinfo: %s", dlerror());
    else
        snprintf(out, sizeof(out), "OK %s", lm->l_name);
    return out;
}
