/* memlimit: an atomic byte counter, an open-addressing table of live pointer and
 * handle allocations, and a list of VMM mappings. */
#include "memlimit.h"

#include <pthread.h>
#include <stdlib.h>

struct slot {
    uint64_t key;
    unsigned long long size;
    unsigned refs;      /* handles: the handle itself and its mappings */
    unsigned char kind; /* 0: empty */
    bool deleted;
};

struct mapping {
    uint64_t va, handle;
    unsigned long long size;
};

static unsigned long long limit;
static unsigned long long used;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct slot *table;
static size_t capacity; /* a power of two, or 0 */
static size_t filled;   /* live and deleted slots */
static struct mapping *maps;
static size_t nmaps, maps_cap;

/* A lock held across fork() would stay locked in the child forever. */
static void before_fork(void)
{
    pthread_mutex_lock(&lock);
}

static void after_fork(void)
{
    pthread_mutex_unlock(&lock);
}

void vgpu_mem_setup(unsigned long long bytes)
{
    limit = bytes;
    pthread_atfork(before_fork, after_fork, after_fork);
}

unsigned long long vgpu_mem_limit(void)
{
    return limit;
}

unsigned long long vgpu_mem_used(void)
{
    return __atomic_load_n(&used, __ATOMIC_RELAXED);
}

bool vgpu_mem_reserve(unsigned long long size)
{
    unsigned long long cur = __atomic_load_n(&used, __ATOMIC_RELAXED);
    do {
        if (size > limit || cur > limit - size)
            return false;
    } while (!__atomic_compare_exchange_n(&used, &cur, cur + size, true, __ATOMIC_RELAXED,
                                          __ATOMIC_RELAXED));
    return true;
}

void vgpu_mem_unreserve(unsigned long long size)
{
    __atomic_fetch_sub(&used, size, __ATOMIC_RELAXED);
}

static size_t hash(enum vgpu_mem_kind kind, uint64_t key)
{
    uint64_t h = (key ^ ((uint64_t)kind << 61)) * 0x9e3779b97f4a7c15ULL;
    return (size_t)(h >> 17);
}

static bool live(const struct slot *s)
{
    return s->kind && !s->deleted;
}

/* The live slot holding (kind, key), or NULL. Caller holds the lock. */
static struct slot *find(enum vgpu_mem_kind kind, uint64_t key)
{
    if (!capacity)
        return NULL;
    for (size_t i = hash(kind, key) & (capacity - 1);; i = (i + 1) & (capacity - 1)) {
        struct slot *s = &table[i];
        if (!s->kind)
            return NULL;
        if (!s->deleted && s->kind == kind && s->key == key)
            return s;
    }
}

/* Puts a record in the first empty slot of its probe sequence; returns whether it
 * took a never-used slot (deleted ones are reused but are already counted). */
static bool put(struct slot *t, size_t cap, struct slot rec)
{
    size_t i = hash(rec.kind, rec.key) & (cap - 1);
    while (t[i].kind && !t[i].deleted)
        i = (i + 1) & (cap - 1);
    bool fresh = !t[i].kind;
    t[i] = rec;
    t[i].deleted = false;
    return fresh;
}

/* Keeps the table at most half full, counting deleted slots; a rebuild leaves it at
 * most a quarter full, so churn around one size does not rebuild it again and again. */
static bool make_room(void)
{
    if ((filled + 1) * 2 <= capacity)
        return true;
    size_t n = 0;
    for (size_t i = 0; i < capacity; i++)
        n += live(&table[i]);
    size_t cap = capacity ? capacity : 64;
    while ((n + 1) * 4 > cap)
        cap *= 2;
    struct slot *t = calloc(cap, sizeof(*t));
    if (!t)
        return false;
    for (size_t i = 0; i < capacity; i++)
        if (live(&table[i]))
            put(t, cap, table[i]);
    free(table);
    table = t;
    capacity = cap;
    filled = n;
    return true;
}

bool vgpu_mem_track(enum vgpu_mem_kind kind, uint64_t key, unsigned long long size)
{
    pthread_mutex_lock(&lock);
    struct slot *s = find(kind, key);
    bool ok = true;
    if (s) {
        /* The backend reused a key whose release did not pass through the shim. */
        vgpu_mem_unreserve(s->size);
        *s = (struct slot){.key = key, .size = size, .refs = 1, .kind = (unsigned char)kind};
    } else if ((ok = make_room())) {
        struct slot rec = {.key = key, .size = size, .refs = 1, .kind = (unsigned char)kind};
        filled += put(table, capacity, rec);
    }
    pthread_mutex_unlock(&lock);
    return ok;
}

/* Removes a live slot; returns its size. Caller holds the lock. */
static unsigned long long remove_slot(struct slot *s)
{
    unsigned long long size = s->size;
    s->deleted = true;
    return size;
}

unsigned long long vgpu_mem_untrack(uint64_t pointer)
{
    pthread_mutex_lock(&lock);
    struct slot *s = find(VGPU_MEM_POINTER, pointer);
    unsigned long long size = s ? remove_slot(s) : 0;
    pthread_mutex_unlock(&lock);
    return size;
}

void vgpu_mem_handle_ref(uint64_t handle)
{
    pthread_mutex_lock(&lock);
    struct slot *s = find(VGPU_MEM_HANDLE, handle);
    if (s)
        s->refs++;
    pthread_mutex_unlock(&lock);
}

/* Drops one reference; the size when it was the last. Caller holds the lock. */
static unsigned long long unref(struct slot *s)
{
    return --s->refs == 0 ? remove_slot(s) : 0;
}

bool vgpu_mem_handle_unref(uint64_t handle, unsigned long long *ret_last)
{
    pthread_mutex_lock(&lock);
    struct slot *s = find(VGPU_MEM_HANDLE, handle);
    *ret_last = s ? unref(s) : 0;
    pthread_mutex_unlock(&lock);
    return s != NULL;
}

bool vgpu_mem_map(uint64_t va, unsigned long long size, uint64_t handle)
{
    pthread_mutex_lock(&lock);
    struct slot *s = find(VGPU_MEM_HANDLE, handle);
    bool ok = true;
    if (s && nmaps == maps_cap) {
        size_t cap = maps_cap ? maps_cap * 2 : 16;
        struct mapping *m = realloc(maps, cap * sizeof(*m));
        if ((ok = m != NULL)) {
            maps = m;
            maps_cap = cap;
        }
    }
    if (s && ok) {
        maps[nmaps++] = (struct mapping){.va = va, .handle = handle, .size = size};
        s->refs++;
    }
    pthread_mutex_unlock(&lock);
    return ok;
}

void vgpu_mem_unmap(uint64_t va, unsigned long long size)
{
    unsigned long long freed = 0;
    pthread_mutex_lock(&lock);
    for (size_t i = 0; i < nmaps;) {
        if (maps[i].va >= va && maps[i].va - va < size) {
            struct slot *s = find(VGPU_MEM_HANDLE, maps[i].handle);
            if (s)
                freed += unref(s);
            maps[i] = maps[--nmaps];
        } else {
            i++;
        }
    }
    pthread_mutex_unlock(&lock);
    vgpu_mem_unreserve(freed);
}
