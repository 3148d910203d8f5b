/*
 * dummy_common.h: helpers shared by the dummy CUDA driver and the dummy NVML
 * library in tests/dummy (test doubles for the shims' native backend).
 *
 * Everything declared here is hidden: it is linked into each dummy library
 * separately and never exported. What lives here:
 *   - an entry-point table (names, call counters, forced failures),
 *   - environment knob parsing,
 *   - a small unsorted record table for fake handles and allocations,
 *   - the fake UUID both dummies report for a device index.
 */
#ifndef VGPU_TESTS_DUMMY_COMMON_H
#define VGPU_TESTS_DUMMY_COMMON_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Put on every function a dummy exports: the API entry points and dummy_*. */
#define DUMMY_EXPORT __attribute__((visibility("default")))

/* The most devices a dummy reports; larger knob values are clamped. */
#define DUMMY_MAX_DEVICES 64

/* fail[] value of an entry point that has no forced failure. */
#define DUMMY_NO_FAIL (-1)

#pragma GCC visibility push(hidden)

/*
 * One library's entry points, indexed by that library's enum. calls[] counts
 * every run of an implementation; fail[] holds the code DUMMY_*_FAIL forces it
 * to return, or DUMMY_NO_FAIL.
 */
struct dummy_api {
    const char *lib; /* prefix for warnings, e.g. "dummy-cuda" */
    size_t count;
    const char *const *names;
    atomic_ulong *calls;
    int *fail;
};

/* Index of name in api, or -1. */
int dummy_api_find(const struct dummy_api *api, const char *name);

/* Count one run of entry point idx; return its forced code or DUMMY_NO_FAIL. */
int dummy_api_enter(const struct dummy_api *api, int idx);

/* Runs of the named entry point (0 if unknown); name NULL: all of them. */
unsigned long dummy_api_calls(const struct dummy_api *api, const char *name);

void dummy_api_reset_calls(const struct dummy_api *api);

/* Fill api->fail from "name=code[,name=code...]" in environment variable var. */
void dummy_api_parse_fail(const struct dummy_api *api, const char *var);

/* Environment knobs. Malformed values warn on stderr and give the default. */
unsigned long long dummy_env_ull(const char *var, unsigned long long def);
const char *dummy_env_str(const char *var, const char *def);
bool dummy_env_flag(const char *var);
void dummy_env_cc(const char *var, int *major, int *minor); /* "major.minor" */

/* Whether comma-separated list contains name exactly (list may be NULL). */
bool dummy_list_contains(const char *list, const char *name);

/* The 16 UUID bytes of device index: "DUMMYGPU" then the index, big-endian. */
void dummy_uuid(unsigned index, unsigned char out[16]);

/*
 * Record table: an unsorted growable array; the caller does the locking.
 * key is a handle value or a fake address, size its length in bytes.
 */
struct dummy_rec {
    uint64_t key;
    uint64_t size;
    uint64_t handle; /* a mapping: the physical allocation it maps */
    unsigned refs;   /* a physical allocation: its handle and its mappings */
    int dev;
    int kind;
};

struct dummy_table {
    struct dummy_rec *recs;
    size_t len;
    size_t cap;
};

bool dummy_table_add(struct dummy_table *t, struct dummy_rec rec);
struct dummy_rec *dummy_table_find(struct dummy_table *t, int kind, uint64_t key);
/* The record of this kind whose [key, key+size) holds [addr, addr+size). */
struct dummy_rec *dummy_table_find_range(struct dummy_table *t, int kind, uint64_t addr,
                                         uint64_t size);
void dummy_table_remove(struct dummy_table *t, struct dummy_rec *rec);

#pragma GCC visibility pop

#endif
