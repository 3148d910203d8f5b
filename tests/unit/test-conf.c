/* conf: /etc/vgpu/vgpu.conf under a fake root and the VGPU_* environment. Every key, the
 * precedence environment > file > default, comments and quotes, and the rule that unknown
 * keys and bad values are reported with file:line and never applied. Each test starts with
 * every VGPU_* variable unset. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "conf.h"
#include "testutil.h"

static void env_name(enum vp_conf_key k, char out[64])
{
    const char *n = vp_conf_key_name(k);
    size_t i = 0;
    out += sprintf(out, "VGPU_");
    for (; n[i]; i++)
        out[i] = (char)toupper((unsigned char)n[i]);
    out[i] = '\0';
}

static int clear_env(void **state)
{
    (void)state;
    for (int k = 0; k < VP_CONF_NKEYS; k++) {
        char name[64];
        env_name(k, name);
        unsetenv(name);
    }
    return 0;
}

/* A fake root whose /etc/vgpu/vgpu.conf holds text (NULL: no file). */
static char *fake_root(const char *text)
{
    char *root = tu_tmpdir(NULL);
    if (text)
        tu_put(root, VP_CONF_PATH, text);
    return root;
}

static void parse(struct vp_conf *c, const char *text)
{
    *c = (struct vp_conf){0};
    vp_conf_parse(c, text, strlen(text), "vgpu.conf");
}

static void every_key_is_read_from_the_file(void **state)
{
    (void)state;
    struct vp_conf c;
    parse(&c, "backend = remote\n"
              "native_cuda = /usr/lib/x86_64-linux-gnu/libcuda.so.1\n"
              "native_nvml=/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.1\n"
              "memory_limit = 8GiB\n"
              "log = debug\n"
              "log_file = /var/log/vgpu.log\n"
              "shim_dir = /usr/lib/vgpu\n"
              "endpoint = vsock:2:9999\n"
              "connect_timeout = 0.5\n"
              "secret_file = /etc/vgpu/secret\n");
    static const char *const want[VP_CONF_NKEYS] = {
        [VP_CONF_BACKEND] = "remote",
        [VP_CONF_NATIVE_CUDA] = "/usr/lib/x86_64-linux-gnu/libcuda.so.1",
        [VP_CONF_NATIVE_NVML] = "/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.1",
        [VP_CONF_MEMORY_LIMIT] = "8GiB",
        [VP_CONF_LOG] = "debug",
        [VP_CONF_LOG_FILE] = "/var/log/vgpu.log",
        [VP_CONF_SHIM_DIR] = "/usr/lib/vgpu",
        [VP_CONF_ENDPOINT] = "vsock:2:9999",
        [VP_CONF_CONNECT_TIMEOUT] = "0.5",
        [VP_CONF_SECRET_FILE] = "/etc/vgpu/secret",
    };
    assert_int_equal(c.problems.n, 0);
    for (int k = 0; k < VP_CONF_NKEYS; k++) {
        assert_non_null(vp_conf_get(&c, k));
        assert_string_equal(vp_conf_get(&c, k), want[k]);
        assert_int_equal(c.source[k], VP_CONF_FILE);
    }
    vp_conf_release(&c);
}

static void every_key_is_read_from_its_environment_variable(void **state)
{
    (void)state;
    static const char *const value[VP_CONF_NKEYS] = {
        [VP_CONF_BACKEND] = "none",
        [VP_CONF_NATIVE_CUDA] = "/a/cuda",
        [VP_CONF_NATIVE_NVML] = "/a/nvml",
        [VP_CONF_MEMORY_LIMIT] = "512M",
        [VP_CONF_LOG] = "warn",
        [VP_CONF_LOG_FILE] = "/a/log",
        [VP_CONF_SHIM_DIR] = "/a/shims",
        [VP_CONF_ENDPOINT] = "unix:/run/vgpu.sock",
        [VP_CONF_CONNECT_TIMEOUT] = "10",
        [VP_CONF_SECRET_FILE] = "/a/secret",
    };
    for (int k = 0; k < VP_CONF_NKEYS; k++) {
        char name[64];
        env_name(k, name);
        setenv(name, value[k], 1);
    }
    struct vp_conf c = {0};
    vp_conf_apply_env(&c);
    assert_int_equal(c.problems.n, 0);
    for (int k = 0; k < VP_CONF_NKEYS; k++) {
        assert_non_null(vp_conf_get(&c, k));
        assert_string_equal(vp_conf_get(&c, k), value[k]);
        assert_int_equal(c.source[k], VP_CONF_ENV);
    }
    assert_string_equal(vp_conf_key_name(VP_CONF_SHIM_DIR), "shim_dir");
    assert_string_equal(vp_conf_source_name(VP_CONF_ENV), "environment");
    assert_string_equal(vp_conf_source_name(VP_CONF_FILE), "file");
    assert_string_equal(vp_conf_source_name(VP_CONF_DEFAULT), "default");
    vp_conf_release(&c);
}

static void environment_beats_file_beats_default(void **state)
{
    (void)state;
    char *root = fake_root("shim_dir = /from/file\nlog = info\n");
    setenv("VGPU_SHIM_DIR", "/from/env", 1);
    setenv("VGPU_BACKEND", "", 1); /* empty: not set */
    struct vp_conf c;
    assert_int_equal(vp_conf_load(&c, root), 0);
    assert_string_equal(vp_conf_get(&c, VP_CONF_SHIM_DIR), "/from/env");
    assert_int_equal(c.source[VP_CONF_SHIM_DIR], VP_CONF_ENV);
    assert_string_equal(vp_conf_get(&c, VP_CONF_LOG), "info");
    assert_int_equal(c.source[VP_CONF_LOG], VP_CONF_FILE);
    assert_null(vp_conf_get(&c, VP_CONF_BACKEND));
    assert_int_equal(c.source[VP_CONF_BACKEND], VP_CONF_DEFAULT);
    assert_int_equal(c.problems.n, 0);
    vp_conf_release(&c);
    tu_rmtree(root);
}

static void missing_file_is_fine_and_unreadable_file_is_an_error(void **state)
{
    (void)state;
    char *root = fake_root(NULL);
    struct vp_conf c;
    assert_int_equal(vp_conf_load(&c, root), 0);
    for (int k = 0; k < VP_CONF_NKEYS; k++)
        assert_null(vp_conf_get(&c, k));
    vp_conf_release(&c);
    /* A directory where the file should be cannot be read. */
    _cleanup_(freep) char *f = vp_path_join(root, VP_CONF_PATH);
    assert_int_equal(vp_mkdir_p(f, 0755), 0);
    vp_clear_error();
    assert_true(vp_conf_load(&c, root) < 0);
    assert_non_null(strstr(vp_last_error(), "vgpu.conf"));
    tu_rmtree(root);
}

static void comments_blanks_and_quotes_are_understood(void **state)
{
    (void)state;
    struct vp_conf c;
    parse(&c, "# a comment line\n"
              "\n"
              "   \t\n"
              "  log = error   # trailing comment\n"
              "log_file = \"/var/log/with space.log\"\n"
              "\tshim_dir\t=\t/usr/lib/vgpu\t\n"
              "backend = native\r\n");
    assert_int_equal(c.problems.n, 0);
    assert_string_equal(vp_conf_get(&c, VP_CONF_LOG), "error");
    assert_string_equal(vp_conf_get(&c, VP_CONF_LOG_FILE), "/var/log/with space.log");
    assert_string_equal(vp_conf_get(&c, VP_CONF_SHIM_DIR), "/usr/lib/vgpu");
    assert_string_equal(vp_conf_get(&c, VP_CONF_BACKEND), "native");
    vp_conf_release(&c);
}

static void unknown_keys_and_bad_values_are_reported_with_line_and_not_applied(void **state)
{
    (void)state;
    struct vp_conf c;
    parse(&c, "log = info\n"
              "# comment\n"
              "colour = blue\n"
              "log = loud\n"
              "shim_dir = relative/dir\n"
              "just some words\n"
              "VGPU_LOG = debug\n");
    assert_int_equal(c.problems.n, 5);
    assert_string_equal(c.problems.v[0], "vgpu.conf:3: unknown key 'colour'");
    assert_true(vp_startswith(c.problems.v[1], "vgpu.conf:4: bad value 'loud' for log"));
    assert_true(vp_startswith(c.problems.v[2], "vgpu.conf:5: bad value 'relative/dir' for "
                                               "shim_dir"));
    assert_true(vp_startswith(c.problems.v[3], "vgpu.conf:6: expected 'key = value'"));
    assert_string_equal(c.problems.v[4], "vgpu.conf:7: unknown key 'VGPU_LOG'");
    /* The bad line did not replace the good value before it, nor invent one. */
    assert_string_equal(vp_conf_get(&c, VP_CONF_LOG), "info");
    assert_null(vp_conf_get(&c, VP_CONF_SHIM_DIR));
    vp_conf_release(&c);
}

static void bad_environment_value_is_reported_and_the_file_value_kept(void **state)
{
    (void)state;
    char *root = fake_root("backend = native\n");
    setenv("VGPU_BACKEND", "cuda", 1);
    struct vp_conf c;
    assert_int_equal(vp_conf_load(&c, root), 0);
    assert_string_equal(vp_conf_get(&c, VP_CONF_BACKEND), "native");
    assert_int_equal(c.source[VP_CONF_BACKEND], VP_CONF_FILE);
    assert_int_equal(c.problems.n, 1);
    assert_true(
        tu_strv_mentions(&c.problems, "environment VGPU_BACKEND: bad value 'cuda' for backend"));
    vp_conf_release(&c);
    tu_rmtree(root);
}

static bool valid(enum vp_conf_key k, const char *v)
{
    _cleanup_(freep) char *text = vp_xasprintf("%s = %s\n", vp_conf_key_name(k), v);
    struct vp_conf c;
    parse(&c, text);
    bool ok = c.problems.n == 0 && vp_conf_get(&c, k) && strcmp(vp_conf_get(&c, k), v) == 0;
    if (!ok && c.problems.n == 0)
        print_message("%s = %s: no problem, but not applied\n", vp_conf_key_name(k), v);
    vp_conf_release(&c);
    return ok;
}

/* Asserts that `key = v` is accepted, naming v when it is not. */
static void assert_accepted(enum vp_conf_key k, const char *v)
{
    bool ok = valid(k, v);
    if (!ok)
        print_message("rejected '%s'\n", v);
    assert_true(ok);
}

/* Asserts that `key = v` is refused, naming v when it is not. */
static void assert_refused(enum vp_conf_key k, const char *v)
{
    bool ok = valid(k, v);
    if (ok)
        print_message("accepted '%s'\n", v);
    assert_false(ok);
}

static void endpoint_accepts_vsock_unix_and_tcp_forms_only(void **state)
{
    (void)state;
    static const char *const good[] = {"vsock:2:9999", "vsock:4294967294:1", "unix:/run/x.sock",
                                       "tcp:host:80",  "tcp:10.0.0.1:65535", "tcp:[::1]:8080",
                                       "vsock:2:65536"}; /* vsock ports are 32-bit */
    static const char *const bad[] = {
        "vsock:2",      "vsock::80",         "vsock:x:1",   "vsock:2:0",      "tcp:a:b:80",
        "vsock:2:80x",  "unix:relative",     "unix:",       "tcp:host",       "tcp::80",
        "tcp:host:",    "http://host:80",    "/run/x.sock", "unix:@abstract", "vsock:4294967296:1",
        "vsock:any:80", "vsock:4294967295:1"}; /* listeners' */
    for (size_t i = 0; i < VP_ARRAY_SIZE(good); i++)
        assert_accepted(VP_CONF_ENDPOINT, good[i]);
    for (size_t i = 0; i < VP_ARRAY_SIZE(bad); i++)
        assert_refused(VP_CONF_ENDPOINT, bad[i]);
}

static void connect_timeout_takes_seconds_up_to_a_minute(void **state)
{
    (void)state;
    static const char *const good[] = {"2", "0.5", "60", "60.000", "0.001", "0.0001", "10.25"};
    static const char *const bad[] = {"0",  "0.0", "61", "60.001", "-1", "1e3", "inf",
                                      "2s", "",    " 2", "1.",     ".5", "0x10"};
    for (size_t i = 0; i < VP_ARRAY_SIZE(good); i++)
        assert_accepted(VP_CONF_CONNECT_TIMEOUT, good[i]);
    for (size_t i = 0; i < VP_ARRAY_SIZE(bad); i++)
        assert_refused(VP_CONF_CONNECT_TIMEOUT, bad[i]);
    unsigned ms = 0;
    assert_int_equal(vgpu_conf_parse_timeout("0.0001", &ms), 0);
    assert_int_equal(ms, 1); /* rounded up, never to 0 */
    assert_int_equal(vgpu_conf_parse_timeout("10.25", &ms), 0);
    assert_int_equal(ms, 10250);
}

static void memory_limit_accepts_sizes_with_units(void **state)
{
    (void)state;
    static const char *const good[] = {"8G", "8GiB", "512M", "512MiB", "1024",
                                       "4K", "1T",   "2TiB", "none"};
    static const char *const bad[] = {
        "0", "8X", "G", "8 G", "8g", "8GB", "", "1.5G", "99999999999999999999999"};
    for (size_t i = 0; i < VP_ARRAY_SIZE(good); i++)
        assert_accepted(VP_CONF_MEMORY_LIMIT, good[i]);
    for (size_t i = 0; i < VP_ARRAY_SIZE(bad); i++)
        assert_refused(VP_CONF_MEMORY_LIMIT, bad[i]);
}

static void memory_limit_rejects_a_negative_size(void **state)
{
    (void)state;
    /* strtoull would accept a leading '-' and wrap it around to about 16 EiB. */
    assert_false(valid(VP_CONF_MEMORY_LIMIT, "-8G"));
    assert_false(valid(VP_CONF_MEMORY_LIMIT, "-1"));
}

static void backend_and_log_take_only_their_words(void **state)
{
    (void)state;
    assert_true(valid(VP_CONF_BACKEND, "native"));
    assert_true(valid(VP_CONF_BACKEND, "remote"));
    assert_true(valid(VP_CONF_BACKEND, "none"));
    assert_false(valid(VP_CONF_BACKEND, "Native"));
    assert_false(valid(VP_CONF_BACKEND, "auto"));
    static const char *const levels[] = {"error", "warn", "info", "debug"};
    for (size_t i = 0; i < VP_ARRAY_SIZE(levels); i++)
        assert_true(valid(VP_CONF_LOG, levels[i]));
    assert_false(valid(VP_CONF_LOG, "trace"));
    assert_false(valid(VP_CONF_NATIVE_CUDA, "libcuda.so.1"));
    assert_false(valid(VP_CONF_NATIVE_NVML, "libnvidia-ml.so.1"));
    assert_false(valid(VP_CONF_LOG_FILE, "vgpu.log"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(every_key_is_read_from_the_file, clear_env),
        cmocka_unit_test_setup_teardown(every_key_is_read_from_its_environment_variable, clear_env,
                                        clear_env),
        cmocka_unit_test_setup_teardown(environment_beats_file_beats_default, clear_env, clear_env),
        cmocka_unit_test_setup(missing_file_is_fine_and_unreadable_file_is_an_error, clear_env),
        cmocka_unit_test_setup(comments_blanks_and_quotes_are_understood, clear_env),
        cmocka_unit_test_setup(unknown_keys_and_bad_values_are_reported_with_line_and_not_applied,
                               clear_env),
        cmocka_unit_test_setup_teardown(bad_environment_value_is_reported_and_the_file_value_kept,
                                        clear_env, clear_env),
        cmocka_unit_test_setup(endpoint_accepts_vsock_unix_and_tcp_forms_only, clear_env),
        cmocka_unit_test_setup(memory_limit_accepts_sizes_with_units, clear_env),
        cmocka_unit_test_setup(connect_timeout_takes_seconds_up_to_a_minute, clear_env),
        cmocka_unit_test_setup(memory_limit_rejects_a_negative_size, clear_env),
        cmocka_unit_test_setup(backend_and_log_take_only_their_words, clear_env),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
