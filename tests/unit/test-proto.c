/* test-proto: the remote protocol's endpoints, framing and its prose (docs/protocol.md). */
#include "proto.h"
#include "util.h"
#include "vgpu-conf.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

static void endpoints_parse_and_format_back(void **state)
{
    (void)state;
    static const char *const good[] = {"unix:/run/vgpu/hostd.sock",
                                       "tcp:127.0.0.1:7735",
                                       "tcp:gpu-host:1",
                                       "tcp:[::1]:7735",
                                       "vsock:2:7735",
                                       "vsock:any:7735"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        struct vr_endpoint e;
        char err[256] = "", back[400];
        assert_int_equal(vr_endpoint_parse(good[i], &e, err, sizeof(err)), 0);
        vr_endpoint_format(&e, back, sizeof(back));
        assert_string_equal(back, good[i]);
    }
    struct vr_endpoint e;
    char err[256];
    assert_int_equal(vr_endpoint_parse("vsock:2:7735", &e, err, sizeof(err)), 0);
    assert_int_equal(e.transport, VR_VSOCK);
    assert_int_equal(e.cid, 2);
    assert_int_equal(e.port, 7735);
    assert_int_equal(vr_endpoint_parse("tcp::7735", &e, err, sizeof(err)), 0);
    assert_string_equal(e.host, ""); /* a listener's loopback default */
}

static void bad_endpoints_say_why(void **state)
{
    (void)state;
    static const struct {
        const char *s, *why;
    } bad[] = {
        {"unix:relative.sock", "absolute path"},
        {"tcp:host", "expected tcp:HOST:PORT"},
        {"tcp:host:0", "from 1 to 65535"},
        {"tcp:host:65536", "from 1 to 65535"},
        {"tcp:host:-1", "from 1 to 65535"},
        {"tcp:::1:80", "tcp:[ADDRESS]:PORT"},
        {"tcp:[[x]:1", "tcp:[ADDRESS]:PORT"},
        {"tcp:a]:1", "tcp:[ADDRESS]:PORT"},
        {"vsock:2", "expected vsock:CID:PORT"},
        {"vsock:x:1", "CID must be a number"},
        {"vsock:2:p", "port must be a number"},
        {"http://host", "expected unix:PATH"},
        {"", "expected unix:PATH"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct vr_endpoint e;
        char err[256] = "";
        assert_int_equal(vr_endpoint_parse(bad[i].s, &e, err, sizeof(err)), -1);
        if (!strstr(err, bad[i].why))
            fail_msg("'%s': '%s' does not say '%s'", bad[i].s, err, bad[i].why);
    }
}

/* vgpu-patch checks endpoint values without linking proto.c (shims/common/vgpu-conf.c):
 * whatever the configuration accepts, the parser takes; the parser's extra forms are a
 * listener's (no host, CID "any", port 0). */
static void the_configuration_accepts_what_the_parser_accepts(void **state)
{
    (void)state;
    static const char *const cases[] = {
        "unix:/run/vgpu/hostd.sock",
        "unix:relative",
        "unix:",
        "tcp:127.0.0.1:7735",
        "tcp:gpu-host:1",
        "tcp:[::1]:7735",
        "tcp:::1:80",
        "tcp:a:b:7735",
        "tcp:host:0",
        "tcp:host:65536",
        "tcp:host: 80",
        "tcp::7735",
        "tcp:[[x]:1",
        "tcp:a]:1",
        "tcp:[x]7",
        "vsock:2:7735",
        "vsock:any:7735",
        "vsock::7735",
        "vsock:x:1",
        "vsock:2:",
        "vsock:2",
        "vsock: 2:1",
        "vsock:2:4294967295",
        "vsock:2:4294967294",
        "vsock:4294967296:1",
        "vsock:-1:1",
        "vsock:2:0",
        "vsock:2:65536",
        "http://host",
        "",
        "tcp:",
        "vsock:",
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct vr_endpoint e;
        char err[256];
        bool parsed = vr_endpoint_parse(cases[i], &e, err, sizeof(err)) == 0;
        bool accepted = vgpu_conf_check(VGPU_CONF_ENDPOINT, cases[i]) == NULL;
        bool listener_only =
            parsed && ((e.transport == VR_TCP && !e.host[0]) ||
                       (e.transport == VR_VSOCK && (e.cid == UINT32_MAX || !e.port)));
        if (parsed != accepted && !(listener_only && !accepted))
            fail_msg("'%s': the parser %s it, the configuration %s it", cases[i],
                     parsed ? "accepts" : "refuses", accepted ? "accepts" : "refuses");
    }
}

static void a_request_and_a_reply_cross_a_socket_with_their_bulk(void **state)
{
    (void)state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    /* More bulk than the reader buffers, so that part goes straight to the destination;
     * sent from another process, since the socket buffer holds less. */
    size_t n = 3 * 1024 * 1024 + 7;
    unsigned char *src = malloc(n), *dst = malloc(n);
    for (size_t i = 0; i < n; i++)
        src[i] = (unsigned char)(i * 131 + 7);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct vr_args a = {{1, 2, 3, 4, 5, 6, 7, 8}};
        struct vr_ret r = {.status = -3, .aux = 9, .r = {10, 11, 12, 13}};
        _exit(vr_send_request(sv[0], VR_CU_MEMCPY_HTOD, 42, &a, src, n) ||
              vr_send_reply(sv[0], VR_PING, 43, &r, "pong", 5));
    }
    struct vr_reader rd;
    vr_reader_init(&rd, sv[1]);
    struct vr_hdr h;
    struct vr_args a;
    assert_int_equal(vr_read_msg(&rd, false, &h, &a), 0);
    assert_int_equal(h.op, VR_CU_MEMCPY_HTOD);
    assert_int_equal(h.id, 42);
    assert_int_equal(h.bulk, n);
    assert_true(h.bulk <= vr_request_bulk_max(h.op));
    assert_int_equal(a.a[7], 8);
    assert_int_equal(vr_read(&rd, dst, n), 0);
    assert_memory_equal(src, dst, n);
    struct vr_ret r;
    char pong[5];
    assert_int_equal(vr_read_msg(&rd, true, &h, &r), 0);
    assert_int_equal(h.flags, VR_F_REPLY);
    assert_int_equal(r.status, -3);
    assert_int_equal(r.r[3], 13);
    assert_int_equal(vr_read(&rd, pong, sizeof(pong)), 0);
    assert_string_equal(pong, "pong");
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_int_equal(st, 0);
    close(sv[0]);
    assert_int_equal(vr_read(&rd, NULL, 1), -EPIPE); /* the peer is gone */
    close(sv[1]);
    free(src);
    free(dst);
}

/* One malformed header, as sent by a client: what vr_read_msg says of it. */
static int read_one(const struct vr_hdr *h, bool reply)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    unsigned char fixed[64] = {0};
    assert_int_equal(write(sv[0], h, sizeof(*h)), (ssize_t)sizeof(*h));
    assert_int_equal(write(sv[0], fixed, sizeof(fixed)), (ssize_t)sizeof(fixed));
    close(sv[0]);
    struct vr_reader rd;
    vr_reader_init(&rd, sv[1]);
    struct vr_hdr got;
    unsigned char buf[64];
    int r = vr_read_msg(&rd, reply, &got, buf);
    close(sv[1]);
    return r;
}

static void malformed_headers_are_protocol_errors(void **state)
{
    (void)state;
    const struct vr_hdr ok = {.magic = VR_MAGIC, .op = VR_PING, .len = sizeof(struct vr_args)};
    assert_int_equal(read_one(&ok, false), 0);
    struct vr_hdr h = ok;
    h.magic ^= 1;
    assert_int_equal(read_one(&h, false), -EPROTO);
    h = ok;
    h.len = 63;
    assert_int_equal(read_one(&h, false), -EPROTO);
    h = ok;
    h.flags = VR_F_REPLY; /* a reply where a request belongs */
    assert_int_equal(read_one(&h, false), -EPROTO);
    h = ok;
    h.flags = 0x8000;
    assert_int_equal(read_one(&h, false), -EPROTO);
    h = ok;
    h.bulk = VR_MAX_BULK + 1;
    assert_int_equal(read_one(&h, false), -EPROTO);
    h = ok; /* a request where a reply belongs (and the reply's size) */
    assert_int_equal(read_one(&h, true), -EPROTO);
    /* A frame cut short is the end of the stream. */
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    assert_int_equal(write(sv[0], &ok, 10), 10);
    close(sv[0]);
    struct vr_reader rd;
    vr_reader_init(&rd, sv[1]);
    struct vr_hdr got;
    struct vr_args a;
    assert_int_equal(vr_read_msg(&rd, false, &got, &a), -EPIPE);
    close(sv[1]);
}

static void every_op_has_its_limit_and_name(void **state)
{
    (void)state;
    char buf[16];
    assert_int_equal(vr_request_bulk_max(VR_CU_MEMCPY_HTOD), VR_MAX_BULK);
    assert_int_equal(vr_request_bulk_max(VR_CU_MEMCPY_DTOH), 0);
    assert_int_equal(vr_request_bulk_max(VR_CU_MODULE_LOAD), VR_MAX_IMAGE);
    assert_int_equal(vr_request_bulk_max(0x7777), VR_MAX_NAME);
    assert_string_equal(vr_op_name(VR_NVML_DEVICE_INFO, buf), "NVML_DEVICE_INFO");
    assert_string_equal(vr_op_name(0x7777, buf), "op 0x7777");
}

/* docs/protocol.md has a row "| `NAME` | 0xVAL |" for every op, and no other. */
static void the_protocol_page_lists_every_op_with_its_value(void **state)
{
    (void)state;
    const char *src = getenv("VGPU_SOURCE_DIR");
    assert_non_null(src);
    _cleanup_(freep) char *path = vp_path_join(src, "docs/protocol.md");
    char *text = NULL;
    size_t len;
    assert_int_equal(vp_read_file(path, 1 << 20, &text, &len), 0);
    size_t known = 0;
#define VR_OP_CHECK(name, value, bulk)                                                             \
    do {                                                                                           \
        char row[96];                                                                              \
        snprintf(row, sizeof(row), "| `%s` | 0x%03x |", #name, (unsigned)(value));                 \
        if (!strstr(text, row))                                                                    \
            fail_msg("docs/protocol.md lacks the row '%s'", row);                                  \
        known++;                                                                                   \
    } while (0);
    VR_OPS(VR_OP_CHECK)
#undef VR_OP_CHECK
    size_t rows = 0;
    for (const char *p = text; (p = strstr(p, "| 0x")); p++)
        rows++;
    assert_int_equal(rows, known);
    free(text);
}

/* The daemon's image check: what the headers declare must lie in the bytes received. */
static void images_fit_only_when_their_headers_stay_inside(void **state)
{
    (void)state;
    static const char ptx[] = ".version 8.0\n.target sm_80\n";
    assert_true(vr_image_fits(ptx, sizeof(ptx)));
    assert_false(vr_image_fits(ptx, sizeof(ptx) - 1)); /* no NUL: the driver reads on */
    assert_false(vr_image_fits(ptx, 0));

    unsigned char fat[64] = {0x50, 0xed, 0x55, 0xba, 1, 0, 16, 0};
    uint64_t fatsize = 48;
    memcpy(fat + 8, &fatsize, 8);
    assert_true(vr_image_fits(fat, 64));
    assert_false(vr_image_fits(fat, 63));
    assert_false(vr_image_fits(fat, 12)); /* the header itself is cut */
    fatsize = UINT64_MAX - 8;             /* header size + fat size wraps around */
    memcpy(fat + 8, &fatsize, 8);
    assert_false(vr_image_fits(fat, 64));

    /* An ELF: header, then one section at 0x40 of 16 bytes, section headers at 0x50. */
    unsigned char elf[0x50 + 2 * 0x40] = {0x7f, 'E', 'L', 'F', 2, 1, 1};
    uint64_t shoff = 0x50, off = 0x40, size = 16;
    memcpy(elf + 0x28, &shoff, 8);
    elf[0x34] = 0x40; /* ehsize */
    elf[0x3a] = 0x40; /* shentsize */
    elf[0x3c] = 2;    /* shnum: the null section and one */
    memcpy(elf + 0x50 + 0x40 + 0x18, &off, 8);
    memcpy(elf + 0x50 + 0x40 + 0x20, &size, 8);
    assert_true(vr_image_fits(elf, sizeof(elf)));
    assert_false(vr_image_fits(elf, sizeof(elf) - 1)); /* the last section header is cut */
    assert_false(vr_image_fits(elf, 0x3f));
    size = 4096; /* the section reaches past the end */
    memcpy(elf + 0x50 + 0x40 + 0x20, &size, 8);
    assert_false(vr_image_fits(elf, sizeof(elf)));

    /* The client's size (no length) agrees where the image is whole. */
    const void *start;
    assert_int_equal(vr_image_size(ptx, &start), sizeof(ptx));
    assert_ptr_equal(start, ptx);
    fatsize = 48;
    memcpy(fat + 8, &fatsize, 8);
    assert_int_equal(vr_image_size(fat, &start), 64);
    /* A wrapper points at its fatbin, on the client only. */
    struct {
        uint32_t magic, version;
        const void *data;
    } wrapper = {0x466243b1u, 1, fat};
    assert_int_equal(vr_image_size(&wrapper, &start), 64);
    assert_ptr_equal(start, fat);
    assert_false(vr_image_fits(&wrapper, sizeof(wrapper)));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(endpoints_parse_and_format_back),
        cmocka_unit_test(bad_endpoints_say_why),
        cmocka_unit_test(the_configuration_accepts_what_the_parser_accepts),
        cmocka_unit_test(a_request_and_a_reply_cross_a_socket_with_their_bulk),
        cmocka_unit_test(malformed_headers_are_protocol_errors),
        cmocka_unit_test(every_op_has_its_limit_and_name),
        cmocka_unit_test(the_protocol_page_lists_every_op_with_its_value),
        cmocka_unit_test(images_fit_only_when_their_headers_stay_inside),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
