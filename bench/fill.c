/* vgpu-bench-fill: overwrites the bytes of named sections of an ELF64 file with
 * pseudo-random (incompressible) data, so a linked placeholder becomes a realistic
 * stand-in for device code, kernels' host code or Go tables. Headers, tables and code
 * outside those sections are left as the linker wrote them. */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CHUNK (4u << 20)

/* xoshiro256** seeded through splitmix64: fast, and its output does not compress. */
struct prng {
    uint64_t s[4];
};

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void prng_init(struct prng *p, uint64_t seed)
{
    for (size_t i = 0; i < 4; i++)
        p->s[i] = splitmix64(&seed);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static uint64_t prng_next(struct prng *p)
{
    uint64_t *s = p->s, r = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return r;
}

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 0x100000001b3ull;
    return h;
}

static int fail(const char *file, const char *what)
{
    fprintf(stderr, "vgpu-bench-fill: %s: %s\n", file, what);
    return 1;
}

/* Reads exactly len bytes at off; false on a short read or error. */
static bool read_at(int fd, void *buf, size_t len, uint64_t off)
{
    ssize_t n = pread(fd, buf, len, (off_t)off);
    return n >= 0 && (size_t)n == len;
}

static int fill_range(int fd, uint64_t off, uint64_t len, uint64_t seed, uint64_t *buf)
{
    struct prng p;
    prng_init(&p, seed);
    while (len > 0) {
        size_t n = len < CHUNK ? (size_t)len : CHUNK;
        for (size_t i = 0; i < (n + 7) / 8; i++)
            buf[i] = prng_next(&p);
        ssize_t w = pwrite(fd, buf, n, (off_t)off);
        if (w < 0 || (size_t)w != n)
            return -1;
        off += n;
        len -= n;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "Usage: vgpu-bench-fill FILE SEED SECTION...\n"
                        "Overwrites each named SHT_PROGBITS section of the ELF64 FILE with\n"
                        "pseudo-random bytes derived from SEED and the section name.\n");
        return 2;
    }
    const char *file = argv[1];
    char *end;
    uint64_t seed = strtoull(argv[2], &end, 0);
    if (*end)
        return fail(argv[2], "SEED is not a number");
    int fd = open(file, O_RDWR | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0)
        return fail(file, strerror(errno));
    uint64_t size = (uint64_t)st.st_size;
    Elf64_Ehdr eh;
    if (!read_at(fd, &eh, sizeof(eh), 0) || memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 ||
        eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_ident[EI_DATA] != ELFDATA2LSB)
        return fail(file, "not a little-endian ELF64 file");
    if (eh.e_shentsize != sizeof(Elf64_Shdr) || eh.e_shnum == 0 || eh.e_shstrndx >= eh.e_shnum ||
        eh.e_shoff > size || (uint64_t)eh.e_shnum * sizeof(Elf64_Shdr) > size - eh.e_shoff)
        return fail(file, "no usable section header table");
    Elf64_Shdr *sh = calloc(eh.e_shnum, sizeof(*sh));
    if (!sh || !read_at(fd, sh, eh.e_shnum * sizeof(*sh), eh.e_shoff))
        return fail(file, "cannot read the section headers");
    const Elf64_Shdr *ss = &sh[eh.e_shstrndx];
    if (ss->sh_offset > size || ss->sh_size > size - ss->sh_offset || ss->sh_size == 0)
        return fail(file, "section name table outside the file");
    char *names = malloc(ss->sh_size + 1);
    if (!names || !read_at(fd, names, ss->sh_size, ss->sh_offset))
        return fail(file, "cannot read the section names");
    names[ss->sh_size] = '\0';
    uint64_t *buf = malloc(CHUNK + 8);
    if (!buf)
        return fail(file, "out of memory");
    for (int a = 3; a < argc; a++) {
        const Elf64_Shdr *hit = NULL;
        for (size_t i = 1; i < eh.e_shnum; i++)
            if (sh[i].sh_name < ss->sh_size && strcmp(names + sh[i].sh_name, argv[a]) == 0)
                hit = &sh[i];
        if (!hit || hit->sh_type != SHT_PROGBITS) {
            fprintf(stderr, "vgpu-bench-fill: %s: no PROGBITS section %s\n", file, argv[a]);
            return 1;
        }
        if (hit->sh_offset > size || hit->sh_size > size - hit->sh_offset)
            return fail(file, "a section lies outside the file");
        if (fill_range(fd, hit->sh_offset, hit->sh_size, seed ^ fnv1a(argv[a]), buf) < 0)
            return fail(file, strerror(errno ? errno : EIO));
    }
    if (close(fd) < 0)
        return fail(file, strerror(errno));
    free(buf);
    free(names);
    free(sh);
    return 0;
}
