/* testutil: what the unit tests share: temp dirs, files under a root, fixtures, opening ELF. */
#ifndef TU_TESTUTIL_H
#define TU_TESTUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "util.h"

struct vp_elf;

/* ---- temp dirs ---- */

/* Makes a fresh /tmp/vgpu-ut-<test>[-<what>]-XXXXXX (<test>: this program's name without
 * "test-"). Returns it (owned), or NULL with errno set; asserts nothing, so setup may use it. */
char *tu_mkdtemp(const char *what);

/* tu_mkdtemp, failing the test when the directory cannot be made. */
char *tu_tmpdir(const char *what);

/* Removes dir and everything below it (links are not followed), then frees dir. */
void tu_rmtree(char *dir);

/* cmocka setup: a tu_mkdtemp(NULL) directory in *state (-1 when it cannot be made). */
int tu_setup_tmpdir(void **state);

/* cmocka teardown: tu_rmtree of the directory in *state. */
int tu_teardown_tmpdir(void **state);

/* ---- files under a root ---- */

/* Writes len bytes to <root>/<rel> (in place, truncated) with exactly `mode`, creating the
 * parent directories 0755. */
void tu_write(const char *root, const char *rel, const void *data, size_t len, mode_t mode);

/* tu_write of text, mode 0644. */
void tu_put(const char *root, const char *rel, const char *text);

/* Makes <root>/<rel> a symlink to target, creating the parent directories 0755. */
void tu_lnk(const char *root, const char *rel, const char *target);

/* ---- fixtures ($VGPU_TEST_FIXTURES, the built fixtures dir) ---- */

/* The fixtures dir; skips the test when $VGPU_TEST_FIXTURES is not set. */
const char *tu_fixtures(void);

/* Path of a fixture file (owned); skips the test when the fixtures, or this one, were not
 * built. */
char *tu_fixture(const char *rel);

/* The contents of a fixture file (owned), its size in *len; skips the test when
 * $VGPU_TEST_FIXTURES is not set and fails it when the file cannot be read. */
char *tu_read_fixture(const char *rel, size_t *len);

/* Copies the fixture file fixture_rel to <root>/<rel>, mode 0755 (tu_read_fixture's rules). */
void tu_put_fixture(const char *root, const char *rel, const char *fixture_rel);

/* ---- ELF files and strings ---- */

/* vp_elf_open(path), failing the test (with the error) when it does not succeed. */
struct vp_elf *tu_open_ok(const char *path);

/* tu_open_ok of tu_fixture(rel): skips the test when that fixture was not built. */
struct vp_elf *tu_open_fixture(const char *rel);

/* Whether some string of sv contains text. */
bool tu_strv_mentions(const struct vp_strv *sv, const char *text);

#endif
