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

/* The end of a systemd word starting at i: blanks separate words, quotes group. */
static size_t word_end(const char *line, size_t i)
{
    char quote = 0;
    for (; line[i]; i++) {
        if (quote) {
            if (line[i] == '\\' && line[i + 1])
                i++;
            else if (line[i] == quote)
                quote = 0;
        } else if (line[i] == '"' || line[i] == '\'') {
            quote = line[i];
        } else if (line[i] == ' ' || line[i] == '\t') {
            break;
        }
    }
    return i;
}

/* Environment=A=1 "VAR=x y" B=2: the word assigning VAR goes. *ret_empty: no assignment
 * is left on the line. */
static int drop_assignment(char *line, const char *var, bool *ret_empty)
{
    static const char key[] = "Environment=";
    size_t v = strspn(line, " \t");
    if (strncmp(line + v, key, strlen(key)) != 0)
        return -ESTALE;
    v += strlen(key);
    size_t vlen = strlen(var), end = strlen(line);
    for (size_t i = v + strspn(line + v, " \t"); i < end; i += strspn(line + i, " \t")) {
        size_t e = word_end(line, i);
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

static bool blank(const char *s)
{
    return s[strspn(s, " \t\r")] == '\0';
}

/* Applies the drops of one line (a NUL-terminated copy); *ret_gone: the line goes. */
static int drop_in_line(char *line, unsigned lineno, const struct vp_drop *drops, size_t n,
                        bool *ret_gone)
{
    bool gone = false;
    for (size_t i = 0; i < n; i++) {
        if (drops[i].line != lineno)
            continue;
        int r = 0;
        bool empty = false;
        switch (drops[i].how) {
        case VP_DROP_LINE:
            gone = true;
            break;
        case VP_DROP_PRELOAD_WORD:
            r = drop_preload_word(line, drops[i].word);
            break;
        case VP_DROP_ASSIGNMENT:
            r = drop_assignment(line, drops[i].word, &empty);
            gone |= empty;
            break;
        }
        if (r < 0)
            return r;
    }
    *ret_gone = gone || blank(line);
    return 0;
}

int vp_text_drop(const char *text, size_t len, const struct vp_drop *drops, size_t n,
                 char **ret, size_t *ret_len)
{
    for (size_t i = 0; i < n; i++)
        if (drops[i].how != VP_DROP_LINE && !drops[i].word)
            return -EINVAL;
    char *out = vp_xmalloc(len + 1);
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
        if (strlen(line) != llen || drop_in_line(line, lineno, drops, n, &gone) < 0) {
            matched_all = false;
            break;
        }
        if (!gone) {
            size_t l = strlen(line);
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

bool vp_text_sets_nothing(const char *text, size_t len)
{
    for (size_t pos = 0; pos < len;) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t llen = nl ? (size_t)(nl - (text + pos)) : len - pos;
        const char *s = text + pos;
        size_t i = 0;
        while (i < llen && strchr(" \t\r", s[i]))
            i++;
        bool nothing = i == llen || s[i] == '#' || s[i] == ';' ||
                       (s[i] == '[' && memchr(s + i, ']', llen - i));
        if (!nothing)
            return false;
        pos += llen + (nl != NULL);
    }
    return true;
}
