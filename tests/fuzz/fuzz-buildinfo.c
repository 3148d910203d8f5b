/* Fuzz target: Go build-info parsing (it reads a block out of any ELF file). */
#include <stdint.h>
#include <stdlib.h>

#include "buildinfo.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct vp_buildinfo bi;
    if (vp_buildinfo_parse(data, size, &bi) == 0) {
        free(bi.toolchain);
        free(bi.ollama_version);
    }
    char *v = vp_buildinfo_ollama_version((const char *)data, size);
    free(v);
    return 0;
}
