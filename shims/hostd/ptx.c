/* ptx: kernel parameter layout from PTX `.entry` declarations (see ptx.h). */
#include "ptx.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

struct lexer {
    const char *p, *end;
};

struct tok {
    const char *s;
    size_t n;
};

static bool is_ident(char c, bool first)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == '$')
        return true;
    if (first)
        return c == '%';
    return c >= '0' && c <= '9';
}

static void skip_space(struct lexer *lx)
{
    while (lx->p < lx->end) {
        char c = *lx->p;
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v') {
            lx->p++;
        } else if (c == '/' && lx->end - lx->p >= 2 && lx->p[1] == '/') {
            while (lx->p < lx->end && *lx->p != '\n')
                lx->p++;
        } else if (c == '/' && lx->end - lx->p >= 2 && lx->p[1] == '*') {
            lx->p += 2;
            while (lx->p < lx->end && !(*lx->p == '*' && lx->end - lx->p >= 2 && lx->p[1] == '/'))
                lx->p++;
            lx->p = lx->p < lx->end ? lx->p + 2 : lx->end;
        } else {
            return;
        }
    }
}

/* The next token: a directive (".u64", one dot each), an identifier, a number, or one
 * punctuation character. False at the end of the text (or its NUL). */
static bool next(struct lexer *lx, struct tok *t)
{
    skip_space(lx);
    if (lx->p >= lx->end || *lx->p == '\0')
        return false;
    const char *s = lx->p++;
    if (*s == '.' || is_ident(*s, true) || (*s >= '0' && *s <= '9')) {
        while (lx->p < lx->end && (is_ident(*lx->p, false)))
            lx->p++;
    }
    t->s = s;
    t->n = (size_t)(lx->p - s);
    return true;
}

static bool tok_is(const struct tok *t, const char *s)
{
    return t->n == strlen(s) && memcmp(t->s, s, t->n) == 0;
}

/* A decimal number token, 1..limit. */
static int tok_number(const struct tok *t, unsigned long limit, unsigned long *ret)
{
    unsigned long v = 0;
    if (t->n == 0 || t->n > 9)
        return -EINVAL;
    for (size_t i = 0; i < t->n; i++) {
        if (t->s[i] < '0' || t->s[i] > '9')
            return -EINVAL;
        v = v * 10 + (unsigned long)(t->s[i] - '0');
    }
    if (v == 0 || v > limit)
        return -EINVAL;
    *ret = v;
    return 0;
}

static unsigned type_size(const struct tok *t)
{
    static const struct {
        const char *name;
        unsigned size;
    } types[] = {
        {".b8", 1},  {".s8", 1},  {".u8", 1},    {".b16", 2},    {".s16", 2},
        {".u16", 2}, {".f16", 2}, {".bf16", 2},  {".b32", 4},    {".s32", 4},
        {".u32", 4}, {".f32", 4}, {".f16x2", 4}, {".bf16x2", 4}, {".b64", 8},
        {".s64", 8}, {".u64", 8}, {".f64", 8},   {".b128", 16},
    };
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
        if (tok_is(t, types[i].name))
            return types[i].size;
    return 0;
}

static bool is_state_space(const struct tok *t)
{
    return tok_is(t, ".global") || tok_is(t, ".const") || tok_is(t, ".local") ||
           tok_is(t, ".shared");
}

/* One declaration after `.param`, up to and including its ',' or ')'. *ret_end is set
 * at the ')'. */
static int parse_param(struct lexer *lx, unsigned *ret_align, unsigned *ret_size, bool *ret_end)
{
    unsigned long align = 0, count = 1, num;
    unsigned elsize = 0;
    bool ptr = false, named = false;
    struct tok t;

    while (next(lx, &t)) {
        if (tok_is(&t, ".align")) {
            if (!next(lx, &t) || tok_number(&t, 4096, &num) < 0 || (num & (num - 1)))
                return -EINVAL;
            if (!ptr) /* after .ptr, .align is the pointee's */
                align = num;
        } else if (tok_is(&t, ".ptr")) {
            ptr = true;
        } else if (t.s[0] == '.' && is_state_space(&t)) {
            if (!ptr)
                return -EINVAL;
        } else if (t.s[0] == '.') {
            if (elsize || !(elsize = type_size(&t)))
                return -EINVAL;
        } else if (is_ident(t.s[0], true) && !named) {
            named = true;
        } else if (tok_is(&t, "[") && named) {
            if (!next(lx, &t) || tok_number(&t, VR_MAX_KERNEL_ARG, &count) < 0 || !next(lx, &t) ||
                !tok_is(&t, "]"))
                return -EINVAL;
        } else if ((tok_is(&t, ",") || tok_is(&t, ")")) && named && elsize) {
            *ret_end = tok_is(&t, ")");
            *ret_align = align ? (unsigned)align : elsize;
            if (count * elsize > VR_MAX_KERNEL_ARG)
                return -E2BIG;
            *ret_size = (unsigned)(count * elsize);
            return 0;
        } else {
            return -EINVAL;
        }
    }
    return -EINVAL;
}

static int parse_params(struct lexer *lx, struct vr_param *params, unsigned max, unsigned *ret_n)
{
    struct lexer peek = *lx;
    struct tok t;
    unsigned n = 0;
    uint64_t off = 0;

    if (!next(&peek, &t) || !tok_is(&t, "(")) { /* `.entry name {`: no parameters */
        *ret_n = 0;
        return 0;
    }
    *lx = peek;
    peek = *lx;
    if (next(&peek, &t) && tok_is(&t, ")")) {
        *ret_n = 0;
        return 0;
    }
    for (bool end = false; !end;) {
        unsigned align, size;
        if (!next(lx, &t) || !tok_is(&t, ".param"))
            return -EINVAL;
        int r = parse_param(lx, &align, &size, &end);
        if (r < 0)
            return r;
        if (n == max)
            return -E2BIG;
        off = (off + align - 1) & ~(uint64_t)(align - 1);
        if (off + size > VR_MAX_KERNEL_ARG)
            return -E2BIG;
        params[n].offset = (uint32_t)off;
        params[n].size = size;
        off += size;
        n++;
    }
    *ret_n = n;
    return 0;
}

int ptx_entry_params(const char *ptx, size_t len, const char *name, struct vr_param *params,
                     unsigned max, unsigned *ret_n)
{
    struct lexer lx = {ptx, ptx + len};
    struct tok t;
    size_t name_len = strlen(name);

    while (next(&lx, &t)) {
        if (!tok_is(&t, ".entry"))
            continue;
        if (!next(&lx, &t))
            break;
        if (t.n == name_len && memcmp(t.s, name, name_len) == 0)
            return parse_params(&lx, params, max, ret_n);
    }
    return -ENOENT;
}

bool ptx_is_ptx(const void *image, size_t len)
{
    const char *s = image;
    const char *nul = memchr(s, '\0', len);
    size_t text = nul ? (size_t)(nul - s) : len;

    for (size_t i = text; i < len; i++)
        if (s[i] != '\0')
            return false;
    for (size_t i = 0; i + 8 <= text; i++)
        if (memcmp(s + i, ".version", 8) == 0)
            return true;
    return false;
}

size_t ptx_params_size(const struct vr_param *params, unsigned n)
{
    size_t end = 0;
    for (unsigned i = 0; i < n; i++)
        if ((size_t)params[i].offset + params[i].size > end)
            end = (size_t)params[i].offset + params[i].size;
    return end;
}
