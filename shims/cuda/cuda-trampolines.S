/* cuda-trampolines: the forwarded exports of libvgpu-cuda.so.1 (core/trampolines.S.h). */
#define VGPU_TABLE "cuda-table.h"
#define VGPU_SLOTS vgpu_cuda_slots
#define VGPU_CALLS vgpu_cuda_calls
#define VGPU_ENTRIES vgpu_cuda_entries
#define VGPU_RESOLVE vgpu_cuda_resolve
#include "trampolines.S.h"
