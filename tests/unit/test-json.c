/* json: the writer's output is read back by a strict RFC 8259 parser written here (whole
 * grammar, string escapes decoded), so escaping, nesting and commas are checked by parsing
 * what was written, not by looking at it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <string.h>

#include "json.h"
#include "util.h"

/* ---- a strict reader ---- */

struct rd {
    const char *p;
    struct vp_strv strings; /* every decoded key and string value, in order */
    size_t nulls, numbers, bools, objects, arrays;
};

static void ws(struct rd *r)
{
    while (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r')
        r->p++;
}

static int hex4(const char *s)
{
    int v = 0;
    for (int i = 0; i < 4; i++) {
        char c = s[i];
        int d = c >= '0' && c <= '9' ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0)
            return -1;
        v = v * 16 + d;
    }
    return v;
}

static bool string(struct rd *r)
{
    if (*r->p++ != '"')
        return false;
    size_t cap = strlen(r->p) + 1, n = 0;
    char *out = vp_xmalloc(cap);
    for (;;) {
        unsigned char c = (unsigned char)*r->p++;
        if (c == '"')
            break;
        if (c < 0x20) { /* includes the end of the text: raw control characters are invalid */
            free(out);
            return false;
        }
        if (c != '\\') {
            out[n++] = (char)c;
            continue;
        }
        char e = *r->p++;
        const char *simple = strchr("\"\\/bfnrt", e);
        if (e && simple) {
            out[n++] = "\"\\/\b\f\n\r\t"[simple - "\"\\/bfnrt"];
        } else if (e == 'u') {
            int v = hex4(r->p);
            if (v < 0 || v >= 0x80) { /* the writer only needs ASCII escapes */
                free(out);
                return false;
            }
            out[n++] = (char)v;
            r->p += 4;
        } else {
            free(out);
            return false;
        }
    }
    out[n] = '\0';
    vp_strv_push_take(&r->strings, out);
    return true;
}

static bool number(struct rd *r)
{
    const char *s = r->p;
    if (*s == '-')
        s++;
    if (*s == '0')
        s++;
    else if (*s >= '1' && *s <= '9')
        while (*s >= '0' && *s <= '9')
            s++;
    else
        return false;
    if (*s == '.') {
        if (!(*++s >= '0' && *s <= '9'))
            return false;
        while (*s >= '0' && *s <= '9')
            s++;
    }
    if (*s == 'e' || *s == 'E') {
        s++;
        if (*s == '+' || *s == '-')
            s++;
        if (!(*s >= '0' && *s <= '9'))
            return false;
        while (*s >= '0' && *s <= '9')
            s++;
    }
    r->p = s;
    r->numbers++;
    return true;
}

static bool value(struct rd *r);

static bool members(struct rd *r, char close, bool keyed)
{
    r->p++;
    ws(r);
    if (*r->p == close) {
        r->p++;
        return true;
    }
    for (;;) {
        ws(r);
        if (keyed) {
            if (!string(r))
                return false;
            ws(r);
            if (*r->p++ != ':')
                return false;
        }
        if (!value(r))
            return false;
        ws(r);
        if (*r->p == close) {
            r->p++;
            return true;
        }
        if (*r->p++ != ',')
            return false;
    }
}

static bool value(struct rd *r)
{
    ws(r);
    switch (*r->p) {
    case '{':
        r->objects++;
        return members(r, '}', true);
    case '[':
        r->arrays++;
        return members(r, ']', false);
    case '"':
        return string(r);
    case 't':
    case 'f': {
        const char *w = *r->p == 't' ? "true" : "false";
        if (strncmp(r->p, w, strlen(w)) != 0)
            return false;
        r->p += strlen(w);
        r->bools++;
        return true;
    }
    case 'n':
        if (strncmp(r->p, "null", 4) != 0)
            return false;
        r->p += 4;
        r->nulls++;
        return true;
    default:
        return number(r);
    }
}

/* Parses a whole document: one value, then only blanks. */
static bool parse_doc(const char *text, struct rd *r)
{
    *r = (struct rd){.p = text};
    if (!value(r))
        return false;
    ws(r);
    return *r->p == '\0';
}

/* ---- writer under test ---- */

struct doc {
    char *buf;
    size_t len;
    FILE *f;
    struct vp_json j;
};

static void doc_open(struct doc *d)
{
    *d = (struct doc){0};
    d->f = open_memstream(&d->buf, &d->len);
    assert_non_null(d->f);
    vp_json_init(&d->j, d->f);
}

static char *doc_close(struct doc *d)
{
    vp_json_finish(&d->j);
    fclose(d->f);
    return d->buf;
}

/* Reads text back with the strict reader into r; prints it when it is not valid JSON. */
static bool read_back(const char *text, struct rd *r)
{
    bool ok = parse_doc(text, r);
    if (!ok)
        print_message("invalid JSON:\n%s\n", text);
    return ok;
}

/* Frees the text and what the reader decoded from it. */
static void doc_free(char *text, struct rd *r)
{
    vp_strv_release(&r->strings);
    free(text);
}

static void reader_rejects_what_it_must(void **state)
{
    (void)state;
    /* The checker itself: it must be able to say no. */
    static const char *const bad[] = {"{\"a\":1,}", "[1 2]", "{\"a\" 1}", "\"raw\nnewline\"",
                                      "\"bad \\x escape\"", "nan", "[1,]", "{} {}", "01",
                                      "{\"a\":1", "\"\\u00zz\""};
    for (size_t i = 0; i < VP_ARRAY_SIZE(bad); i++) {
        struct rd r;
        assert_false(parse_doc(bad[i], &r));
        vp_strv_release(&r.strings);
    }
    struct rd r;
    assert_true(parse_doc("{\"a\": [1, -2.5e3, true, null, {}], \"b\": \"x\\u0001\"}", &r));
    assert_int_equal(r.strings.n, 3);
    assert_string_equal(r.strings.v[2], "x\x01");
    vp_strv_release(&r.strings);
}

static void strings_with_quotes_backslashes_and_control_characters_read_back_unchanged(
    void **state)
{
    (void)state;
    static const char *const hostile[] = {
        "plain",  "say \"hi\"", "C:\\path\\", "line\nbreak", "tab\tcr\r",
        "\x01\x02\x1f", "del\x7f", "utf-8 \xc3\xa9", "", "/slash/",
        "\\\"", "\b\f",
    };
    struct doc d;
    doc_open(&d);
    vp_json_begin_object(&d.j, NULL);
    for (size_t i = 0; i < VP_ARRAY_SIZE(hostile); i++)
        vp_json_string(&d.j, hostile[i], hostile[i]); /* keys are escaped too */
    vp_json_end_object(&d.j);
    char *text = doc_close(&d);
    struct rd r;
    assert_true(read_back(text, &r));
    assert_int_equal(r.strings.n, 2 * VP_ARRAY_SIZE(hostile));
    for (size_t i = 0; i < VP_ARRAY_SIZE(hostile); i++) {
        assert_string_equal(r.strings.v[2 * i], hostile[i]);
        assert_string_equal(r.strings.v[2 * i + 1], hostile[i]);
    }
    doc_free(text, &r);
}

static void nested_objects_and_arrays_are_valid_json(void **state)
{
    (void)state;
    struct doc d;
    doc_open(&d);
    vp_json_begin_object(&d.j, NULL);
    vp_json_int(&d.j, "schema", 1);
    vp_json_begin_array(&d.j, "files");
    for (int i = 0; i < 3; i++) {
        vp_json_begin_object(&d.j, NULL);
        vp_json_string(&d.j, "path", "/usr/local/bin/ollama");
        vp_json_begin_array(&d.j, "edits");
        for (int k = 0; k < i; k++)
            vp_json_string(&d.j, NULL, "add-needed");
        vp_json_end_array(&d.j);
        vp_json_begin_object(&d.j, "empty");
        vp_json_end_object(&d.j);
        vp_json_bool(&d.j, "done", i == 1);
        vp_json_end_object(&d.j);
    }
    vp_json_end_array(&d.j);
    vp_json_begin_array(&d.j, "none");
    vp_json_end_array(&d.j);
    vp_json_begin_array(&d.j, "matrix");
    vp_json_begin_array(&d.j, NULL);
    vp_json_uint(&d.j, NULL, 1);
    vp_json_end_array(&d.j);
    vp_json_begin_array(&d.j, NULL);
    vp_json_end_array(&d.j);
    vp_json_end_array(&d.j);
    vp_json_string(&d.j, "last", "x");
    vp_json_end_object(&d.j);
    char *text = doc_close(&d);
    struct rd r;
    assert_true(read_back(text, &r));
    assert_int_equal(r.objects, 1 + 3 + 3);
    assert_int_equal(r.arrays, 1 + 3 + 1 + 1 + 2);
    assert_int_equal(r.bools, 3);
    assert_int_equal(r.numbers, 2);
    assert_int_equal(d.j.depth, 0);
    /* Pretty-printed: one member per line, a document ending in one newline. */
    assert_non_null(strstr(text, "\n  \"schema\": 1,\n"));
    assert_true(vp_endswith(text, "}\n"));
    assert_false(vp_endswith(text, "\n\n"));
    doc_free(text, &r);
}

static void null_strings_are_written_as_null(void **state)
{
    (void)state;
    struct doc d;
    doc_open(&d);
    vp_json_begin_object(&d.j, NULL);
    vp_json_string(&d.j, "library", NULL);
    vp_json_begin_array(&d.j, "list");
    vp_json_string(&d.j, NULL, NULL);
    vp_json_string(&d.j, NULL, "");
    vp_json_end_array(&d.j);
    vp_json_end_object(&d.j);
    char *text = doc_close(&d);
    struct rd r;
    assert_true(read_back(text, &r));
    assert_int_equal(r.nulls, 2);
    assert_int_equal(r.strings.n, 3); /* "library", "list", "" */
    assert_string_equal(r.strings.v[2], "");
    assert_non_null(strstr(text, "\"library\": null"));
    doc_free(text, &r);
}

static void numbers_keep_their_extremes(void **state)
{
    (void)state;
    struct doc d;
    doc_open(&d);
    vp_json_begin_array(&d.j, NULL);
    vp_json_int(&d.j, NULL, INT64_MIN);
    vp_json_int(&d.j, NULL, INT64_MAX);
    vp_json_uint(&d.j, NULL, UINT64_MAX);
    vp_json_double(&d.j, NULL, -0.5);
    vp_json_double(&d.j, NULL, 1234.5678);
    vp_json_end_array(&d.j);
    char *text = doc_close(&d);
    struct rd r;
    assert_true(read_back(text, &r));
    assert_int_equal(r.numbers, 5);
    assert_non_null(strstr(text, "-9223372036854775808"));
    assert_non_null(strstr(text, "9223372036854775807"));
    assert_non_null(strstr(text, "18446744073709551615"));
    assert_non_null(strstr(text, "-0.500"));
    assert_non_null(strstr(text, "1234.568"));
    doc_free(text, &r);
}

static void non_finite_doubles_still_give_valid_json(void **state)
{
    (void)state;
    struct doc d;
    doc_open(&d);
    vp_json_begin_object(&d.j, NULL);
    vp_json_double(&d.j, "nan", NAN);
    vp_json_double(&d.j, "inf", INFINITY);
    vp_json_end_object(&d.j);
    char *text = doc_close(&d);
    struct rd r;
    bool ok = read_back(text, &r);
    doc_free(text, &r);
    /* JSON has no NaN or infinity: they must not be printed as `nan` / `inf`. */
    assert_true(ok);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(reader_rejects_what_it_must),
        cmocka_unit_test(
            strings_with_quotes_backslashes_and_control_characters_read_back_unchanged),
        cmocka_unit_test(nested_objects_and_arrays_are_valid_json),
        cmocka_unit_test(null_strings_are_written_as_null),
        cmocka_unit_test(numbers_keep_their_extremes),
        cmocka_unit_test(non_finite_doubles_still_give_valid_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
