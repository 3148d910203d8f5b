/*
 * dummy_nvml.c: the dummy NVML library (libnvidia-ml.so.1 for GPU-less
 * tests), the NVML half of the native backend the shims forward to.
 *
 * It reports DUMMY_NVML_DEVICES identical devices with fixed memory figures
 * and implements only the handful of entry points listed in README.md;
 * everything but nvmlErrorString needs nvmlInit* first (reference counted).
 * No NVML header is used: the few types below match nvml.h.
 */
#include "dummy_common.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

/* ---- NVML types (ABI-compatible subset of nvml.h) ----------------------- */

typedef int nvmlReturn_t;
typedef struct dummy_nvml_device *nvmlDevice_t;

typedef struct {
    unsigned long long total, free, used;
} nvmlMemory_t;

typedef struct {
    unsigned int version;
    unsigned long long total, reserved, free, used;
} nvmlMemory_v2_t;

#define nvmlMemory_v2 ((unsigned int)(sizeof(nvmlMemory_v2_t) | (2 << 24)))

enum {
    NVML_SUCCESS = 0,
    NVML_ERROR_UNINITIALIZED = 1,
    NVML_ERROR_INVALID_ARGUMENT = 2,
    NVML_ERROR_NOT_SUPPORTED = 3,
    NVML_ERROR_NOT_FOUND = 6,
    NVML_ERROR_INSUFFICIENT_SIZE = 7,
    NVML_ERROR_DRIVER_NOT_LOADED = 9,
    NVML_ERROR_ARGUMENT_VERSION_MISMATCH = 25,
    NVML_ERROR_UNKNOWN = 999,
};

#define RESERVED_BYTES (256ULL << 20) /* nvmlMemory_v2_t.reserved */

/* ---- entry-point table and knobs --------------------------------------- */

/* X(name, before_init): before_init = 1 works without nvmlInit. */
#define DUMMY_NVML_ENTRY_POINTS(X)                                                                 \
    X(nvmlInit, 1)                                                                                 \
    X(nvmlInit_v2, 1)                                                                              \
    X(nvmlInitWithFlags, 1)                                                                        \
    X(nvmlShutdown, 0)                                                                             \
    X(nvmlErrorString, 1)                                                                          \
    X(nvmlSystemGetDriverVersion, 0)                                                               \
    X(nvmlSystemGetCudaDriverVersion, 0)                                                           \
    X(nvmlSystemGetCudaDriverVersion_v2, 0)                                                        \
    X(nvmlDeviceGetCount, 0)                                                                       \
    X(nvmlDeviceGetCount_v2, 0)                                                                    \
    X(nvmlDeviceGetHandleByIndex, 0)                                                               \
    X(nvmlDeviceGetHandleByIndex_v2, 0)                                                            \
    X(nvmlDeviceGetName, 0)                                                                        \
    X(nvmlDeviceGetUUID, 0)                                                                        \
    X(nvmlDeviceGetMemoryInfo, 0)                                                                  \
    X(nvmlDeviceGetMemoryInfo_v2, 0)                                                               \
    X(nvmlDeviceGetCudaComputeCapability, 0)                                                       \
    X(nvmlDeviceGetIndex, 0)

#define ENUM(name, before_init)        E_##name,
#define NAME(name, before_init)        #name,
#define BEFORE_INIT(name, before_init) before_init,
enum nvml_entry { DUMMY_NVML_ENTRY_POINTS(ENUM) E_NVML_COUNT };
static const char *const entry_names[] = {DUMMY_NVML_ENTRY_POINTS(NAME)};
static const bool entry_before_init[] = {DUMMY_NVML_ENTRY_POINTS(BEFORE_INIT)};
#undef ENUM
#undef NAME
#undef BEFORE_INIT

static atomic_ulong entry_calls[E_NVML_COUNT];
static int entry_fail[E_NVML_COUNT];
static const struct dummy_api nvml_api = {"dummy-nvml", E_NVML_COUNT, entry_names, entry_calls,
                                          entry_fail};

static struct {
    unsigned devices;
    char name[96];
    unsigned long long memory, used;
    char driver[80];
    int cuda_version;
    int cc_major, cc_minor;
    bool selfcall;
} cfg;
static pthread_once_t config_once = PTHREAD_ONCE_INIT;
static atomic_int init_refs;

struct dummy_nvml_device {
    unsigned index;
};
static struct dummy_nvml_device devices[DUMMY_MAX_DEVICES];

static void load_config(void)
{
    unsigned long long n = dummy_env_ull("DUMMY_NVML_DEVICES", 1);
    cfg.devices = n > DUMMY_MAX_DEVICES ? DUMMY_MAX_DEVICES : (unsigned)n;
    for (unsigned i = 0; i < DUMMY_MAX_DEVICES; i++)
        devices[i].index = i;
    snprintf(cfg.name, sizeof cfg.name, "%s", dummy_env_str("DUMMY_NVML_NAME", "Dummy GPU"));
    cfg.memory = dummy_env_ull("DUMMY_NVML_MEMORY", 16ULL << 30);
    cfg.used = dummy_env_ull("DUMMY_NVML_USED", 512ULL << 20);
    if (cfg.used > cfg.memory)
        cfg.used = cfg.memory;
    snprintf(cfg.driver, sizeof cfg.driver, "%s", dummy_env_str("DUMMY_NVML_DRIVER", "580.65.06"));
    cfg.cuda_version = (int)dummy_env_ull("DUMMY_NVML_CUDA_VERSION", 13000);
    cfg.cc_major = 8;
    cfg.cc_minor = 9;
    dummy_env_cc("DUMMY_NVML_CC", &cfg.cc_major, &cfg.cc_minor);
    cfg.selfcall = dummy_env_flag("DUMMY_NVML_SELFCALL");
    dummy_api_parse_fail(&nvml_api, "DUMMY_NVML_FAIL");
}

/* Count a run of entry point e; a nonzero result is what it must return. */
static nvmlReturn_t nvml_enter(enum nvml_entry e)
{
    pthread_once(&config_once, load_config);
    int forced = dummy_api_enter(&nvml_api, e);
    if (forced != DUMMY_NO_FAIL)
        return forced;
    if (!entry_before_init[e] && atomic_load(&init_refs) <= 0)
        return NVML_ERROR_UNINITIALIZED;
    return NVML_SUCCESS;
}

#define NVML_ENTER(fn)                                                                             \
    do {                                                                                           \
        nvmlReturn_t nvml_enter_rc_ = nvml_enter(E_##fn);                                          \
        if (nvml_enter_rc_ != NVML_SUCCESS)                                                        \
            return nvml_enter_rc_;                                                                 \
    } while (0)

/* The index of a handle from nvmlDeviceGetHandleByIndex*, or -1. */
static int device_index(nvmlDevice_t device)
{
    uintptr_t first = (uintptr_t)devices, addr = (uintptr_t)device;
    if (addr < first || addr >= (uintptr_t)(devices + cfg.devices) ||
        (addr - first) % sizeof devices[0])
        return -1;
    return (int)((addr - first) / sizeof devices[0]);
}

/* Copy text into buf of length len, or NVML_ERROR_INSUFFICIENT_SIZE. */
static nvmlReturn_t copy_out(char *buf, unsigned int len, const char *text)
{
    if (!buf)
        return NVML_ERROR_INVALID_ARGUMENT;
    if (strlen(text) >= len)
        return NVML_ERROR_INSUFFICIENT_SIZE;
    memcpy(buf, text, strlen(text) + 1);
    return NVML_SUCCESS;
}

/* ---- init and system --------------------------------------------------- */

DUMMY_EXPORT nvmlReturn_t nvmlInit(void)
{
    NVML_ENTER(nvmlInit);
    atomic_fetch_add(&init_refs, 1);
    return NVML_SUCCESS;
}

DUMMY_EXPORT nvmlReturn_t nvmlInit_v2(void)
{
    NVML_ENTER(nvmlInit_v2);
    atomic_fetch_add(&init_refs, 1);
    return NVML_SUCCESS;
}

DUMMY_EXPORT nvmlReturn_t nvmlInitWithFlags(unsigned int flags)
{
    (void)flags;
    NVML_ENTER(nvmlInitWithFlags);
    atomic_fetch_add(&init_refs, 1);
    return NVML_SUCCESS;
}

DUMMY_EXPORT nvmlReturn_t nvmlShutdown(void)
{
    NVML_ENTER(nvmlShutdown);
    int refs = atomic_load(&init_refs);
    while (refs > 0 && !atomic_compare_exchange_weak(&init_refs, &refs, refs - 1))
        ;
    return refs > 0 ? NVML_SUCCESS : NVML_ERROR_UNINITIALIZED;
}

DUMMY_EXPORT const char *nvmlErrorString(nvmlReturn_t result)
{
    static const struct {
        nvmlReturn_t code;
        const char *text;
    } errors[] = {
        {NVML_SUCCESS, "Success"},
        {NVML_ERROR_UNINITIALIZED, "Uninitialized"},
        {NVML_ERROR_INVALID_ARGUMENT, "Invalid Argument"},
        {NVML_ERROR_NOT_SUPPORTED, "Not Supported"},
        {NVML_ERROR_NOT_FOUND, "Not Found"},
        {NVML_ERROR_INSUFFICIENT_SIZE, "Insufficient Size"},
        {NVML_ERROR_DRIVER_NOT_LOADED, "Driver Not Loaded"},
        {NVML_ERROR_ARGUMENT_VERSION_MISMATCH, "Argument version mismatch"},
        {NVML_ERROR_UNKNOWN, "Unknown Error"},
    };

    (void)nvml_enter(E_nvmlErrorString); /* counted; it cannot fail */
    for (size_t i = 0; i < sizeof errors / sizeof errors[0]; i++) {
        if (errors[i].code == result)
            return errors[i].text;
    }
    return "Unknown Error";
}

DUMMY_EXPORT nvmlReturn_t nvmlSystemGetDriverVersion(char *version, unsigned int length)
{
    NVML_ENTER(nvmlSystemGetDriverVersion);
    return copy_out(version, length, cfg.driver);
}

DUMMY_EXPORT nvmlReturn_t nvmlSystemGetCudaDriverVersion(int *version)
{
    NVML_ENTER(nvmlSystemGetCudaDriverVersion);
    if (!version)
        return NVML_ERROR_INVALID_ARGUMENT;
    *version = cfg.cuda_version;
    return NVML_SUCCESS;
}

DUMMY_EXPORT nvmlReturn_t nvmlSystemGetCudaDriverVersion_v2(int *version)
{
    NVML_ENTER(nvmlSystemGetCudaDriverVersion_v2);
    if (!version)
        return NVML_ERROR_INVALID_ARGUMENT;
    *version = cfg.cuda_version;
    return NVML_SUCCESS;
}

/* ---- devices ------------------------------------------------------------ */

DUMMY_EXPORT nvmlReturn_t nvmlDeviceGetCount(unsigned int *count)
{
    NVML_ENTER(nvmlDeviceGetCount);
    if (!count)
        return NVML_ERROR_INVALID_ARGUMENT;
    *count = cfg.devices;
    return NVML_SUCCESS;
}

DUMMY_EXPORT nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int *count)
{
    NVML_ENTER(nvmlDeviceGetCount_v2);
    if (!count)
        return NVML_ERROR_INVALID_ARGUMENT;
    *count = cfg.devices;
    return NVML_SUCCESS;
}

static nvmlReturn_t handle_by_index(unsigned int index, nvmlDevice_t *device)
{
    if (!device || index >= cfg.devices)
        return NVML_ERROR_INVALID_ARGUMENT;
    *device = &devices[index];
    return NVML_SUCCESS;
}

DUMMY_EXPORT nvmlReturn_t nvmlDeviceGetHandleByIndex(unsigned int index, nvmlDevice_t *device)
{
    NVML_ENTER(nvmlDeviceGetHandleByIndex);
    return handle_by_index(index, device);
}

DUMMY_EXPORT nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int index, nvmlDevice_t *device)
{
    NVML_ENTER(nvmlDeviceGetHandleByIndex_v2);
    return handle_by_index(index, device);
}

DUMMY_EXPORT nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t device, char *name, unsigned int length)
{
    NVML_ENTER(nvmlDeviceGetName);
    if (device_index(device) < 0)
        return NVML_ERROR_INVALID_ARGUMENT;
    return copy_out(name, length, cfg.name);
}

/* "GPU-" and the same 16 bytes the dummy CUDA driver reports for this index. */
DUMMY_EXPORT nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t device, char *uuid, unsigned int length)
{
    NVML_ENTER(nvmlDeviceGetUUID);
    int index = device_index(device);
    if (index < 0)
        return NVML_ERROR_INVALID_ARGUMENT;
    unsigned char b[16];
    char text[48];
    dummy_uuid((unsigned)index, b);
    snprintf(text, sizeof text,
             "GPU-%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
             b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
             b[15]);
    return copy_out(uuid, length, text);
}

DUMMY_EXPORT nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t device, nvmlMemory_t *memory)
{
    NVML_ENTER(nvmlDeviceGetMemoryInfo);
    if (device_index(device) < 0 || !memory)
        return NVML_ERROR_INVALID_ARGUMENT;
    memory->total = cfg.memory;
    memory->used = cfg.used;
    memory->free = cfg.memory - cfg.used;
    return NVML_SUCCESS;
}

DUMMY_EXPORT nvmlReturn_t nvmlDeviceGetMemoryInfo_v2(nvmlDevice_t device, nvmlMemory_v2_t *memory)
{
    NVML_ENTER(nvmlDeviceGetMemoryInfo_v2);
    if (device_index(device) < 0 || !memory)
        return NVML_ERROR_INVALID_ARGUMENT;
    if (memory->version != nvmlMemory_v2)
        return NVML_ERROR_ARGUMENT_VERSION_MISMATCH;

    nvmlMemory_t v1 = {.total = cfg.memory, .used = cfg.used};
    if (cfg.selfcall) {
        /* Through the PLT: lands in whatever nvmlDeviceGetMemoryInfo binds to. */
        nvmlReturn_t rc = nvmlDeviceGetMemoryInfo(device, &v1);
        if (rc != NVML_SUCCESS)
            return rc;
    }
    unsigned long long reserved = v1.total < RESERVED_BYTES ? v1.total : RESERVED_BYTES;
    unsigned long long rest = v1.total - reserved;
    memory->total = v1.total;
    memory->reserved = reserved;
    memory->used = v1.used < rest ? v1.used : rest;
    memory->free = rest - memory->used;
    return NVML_SUCCESS;
}

DUMMY_EXPORT nvmlReturn_t nvmlDeviceGetCudaComputeCapability(nvmlDevice_t device, int *major,
                                                             int *minor)
{
    NVML_ENTER(nvmlDeviceGetCudaComputeCapability);
    if (device_index(device) < 0 || !major || !minor)
        return NVML_ERROR_INVALID_ARGUMENT;
    *major = cfg.cc_major;
    *minor = cfg.cc_minor;
    return NVML_SUCCESS;
}

DUMMY_EXPORT nvmlReturn_t nvmlDeviceGetIndex(nvmlDevice_t device, unsigned int *index)
{
    NVML_ENTER(nvmlDeviceGetIndex);
    int i = device_index(device);
    if (i < 0 || !index)
        return NVML_ERROR_INVALID_ARGUMENT;
    *index = (unsigned)i;
    return NVML_SUCCESS;
}

/* ---- test controls ------------------------------------------------------ */

DUMMY_EXPORT unsigned long dummy_nvml_calls(const char *name)
{
    return dummy_api_calls(&nvml_api, name);
}

/* Forget every call count and every nvmlInit (the library is uninitialized). */
DUMMY_EXPORT void dummy_nvml_reset(void)
{
    dummy_api_reset_calls(&nvml_api);
    atomic_store(&init_refs, 0);
}
