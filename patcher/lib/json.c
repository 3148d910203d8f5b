/* json: streaming writer with RFC 8259 string escaping. */
#include "json.h"

#include <math.h>

static void indent(struct vp_json *j)
{
    for (int i = 0; i < j->depth; i++)
        fputs("  ", j->out);
}

/* Length of the valid UTF-8 sequence at p (1 for ASCII), or 0 when it is not valid. */
static int utf8_len(const unsigned char *p)
{
    int n = p[0] < 0x80 ? 1 : (p[0] & 0xe0) == 0xc0 ? 2 : (p[0] & 0xf0) == 0xe0 ? 3
                           : (p[0] & 0xf8) == 0xf0 ? 4 : 0;
    if (n == 2 && p[0] < 0xc2)
        return 0; /* overlong */
    for (int i = 1; i < n; i++)
        if ((p[i] & 0xc0) != 0x80)
            return 0;
    return n;
}

static void put_string(FILE *out, const char *s)
{
    fputc('"', out);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p >= 0x80) {
            /* JSON text is Unicode: a byte that is not part of valid UTF-8 (a path may
             * hold any) is written as the code point of the same value. */
            int n = utf8_len(p);
            if (n) {
                fwrite(p, 1, (size_t)n, out);
                p += n - 1;
            } else {
                fprintf(out, "\\u%04x", *p);
            }
            continue;
        }
        switch (*p) {
        case '"':
            fputs("\\\"", out);
            break;
        case '\\':
            fputs("\\\\", out);
            break;
        case '\n':
            fputs("\\n", out);
            break;
        case '\t':
            fputs("\\t", out);
            break;
        case '\r':
            fputs("\\r", out);
            break;
        default:
            if (*p < 0x20 || *p == 0x7f)
                fprintf(out, "\\u%04x", *p);
            else
                fputc(*p, out);
        }
    }
    fputc('"', out);
}

static void member(struct vp_json *j, const char *key)
{
    if (j->depth > 0) {
        fputs(j->first ? "\n" : ",\n", j->out);
        indent(j);
    }
    j->first = false;
    if (key) {
        put_string(j->out, key);
        fputs(": ", j->out);
    }
}

void vp_json_init(struct vp_json *j, FILE *out)
{
    j->out = out;
    j->depth = 0;
    j->first = true;
}

static void open_(struct vp_json *j, const char *key, char c)
{
    member(j, key);
    fputc(c, j->out);
    j->depth++;
    j->first = true;
}

static void close_(struct vp_json *j, char c)
{
    j->depth--;
    if (!j->first) {
        fputc('\n', j->out);
        indent(j);
    }
    fputc(c, j->out);
    j->first = false;
}

void vp_json_begin_object(struct vp_json *j, const char *key)
{
    open_(j, key, '{');
}

void vp_json_end_object(struct vp_json *j)
{
    close_(j, '}');
}

void vp_json_begin_array(struct vp_json *j, const char *key)
{
    open_(j, key, '[');
}

void vp_json_end_array(struct vp_json *j)
{
    close_(j, ']');
}

void vp_json_string(struct vp_json *j, const char *key, const char *value)
{
    member(j, key);
    if (value)
        put_string(j->out, value);
    else
        fputs("null", j->out);
}

void vp_json_int(struct vp_json *j, const char *key, int64_t value)
{
    member(j, key);
    fprintf(j->out, "%lld", (long long)value);
}

void vp_json_uint(struct vp_json *j, const char *key, uint64_t value)
{
    member(j, key);
    fprintf(j->out, "%llu", (unsigned long long)value);
}

void vp_json_double(struct vp_json *j, const char *key, double value)
{
    member(j, key);
    if (isfinite(value))
        fprintf(j->out, "%.3f", value);
    else
        fputs("null", j->out); /* JSON has no NaN or infinity */
}

void vp_json_bool(struct vp_json *j, const char *key, bool value)
{
    member(j, key);
    fputs(value ? "true" : "false", j->out);
}

void vp_json_finish(struct vp_json *j)
{
    fputc('\n', j->out);
    fflush(j->out);
}
