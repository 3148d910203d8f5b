/* cudart-probe: a program linked against NVIDIA's libcudart.so.13 (declared here: no
 * CUDA headers). It asks the runtime for the driver version and the device count and
 * prints what the runtime said and what the shim counted (vgpu_cuda_stat, found
 * through the global scope when the shim is loaded). */
#include <dlfcn.h>
#include <stdio.h>

int cudaDriverGetVersion(int *version);
int cudaGetDeviceCount(int *count);
const char *cudaGetErrorName(int error);

typedef int (*stat_fn)(unsigned, const char **, unsigned long *, unsigned long *);

int main(void)
{
    int version = -1, count = -1;
    int rv = cudaDriverGetVersion(&version);
    int rc = cudaGetDeviceCount(&count);
    printf("cudaDriverGetVersion %d %s %d\n", rv, cudaGetErrorName(rv), version);
    printf("cudaGetDeviceCount %d %s %d\n", rc, cudaGetErrorName(rc), count);
    union {
        void *p;
        stat_fn fn;
    } stat = {.p = dlsym(RTLD_DEFAULT, "vgpu_cuda_stat")};
    if (!stat.p) {
        printf("shim absent\n");
        return 0;
    }
    const char *name;
    unsigned long calls, unserved;
    for (unsigned i = 0; stat.fn(i, &name, &calls, &unserved); i++)
        if (calls || unserved)
            printf("stat %s %lu %lu\n", name, calls, unserved);
    return 0;
}
