/* The driver API and NVML through the wire: discovery (both APIs name the same device,
 * CUDA_VISIBLE_DEVICES applied by the daemon), copies of every size and kind, memset, and
 * a module in the simulated device. */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "scenarios.h"

struct discovery {
    char uuid[48];
    char name[256];
    int count; /* what a CUDA_VISIBLE_DEVICES client counted */
    char uuid_seen[48];
};

/* "0000:01:00.0" (CUDA) or "00000000:01:00.0" (NVML) into numbers. */
static int parse_bus_id(const char *s, unsigned v[4])
{
    return sscanf(s, "%x:%x:%x.%x", &v[0], &v[1], &v[2], &v[3]) == 4 ? 0 : -1;
}

static int discover(void *arg)
{
    struct discovery *sh = arg;
    struct cuapi cu;
    struct nvmlapi nv;
    CHECK(cuapi_load(&cu, NULL) == 0 && nvmlapi_load(&nv, NULL) == 0, "cannot load the shims");

    CHECK_RC(cu.cuInit(0), CUDA_SUCCESS);
    int version = 0, count = -1;
    CHECK_RC(cu.cuDriverGetVersion(&version), CUDA_SUCCESS);
    CHECK(version == 13000, "cuDriverGetVersion gave %d, expected 13000", version);
    CHECK_RC(cu.cuDeviceGetCount(&count), CUDA_SUCCESS);
    CHECK(count == 1, "cuDeviceGetCount gave %d, expected 1", count);
    CUdevice dev = -1;
    CHECK_RC(cu.cuDeviceGet(&dev, 0), CUDA_SUCCESS);
    char name[256] = "";
    CHECK_RC(cu.cuDeviceGetName(name, sizeof(name), dev), CUDA_SUCCESS);
    CHECK(strstr(name, "simulated") || strstr(name, "Simulated"),
          "device name '%s' does not say it is simulated", name);
    size_t total = 0;
    CHECK_RC(cu.cuDeviceTotalMem_v2(&total, dev), CUDA_SUCCESS);
    CHECK(total >= 1024 * MiB, "cuDeviceTotalMem_v2 gave %zu bytes", total);
    int major = 0, minor = -1;
    CHECK_RC(cu.cuDeviceGetAttribute(&major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, dev),
             CUDA_SUCCESS);
    CHECK_RC(cu.cuDeviceGetAttribute(&minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, dev),
             CUDA_SUCCESS);
    CHECK(major == 8 && minor == 9, "compute capability %d.%d, expected 8.9", major, minor);
    CUuuid uuid;
    memset(&uuid, 0, sizeof(uuid));
    CHECK_RC(cu.cuDeviceGetUuid_v2(&uuid, dev), CUDA_SUCCESS);
    char cu_uuid[48];
    cuapi_uuid_string(&uuid, cu_uuid);
    char bus[64] = "";
    CHECK_RC(cu.cuDeviceGetPCIBusId(bus, sizeof(bus), dev), CUDA_SUCCESS);
    unsigned cb[4], nb[4];
    CHECK(parse_bus_id(bus, cb) == 0, "cuDeviceGetPCIBusId gave '%s'", bus);

    CHECK_RC(nv.nvmlInit_v2(), 0);
    unsigned n = 0;
    CHECK_RC(nv.nvmlDeviceGetCount_v2(&n), 0);
    CHECK(n == 1, "nvmlDeviceGetCount_v2 gave %u, expected 1", n);
    nvmlDevice_t h = NULL;
    CHECK_RC(nv.nvmlDeviceGetHandleByIndex_v2(0, &h), 0);
    char nv_uuid[96] = "", nv_name[96] = "", driver[96] = "";
    CHECK_RC(nv.nvmlDeviceGetUUID(h, nv_uuid, sizeof(nv_uuid)), 0);
    CHECK(!strcmp(nv_uuid, cu_uuid), "NVML UUID %s but CUDA's bytes read %s", nv_uuid, cu_uuid);
    CHECK_RC(nv.nvmlDeviceGetName(h, nv_name, sizeof(nv_name)), 0);
    CHECK(!strcmp(nv_name, name), "NVML name '%s', CUDA name '%s'", nv_name, name);
    nvmlPciInfo_t pci;
    memset(&pci, 0, sizeof(pci));
    CHECK_RC(nv.nvmlDeviceGetPciInfo_v3(h, &pci), 0);
    CHECK(parse_bus_id(pci.busId, nb) == 0, "NVML busId '%s'", pci.busId);
    CHECK(!memcmp(cb, nb, sizeof(cb)), "CUDA bus id %s, NVML %s", bus, pci.busId);
    CHECK(pci.domain == nb[0] && pci.bus == nb[1] && pci.device == nb[2],
          "NVML pci fields %x:%x:%x disagree with its busId %s", pci.domain, pci.bus, pci.device,
          pci.busId);
    CHECK_RC(nv.nvmlSystemGetDriverVersion(driver, sizeof(driver)), 0);
    unsigned dmaj = 0, dmin = 0;
    CHECK(sscanf(driver, "%u.%u", &dmaj, &dmin) == 2 && dmaj >= 550,
          "NVML driver version '%s' (expected NNN.NN, at least 550)", driver);
    nvmlMemory_t mem;
    CHECK_RC(nv.nvmlDeviceGetMemoryInfo(h, &mem), 0);
    CHECK(mem.total == total, "NVML total memory %llu, CUDA %zu", mem.total, total);
    CHECK(mem.used <= mem.total && mem.free <= mem.total, "NVML memory %llu used %llu free of %llu",
          mem.used, mem.free, mem.total);
    CHECK_RC(nv.nvmlShutdown(), 0);
    note("# device '%s' %s bus %s cc %d.%d %zu MiB, driver %s", name, cu_uuid, bus, major, minor,
         total / MiB, driver);
    snprintf(sh->uuid, sizeof(sh->uuid), "%s", cu_uuid);
    snprintf(sh->name, sizeof(sh->name), "%s", name);
    return 0;
}

/* Under CUDA_VISIBLE_DEVICES: how many devices CUDA sees (cuInit may say NO_DEVICE for 0). */
static int count_visible(void *arg)
{
    struct discovery *sh = arg;
    struct cuapi cu;
    sh->count = -1;
    CHECK(cuapi_load(&cu, NULL) == 0, "cannot load the CUDA shim");
    int rc = cu.cuInit(0);
    CHECK(rc == CUDA_SUCCESS || rc == CUDA_ERROR_NO_DEVICE, "cuInit returned %d", rc);
    if (rc == CUDA_ERROR_NO_DEVICE) {
        sh->count = 0;
        return 0;
    }
    CHECK_RC(cu.cuDeviceGetCount(&sh->count), CUDA_SUCCESS);
    if (sh->count > 0) {
        CUuuid u;
        CHECK_RC(cu.cuDeviceGetUuid_v2(&u, 0), CUDA_SUCCESS);
        cuapi_uuid_string(&u, sh->uuid_seen);
    }
    return 0;
}

int scenario_discovery(const char *transport)
{
    struct daemon d;
    if (daemon_start(&d, transport, NULL))
        return 1;
    struct discovery *sh = shared_alloc(sizeof(*sh));
    int rc = client_run(d.endpoint, NULL, 60, discover, sh);
    if (rc) {
        daemon_dump_log(&d);
        daemon_kill(&d);
        CHECK(0, "discovery client exited %d", rc);
    }
    char by_uuid[80];
    snprintf(by_uuid, sizeof(by_uuid), "CUDA_VISIBLE_DEVICES=%s", sh->uuid);
    const struct {
        const char *env;
        int want;
    } cases[] = {
        {"CUDA_VISIBLE_DEVICES=", 0},
        {"CUDA_VISIBLE_DEVICES=0", 1},
        {by_uuid, 1},
        {"CUDA_VISIBLE_DEVICES=1", 0},
        {"CUDA_VISIBLE_DEVICES=0,1", 1},
        {"CUDA_VISIBLE_DEVICES=1,0", 0},
    };
    int failed = 0;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *env[] = {cases[i].env, NULL};
        sh->uuid_seen[0] = '\0';
        rc = client_run(d.endpoint, env, 30, count_visible, sh);
        if (rc || sh->count != cases[i].want) {
            fail_at(__FILE__, __LINE__, "%s: client exit %d, %d devices, expected %d", cases[i].env,
                    rc, sh->count, cases[i].want);
            failed = 1;
        } else if (sh->count && strcmp(sh->uuid_seen, sh->uuid)) {
            fail_at(__FILE__, __LINE__, "%s: device 0 is %s, expected %s", cases[i].env,
                    sh->uuid_seen, sh->uuid);
            failed = 1;
        }
    }
    if (failed) {
        daemon_kill(&d);
        return 1;
    }
    return daemon_stop(&d);
}

/* ---- copies ---- */

struct bufs {
    unsigned char *src, *dst;
};

static int same(const unsigned char *want, const unsigned char *got, size_t n, const char *what,
                size_t size)
{
    if (!memcmp(want, got, n))
        return 0;
    size_t i = 0;
    while (want[i] == got[i])
        i++;
    fail_at(__FILE__, __LINE__, "%s of %zu bytes: first difference at byte %zu (%02x, want %02x)",
            what, size, i, got[i], want[i]);
    return 1;
}

/* H2D then D2H, D2D, and the async variants on a stream, for one size. */
static int copy_size(struct cuapi *cu, struct bufs *b, size_t n, uint64_t seed)
{
    size_t alloc = n ? n : 1;
    CUdeviceptr d1 = 0, d2 = 0;
    CHECK_RC(cu->cuMemAlloc_v2(&d1, alloc), CUDA_SUCCESS);
    CHECK_RC(cu->cuMemAlloc_v2(&d2, alloc), CUDA_SUCCESS);
    CHECK(d1 && d2 && d1 != d2, "allocations at %#llx and %#llx", d1, d2);

    fill_random(b->src, n, seed);
    memset(b->dst, 0xa5, n);
    CHECK_RC(cu->cuMemcpyHtoD_v2(d1, b->src, n), CUDA_SUCCESS);
    CHECK_RC(cu->cuMemcpyDtoH_v2(b->dst, d1, n), CUDA_SUCCESS);
    if (same(b->src, b->dst, n, "H2D+D2H", n))
        return 1;
    memset(b->dst, 0x5a, n);
    CHECK_RC(cu->cuMemcpyDtoD_v2(d2, d1, n), CUDA_SUCCESS);
    CHECK_RC(cu->cuMemcpyDtoH_v2(b->dst, d2, n), CUDA_SUCCESS);
    if (same(b->src, b->dst, n, "D2D+D2H", n))
        return 1;

    CUstream s = NULL;
    CHECK_RC(cu->cuStreamCreate(&s, 0), CUDA_SUCCESS);
    fill_random(b->src, n, seed + 1000);
    memset(b->dst, 0x3c, n);
    CHECK_RC(cu->cuMemcpyHtoDAsync_v2(d2, b->src, n, s), CUDA_SUCCESS);
    CHECK_RC(cu->cuMemcpyDtoDAsync_v2(d1, d2, n, s), CUDA_SUCCESS);
    CHECK_RC(cu->cuMemcpyDtoHAsync_v2(b->dst, d1, n, s), CUDA_SUCCESS);
    CHECK_RC(cu->cuStreamSynchronize(s), CUDA_SUCCESS);
    if (same(b->src, b->dst, n, "async H2D+D2D+D2H", n))
        return 1;
    CHECK_RC(cu->cuStreamDestroy_v2(s), CUDA_SUCCESS);

    CHECK_RC(cu->cuMemFree_v2(d1), CUDA_SUCCESS);
    CHECK_RC(cu->cuMemFree_v2(d2), CUDA_SUCCESS);
    return 0;
}

/* Memset of each width inside a known pattern: the range set, the bytes around untouched;
 * a copy into the middle of an allocation; a copy past its end refused. */
static int memsets(struct cuapi *cu, struct bufs *b)
{
    const size_t n = 4 * MiB;
    CUdeviceptr d;
    CHECK_RC(cu->cuMemAlloc_v2(&d, n), CUDA_SUCCESS);
    static const struct {
        unsigned width, offset;
        size_t count;
        unsigned value;
    } sets[] = {{1, 1, 1000003, 0x5a}, {2, 2, 4097, 0xbeef}, {4, 12, 262147, 0xdeadbeef}};
    for (size_t k = 0; k < sizeof(sets) / sizeof(sets[0]); k++) {
        fill_random(b->src, n, 77 + k);
        CHECK_RC(cu->cuMemcpyHtoD_v2(d, b->src, n), CUDA_SUCCESS);
        CUdeviceptr at = d + sets[k].offset;
        if (sets[k].width == 1)
            CHECK_RC(cu->cuMemsetD8_v2(at, (unsigned char)sets[k].value, sets[k].count),
                     CUDA_SUCCESS);
        else if (sets[k].width == 2)
            CHECK_RC(cu->cuMemsetD16_v2(at, (unsigned short)sets[k].value, sets[k].count),
                     CUDA_SUCCESS);
        else
            CHECK_RC(cu->cuMemsetD32_v2(at, sets[k].value, sets[k].count), CUDA_SUCCESS);
        for (size_t i = 0; i < sets[k].count; i++)
            memcpy(b->src + sets[k].offset + i * sets[k].width, &sets[k].value, sets[k].width);
        CHECK_RC(cu->cuMemcpyDtoH_v2(b->dst, d, n), CUDA_SUCCESS);
        char what[32];
        snprintf(what, sizeof(what), "cuMemsetD%u", sets[k].width * 8);
        if (same(b->src, b->dst, n, what, sets[k].count))
            return 1;
    }
    /* 4 KiB+3 at an odd offset inside the allocation. */
    fill_random(b->src, n, 99);
    CHECK_RC(cu->cuMemcpyHtoD_v2(d, b->src, n), CUDA_SUCCESS);
    fill_random(b->src + 1001, 4099, 100);
    CHECK_RC(cu->cuMemcpyHtoD_v2(d + 1001, b->src + 1001, 4099), CUDA_SUCCESS);
    CHECK_RC(cu->cuMemcpyDtoH_v2(b->dst, d, n), CUDA_SUCCESS);
    if (same(b->src, b->dst, n, "H2D at an offset", 4099))
        return 1;
    /* Past the end of the allocation: refused, and the connection still serves. */
    int rc = cu->cuMemcpyDtoH_v2(b->dst, d + n - 1, 2);
    CHECK(rc != CUDA_SUCCESS, "a D2H of 2 bytes from the last byte of an allocation succeeded");
    rc = cu->cuMemcpyHtoD_v2(d + n - 1, b->src, 2);
    CHECK(rc != CUDA_SUCCESS, "an H2D of 2 bytes to the last byte of an allocation succeeded");
    rc = cu->cuMemsetD8_v2(d + 1, 0, n);
    CHECK(rc != CUDA_SUCCESS, "a memset past the end of an allocation succeeded");
    CHECK_RC(cu->cuMemcpyDtoH_v2(b->dst, d, n), CUDA_SUCCESS);
    if (same(b->src, b->dst, n, "the allocation after refused copies", n))
        return 1;
    CHECK_RC(cu->cuMemFree_v2(d), CUDA_SUCCESS);
    return 0;
}

/* The per-thread default stream variants (what a program built with --default-stream
 * per-thread calls): a round trip through them with stream 0. */
static int ptsz_copies(struct cuapi *cu, struct bufs *b)
{
    typedef CUresult (*htod_fn)(CUdeviceptr, const void *, size_t, CUstream);
    typedef CUresult (*dtoh_fn)(void *, CUdeviceptr, size_t, CUstream);
    typedef CUresult (*sync_fn)(CUstream);
    typedef CUresult (*htod_sync_fn)(CUdeviceptr, const void *, size_t);
    htod_fn htod = (htod_fn)dlsym(cu->lib, "cuMemcpyHtoDAsync_v2_ptsz");
    dtoh_fn dtoh = (dtoh_fn)dlsym(cu->lib, "cuMemcpyDtoHAsync_v2_ptsz");
    sync_fn sync = (sync_fn)dlsym(cu->lib, "cuStreamSynchronize_ptsz");
    htod_sync_fn htod_ptds = (htod_sync_fn)dlsym(cu->lib, "cuMemcpyHtoD_v2_ptds");
    CHECK(htod && dtoh && sync && htod_ptds, "the shim lacks a _ptsz/_ptds export");
    size_t n = MiB + 5;
    CUdeviceptr d;
    CHECK_RC(cu->cuMemAlloc_v2(&d, n), CUDA_SUCCESS);
    fill_random(b->src, n, 321);
    CHECK_RC(htod(d, b->src, n, NULL), CUDA_SUCCESS);
    CHECK_RC(dtoh(b->dst, d, n, NULL), CUDA_SUCCESS);
    CHECK_RC(sync(NULL), CUDA_SUCCESS);
    if (same(b->src, b->dst, n, "a _ptsz round trip", n))
        return 1;
    fill_random(b->src, n, 322);
    CHECK_RC(htod_ptds(d, b->src, n), CUDA_SUCCESS);
    CHECK_RC(cu->cuMemcpyDtoH_v2(b->dst, d, n), CUDA_SUCCESS);
    if (same(b->src, b->dst, n, "a _ptds copy", n))
        return 1;
    CHECK_RC(cu->cuMemFree_v2(d), CUDA_SUCCESS);
    return 0;
}

static int copier(void *arg)
{
    (void)arg;
    static const size_t sizes[] = {0, 1, 4096 + 3, MiB, 64 * MiB, 256 * MiB};
    struct cuapi cu;
    if (cu_open(&cu))
        return 1;
    struct bufs b = {malloc(256 * MiB), malloc(256 * MiB)};
    CHECK(b.src && b.dst, "out of host memory");
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        uint64_t t0 = now_ns();
        if (copy_size(&cu, &b, sizes[i], i + 1))
            return 1;
        note("# %zu bytes: H2D, D2H, D2D and async round-trips bit-exact (%.0f ms)", sizes[i],
             (double)(now_ns() - t0) / 1e6);
    }
    if (memsets(&cu, &b))
        return 1;
    note("# memset D8/D16/D32, offset and out-of-range copies ok");
    if (ptsz_copies(&cu, &b))
        return 1;
    note("# per-thread default stream variants (_ptsz, _ptds) ok");
    free(b.src);
    free(b.dst);
    return 0;
}

int scenario_copies(const char *transport)
{
    struct daemon d;
    if (daemon_start(&d, transport, NULL))
        return 1;
    int rc = client_run(d.endpoint, NULL, 240, copier, NULL);
    if (rc) {
        daemon_dump_log(&d);
        daemon_kill(&d);
        CHECK(0, "copy client exited %d", rc);
    }
    return daemon_stop(&d);
}

/* ---- a module under --sim ---- */

static int moduler(void *arg)
{
    const char *ptx = arg;
    struct cuapi cu;
    if (cu_open(&cu))
        return 1;
    CUmodule mod = NULL;
    CHECK_RC(cu.cuModuleLoadData(&mod, ptx), CUDA_SUCCESS);
    CHECK(mod, "cuModuleLoadData gave a NULL module");
    CUfunction f = NULL, missing = NULL;
    CHECK_RC(cu.cuModuleGetFunction(&f, mod, "vecadd"), CUDA_SUCCESS);
    CHECK(f, "cuModuleGetFunction gave a NULL function");
    CHECK_RC(cu.cuModuleGetFunction(&missing, mod, "no_such_kernel"), CUDA_ERROR_NOT_FOUND);
    CUdeviceptr a, b, c;
    CHECK_RC(cu.cuMemAlloc_v2(&a, 4096), CUDA_SUCCESS);
    CHECK_RC(cu.cuMemAlloc_v2(&b, 4096), CUDA_SUCCESS);
    CHECK_RC(cu.cuMemAlloc_v2(&c, 4096), CUDA_SUCCESS);
    int n = 1024;
    void *params[] = {&a, &b, &c, &n};
    CHECK_RC(cu.cuLaunchKernel(f, 4, 1, 1, 256, 1, 1, 0, NULL, params, NULL),
             CUDA_ERROR_NOT_SUPPORTED);
    /* The connection serves on after the refused launch. */
    CHECK_RC(cu.cuCtxSynchronize(), CUDA_SUCCESS);
    CHECK_RC(cu.cuModuleUnload(mod), CUDA_SUCCESS);
    CHECK_RC(cu.cuMemFree_v2(a), CUDA_SUCCESS);
    CHECK_RC(cu.cuMemFree_v2(b), CUDA_SUCCESS);
    CHECK_RC(cu.cuMemFree_v2(c), CUDA_SUCCESS);
    return 0;
}

int scenario_module(const char *ptx_path)
{
    FILE *f = fopen(ptx_path, "re");
    CHECK(f, "cannot open %s", ptx_path);
    static char ptx[65536];
    size_t n = fread(ptx, 1, sizeof(ptx) - 1, f);
    fclose(f);
    CHECK(n > 0 && n < sizeof(ptx) - 1, "%s: %zu bytes", ptx_path, n);
    ptx[n] = '\0';
    struct daemon d;
    if (daemon_start(&d, "unix", NULL))
        return 1;
    int rc = client_run(d.endpoint, NULL, 60, moduler, ptx);
    if (rc) {
        daemon_dump_log(&d);
        daemon_kill(&d);
        CHECK(0, "module client exited %d", rc);
    }
    return daemon_stop(&d);
}
