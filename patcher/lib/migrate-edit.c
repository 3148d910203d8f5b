/* migrate-edit: the byte-exact removal of hook words and lines from text files. */
#include "migrate.h"

#include <errno.h>
#include <string.h>

/* Removes [s, e) from a NUL-terminated line in place. */
static void cut(char *line, size_t s, size_t e)
{
    memmove(line + s, line + e, strlen(line + e) + 1);
}

/* Removes the word [s, e) of a line with what separates it from its neighbours: the
 * separators after it, or, for the last word before `end`, those before it. */
static void cut_word(char *line, size_t s, size_t e, size_t end, const char *seps)
{
    size_t after = e + strspn(line + e, seps);
    if (after > end)
        after = end;
    if (after > e && after < end) {
        cut(line, s, after);
        return;
    }
    size_t before = s;
    while (before > 0 && strchr(seps, line[before - 1]))
        before--;
    cut(line, before, e);
}

/* ld.so.preload: entries separated by blanks and ':', '#' to the end is a comment. */
static int drop_preload_word(char *line, const char *word)
{
    static const char seps[] = " \t:";
    size_t end = strcspn(line, "#");
    for (size_t i = strspn(line, seps); i < end; i += strspn(line + i, seps)) {
        size_t n = strcspn(line + i, seps);
        if (i + n > end)
            n = end - i;
        if (n == strlen(word) && !strncmp(line + i, word, n)) {
            cut_word(line, i, i + n, end, seps);
            return 0;
        }
        i += n;
    }
    return -ESTALE;
}

/* Environment=A=1 "VAR=x y" B=2 (blanks around '=' allowed): the word assigning VAR goes.
 * Words are split as the scan splits them (vp_systemd_word_end). *ret_empty: no
 * assignment is left on the line. */
static int drop_assignment(char *line, const char *var, bool *ret_empty)
{
    static const char key[] = "Environment";
    size_t v = strspn(line, " \t");
    if (strncmp(line + v, key, strlen(key)) != 0)
        return -ESTALE;
    v += strlen(key);
    v += strspn(line + v, " \t");
    if (line[v++] != '=')
        return -ESTALE;
    size_t vlen = strlen(var), end = strlen(line);
    for (size_t i = v + strspn(line + v, " \t"); i < end; i += strspn(line + i, " \t")) {
        size_t e = vp_systemd_word_end(line, i);
        size_t u = i + (line[i] == '"' || line[i] == '\'');
        if (!strncmp(line + u, var, vlen) && line[u + vlen] == '=') {
            cut_word(line, i, e, end, " \t");
            *ret_empty = line[v + strspn(line + v, " \t")] == '\0';
            return 0;
        }
        i = e;
    }
    return -ESTALE;
}

/* A script's line becomes a no-op with its indentation kept: `if ...; then` keeps a
 * body, and the line numbers stay. */
static char *shell_noop(const char *line)
{
    return vp_xasprintf("%.*s%s", (int)strspn(line, " \t"), line, VP_SHELL_NOOP);
}

static bool blank(const char *s)
{
    return s[strspn(s, " \t\r")] == '\0';
}

static bool is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r';
}

/* Applies the drops of one line (a NUL-terminated copy, which *line may replace);
 * *ret_gone: the line goes. */
static int drop_in_line(char **line, unsigned lineno, const struct vp_drop *drops, size_t n,
                        bool *ret_gone)
{
    bool gone = false, noop = false;
    for (size_t i = 0; i < n; i++) {
        if (drops[i].line != lineno)
            continue;
        int r = 0;
        bool empty = false;
        switch (drops[i].how) {
        case VP_DROP_LINE:
            gone = true;
            break;
        case VP_DROP_SHELL_LINE:
            noop = true;
            break;
        case VP_DROP_PRELOAD_WORD:
            r = drop_preload_word(*line, drops[i].word);
            break;
        case VP_DROP_ASSIGNMENT:
            r = drop_assignment(*line, drops[i].word, &empty);
            gone |= empty;
            break;
        }
        if (r < 0)
            return r;
    }
    if (noop) {
        char *l = shell_noop(*line);
        free(*line);
        *line = l;
        *ret_gone = false;
        return 0;
    }
    *ret_gone = gone || blank(*line);
    return 0;
}

int vp_text_drop(const char *text, size_t len, const struct vp_drop *drops, size_t n, char **ret,
                 size_t *ret_len)
{
    for (size_t i = 0; i < n; i++)
        if (drops[i].how != VP_DROP_LINE && drops[i].how != VP_DROP_SHELL_LINE && !drops[i].word)
            return -EINVAL;
    size_t cap = len + 1;
    char *out = vp_xmalloc(cap);
    size_t o = 0;
    unsigned lineno = 0;
    bool matched_all = true;
    for (size_t pos = 0; pos < len;) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t llen = nl ? (size_t)(nl - (text + pos)) : len - pos;
        size_t full = llen + (nl != NULL);
        lineno++;
        bool touched = false;
        for (size_t i = 0; i < n && !touched; i++)
            touched = drops[i].line == lineno;
        if (!touched) {
            memcpy(out + o, text + pos, full);
            o += full;
            pos += full;
            continue;
        }
        _cleanup_(freep) char *line = vp_xstrndup(text + pos, llen);
        bool gone;
        if (strlen(line) != llen || drop_in_line(&line, lineno, drops, n, &gone) < 0) {
            matched_all = false;
            break;
        }
        if (!gone) {
            size_t l = strlen(line);
            size_t need = o + l + 1 + (len - pos - full) + 1; /* the rest, unchanged */
            if (need > cap)
                out = vp_xrealloc(out, cap = need);
            memcpy(out + o, line, l);
            o += l;
            if (nl)
                out[o++] = '\n';
        }
        pos += full;
    }
    for (size_t i = 0; i < n; i++)
        matched_all &= drops[i].line >= 1 && drops[i].line <= lineno;
    if (!matched_all) {
        free(out);
        return -ESTALE;
    }
    out[o] = '\0';
    *ret = out;
    *ret_len = o;
    return 0;
}

bool vp_text_sets_nothing(const char *text, size_t len, bool unit)
{
    for (size_t pos = 0; pos < len;) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t llen = nl ? (size_t)(nl - (text + pos)) : len - pos;
        const char *s = text + pos;
        size_t i = 0;
        while (i < llen && is_blank(s[i]))
            i++;
        size_t noop = strlen(VP_SHELL_NOOP);
        bool nothing = i == llen || s[i] == '#' ||
                       (unit && (s[i] == ';' || (s[i] == '[' && memchr(s + i, ']', llen - i)))) ||
                       (!unit && llen - i >= noop && !memcmp(s + i, VP_SHELL_NOOP, noop));
        if (!nothing)
            return false;
        pos += llen + (nl != NULL);
    }
    return true;
}
