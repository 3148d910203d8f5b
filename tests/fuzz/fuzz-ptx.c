/* Fuzz target: the daemon's PTX reader (shims/hostd/ptx.h), which lays out the kernel
 * parameters of whatever PTX a client loads. The input is the image, unterminated; the
 * names looked up are a few fixed ones and the first identifier after each `.entry`
 * (up to 8). Every read must stay in the input; a layout it returns must fit the limits
 * of a launch. */
#include <stdlib.h>
#include <string.h>

#include "ptx.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void lookup(const char *ptx, size_t len, const char *name)
{
    static struct vr_param params[VR_MAX_PARAMS];
    unsigned n = 0;
    if (ptx_entry_params(ptx, len, name, params, VR_MAX_PARAMS, &n) != 0)
        return;
    if (n > VR_MAX_PARAMS)
        abort();
    for (unsigned i = 0; i < n; i++)
        if (params[i].offset + (uint64_t)params[i].size > VR_MAX_KERNEL_ARG)
            abort();
    if (ptx_params_size(params, n) > VR_MAX_KERNEL_ARG)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* A copy of exactly size bytes, so that a read past the end is caught. */
    char *ptx = malloc(size ? size : 1);
    if (!ptx)
        abort();
    memcpy(ptx, data, size);
    (void)ptx_is_ptx(ptx, size);
    static const char *const fixed[] = {"vecadd", "saxpy", "k", ""};
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
        lookup(ptx, size, fixed[i]);
    const char *p = ptx, *end = ptx + size;
    for (int found = 0; found < 8; found++) {
        const char *e = memmem(p, (size_t)(end - p), ".entry", 6);
        if (!e)
            break;
        p = e + 6;
        while (p < end && (*p == ' ' || *p == '\t' || *p == '\n'))
            p++;
        char name[VR_MAX_NAME];
        size_t k = 0;
        while (p + k < end && k < sizeof(name) - 1 && p[k] != '(' && p[k] != ' ' && p[k] != '\n' &&
               p[k] != '\0')
            k++;
        memcpy(name, p, k);
        name[k] = '\0';
        lookup(ptx, size, name);
    }
    free(ptx);
    return 0;
}
