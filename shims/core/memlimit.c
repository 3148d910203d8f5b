/* memlimit: an atomic byte counter and an open-addressing table of live allocations. */
#include "memlimit.h"

#include <pthread.h>
#include <stdlib.h>

struct slot {
    uint64_t key; /* 0 with size 0: empty; with size ~0: deleted */
    unsigned long long size;
    unsigned char kind;
};

#define DELETED (~0ULL)

static unsigned long long limit;
static unsigned long long used;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct slot *table;
static size_t capacity; /* a power of two, or 0 */
static size_t filled;   /* live and deleted slots */

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

static bool is_empty(const struct slot *s)
{
    return s->kind == 0 && s->size == 0;
}

/* The slot holding (kind, key), or NULL. Caller holds the lock. */
static struct slot *find(enum vgpu_mem_kind kind, uint64_t key)
{
    if (!capacity)
        return NULL;
    for (size_t i = hash(kind, key) & (capacity - 1);; i = (i + 1) & (capacity - 1)) {
        struct slot *s = &table[i];
        if (is_empty(s))
            return NULL;
        if (s->kind == kind && s->key == key && s->size != DELETED)
            return s;
    }
}

static void put(struct slot *t, size_t cap, enum vgpu_mem_kind kind, uint64_t key,
                unsigned long long size)
{
    size_t i = hash(kind, key) & (cap - 1);
    while (!is_empty(&t[i]) && t[i].size != DELETED)
        i = (i + 1) & (cap - 1);
    t[i] = (struct slot){.key = key, .size = size, .kind = (unsigned char)kind};
}

/* Keeps the table at most half full (deleted slots count), rehashing live ones. */
static bool make_room(void)
{
    if ((filled + 1) * 2 <= capacity)
        return true;
    size_t live = 0;
    for (size_t i = 0; i < capacity; i++)
        live += !is_empty(&table[i]) && table[i].size != DELETED;
    size_t cap = capacity ? capacity : 64;
    while ((live + 1) * 2 > cap)
        cap *= 2;
    struct slot *t = calloc(cap, sizeof(*t));
    if (!t)
        return false;
    for (size_t i = 0; i < capacity; i++)
        if (!is_empty(&table[i]) && table[i].size != DELETED)
            put(t, cap, table[i].kind, table[i].key, table[i].size);
    free(table);
    table = t;
    capacity = cap;
    filled = live;
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
        s->size = size;
    } else if ((ok = make_room())) {
        put(table, capacity, kind, key, size);
        filled++;
    }
    pthread_mutex_unlock(&lock);
    return ok;
}

unsigned long long vgpu_mem_untrack(enum vgpu_mem_kind kind, uint64_t key)
{
    pthread_mutex_lock(&lock);
    struct slot *s = find(kind, key);
    unsigned long long size = 0;
    if (s) {
        size = s->size;
        s->size = DELETED;
    }
    pthread_mutex_unlock(&lock);
    return size;
}
