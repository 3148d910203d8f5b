/* common: options, messages and printing shared by the subcommands. */
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <string.h>

int cli_fail(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("vgpu-patch: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return code;
}

bool cli_common_opt(struct vp_common *c, int opt, const char *arg)
{
    switch (opt) {
    case CLI_OPT_ROOT:
        c->root = arg;
        return true;
    case CLI_OPT_STATE_DIR:
        c->state_dir = arg;
        return true;
    case CLI_OPT_JSON:
        c->json = true;
        return true;
    default:
        return false;
    }
}

int cli_common_finish(struct vp_common *c)
{
    if (!c->root)
        c->root = "/";
    if (!c->state_dir)
        c->state_dir = VP_DEFAULT_STATE_DIR;
    if (c->root[0] != '/')
        return cli_fail(VP_EXIT_USAGE, "--root must be an absolute path (got %s)", c->root);
    if (c->state_dir[0] != '/')
        return cli_fail(VP_EXIT_USAGE, "--state-dir must be an absolute path (got %s)",
                        c->state_dir);
    c->root_norm = vp_path_normalize(c->root); /* "/x/" and "/x" name the same root */
    c->root = c->root_norm;
    c->state_ondisk = vp_rooted(c->root, c->state_dir);
    return 0;
}

void cli_common_release(struct vp_common *c)
{
    free(c->state_ondisk);
    free(c->root_norm);
    c->state_ondisk = c->root_norm = NULL;
}

void cli_json_begin(struct vp_json *j, const char *command)
{
    vp_json_init(j, stdout);
    vp_json_begin_object(j, NULL);
    vp_json_int(j, "schema", 1);
    vp_json_string(j, "command", command);
}

void cli_json_strv(struct vp_json *j, const char *key, const struct vp_strv *sv)
{
    vp_json_begin_array(j, key);
    for (size_t i = 0; i < sv->n; i++)
        vp_json_string(j, NULL, sv->v[i]);
    vp_json_end_array(j);
}

void cli_json_hook_fields(struct vp_json *j, const struct vp_hook *k)
{
    vp_json_string(j, "kind", vp_hook_kind_name(k->kind));
    vp_json_string(j, "file", k->file);
    if (k->line)
        vp_json_int(j, "line", k->line);
    vp_json_string(j, "what", k->what);
    vp_json_string(j, "why", k->why);
}

void cli_json_hooks(struct vp_json *j, const struct vp_hooks *h)
{
    vp_json_begin_array(j, "hooks");
    for (size_t i = 0; i < h->n; i++) {
        vp_json_begin_object(j, NULL);
        cli_json_hook_fields(j, &h->v[i]);
        vp_json_end_object(j);
    }
    vp_json_end_array(j);
}

void cli_json_checks(struct vp_json *j, const struct vp_verify *v)
{
    vp_json_begin_object(j, "verification");
    vp_json_bool(j, "ok", v->ok);
    vp_json_begin_array(j, "checks");
    for (size_t i = 0; i < v->n; i++) {
        const struct vp_check *c = &v->v[i];
        vp_json_begin_object(j, NULL);
        vp_json_string(j, "process", c->process);
        vp_json_string(j, "path", c->subject);
        vp_json_string(j, "check", c->kind);
        vp_json_bool(j, "ok", c->ok);
        vp_json_begin_object(j, "answered");
        vp_json_string(j, VP_SONAME_CUDA, c->cuda);
        vp_json_string(j, VP_SONAME_NVML, c->nvml);
        vp_json_end_object(j);
        if (c->message)
            vp_json_string(j, "message", c->message);
        vp_json_end_object(j);
    }
    vp_json_end_array(j);
    vp_json_end_object(j);
}

const struct vp_check *cli_answer_for(const struct vp_verify *v, const char *path)
{
    static const char *const order[] = {"exec-probe", "load-probe", "link", "ld.so-list"};
    for (size_t k = 0; k < VP_ARRAY_SIZE(order); k++)
        for (size_t i = 0; i < v->n; i++)
            if (!strcmp(v->v[i].subject, path) && !strcmp(v->v[i].kind, order[k]) &&
                (v->v[i].cuda || v->v[i].nvml))
                return &v->v[i];
    return NULL;
}

void cli_print_hook(const struct vp_hook *k, const char *action)
{
    if (action)
        printf("  %-20s", action);
    if (k->line)
        printf("%s%s:%u: %s\n", action ? " " : "  ", k->file, k->line, k->what);
    else
        printf("%s%s: %s\n", action ? " " : "  ", k->file, k->what);
    printf("      why it matters: %s\n", k->why);
}

void cli_print_hooks(const struct vp_hooks *h)
{
    for (size_t i = 0; i < h->n; i++)
        cli_print_hook(&h->v[i], NULL);
}

void cli_print_checks(const struct vp_verify *v)
{
    for (size_t i = 0; i < v->n; i++) {
        const struct vp_check *c = &v->v[i];
        printf("  %-4s %-13s %-11s %s\n", c->ok ? "ok" : "FAIL", c->process, c->kind, c->subject);
        if (c->cuda || c->nvml)
            printf("         libcuda.so.1 -> %s, libnvidia-ml.so.1 -> %s\n",
                   c->cuda ? c->cuda : "(not loaded)", c->nvml ? c->nvml : "(not loaded)");
        if (c->message)
            printf("         %s\n", c->message);
    }
}

void cli_print_notes(const struct vp_strv *notes)
{
    for (size_t i = 0; i < notes->n; i++)
        printf("note: %s\n", notes->v[i]);
}

char *cli_human_bytes(uint64_t n)
{
    if (n >= 10u << 20)
        return vp_xasprintf("%.1f MiB", (double)n / (1 << 20));
    if (n >= 10u << 10)
        return vp_xasprintf("%.1f KiB", (double)n / (1 << 10));
    return vp_xasprintf("%llu bytes", (unsigned long long)n);
}

int cli_parse(int argc, char **argv, const char *cmd, const char *help, struct vp_common *c,
              const struct cli_flag *flags)
{
    struct option longopts[16] = {CLI_COMMON_LONGOPTS};
    size_t n = 4, nflags = 0;
    for (; flags && flags[nflags].name && n < VP_ARRAY_SIZE(longopts) - 1; nflags++)
        longopts[n++] = (struct option){flags[nflags].name,
                                        flags[nflags].value ? required_argument : no_argument, NULL,
                                        CLI_OPT_FLAG + (int)nflags};
    int opt;
    while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        if (cli_common_opt(c, opt, optarg))
            continue;
        if (opt >= CLI_OPT_FLAG && opt < CLI_OPT_FLAG + (int)nflags) {
            const struct cli_flag *f = &flags[opt - CLI_OPT_FLAG];
            if (f->value)
                *f->value = optarg;
            else
                *f->set = true;
            continue;
        }
        if (opt == 'h') {
            fputs(help, stdout);
            return VP_EXIT_OK;
        }
        fputs(help, stderr);
        return VP_EXIT_USAGE;
    }
    if (optind != argc)
        return cli_fail(VP_EXIT_USAGE, "%s: unexpected argument '%s'", cmd, argv[optind]);
    int code = cli_common_finish(c);
    return code ? code : -1;
}

int cli_load_manifest(const struct vp_common *c, struct vp_manifest *ret, bool *ret_interrupted)
{
    struct vp_state st;
    *ret = (struct vp_manifest){0};
    if (ret_interrupted)
        *ret_interrupted = false;
    int r = vp_state_open(c->state_ondisk, 0, 0, &st);
    if (r == -ENOENT)
        return 0; /* nothing was ever patched with this state dir */
    if (r < 0)
        return r;
    if (ret_interrupted)
        *ret_interrupted = vp_state_interrupted(&st);
    r = vp_manifest_load(st.dir, ret);
    vp_state_close(&st);
    return r;
}

static void merge_hooks(struct vp_hooks *into, struct vp_hooks *h)
{
    for (size_t k = 0; k < h->n; k++) {
        bool dup = false; /* the system-wide ones come once per install */
        for (size_t q = 0; q < into->n && !dup; q++)
            dup = !strcmp(into->v[q].file, h->v[k].file) && into->v[q].line == h->v[k].line &&
                  !strcmp(into->v[q].what, h->v[k].what);
        if (dup)
            continue;
        into->v = vp_xrealloc(into->v, (into->n + 1) * sizeof(*into->v));
        into->v[into->n++] = h->v[k];
        h->v[k] = (struct vp_hook){0};
    }
    vp_hooks_release(h);
}

void cli_scan_hooks_with(const struct vp_common *c, const struct vp_manifest *m, const char *prefix,
                         const char *shim_dir, struct vp_hooks *ret)
{
    struct vp_strv owned = {0};
    *ret = (struct vp_hooks){0};
    for (size_t i = 0; i < m->n; i++)
        for (size_t k = 0; k < m->installs[i].n; k++)
            if (m->installs[i].entries[k].kind != VP_ENTRY_UNIT)
                vp_strv_push(&owned, m->installs[i].entries[k].path);
    bool known = false;
    for (size_t i = 0; i < m->n || (i == 0 && !m->n && !prefix); i++) {
        struct vp_hooks h;
        vp_hooks_scan(c->root, m->n ? m->installs[i].prefix : NULL, &owned,
                      m->n ? m->installs[i].shim_dir : NULL, &h);
        known |= m->n && prefix && !strcmp(m->installs[i].prefix, prefix);
        merge_hooks(ret, &h);
    }
    if (prefix && !known) {
        struct vp_hooks h;
        vp_hooks_scan(c->root, prefix, &owned, shim_dir, &h);
        merge_hooks(ret, &h);
    }
    vp_strv_release(&owned);
}

void cli_scan_hooks(const struct vp_common *c, const struct vp_manifest *m, struct vp_hooks *ret)
{
    cli_scan_hooks_with(c, m, NULL, NULL, ret);
}
