/* cuda-init: the entry points that decide what a process sees before any device
 * work — cuInit, cuDriverGetVersion, cuGetExportTable — and the error strings, which
 * must answer even without a backend. */
#include "cuda-api.h"
#include "cuda-shim.h"
#include "log.h"

VGPU_API CUresult cuInit(unsigned int flags)
{
    VGPU_COUNT(cuInit);
    switch (vgpu_cuda_state()) {
    case VGPU_BACKEND_UP:
        return VGPU_FORWARD(cuInit, flags);
    case VGPU_BACKEND_DOWN: /* the log said why, once */
        return CUDA_ERROR_NO_DEVICE;
    case VGPU_BACKEND_BAD_CONFIG:
        break;
    }
    return CUDA_ERROR_NOT_INITIALIZED;
}

VGPU_API CUresult cuDriverGetVersion(int *version)
{
    VGPU_COUNT(cuDriverGetVersion);
    if (vgpu_cuda_state() == VGPU_BACKEND_UP)
        return VGPU_FORWARD(cuDriverGetVersion, version);
    if (!version)
        return CUDA_ERROR_INVALID_VALUE;
    *version = VGPU_CUDA_TABLE_VERSION;
    return CUDA_SUCCESS;
}

VGPU_API CUresult cuGetExportTable(const void **table, const CUuuid *id)
{
    VGPU_COUNT(cuGetExportTable);
    if (!table || !id)
        return CUDA_ERROR_INVALID_VALUE;
    if (vgpu_log_enabled(VGPU_LOG_DEBUG)) {
        const unsigned char *b = (const unsigned char *)id->bytes;
        vgpu_log(VGPU_LOG_DEBUG,
                 "cuGetExportTable %02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
                 "%02x%02x%02x%02x%02x%02x",
                 b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12],
                 b[13], b[14], b[15]);
    }
    if (!vgpu_cuda_backend_up())
        return vgpu_cuda_unserved(VGPU_CUDA_cuGetExportTable);
    return vgpu_cuda_backend_export_table(table, id);
}

/* The codes the shim itself returns, and those the remote backend (which has no
 * cuGetErrorName of its own) passes on, with the driver's words for them. */
#define ERR(name, text)                                                                            \
    {                                                                                              \
        name, #name, text                                                                          \
    }
static const struct {
    CUresult code;
    const char *name, *text;
} errors[] = {
    ERR(CUDA_SUCCESS, "no error"),
    ERR(CUDA_ERROR_INVALID_VALUE, "invalid argument"),
    ERR(CUDA_ERROR_OUT_OF_MEMORY, "out of memory"),
    ERR(CUDA_ERROR_NOT_INITIALIZED, "initialization error"),
    ERR(CUDA_ERROR_DEINITIALIZED, "driver shutting down"),
    ERR(CUDA_ERROR_DEVICE_UNAVAILABLE, "CUDA-capable device(s) is/are busy or unavailable"),
    ERR(CUDA_ERROR_NO_DEVICE, "no CUDA-capable device is detected"),
    ERR(CUDA_ERROR_INVALID_DEVICE, "invalid device ordinal"),
    ERR(CUDA_ERROR_INVALID_IMAGE, "device kernel image is invalid"),
    ERR(CUDA_ERROR_INVALID_CONTEXT, "invalid device context"),
    ERR(CUDA_ERROR_NO_BINARY_FOR_GPU, "no kernel image is available for execution on the device"),
    ERR(CUDA_ERROR_INVALID_PTX, "a PTX JIT compilation failed"),
    ERR(CUDA_ERROR_INVALID_SOURCE, "device kernel image is invalid"),
    ERR(CUDA_ERROR_FILE_NOT_FOUND, "file not found"),
    ERR(CUDA_ERROR_INVALID_HANDLE, "invalid resource handle"),
    ERR(CUDA_ERROR_NOT_FOUND, "named symbol not found"),
    ERR(CUDA_ERROR_NOT_READY, "device not ready"),
    ERR(CUDA_ERROR_ILLEGAL_ADDRESS, "an illegal memory access was encountered"),
    ERR(CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES, "too many resources requested for launch"),
    ERR(CUDA_ERROR_LAUNCH_FAILED, "unspecified launch failure"),
    ERR(CUDA_ERROR_NOT_PERMITTED, "operation not permitted"),
    ERR(CUDA_ERROR_NOT_SUPPORTED, "operation not supported"),
    ERR(CUDA_ERROR_UNKNOWN, "unknown error"),
};
#undef ERR

/* Every other code of the API: its name, and words made from it. */
static const struct {
    CUresult code;
    const char *name, *text;
} all_errors[] = {
#define VGPU_ERR(code, name, text) {code, #name, text},
#include "cuda-errors.def"
#undef VGPU_ERR
};

/* The driver's answer when it is up; else the shim's: its own words for the codes it
 * returns itself, the API's name for any other code (CUDA_ERROR_INVALID_VALUE and NULL
 * for a code the API does not have, as the driver does). */
static CUresult describe(CUresult error, const char **str, bool name)
{
    if (!str)
        return CUDA_ERROR_INVALID_VALUE;
    for (size_t i = 0; i < VGPU_ARRAY_SIZE(errors); i++)
        if (errors[i].code == error) {
            *str = name ? errors[i].name : errors[i].text;
            return CUDA_SUCCESS;
        }
    for (size_t i = 0; i < VGPU_ARRAY_SIZE(all_errors); i++)
        if (all_errors[i].code == error) {
            *str = name ? all_errors[i].name : all_errors[i].text;
            return CUDA_SUCCESS;
        }
    *str = NULL;
    return CUDA_ERROR_INVALID_VALUE;
}

VGPU_API CUresult cuGetErrorName(CUresult error, const char **str)
{
    VGPU_COUNT(cuGetErrorName);
    if (vgpu_cuda_backend_up() && vgpu_dispatch_real(&vgpu_cuda_dispatch, VGPU_CUDA_cuGetErrorName))
        return VGPU_FORWARD(cuGetErrorName, error, str);
    return describe(error, str, true);
}

VGPU_API CUresult cuGetErrorString(CUresult error, const char **str)
{
    VGPU_COUNT(cuGetErrorString);
    if (vgpu_cuda_backend_up() &&
        vgpu_dispatch_real(&vgpu_cuda_dispatch, VGPU_CUDA_cuGetErrorString))
        return VGPU_FORWARD(cuGetErrorString, error, str);
    return describe(error, str, false);
}
