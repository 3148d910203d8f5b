/* Replays inputs through a fuzz target without libFuzzer, for CTest and gcc builds:
 *   replay-NAME [--mutate] [--max-size BYTES] [--grid N] [--tail N] [--corruptions N] PATH...
 * Every regular file under each PATH (directories recursively, symlinks not followed) is fed
 * as it is. With --mutate, each one is also fed
 *   - truncated to every length on a grid of ~N steps (256) and to each of its last N (64)
 *     lengths;
 *   - with N (300) deterministic corruptions (bytes, 16/32/64-bit words set to edge values or
 *     flipped, dynamic entries retagged), most of them in the ELF header, the program headers,
 *     the dynamic section and its string table when the input is an ELF file the model can
 *     read, else in its first 4 KiB.
 * A crash or sanitizer report fails the run; the last line names the input and mutation. */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>

#include "elfmodel.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct region {
    uint64_t off, len;
    bool dynamic; /* an array of Elf64_Dyn: entries get retagged too */
};

static struct {
    bool mutate;
    uint64_t max_size;
    size_t grid, tail, corruptions;
    size_t files, execs;
    const char *current;
} opt = {.max_size = 4u << 20, .grid = 256, .tail = 64, .corruptions = 300};

/* The input being replayed, for a crash report from a signal or sanitizer abort. */
static char last_what[1024];

static void feed(const uint8_t *data, size_t size, const char *what)
{
    snprintf(last_what, sizeof(last_what), "%s", what);
    /* An exact-size copy: a sanitizer then catches any read past the input. */
    uint8_t *copy = vp_xmalloc(size);
    if (size)
        memcpy(copy, data, size);
    LLVMFuzzerTestOneInput(copy, size);
    free(copy);
    opt.execs++;
}

static uint64_t next_rand(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 0x100000001b3ULL;
    return h ? h : 1;
}

/* Where corruptions go: the ELF header, program headers and dynamic section when the seed is
 * an ELF file vp_elf_open models, else the first 4 KiB. */
static size_t regions_of(const char *path, uint64_t size, struct region r[4])
{
    size_t n = 0;
    struct vp_elf *e = NULL;
    if (vp_elf_open(path, &e) == 0) {
        r[n++] = (struct region){0, sizeof(Elf64_Ehdr)};
        r[n++] = (struct region){e->ehdr.e_phoff, e->phnum * sizeof(Elf64_Phdr)};
        if (e->has_dynamic)
            r[n++] = (struct region){e->dyn_off, e->dyn_slots * sizeof(Elf64_Dyn), true};
        if (e->strsz)
            r[n++] = (struct region){e->strtab_off, e->strsz};
        vp_elf_free(e);
    } else {
        r[n++] = (struct region){0, size < 4096 ? size : 4096};
    }
    return n;
}

static void corrupt(uint8_t *buf, uint64_t size, const struct region *r, size_t nr, uint64_t *seed,
                    char *what, size_t wlen, int i)
{
    static const uint64_t edges[] = {0,
                                     1,
                                     0x7f,
                                     0x80,
                                     0xff,
                                     0x7fff,
                                     0xffff,
                                     0x7fffffff,
                                     0x80000000,
                                     0xffffffff,
                                     0x7fffffffffffffffULL,
                                     0x8000000000000000ULL,
                                     UINT64_MAX};
    uint64_t pick = next_rand(seed);
    /* Nine in ten inside a region, the rest anywhere. */
    struct region g = pick % 10 ? r[(pick >> 8) % nr] : (struct region){0, size};
    if (g.off >= size)
        g = (struct region){0, size};
    if (g.len > size - g.off)
        g.len = size - g.off;
    if (!g.len)
        return;
    if (g.dynamic && g.len >= sizeof(Elf64_Dyn) && next_rand(seed) % 2) {
        /* Retag an entry: duplicates and strays of the tags the model reads. */
        static const int64_t tags[] = {DT_NULL,    DT_NEEDED,     DT_STRTAB, DT_SYMTAB,
                                       DT_STRSZ,   DT_SONAME,     DT_RPATH,  DT_RUNPATH,
                                       DT_HASH,    DT_FLAGS,      DT_INIT,   DT_GNU_HASH,
                                       DT_VERNEED, DT_VERNEEDNUM, DT_FLAGS_1};
        uint64_t at = g.off + next_rand(seed) % (g.len / sizeof(Elf64_Dyn)) * sizeof(Elf64_Dyn);
        int64_t tag = tags[next_rand(seed) % VP_ARRAY_SIZE(tags)];
        memcpy(buf + at, &tag, sizeof(tag));
        snprintf(what, wlen, "%s: corruption %d: dynamic entry at %#llx retagged %lld", opt.current,
                 i, (unsigned long long)at, (long long)tag);
        return;
    }
    uint64_t at = g.off + next_rand(seed) % g.len;
    unsigned width = 1u << (next_rand(seed) % 4); /* 1, 2, 4, 8 bytes */
    if (at + width > size)
        width = 1;
    uint64_t kind = next_rand(seed) % 4, v;
    if (kind == 0) { /* flip one bit */
        buf[at] ^= (uint8_t)(1u << (next_rand(seed) % 8));
        snprintf(what, wlen, "%s: corruption %d: bit flip at %#llx", opt.current, i,
                 (unsigned long long)at);
        return;
    }
    v = kind == 1   ? edges[next_rand(seed) % VP_ARRAY_SIZE(edges)]
        : kind == 2 ? size + (next_rand(seed) % 16) - 8 /* around the file size */
                    : next_rand(seed);
    memcpy(buf + at, &v, width);
    snprintf(what, wlen, "%s: corruption %d: %u bytes at %#llx = %#llx", opt.current, i, width,
             (unsigned long long)at, (unsigned long long)v);
}

static void replay_file(const char *path)
{
    _cleanup_(freep) char *data = NULL;
    size_t size = 0;
    if (vp_read_file(path, opt.max_size, &data, &size) < 0)
        return; /* unreadable or over --max-size: not an input */
    opt.current = path;
    opt.files++;
    char what[512];
    snprintf(what, sizeof(what), "%s: as is", path);
    feed((const uint8_t *)data, size, what);
    if (!opt.mutate || !size)
        return;
    size_t step = opt.grid && size / opt.grid ? size / opt.grid : 1;
    for (size_t len = 0; opt.grid && len < size; len += step) {
        snprintf(what, sizeof(what), "%s: truncated to %zu", path, len);
        feed((const uint8_t *)data, len, what);
    }
    for (size_t k = 1; k <= opt.tail && k <= size; k++) {
        snprintf(what, sizeof(what), "%s: truncated to %zu", path, size - k);
        feed((const uint8_t *)data, size - k, what);
    }
    struct region r[4];
    size_t nr = regions_of(path, size, r);
    uint64_t seed = fnv1a(vp_basename(path));
    uint8_t *buf = vp_xmalloc(size);
    for (int i = 0; i < (int)opt.corruptions; i++) {
        memcpy(buf, data, size);
        int n = 1 + (int)(next_rand(&seed) % 3); /* one to three corruptions at once */
        for (int k = 0; k < n; k++)
            corrupt(buf, size, r, nr, &seed, what, sizeof(what), i);
        feed(buf, size, what);
    }
    free(buf);
}

static void replay_path(const char *path)
{
    struct stat st;
    if (lstat(path, &st) < 0) {
        fprintf(stderr, "replay: %s: %s (skipped)\n", path, strerror(errno));
        return;
    }
    if (S_ISREG(st.st_mode)) {
        replay_file(path);
        return;
    }
    if (!S_ISDIR(st.st_mode))
        return;
    struct dirent **names;
    int n = scandir(path, &names, NULL, alphasort); /* sorted: a deterministic order */
    for (int i = 0; i < n; i++) {
        if (strcmp(names[i]->d_name, ".") != 0 && strcmp(names[i]->d_name, "..") != 0) {
            _cleanup_(freep) char *sub = vp_path_join(path, names[i]->d_name);
            replay_path(sub);
        }
        free(names[i]);
    }
    free(names);
}

/* Names the input that killed the run: from a signal, or from a sanitizer's death callback
 * (sanitizers end the process with _exit, past atexit handlers). */
static void on_fatal(void)
{
    static const char head[] = "replay: crashing input: ";
    if (!last_what[0])
        return;
    if (write(2, head, sizeof(head) - 1) < 0 || write(2, last_what, strlen(last_what)) < 0 ||
        write(2, "\n", 1) < 0)
        return;
}

static void on_signal(int sig)
{
    on_fatal();
    signal(sig, SIG_DFL);
    raise(sig);
}

void __sanitizer_set_death_callback(void (*cb)(void)) __attribute__((weak));

/* UBSan keeps its own death callbacks in gcc builds: make it abort, so on_signal reports. */
const char *__ubsan_default_options(void);
const char *__ubsan_default_options(void)
{
    return "print_stacktrace=1:abort_on_error=1";
}

int main(int argc, char **argv)
{
    /* ASan handles SIGSEGV itself and then calls the death callback. */
    static const int sigs[] = {SIGABRT, SIGBUS, SIGILL, SIGFPE, SIGSEGV};
    bool asan = __sanitizer_set_death_callback != NULL;
    for (size_t k = 0; k < VP_ARRAY_SIZE(sigs) - asan; k++)
        signal(sigs[k], on_signal);
    if (asan)
        __sanitizer_set_death_callback(on_fatal);
    int i = 1;
    for (; i < argc && vp_startswith(argv[i], "--"); i++) {
        if (strcmp(argv[i], "--mutate") == 0) {
            opt.mutate = true;
        } else if (strcmp(argv[i], "--max-size") == 0 && i + 1 < argc) {
            opt.max_size = strtoull(argv[++i], NULL, 0);
        } else if (strcmp(argv[i], "--grid") == 0 && i + 1 < argc) {
            opt.grid = strtoull(argv[++i], NULL, 0);
        } else if (strcmp(argv[i], "--tail") == 0 && i + 1 < argc) {
            opt.tail = strtoull(argv[++i], NULL, 0);
        } else if (strcmp(argv[i], "--corruptions") == 0 && i + 1 < argc) {
            opt.corruptions = strtoull(argv[++i], NULL, 0);
        } else {
            fprintf(stderr,
                    "usage: %s [--mutate] [--max-size BYTES] [--grid N] [--tail N] "
                    "[--corruptions N] PATH...\n",
                    argv[0]);
            return 2;
        }
    }
    for (; i < argc; i++)
        replay_path(argv[i]);
    last_what[0] = '\0';
    if (!opt.files) {
        fprintf(stderr, "replay: no input files\n");
        return 1;
    }
    printf("replay: %zu files, %zu executions, no crash\n", opt.files, opt.execs);
    return 0;
}
