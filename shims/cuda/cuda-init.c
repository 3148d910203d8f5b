/* cuda-init: the entry points that decide what a process sees before any device
 * work: cuInit, cuDriverGetVersion and cuGetExportTable. */
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
