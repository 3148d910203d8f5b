/* Fuzz target: the manifest parser. Anything it accepts must format and parse back to
 * the same text (the manifest is what exact rollback trusts). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "manifest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct vp_manifest m;
    if (vp_manifest_parse((const char *)data, size, &m) < 0)
        return 0;
    char *text = vp_manifest_format(&m);
    struct vp_manifest again;
    if (vp_manifest_parse(text, strlen(text), &again) < 0)
        abort(); /* what we write, we must read */
    char *text2 = vp_manifest_format(&again);
    if (strcmp(text, text2) != 0)
        abort();
    free(text);
    free(text2);
    vp_manifest_release(&again);
    vp_manifest_release(&m);
    return 0;
}
