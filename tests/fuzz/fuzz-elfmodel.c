/* Fuzz target: the read-only ELF model. The input becomes a file (a memfd) that vp_elf_open
 * models; every accessor a caller uses on an untrusted file then runs over the result. */
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#include "elfmodel.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int input_fd(void)
{
    static int fd = -1;
    if (fd < 0)
        fd = memfd_create("vgpu-fuzz-elf", MFD_CLOEXEC);
    return fd;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fd = input_fd();
    if (fd < 0 || ftruncate(fd, 0) < 0 || pwrite(fd, data, size, 0) != (ssize_t)size)
        abort();
    char path[64];
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    struct vp_elf *e = NULL;
    if (vp_elf_open(path, &e) < 0)
        return 0;
    vp_elf_scan_strings(e);
    if (e->has_dynamic) {
        uint64_t off = vp_elf_dynstr_find(e, VP_SONAME_CUDA);
        if (off != UINT64_MAX)
            vp_elf_dynstr_shared(e, off, strlen(VP_SONAME_CUDA) + 1, SIZE_MAX);
        for (size_t i = 0; i < e->n_needed; i++)
            vp_elf_dynstr_shared(e, e->needed[i].stroff, strlen(e->needed[i].name) + 1,
                                 e->needed[i].dynidx);
        vp_elf_needed_index(e, VP_SONAME_NVML);
    }
    uint64_t where;
    vp_elf_vaddr_to_off(e, e->dyn_vaddr, 8, &where);
    vp_elf_free(e);
    return 0;
}
