/* nvml-backend: the dispatch table and backend of libvgpu-nvml.so.1 (all of it in
 * core/shim-table.c.h). */
#include "nvml-shim.h"

const char vgpu_shim_component[] = "vgpu-nvml";

#define VGPU_TABLE         "nvml-table.h"
#define VGPU_PREFIX        nvml
#define VGPU_API_NAME      "NVML"
#define VGPU_NATIVE_PATH   c->native_nvml
#define VGPU_NATIVE_KEY    "native_nvml"
#define VGPU_NOT_SUPPORTED NVML_ERROR_NOT_SUPPORTED
#define VGPU_NOT_READY     NVML_ERROR_UNINITIALIZED
#include "shim-table.c.h"
