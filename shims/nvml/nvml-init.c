/* nvml-init: the NVML entry points the shim implements — initialisation (which
 * decides whether a process sees a device), nvmlErrorString (which must answer even
 * without a backend), and the memory limit on nvmlDeviceGetMemoryInfo*. */
#include "config.h"
#include "nvml-api.h"
#include "nvml-shim.h"

/* Initialisation: forwarded when the backend is up, else why not. */
#define INIT(name, ...)                                                                            \
    do {                                                                                           \
        VGPU_COUNT(name);                                                                          \
        switch (vgpu_nvml_state()) {                                                               \
        case VGPU_BACKEND_UP:                                                                      \
            return VGPU_FORWARD(name, __VA_ARGS__);                                                \
        case VGPU_BACKEND_DOWN: /* the log said why, once */                                       \
            return NVML_ERROR_DRIVER_NOT_LOADED;                                                   \
        case VGPU_BACKEND_BAD_CONFIG:                                                              \
            break;                                                                                 \
        }                                                                                          \
        return NVML_ERROR_UNINITIALIZED;                                                           \
    } while (0)

VGPU_API nvmlReturn_t nvmlInit_v2(void)
{
    INIT(nvmlInit_v2);
}

VGPU_API nvmlReturn_t nvmlInit(void)
{
    INIT(nvmlInit);
}

VGPU_API nvmlReturn_t nvmlInitWithFlags(unsigned int flags)
{
    INIT(nvmlInitWithFlags, flags);
}

static const char *const error_strings[] = {
    [NVML_SUCCESS] = "Success",
    [NVML_ERROR_UNINITIALIZED] = "Uninitialized",
    [NVML_ERROR_INVALID_ARGUMENT] = "Invalid Argument",
    [NVML_ERROR_NOT_SUPPORTED] = "Not Supported",
    [NVML_ERROR_NO_PERMISSION] = "Insufficient Permissions",
    [NVML_ERROR_ALREADY_INITIALIZED] = "Already Initialized",
    [NVML_ERROR_NOT_FOUND] = "Not Found",
    [NVML_ERROR_INSUFFICIENT_SIZE] = "Insufficient Size",
    [NVML_ERROR_INSUFFICIENT_POWER] = "Insufficient External Power",
    [NVML_ERROR_DRIVER_NOT_LOADED] = "Driver Not Loaded",
    [NVML_ERROR_TIMEOUT] = "Timeout",
    [NVML_ERROR_IRQ_ISSUE] = "Interrupt Request Issue",
    [NVML_ERROR_LIBRARY_NOT_FOUND] = "NVML Shared Library Not Found",
    [NVML_ERROR_FUNCTION_NOT_FOUND] = "Function Not Found",
    [NVML_ERROR_CORRUPTED_INFOROM] = "Corrupted infoROM",
    [NVML_ERROR_GPU_IS_LOST] = "GPU is lost",
    [NVML_ERROR_RESET_REQUIRED] = "GPU requires restart",
    [NVML_ERROR_OPERATING_SYSTEM] = "GPU access blocked by the operating system",
    [NVML_ERROR_LIB_RM_VERSION_MISMATCH] = "Driver/library version mismatch",
    [NVML_ERROR_IN_USE] = "In use by another client",
    [NVML_ERROR_MEMORY] = "Insufficient Memory",
    [NVML_ERROR_NO_DATA] = "No data",
    [NVML_ERROR_VGPU_ECC_NOT_SUPPORTED] = "Not supported when ECC is enabled",
    [NVML_ERROR_INSUFFICIENT_RESOURCES] = "Insufficient resources",
    [NVML_ERROR_FREQ_NOT_SUPPORTED] = "Frequency not supported",
    [NVML_ERROR_ARGUMENT_VERSION_MISMATCH] = "Argument version mismatch",
    [NVML_ERROR_DEPRECATED] = "Deprecated",
    [NVML_ERROR_NOT_READY] = "Not ready",
    [NVML_ERROR_GPU_NOT_FOUND] = "GPU not found",
    [NVML_ERROR_INVALID_STATE] = "Invalid state",
};

/* The driver's words when it is up, else the shim's own (it returns a string, so it
 * cannot report NOT_SUPPORTED). */
VGPU_API const char *nvmlErrorString(nvmlReturn_t result)
{
    VGPU_COUNT(nvmlErrorString);
    if (vgpu_nvml_backend_up()) {
        __typeof__(&nvmlErrorString) real =
            (__typeof__(real))vgpu_dispatch_real(&vgpu_nvml_dispatch, VGPU_NVML_nvmlErrorString);
        if (real)
            return real(result);
    }
    if (result >= 0 && (size_t)result < VGPU_ARRAY_SIZE(error_strings) && error_strings[result])
        return error_strings[result];
    return "Unknown Error";
}

static unsigned long long min_ull(unsigned long long a, unsigned long long b)
{
    return a < b ? a : b;
}

/* The memory limit on what NVML reports. The limit is per process and NVML's
 * numbers are the device's, so free is what a process could still get — the device's
 * free memory, up to the limit — and total is at most the limit; reserved and used
 * fill the rest of that total, so that total = free + reserved + used still holds. */
static void clamp(unsigned long long *total, unsigned long long *reserved, unsigned long long *free,
                  unsigned long long *used)
{
    unsigned long long limit = vgpu_config()->memory_limit;
    if (!limit)
        return;
    *total = min_ull(*total, limit);
    *free = min_ull(*free, *total);
    *reserved = min_ull(*reserved, *total - *free);
    *used = *total - *free - *reserved;
}

VGPU_API nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t device, nvmlMemory_t *memory)
{
    VGPU_COUNT(nvmlDeviceGetMemoryInfo);
    nvmlReturn_t r = VGPU_FORWARD(nvmlDeviceGetMemoryInfo, device, memory);
    if (r == NVML_SUCCESS && memory) {
        unsigned long long reserved = 0;
        clamp(&memory->total, &reserved, &memory->free, &memory->used);
    }
    return r;
}

VGPU_API nvmlReturn_t nvmlDeviceGetMemoryInfo_v2(nvmlDevice_t device, nvmlMemory_v2_t *memory)
{
    VGPU_COUNT(nvmlDeviceGetMemoryInfo_v2);
    nvmlReturn_t r = VGPU_FORWARD(nvmlDeviceGetMemoryInfo_v2, device, memory);
    if (r == NVML_SUCCESS && memory)
        clamp(&memory->total, &memory->reserved, &memory->free, &memory->used);
    return r;
}
