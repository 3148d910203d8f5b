/* Fuzz target: the ld.so model. The input is the executable of a namespace in a private root,
 * and also the only library there (/lib/x86_64-linux-gnu/libcuda.so.1), so its own DT_NEEDED,
 * DT_RPATH and DT_RUNPATH strings drive the search, $ORIGIN/$LIB/$PLATFORM expansion and the
 * breadth-first loading; then a dlopen and a resolve run from every object it loaded. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>

#include "loader.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A fresh root for each input, removed right after: nothing outlives the input even when the
 * fuzzer ends the process without running atexit handlers. */
static int make_root(char *root)
{
    if (!mkdtemp(root))
        return -errno;
    _cleanup_(freep) char *bin = vp_path_join(root, "usr/bin");
    _cleanup_(freep) char *lib = vp_path_join(root, "usr/lib/x86_64-linux-gnu");
    _cleanup_(freep) char *link = vp_path_join(root, "lib");
    if (vp_mkdir_p(bin, 0755) < 0 || vp_mkdir_p(lib, 0755) < 0 || symlink("usr/lib", link) < 0)
        return -errno;
    return 0;
}

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path) < 0 ? -1 : 0;
}

static void put(const char *root, const char *path, const uint8_t *data, size_t size)
{
    _cleanup_(freep) char *file = vp_path_join(root, path);
    _cleanup_(closep) int fd = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);
    if (fd < 0 || write(fd, data, size) != (ssize_t)size)
        abort();
}

static void run(const char *root, bool secure)
{
    struct vp_lspace ls;
    if (vp_lspace_init(&ls, root, "$ORIGIN/../lib:/opt/$LIB;${PLATFORM}::/usr/lib", "/usr") < 0)
        abort();
    /* One glibc-hwcaps level is enough to exercise the subdirectories, and cheaper. */
    vp_strv_release(&ls.subdirs);
    vp_strv_push(&ls.subdirs, "glibc-hwcaps/x86-64-v2/");
    vp_strv_push(&ls.subdirs, "");
    ls.secure = secure;
    ls.trace = !secure;
    const char *const preload[] = {"libcuda.so.1", "/usr/bin/app", NULL};
    if (vp_lspace_load_exe(&ls, "/usr/bin/app", preload) == 0) {
        for (size_t i = 0, n = ls.n; i < n && i < 8; i++) {
            struct vp_lfound f;
            size_t idx;
            if (vp_lspace_resolve(&ls, i, "libcuda.so.1", &f) == 0) {
                free(vp_lfound_describe(&ls, &f));
                vp_lfound_release(&f);
            }
            if (vp_lspace_dlopen(&ls, i, "$ORIGIN/libcuda.so.1", &idx, &f) == 0)
                vp_lfound_release(&f);
        }
        vp_lspace_find_loaded(&ls, VP_SONAME_NVML);
    }
    vp_lspace_release(&ls);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char root[] = "/tmp/vgpu-fuzz-loader-XXXXXX";
    if (make_root(root) < 0)
        abort();
    put(root, "usr/bin/app", data, size);
    put(root, "usr/lib/x86_64-linux-gnu/libcuda.so.1", data, size);
    run(root, false);
    run(root, true);
    if (nftw(root, remove_one, 16, FTW_DEPTH | FTW_PHYS) != 0)
        abort();
    return 0;
}
