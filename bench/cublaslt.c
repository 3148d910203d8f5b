/* Stand-in libcublasLt.so.13 for the benchmark tree: the soname and one entry point, so the
 * generated libcublas.so.13 can need it as NVIDIA's does. Its size comes from generated bulk. */
#include <stddef.h>

__attribute__((visibility("default"))) int cublasLtCreate(void **ret_handle)
{
    if (ret_handle != NULL)
        *ret_handle = NULL;
    return 0;
}
