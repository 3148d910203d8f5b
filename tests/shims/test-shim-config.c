/* The shims' configuration: vgpu.conf and the VGPU_* environment read once, each
 * value checked; bad values are one message on stderr and an API error, never a
 * silent default, and nothing ever reaches stdout. */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "cu.h"
#include "shimtest.h"

const char vgpu_shim_component[] = "vgpu-test";

static char dir[] = "/tmp/vgpu-shim-config-XXXXXX";
static char conf[sizeof(dir) + 16];

static int setup(void **state)
{
    (void)state;
    assert_non_null(mkdtemp(dir));
    snprintf(conf, sizeof(conf), "%s/vgpu.conf", dir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char log[sizeof(dir) + 16];
    snprintf(log, sizeof(log), "%s/shim.log", dir);
    unlink(conf);
    unlink(log);
    rmdir(dir);
    return 0;
}

static void write_conf(const char *text, size_t len)
{
    int fd = open(conf, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, len), (ssize_t)len);
    close(fd);
}

/* Loads with only the given VGPU_* variables set and VGPU_CONFIG at our file. */
static void load(struct vgpu_config *c, const char *const *env)
{
    static const char *const keys[] = {
        "VGPU_BACKEND",      "VGPU_NATIVE_CUDA", "VGPU_NATIVE_NVML",
        "VGPU_MEMORY_LIMIT", "VGPU_LOG",         "VGPU_LOG_FILE",
        "VGPU_SHIM_DIR",     "VGPU_ENDPOINT",    "VGPU_CONNECT_TIMEOUT",
        "VGPU_SECRET_FILE"};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        unsetenv(keys[i]);
    setenv("VGPU_CONFIG", conf, 1);
    /* setenv copies: putenv would leave environ pointing into the caller's (stack)
     * buffers after it returns, and a later unsetenv would walk garbage. */
    for (; env && *env; env++) {
        const char *eq = strchr(*env, '=');
        char name[64];
        snprintf(name, sizeof(name), "%.*s", (int)(eq ? eq - *env : 0), *env);
        if (eq)
            setenv(name, eq + 1, 1);
    }
    vgpu_config_load(c);
}

static void nothing_configured_means_the_remote_backend_and_defaults(void **state)
{
    (void)state;
    unlink(conf);
    struct vgpu_config c;
    load(&c, NULL);
    assert_true(c.ok);
    assert_int_equal(c.backend, VGPU_BACKEND_REMOTE);
    assert_string_equal(c.endpoint, "vsock:2:7735");
    assert_int_equal(c.connect_timeout_ms, 2000);
    assert_string_equal(c.secret_file, "");
    assert_int_equal(c.log, VGPU_LOG_WARN);
    assert_int_equal(c.memory_limit, 0);
    assert_string_equal(c.file, "");
}

static void the_environment_beats_the_file(void **state)
{
    (void)state;
    const char text[] = "# vGPU\nbackend = none\nmemory_limit = 2G  # two\n"
                        "native_cuda = \"/usr/lib/libcuda.so.1\"\nlog=info\n"
                        "shim_dir = /usr/lib/vgpu\nendpoint = vsock:2:7000\n"
                        "connect_timeout = 5\nsecret_file = /etc/vgpu/secret\n";
    write_conf(text, sizeof(text) - 1);
    struct vgpu_config c;
    const char *const env[] = {"VGPU_BACKEND=native", "VGPU_LOG=debug", "VGPU_CONNECT_TIMEOUT=0.25",
                               NULL};
    load(&c, env);
    assert_true(c.ok);
    assert_int_equal(c.backend, VGPU_BACKEND_NATIVE);
    assert_int_equal(c.log, VGPU_LOG_DEBUG);
    assert_int_equal(c.memory_limit, 2ull << 30);
    assert_string_equal(c.native_cuda, "/usr/lib/libcuda.so.1");
    assert_string_equal(c.endpoint, "vsock:2:7000");
    assert_int_equal(c.connect_timeout_ms, 250);
    assert_string_equal(c.secret_file, "/etc/vgpu/secret");
    assert_string_equal(c.file, conf);
}

static void memory_limits_take_binary_units(void **state)
{
    (void)state;
    unlink(conf);
    static const struct {
        const char *v;
        unsigned long long bytes;
    } good[] = {
        {"1", 1},
        {"512", 512},
        {"4K", 4096},
        {"4KiB", 4096},
        {"3M", 3ull << 20},
        {"8G", 8ull << 30},
        {"8GiB", 8ull << 30},
        {"2T", 2ull << 40},
        {"none", 0},
        {"16777215T", 16777215ull << 40},
    };
    static const char *const bad[] = {"",
                                      "0",
                                      "-1",
                                      "-8G",
                                      " 8G",
                                      "8 G",
                                      "8g",
                                      "8GB",
                                      "1.5G",
                                      "16777216T",
                                      "99999999999999999999",
                                      "none ",
                                      "G"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        char var[64];
        snprintf(var, sizeof(var), "VGPU_MEMORY_LIMIT=%s", good[i].v);
        const char *const env[] = {var, NULL};
        struct vgpu_config c;
        load(&c, env);
        if (!c.ok)
            print_error("%s: %s\n", good[i].v, c.problem);
        assert_true(c.ok);
        assert_int_equal(c.memory_limit, good[i].bytes);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char text[128];
        int n = snprintf(text, sizeof(text), "memory_limit = \"%s\"\n", bad[i]);
        write_conf(text, (size_t)n);
        struct vgpu_config c;
        load(&c, NULL);
        if (c.ok)
            print_error("'%s' was accepted\n", bad[i]);
        assert_false(c.ok);
        assert_non_null(strstr(c.problem, "for memory_limit"));
    }
}

static void bad_lines_are_reported_with_their_place(void **state)
{
    (void)state;
    const char text[] = "backend = native\ncolour = blue\njust words\nlog = loud\n"
                        "native_nvml = relative/lib\nlog_file = /tmp/a\x01\n";
    write_conf(text, sizeof(text) - 1);
    struct vgpu_config c;
    load(&c, NULL);
    assert_false(c.ok);
    char where[128];
    snprintf(where, sizeof(where), "%s:2: unknown key 'colour'", conf);
    assert_non_null(strstr(c.problem, where));
    snprintf(where, sizeof(where), "%s:3: expected 'key = value'", conf);
    assert_non_null(strstr(c.problem, where));
    assert_non_null(strstr(c.problem, ":4: bad value 'loud' for log (expected error, warn"));
    assert_non_null(strstr(c.problem, ":5: bad value 'relative/lib' for native_nvml"));
    assert_non_null(strstr(c.problem, ":6: bad value for log_file (it contains a control"));
    assert_null(strchr(c.problem, '\x01'));
}

static void bad_environment_values_are_reported(void **state)
{
    (void)state;
    unlink(conf);
    struct vgpu_config c;
    const char *const env[] = {"VGPU_BACKEND=cuda", NULL};
    load(&c, env);
    assert_false(c.ok);
    assert_non_null(strstr(c.problem, "environment VGPU_BACKEND: bad value 'cuda' for backend"));
    const char *const rel[] = {"VGPU_CONFIG=etc/vgpu.conf", NULL};
    load(&c, rel);
    assert_false(c.ok);
    assert_non_null(strstr(c.problem, "VGPU_CONFIG: bad value"));
}

static void unreadable_and_oversized_files_are_errors(void **state)
{
    (void)state;
    struct vgpu_config c;
    char var[sizeof(dir) + 32];
    snprintf(var, sizeof(var), "VGPU_CONFIG=%s", dir); /* a directory */
    const char *const env[] = {var, NULL};
    load(&c, env);
    assert_false(c.ok);
    assert_non_null(strstr(c.problem, "is not a regular file"));

    /* A FIFO would block the program forever at its first API call. */
    char fifo[sizeof(dir) + 16], fifovar[sizeof(dir) + 32];
    snprintf(fifo, sizeof(fifo), "%s/fifo", dir);
    snprintf(fifovar, sizeof(fifovar), "VGPU_CONFIG=%s", fifo);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    const char *const fenv[] = {fifovar, NULL};
    load(&c, fenv);
    unlink(fifo);
    assert_false(c.ok);
    assert_non_null(strstr(c.problem, "is not a regular file"));

    static char big[70 * 1024];
    memset(big, '#', sizeof(big));
    write_conf(big, sizeof(big));
    load(&c, NULL);
    assert_false(c.ok);
    assert_non_null(strstr(c.problem, "larger than"));

    write_conf("log = info\n\0backend = none\n", 27);
    load(&c, NULL);
    assert_false(c.ok);
    assert_non_null(strstr(c.problem, "not a text file"));
}

static void bad_limit_child(void *arg)
{
    (void)arg;
    struct cu cu = cu_load();
    ST_CHECK_INT(cu.Init(0), CU_NOT_INITIALIZED);
    int n = -1;
    ST_CHECK_INT(cu.DeviceGetCount(&n), CU_NOT_INITIALIZED);
    cudev_t p = 0;
    ST_CHECK_INT(cu.MemAlloc_v2(&p, 1), CU_NOT_INITIALIZED);
}

static void a_bad_value_is_one_message_and_an_api_error(void **state)
{
    (void)state;
    const char *const env[] = {"VGPU_BACKEND=native", "VGPU_NATIVE_CUDA=/x/libcuda.so.1",
                               "VGPU_MEMORY_LIMIT=8X", NULL};
    struct st_result r;
    st_run(bad_limit_child, NULL, env, &r);
    st_assert_ok(&r);
    assert_string_equal(r.out, "");
    assert_int_equal(st_count(r.err, "\n"), 1);
    assert_int_equal(st_count(r.err, "vgpu-cuda["), 1);
    assert_int_equal(st_count(r.err, "bad value '8X' for memory_limit"), 1);
}

static void log_file_child(void *arg)
{
    (void)arg;
    struct cu cu = cu_load();
    ST_CHECK_INT(cu.Init(0), CU_NO_DEVICE);
}

static void messages_go_to_the_log_file_and_never_to_stdout(void **state)
{
    (void)state;
    char var[sizeof(dir) + 32], log[sizeof(dir) + 16];
    snprintf(log, sizeof(log), "%s/shim.log", dir);
    snprintf(var, sizeof(var), "VGPU_LOG_FILE=%s", log);
    unlink(log);
    const char *const env[] = {var, "VGPU_LOG=debug", NULL};
    struct st_result r;
    st_run(log_file_child, NULL, env, &r);
    st_assert_ok(&r);
    assert_string_equal(r.out, "");
    assert_string_equal(r.err, "");
    char text[4096] = "";
    FILE *f = fopen(log, "r");
    assert_non_null(f);
    size_t n = fread(text, 1, sizeof(text) - 1, f);
    fclose(f);
    text[n] = '\0';
    assert_int_equal(st_count(text, "backend remote: cannot reach vgpu-hostd"), 1);
    assert_non_null(strstr(text, "debug: configuration: backend=remote"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(nothing_configured_means_the_remote_backend_and_defaults),
        cmocka_unit_test(the_environment_beats_the_file),
        cmocka_unit_test(memory_limits_take_binary_units),
        cmocka_unit_test(bad_lines_are_reported_with_their_place),
        cmocka_unit_test(bad_environment_values_are_reported),
        cmocka_unit_test(unreadable_and_oversized_files_are_errors),
        cmocka_unit_test(a_bad_value_is_one_message_and_an_api_error),
        cmocka_unit_test(messages_go_to_the_log_file_and_never_to_stdout),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
