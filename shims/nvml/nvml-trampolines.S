/* nvml-trampolines: the forwarded exports of libvgpu-nvml.so.1 (core/trampolines.S.h). */
#define VGPU_TABLE "nvml-table.h"
#define VGPU_SLOTS vgpu_nvml_slots
#define VGPU_CALLS vgpu_nvml_calls
#define VGPU_ENTRIES vgpu_nvml_entries
#define VGPU_RESOLVE vgpu_nvml_resolve
#include "trampolines.S.h"
