/* hooks-text: reading the configuration text hooks live in — systemd words, shell
 * values, and whether a line of a script or environment file continues an earlier one. */
#include "hooks.h"

#include <stdlib.h>
#include <string.h>

/* The word [b, e) of a systemd line without its quotes and escapes. */
char *vp_systemd_unquote(const char *b, const char *e)
{
    char *out = vp_xmalloc((size_t)(e - b) + 1), *o = out;
    char quote = 0;
    for (const char *p = b; p < e; p++) {
        if (quote && *p == '\\' && p + 1 < e)
            *o++ = *++p;
        else if (quote && *p == quote)
            quote = 0;
        else if (!quote && (*p == '"' || *p == '\''))
            quote = *p;
        else
            *o++ = *p;
    }
    *o = '\0';
    return out;
}

size_t vp_systemd_word_end(const char *line, size_t i)
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

/* A shell value: up to an unquoted blank or shell operator, without its quotes; *ret_end
 * is where it ends in value. */
char *vp_shell_value(const char *value, const char **ret_end)
{
    const char *p = value;
    char quote = 0;
    for (; *p; p++) {
        if (quote) {
            if (*p == quote)
                quote = 0;
        } else if (*p == '"' || *p == '\'') {
            quote = *p;
        } else if (strchr(" \t;&|<>()`", *p)) {
            break;
        }
    }
    *ret_end = p;
    return vp_systemd_unquote(value, p);
}

/* The delimiter word of a here-document at p (after `<<` or `<<-`), unquoted. */
static char *heredoc_word(const char *p)
{
    p += strspn(p, " \t");
    char *w = vp_xmalloc(strlen(p) + 1), *o = w;
    for (; *p && !strchr(" \t;&|<>()", *p); p++)
        if (*p != '"' && *p != '\'' && *p != '\\')
            *o++ = *p;
    *o = '\0';
    if (!*w) {
        free(w);
        return NULL;
    }
    return w;
}

bool vp_line_state_next(struct vp_line_state *s, const char *line)
{
    bool continued = s->quote || s->backslash || s->heredoc;
    if (s->heredoc) {
        const char *l = s->heredoc_dash ? line + strspn(line, "\t") : line;
        size_t n = strlen(l) - (*l && l[strlen(l) - 1] == '\r');
        if (n == strlen(s->heredoc) && !strncmp(l, s->heredoc, n)) {
            free(s->heredoc);
            s->heredoc = NULL;
        }
        return continued;
    }
    bool open = s->quote || s->backslash;
    s->backslash = false;
    const char *b = line + strspn(line, " \t");
    if (!open && !s->shell && (*b == '#' || *b == ';'))
        return continued;
    char *pending = NULL;
    bool dash = false;
    for (const char *p = line; *p; p++) {
        if (s->quote == '\'') {
            if (*p == '\'')
                s->quote = 0;
            continue;
        }
        if (*p == '\\') {
            if (!p[1] || (p[1] == '\r' && !p[2])) {
                s->backslash = true;
                break;
            }
            p++;
            continue;
        }
        if (s->quote) {
            if (*p == '"')
                s->quote = 0;
            continue;
        }
        if (*p == '"' || *p == '\'') {
            s->quote = *p;
        } else if (s->shell && *p == '#' && (p == line || strchr(" \t;&|", p[-1]))) {
            break;
        } else if (s->shell && p[0] == '<' && p[1] == '<' && p[2] != '<' && !pending) {
            dash = p[2] == '-';
            pending = heredoc_word(p + 2 + dash);
            p += 1 + dash;
        }
    }
    if (pending) {
        s->heredoc = pending;
        s->heredoc_dash = dash;
    }
    return continued;
}

void vp_line_state_release(struct vp_line_state *s)
{
    free(s->heredoc);
    *s = (struct vp_line_state){.shell = s->shell};
}
