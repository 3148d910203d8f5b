/* remote-client: real work through the remote backend, for tests/gpu/remote.sh. Loads
 * libvgpu-cuda.so.1 from SHIM_DIR (VGPU_BACKEND=remote and VGPU_ENDPOINT come from the
 * environment), loads the PTX file, runs vecadd and saxpy on 1M elements and checks every
 * result on the host.
 *   remote-client SHIM_DIR KERNELS.PTX
 * Exit 0 when every result is right, 1 otherwise. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cuapi.h"

#define N (1 << 20)

#define CALL(x)                                                                                    \
    do {                                                                                           \
        int rc_ = (x);                                                                             \
        if (rc_ != CUDA_SUCCESS) {                                                                 \
            fprintf(stderr, "FAIL: %s returned %d\n", #x, rc_);                                    \
            return 1;                                                                              \
        }                                                                                          \
    } while (0)

static double seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return NULL;
    char *buf = calloc(1, 1 << 20);
    size_t n = buf ? fread(buf, 1, (1 << 20) - 1, f) : 0;
    fclose(f);
    if (!n) {
        free(buf);
        return NULL;
    }
    return buf;
}

static int check(const char *what, const float *got, const float *want)
{
    for (int i = 0; i < N; i++) {
        if (fabsf(got[i] - want[i]) > 1e-5f * (1.0f + fabsf(want[i]))) {
            fprintf(stderr, "FAIL: %s: element %d is %g, expected %g\n", what, i, got[i], want[i]);
            return 1;
        }
    }
    printf("%s: %d results correct\n", what, N);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: remote-client SHIM_DIR KERNELS.PTX\n");
        return 2;
    }
    char *ptx = read_text(argv[2]);
    if (!ptx) {
        fprintf(stderr, "FAIL: cannot read %s\n", argv[2]);
        return 1;
    }
    struct cuapi cu;
    if (cuapi_load(&cu, argv[1]) < 0)
        return 1;
    double t0 = seconds();
    CALL(cu.cuInit(0));
    int count = 0, major = 0, minor = 0;
    CALL(cu.cuDeviceGetCount(&count));
    char name[256] = "";
    CALL(cu.cuDeviceGetName(name, sizeof(name), 0));
    CALL(cu.cuDeviceGetAttribute(&major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, 0));
    CALL(cu.cuDeviceGetAttribute(&minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, 0));
    printf("%d device(s); device 0: %s, compute capability %d.%d\n", count, name, major, minor);
    if (strstr(name, "simulated")) {
        fprintf(stderr, "FAIL: the daemon serves a simulated device, not the GPU\n");
        return 1;
    }
    CUcontext ctx;
    CALL(cu.cuDevicePrimaryCtxRetain(&ctx, 0));
    CALL(cu.cuCtxSetCurrent(ctx));
    CUmodule mod;
    CALL(cu.cuModuleLoadData(&mod, ptx));
    CUfunction vecadd, saxpy;
    CALL(cu.cuModuleGetFunction(&vecadd, mod, "vecadd"));
    CALL(cu.cuModuleGetFunction(&saxpy, mod, "saxpy"));

    size_t bytes = N * sizeof(float);
    float *a = malloc(bytes), *b = malloc(bytes), *c = malloc(bytes), *want = malloc(bytes);
    if (!a || !b || !c || !want)
        return 1;
    for (int i = 0; i < N; i++) {
        a[i] = (float)i * 0.5f;
        b[i] = (float)(N - i) * 0.25f;
    }
    CUdeviceptr da, db, dc;
    CALL(cu.cuMemAlloc_v2(&da, bytes));
    CALL(cu.cuMemAlloc_v2(&db, bytes));
    CALL(cu.cuMemAlloc_v2(&dc, bytes));
    CALL(cu.cuMemcpyHtoD_v2(da, a, bytes));
    CALL(cu.cuMemcpyHtoD_v2(db, b, bytes));
    CALL(cu.cuMemsetD32_v2(dc, 0, N));

    int n = N;
    void *vargs[] = {&da, &db, &dc, &n};
    CALL(cu.cuLaunchKernel(vecadd, N / 256, 1, 1, 256, 1, 1, 0, NULL, vargs, NULL));
    CALL(cu.cuCtxSynchronize());
    CALL(cu.cuMemcpyDtoH_v2(c, dc, bytes));
    for (int i = 0; i < N; i++)
        want[i] = a[i] + b[i];
    if (check("vecadd", c, want))
        return 1;

    /* y = 2.5 x + y with x = a, y = c (= a + b), on a stream. */
    float alpha = 2.5f;
    CUstream s;
    CALL(cu.cuStreamCreate(&s, 0));
    void *sargs[] = {&n, &alpha, &da, &dc};
    CALL(cu.cuLaunchKernel(saxpy, N / 256, 1, 1, 256, 1, 1, 0, s, sargs, NULL));
    CALL(cu.cuMemcpyDtoHAsync_v2(c, dc, bytes, s));
    CALL(cu.cuStreamSynchronize(s));
    for (int i = 0; i < N; i++)
        want[i] = alpha * a[i] + (a[i] + b[i]);
    if (check("saxpy", c, want))
        return 1;

    CALL(cu.cuStreamDestroy_v2(s));
    CALL(cu.cuModuleUnload(mod));
    CALL(cu.cuMemFree_v2(da));
    CALL(cu.cuMemFree_v2(db));
    CALL(cu.cuMemFree_v2(dc));
    printf("PASS: vecadd and saxpy through the remote backend (%.2f s)\n", seconds() - t0);
    return 0;
}
