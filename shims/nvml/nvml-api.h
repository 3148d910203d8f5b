/* nvml-api: prototypes of the NVML entry points libvgpu-nvml.so.1 implements in C
 * (nvml-impl.def lists them), as nvml.h declares them. */
#ifndef VGPU_NVML_API_H
#define VGPU_NVML_API_H

#include "nvml-types.h"
#include "shim.h"

VGPU_API nvmlReturn_t nvmlInit(void);
VGPU_API nvmlReturn_t nvmlInit_v2(void);
VGPU_API nvmlReturn_t nvmlInitWithFlags(unsigned int flags);
VGPU_API const char *nvmlErrorString(nvmlReturn_t result);
VGPU_API nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t device, nvmlMemory_t *memory);
VGPU_API nvmlReturn_t nvmlDeviceGetMemoryInfo_v2(nvmlDevice_t device, nvmlMemory_v2_t *memory);

#endif
