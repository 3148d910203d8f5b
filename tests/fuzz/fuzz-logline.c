/* Fuzz target: the parser of Ollama's log lines (e2e.h), which `verify --e2e` and
 * `doctor` run over what a server wrote. Whatever it finds must hold together: a compute
 * line's device comes from the line, a CUDA verdict needs a library,
 * and the verdict over the line alone never names a line that is not there. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "e2e.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = vp_xstrndup((const char *)data, size); /* a log line ends at a NUL too */
    struct vp_e2e_line l;
    enum vp_e2e_kind kind = vp_e2e_parse_line(text, &l);
    if (kind < VP_E2E_OTHER || kind > VP_E2E_CPU_FALLBACK || l.kind != kind)
        abort();
    if (!l.text || strcmp(l.text, text))
        abort(); /* the whole line is kept */
    if (vp_e2e_line_is_cuda(&l) && !l.library)
        abort();
    const char *dev = vp_e2e_line_device(&l);
    /* A device name comes from the line: as it stands there when the line escapes
     * nothing (Go's quoting), and never longer. */
    if (dev && kind == VP_E2E_COMPUTE &&
        (!*dev || strlen(dev) > size || (!strchr(text, '\\') && !strstr(text, dev))))
        abort();
    struct vp_strv devices = {0};
    vp_strv_push(&devices, "Dummy GPU");
    size_t at = 0;
    char *why = NULL;
    vp_e2e_judge(&l, 1, &devices, &at, &why);
    if (!why || (at != SIZE_MAX && at != 0))
        abort();
    free(why);
    vp_strv_release(&devices);
    vp_e2e_line_release(&l);
    free(text);
    return 0;
}
