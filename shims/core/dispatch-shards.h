/* dispatch-shards: the layout of the call counters, shared by the C code and the
 * trampolines (core/trampolines.S.h): VGPU_CALL_SHARDS rows of one counter per entry
 * point; a forwarded call counts in row (stack address >> VGPU_SHARD_SHIFT) mod
 * VGPU_CALL_SHARDS. Thread stacks are 8 MiB apart by default, hence the shift. */
#ifndef VGPU_DISPATCH_SHARDS_H
#define VGPU_DISPATCH_SHARDS_H

#define VGPU_CALL_SHARDS 8 /* a power of two */
#define VGPU_SHARD_SHIFT 23

#endif
