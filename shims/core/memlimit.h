/* memlimit: the vGPU memory limit (VGPU_MEMORY_LIMIT) and the per-process accounting
 * behind it. Bytes are reserved before an allocation reaches the backend and recorded
 * under the allocation's key when it succeeds: a device pointer, or a VMM handle,
 * which holds its bytes while the handle or any mapping of it lives (ggml releases
 * the handle right after mapping it). Thread-safe and fork-safe. */
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

/* Records a live allocation of reserved bytes (a handle starts with one reference).
 * Returns false when there is no memory to record it: the caller frees the
 * allocation and unreserves. */
bool vgpu_mem_track(enum vgpu_mem_kind kind, uint64_t key, unsigned long long size);
/* Forgets a pointer allocation; returns its size, or 0 when it was not recorded. The
 * bytes stay reserved until the caller unreserves them. */
unsigned long long vgpu_mem_untrack(uint64_t pointer);

/* Adds a reference to a recorded handle (cuMemRetainAllocationHandle). */
void vgpu_mem_handle_ref(uint64_t handle);
/* Drops a reference (cuMemRelease). Returns false when the handle is not recorded.
 * *ret_last is the handle's size when that was its last reference — the record is
 * gone, the bytes still reserved for the caller to unreserve — else 0. */
bool vgpu_mem_handle_unref(uint64_t handle, unsigned long long *ret_last);
/* Records that [va, va + size) maps a handle (cuMemMap): a reference to it. Returns
 * false when there is no memory to record it (the mapping is then not counted). */
bool vgpu_mem_map(uint64_t va, unsigned long long size, uint64_t handle);
/* Forgets the mappings that start in [va, va + size) (cuMemUnmap) and gives back the
 * bytes of handles whose last reference they were. */
void vgpu_mem_unmap(uint64_t va, unsigned long long size);

#endif
