/*
 * dummy_common.c: helpers shared by the dummy CUDA driver and the dummy NVML
 * library (see dummy_common.h). Nothing here is exported.
 */
#include "dummy_common.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- entry-point table ------------------------------------------------ */

int dummy_api_find(const struct dummy_api *api, const char *name)
{
    if (!name)
        return -1;
    for (size_t i = 0; i < api->count; i++) {
        if (strcmp(api->names[i], name) == 0)
            return (int)i;
    }
    return -1;
}

int dummy_api_enter(const struct dummy_api *api, int idx)
{
    atomic_fetch_add_explicit(&api->calls[idx], 1, memory_order_relaxed);
    return api->fail[idx];
}

unsigned long dummy_api_calls(const struct dummy_api *api, const char *name)
{
    if (!name) {
        unsigned long total = 0;
        for (size_t i = 0; i < api->count; i++)
            total += atomic_load(&api->calls[i]);
        return total;
    }
    int idx = dummy_api_find(api, name);
    return idx < 0 ? 0 : atomic_load(&api->calls[idx]);
}

void dummy_api_reset_calls(const struct dummy_api *api)
{
    for (size_t i = 0; i < api->count; i++)
        atomic_store(&api->calls[i], 0);
}

void dummy_api_parse_fail(const struct dummy_api *api, const char *var)
{
    for (size_t i = 0; i < api->count; i++)
        api->fail[i] = DUMMY_NO_FAIL;

    const char *spec = getenv(var);
    if (!spec || !*spec)
        return;
    char *copy = strdup(spec);
    if (!copy)
        return;
    char *save = NULL;
    for (char *item = strtok_r(copy, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(item, '=');
        char *end = NULL;
        long code = 0;
        if (eq) {
            *eq = '\0';
            errno = 0;
            code = strtol(eq + 1, &end, 0);
        }
        int idx = dummy_api_find(api, item);
        if (!eq || end == eq + 1 || *end || errno || code < 0 || code > 0xffff || idx < 0) {
            fprintf(stderr, "%s: %s: ignoring '%s'\n", api->lib, var, item);
            continue;
        }
        api->fail[idx] = (int)code;
    }
    free(copy);
}

/* ---- environment knobs ------------------------------------------------- */

/* Accepts decimal, 0x hex, and a binary K/M/G/T suffix ("16G"). */
unsigned long long dummy_env_ull(const char *var, unsigned long long def)
{
    const char *s = getenv(var);
    if (!s || !*s)
        return def;

    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 0);
    static const char suffixes[] = "KMGT";
    const char *suffix = *end ? strchr(suffixes, *end) : NULL;
    if (suffix && end[1] == '\0') {
        unsigned shift = 10 * (unsigned)(suffix - suffixes + 1);
        if (v > (~0ULL >> shift))
            errno = ERANGE;
        v <<= shift;
        end++;
    }
    if (end == s || *end || errno || *s == '-') {
        fprintf(stderr, "dummy: %s: bad number '%s', using %llu\n", var, s, def);
        return def;
    }
    return v;
}

const char *dummy_env_str(const char *var, const char *def)
{
    const char *s = getenv(var);
    return s ? s : def;
}

bool dummy_env_flag(const char *var)
{
    const char *s = getenv(var);
    return s && *s && strcmp(s, "0") != 0;
}

void dummy_env_cc(const char *var, int *major, int *minor)
{
    const char *s = getenv(var);
    int ma = 0, mi = 0;
    char tail = 0;
    if (!s || !*s)
        return;
    if (sscanf(s, "%d.%d%c", &ma, &mi, &tail) != 2 || ma < 0 || mi < 0) {
        fprintf(stderr, "dummy: %s: bad compute capability '%s', using %d.%d\n", var, s, *major,
                *minor);
        return;
    }
    *major = ma;
    *minor = mi;
}

bool dummy_list_contains(const char *list, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = list; p && *p;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (len == n && strncmp(p, name, n) == 0)
            return true;
        p = comma ? comma + 1 : NULL;
    }
    return false;
}

void dummy_uuid(unsigned index, unsigned char out[16])
{
    memcpy(out, "DUMMYGPU", 8);
    for (int i = 0; i < 8; i++)
        out[8 + i] = (unsigned char)((uint64_t)index >> (8 * (7 - i)));
}

/* ---- record table ------------------------------------------------------ */

bool dummy_table_add(struct dummy_table *t, struct dummy_rec rec)
{
    if (t->len == t->cap) {
        size_t cap = t->cap ? 2 * t->cap : 64;
        struct dummy_rec *recs = realloc(t->recs, cap * sizeof *recs);
        if (!recs)
            return false;
        t->recs = recs;
        t->cap = cap;
    }
    t->recs[t->len++] = rec;
    return true;
}

struct dummy_rec *dummy_table_find(struct dummy_table *t, int kind, uint64_t key)
{
    for (size_t i = 0; i < t->len; i++) {
        if (t->recs[i].kind == kind && t->recs[i].key == key)
            return &t->recs[i];
    }
    return NULL;
}

struct dummy_rec *dummy_table_find_range(struct dummy_table *t, int kind, uint64_t addr,
                                         uint64_t size)
{
    for (size_t i = 0; i < t->len; i++) {
        const struct dummy_rec *r = &t->recs[i];
        if (r->kind == kind && addr >= r->key && addr - r->key <= r->size &&
            size <= r->size - (addr - r->key))
            return &t->recs[i];
    }
    return NULL;
}

void dummy_table_remove(struct dummy_table *t, struct dummy_rec *rec)
{
    *rec = t->recs[--t->len];
}
