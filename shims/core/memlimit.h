/* memlimit: the vGPU memory limit (VGPU_MEMORY_LIMIT) and the per-process accounting
 * behind it: bytes are reserved before an allocation reaches the backend, recorded
 * under the allocation's key (a device pointer or a VMM handle) when it succeeds, and
 * given back when it is freed. Thread-safe and fork-safe. */
#ifndef VGPU_MEMLIMIT_H
#define VGPU_MEMLIMIT_H

#include <stdbool.h>
#include <stdint.h>

enum vgpu_mem_kind { VGPU_MEM_POINTER = 1, VGPU_MEM_HANDLE = 2 };

/* Sets the limit in bytes (0: none). Called once, when the backend comes up. */
void vgpu_mem_setup(unsigned long long limit);
/* The limit (0: none) and the bytes held (live allocations and reservations). */
unsigned long long vgpu_mem_limit(void);
unsigned long long vgpu_mem_used(void);
/* Reserves size bytes; false when that would pass the limit. */
bool vgpu_mem_reserve(unsigned long long size);
void vgpu_mem_unreserve(unsigned long long size);
/* Records a live allocation of reserved bytes. Returns false when there is no memory
 * to record it: the caller frees the allocation and unreserves. */
bool vgpu_mem_track(enum vgpu_mem_kind kind, uint64_t key, unsigned long long size);
/* Forgets an allocation; returns its size, or 0 when it was not recorded. The bytes
 * stay reserved until the caller unreserves them. */
unsigned long long vgpu_mem_untrack(enum vgpu_mem_kind kind, uint64_t key);

#endif
