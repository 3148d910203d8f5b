/* copy: one-pass copy + patch + dual hash. */
#include "copy.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

#define BLOCK (1u << 20)

struct hash_job {
    const uint8_t *src;
    uint64_t size;
    const struct vp_patchset *ps;
    uint8_t orig[32], patched[32];
};

static bool overlaps(const struct vp_patchset *ps, uint64_t off, uint64_t len)
{
    for (size_t i = 0; ps && i < ps->n; i++)
        if (ps->v[i].off < off + len && off < ps->v[i].off + ps->v[i].len)
            return true;
    return false;
}

/* The patched bytes of [off, off+len): original (zeros past its end) plus patches. */
static void patched_block(const struct hash_job *j, uint64_t off, uint64_t len, uint8_t *buf)
{
    uint64_t have = off < j->size ? (j->size - off < len ? j->size - off : len) : 0;
    memcpy(buf, j->src + off, have);
    memset(buf + have, 0, len - have);
    for (size_t i = 0; i < j->ps->n; i++) {
        const struct vp_patch *p = &j->ps->v[i];
        uint64_t s = p->off > off ? p->off : off;
        uint64_t e = p->off + p->len < off + len ? p->off + p->len : off + len;
        if (s < e)
            memcpy(buf + (s - off), p->data + (s - p->off), e - s);
    }
}

static void *hash_thread(void *arg)
{
    struct hash_job *j = arg;
    struct vp_b3 a, b;
    vp_b3_init(&a);
    vp_b3_init(&b);
    /* The original is hashed to its end, the result to its own (longer or shorter). */
    uint64_t total = j->ps->new_size > j->size ? j->ps->new_size : j->size;
    uint8_t *buf = vp_xmalloc(BLOCK);
    for (uint64_t off = 0; off < total; off += BLOCK) {
        uint64_t len = total - off < BLOCK ? total - off : BLOCK;
        uint64_t plen = off >= j->ps->new_size ? 0
                        : j->ps->new_size - off < len ? j->ps->new_size - off : len;
        if (off + len <= j->size && plen == len && !overlaps(j->ps, off, len)) {
            vp_b3_update2(&a, &b, j->src + off, len);
        } else {
            if (off < j->size)
                vp_b3_update(&a, j->src + off, j->size - off < len ? j->size - off : len);
            patched_block(j, off, plen, buf);
            vp_b3_update(&b, buf, plen);
        }
        /* Hashed pages leave this process (the page cache keeps them): resident
         * memory stays at one block whatever the file size. */
        if (off < j->size)
            (void)madvise((void *)(j->src + off), j->size - off < len ? j->size - off : len,
                          MADV_DONTNEED);
    }
    free(buf);
    vp_b3_final(&a, j->orig);
    vp_b3_final(&b, j->patched);
    return NULL;
}

static int write_all(int fd, const void *data, uint64_t len, uint64_t off)
{
    const uint8_t *p = data;
    while (len) {
        ssize_t n = pwrite(fd, p, len, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        p += n, len -= (uint64_t)n, off += (uint64_t)n;
    }
    return 0;
}

/* The kernel copies when it can (no user-space pass over the data); else write(). */
static int copy_bytes(int src_fd, const uint8_t *src, uint64_t size, int dst_fd)
{
    loff_t in = 0, out = 0;
    while ((uint64_t)in < size) {
        ssize_t n = copy_file_range(src_fd, &in, dst_fd, &out, size - (uint64_t)in, 0);
        if (n > 0)
            continue;
        if (n == 0)
            return -EIO; /* the source shrank under us */
        if (errno == EINTR)
            continue;
        if (errno != EXDEV && errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP)
            return -errno;
        return write_all(dst_fd, src + in, size - (uint64_t)in, (uint64_t)in);
    }
    return 0;
}

int vp_copy_patched(int src_fd, uint64_t size, int dst_fd, const struct vp_patchset *ps,
                    struct vp_copy_result *ret)
{
    struct vp_patchset none = {.new_size = size};
    if (!ps)
        ps = &none;
    const uint8_t *src = NULL;
    if (size) {
        void *m = mmap(NULL, size, PROT_READ, MAP_PRIVATE, src_fd, 0);
        if (m == MAP_FAILED)
            return vp_error_errno(-errno, "cannot map the original");
        (void)madvise(m, size, MADV_SEQUENTIAL);
        src = m;
    }
    struct hash_job job = {.src = src, .size = size, .ps = ps};
    pthread_t th;
    bool threaded = pthread_create(&th, NULL, hash_thread, &job) == 0;

    int r = copy_bytes(src_fd, src, size, dst_fd);
    uint64_t written = size;
    uint64_t new_size = ps->new_size;
    if (r == 0 && new_size != size && ftruncate(dst_fd, (off_t)new_size) < 0)
        r = -errno;
    for (size_t i = 0; r == 0 && i < ps->n; i++) {
        r = write_all(dst_fd, ps->v[i].data, ps->v[i].len, ps->v[i].off);
        written += ps->v[i].len;
    }
    /* Start writing the copy back now, while the hashes finish: the caller's fsync then
     * waits for less. */
    if (r == 0)
        (void)sync_file_range(dst_fd, 0, 0, SYNC_FILE_RANGE_WRITE);
    if (threaded)
        pthread_join(th, NULL);
    else
        hash_thread(&job);
    if (src)
        munmap((void *)src, size);
    if (r < 0)
        return vp_error_errno(r, "cannot write the copy");
    vp_b3_hex(job.orig, ret->orig_b3);
    vp_b3_hex(job.patched, ret->patched_b3);
    ret->size = new_size;
    ret->bytes_written = written;
    return 0;
}
