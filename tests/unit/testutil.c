/* testutil: what the unit tests share: temp dirs, files under a root, fixtures, opening ELF. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <string.h>
#include <sys/stat.h>

#include "elfmodel.h"
#include "testutil.h"

char *tu_mkdtemp(const char *what)
{
    const char *test = program_invocation_short_name;
    if (strncmp(test, "test-", 5) == 0)
        test += 5;
    char *dir = vp_xasprintf("/tmp/vgpu-ut-%s%s%s-XXXXXX", test, what ? "-" : "", what ? what : "");
    if (!mkdtemp(dir)) {
        int e = errno;
        free(dir);
        errno = e;
        return NULL;
    }
    return dir;
}

char *tu_tmpdir(const char *what)
{
    char *dir = tu_mkdtemp(what);
    assert_non_null(dir);
    return dir;
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(p);
}

void tu_rmtree(char *dir)
{
    if (dir)
        nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    free(dir);
}

int tu_setup_tmpdir(void **state)
{
    *state = tu_mkdtemp(NULL);
    return *state ? 0 : -1;
}

int tu_teardown_tmpdir(void **state)
{
    tu_rmtree(*state);
    *state = NULL;
    return 0;
}

void tu_write(const char *root, const char *rel, const void *data, size_t len, mode_t mode)
{
    _cleanup_(freep) char *p = vp_path_join(root, rel);
    _cleanup_(freep) char *dir = vp_dirname(p);
    assert_int_equal(vp_mkdir_p(dir, 0755), 0);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0)
        print_message("cannot create %s: %s\n", p, strerror(errno));
    assert_true(fd >= 0);
    for (const char *s = data; len;) {
        ssize_t n = write(fd, s, len);
        assert_true(n > 0);
        s += n;
        len -= (size_t)n;
    }
    assert_int_equal(fchmod(fd, mode), 0); /* exactly mode, whatever the umask */
    assert_int_equal(close(fd), 0);
}

void tu_put(const char *root, const char *rel, const char *text)
{
    tu_write(root, rel, text, strlen(text), 0644);
}

void tu_lnk(const char *root, const char *rel, const char *target)
{
    _cleanup_(freep) char *p = vp_path_join(root, rel);
    _cleanup_(freep) char *dir = vp_dirname(p);
    assert_int_equal(vp_mkdir_p(dir, 0755), 0);
    assert_int_equal(symlink(target, p), 0);
}

const char *tu_fixtures(void)
{
    const char *fx = getenv("VGPU_TEST_FIXTURES");
    if (!fx)
        skip();
    return fx;
}

char *tu_fixture(const char *rel)
{
    char *p = vp_path_join(tu_fixtures(), rel);
    if (access(p, F_OK) != 0) {
        print_message("%s not built: skipped\n", p);
        free(p);
        skip();
    }
    return p;
}

char *tu_read_fixture(const char *rel, size_t *len)
{
    _cleanup_(freep) char *src = vp_path_join(tu_fixtures(), rel);
    char *data = NULL;
    assert_int_equal(vp_read_file(src, 64u << 20, &data, len), 0);
    return data;
}

void tu_put_fixture(const char *root, const char *rel, const char *fixture_rel)
{
    size_t len;
    _cleanup_(freep) char *data = tu_read_fixture(fixture_rel, &len);
    tu_write(root, rel, data, len, 0755);
}

struct vp_elf *tu_open_ok(const char *path)
{
    struct vp_elf *e = NULL;
    int r = vp_elf_open(path, &e);
    if (r < 0)
        print_message("%s: %s\n", path, vp_last_error());
    assert_int_equal(r, 0);
    return e;
}

struct vp_elf *tu_open_fixture(const char *rel)
{
    _cleanup_(freep) char *p = tu_fixture(rel);
    return tu_open_ok(p);
}

bool tu_strv_mentions(const struct vp_strv *sv, const char *text)
{
    for (size_t i = 0; i < sv->n; i++)
        if (strstr(sv->v[i], text))
            return true;
    return false;
}
