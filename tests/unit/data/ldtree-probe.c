/* Runs dlopen() steps in one process and prints what the real loader answered, one line each:
 *   probe STEP...   STEP = CALLER@NAME   (CALLER "-": the executable calls dlopen itself;
 *                                         otherwise dlopen(CALLER), then its probe_open(NAME))
 * Output: "OK <l_name>" or "ERR <dlerror>". */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <link.h>
#include <stdio.h>
#include <string.h>

typedef const char *probe_fn(const char *);

static const char *self_open(const char *name)
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

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        char step[4096];
        snprintf(step, sizeof(step), "%s", argv[i]);
        char *at = strchr(step, '@');
        if (!at) {
            fprintf(stderr, "bad step %s\n", argv[i]);
            return 2;
        }
        *at = '\0';
        if (strcmp(step, "-") == 0) {
            puts(self_open(at + 1));
            continue;
        }
        void *h = dlopen(step, RTLD_LAZY | RTLD_LOCAL);
        union {
            void *p;
            probe_fn *fn;
        } u = {.p = h ? dlsym(h, "probe_open") : NULL};
        if (!u.p) {
            printf("ERR caller %s: %s\n", step, dlerror());
            continue;
        }
        puts(u.fn(at + 1));
    }
    fflush(stdout);
    return 0;
}
