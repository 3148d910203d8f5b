/* libvgpu-probe-audit.so: an LD_AUDIT module that reports which objects a program has
 * loaded at the moment the loader hands over (la_preinit: after every DT_NEEDED is
 * mapped and relocated, before any constructor runs), then ends the process. The
 * verifier starts each patched executable under it. Output goes to the descriptor in
 * VGPU_PROBE_FD, never to stdout. */
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int out_fd = -1;

static void say(const char *kind, const char *text)
{
    if (out_fd < 0)
        return;
    char line[4200];
    int n = snprintf(line, sizeof(line), "%s %s\n", kind, text);
    if (n > 0 && (size_t)n < sizeof(line) && write(out_fd, line, (size_t)n) < 0)
        out_fd = -1;
}

__attribute__((visibility("default"))) unsigned int la_version(unsigned int version)
{
    (void)version;
    const char *fd = getenv("VGPU_PROBE_FD");
    out_fd = fd ? atoi(fd) : -1;
    return 1; /* accepted by every glibc from 2.28 on (reference §4) */
}

__attribute__((visibility("default"))) unsigned int la_objopen(struct link_map *map, Lmid_t lmid,
                                                               uintptr_t *cookie)
{
    (void)cookie;
    if (lmid == LM_ID_BASE && map->l_name && map->l_name[0])
        say("obj", map->l_name);
    return 0; /* no symbol binding callbacks */
}

__attribute__((visibility("default"))) void la_preinit(uintptr_t *cookie)
{
    (void)cookie;
    say("preinit", "-");
    _exit(0);
}
