/*
 * dummy_cuda_proc.c: the dummy CUDA driver's self-description entry points:
 * cuGetErrorString / cuGetErrorName, cuGetProcAddress (v1 and _v2) and
 * cuGetExportTable. All of them work before cuInit, as in the real driver.
 */
#include "dummy_cuda.h"

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

/* ---- error strings ------------------------------------------------------- */

static const struct {
    CUresult code;
    const char *name;
    const char *text;
} errors[] = {
    {CUDA_SUCCESS, "CUDA_SUCCESS", "no error"},
    {CUDA_ERROR_INVALID_VALUE, "CUDA_ERROR_INVALID_VALUE", "invalid argument"},
    {CUDA_ERROR_OUT_OF_MEMORY, "CUDA_ERROR_OUT_OF_MEMORY", "out of memory"},
    {CUDA_ERROR_NOT_INITIALIZED, "CUDA_ERROR_NOT_INITIALIZED", "initialization error"},
    {CUDA_ERROR_NO_DEVICE, "CUDA_ERROR_NO_DEVICE", "no CUDA-capable device is detected"},
    {CUDA_ERROR_INVALID_DEVICE, "CUDA_ERROR_INVALID_DEVICE", "invalid device ordinal"},
    {CUDA_ERROR_INVALID_CONTEXT, "CUDA_ERROR_INVALID_CONTEXT", "invalid device context"},
    {CUDA_ERROR_NOT_FOUND, "CUDA_ERROR_NOT_FOUND", "named symbol not found"},
    {CUDA_ERROR_NOT_SUPPORTED, "CUDA_ERROR_NOT_SUPPORTED", "operation not supported"},
    {CUDA_ERROR_UNKNOWN, "CUDA_ERROR_UNKNOWN", "unknown error"},
};

/* Unknown codes give *str = NULL and CUDA_ERROR_INVALID_VALUE, like the driver. */
static CUresult describe(CUresult error, const char **str, bool want_name)
{
    if (!str)
        return CUDA_ERROR_INVALID_VALUE;
    for (size_t i = 0; i < sizeof errors / sizeof errors[0]; i++) {
        if (errors[i].code == error) {
            *str = want_name ? errors[i].name : errors[i].text;
            return CUDA_SUCCESS;
        }
    }
    *str = NULL;
    return CUDA_ERROR_INVALID_VALUE;
}

DUMMY_EXPORT CUresult cuGetErrorString(CUresult error, const char **str)
{
    CU_ENTER(cuGetErrorString);
    return describe(error, str, false);
}

DUMMY_EXPORT CUresult cuGetErrorName(CUresult error, const char **str)
{
    CU_ENTER(cuGetErrorName);
    return describe(error, str, true);
}

/* ---- cuGetProcAddress ---------------------------------------------------- */

enum {
    PROC_FLAG_PER_THREAD_DEFAULT_STREAM = 1 << 1, /* CU_GET_PROC_ADDRESS_PER_THREAD_... */
    PROC_SUCCESS = 0,                             /* CU_GET_PROC_ADDRESS_SUCCESS */
    PROC_SYMBOL_NOT_FOUND = 1,                    /* CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND */
};

/*
 * The dummy's own definition of every entry point, looked up once with dlsym
 * on this library's own handle, so an interposing shim of the same name is
 * never returned: callers get the dummy's code, as from the real driver.
 */
static void *own_entry[E_CUDA_COUNT];
static pthread_once_t own_entry_once = PTHREAD_ONCE_INIT;

static void resolve_own_entries(void)
{
    Dl_info info;
    if (!dladdr((void *)&own_entry, &info) || !info.dli_fname)
        return;
    void *self = dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD);
    if (!self) {
        fprintf(stderr, "dummy-cuda: cannot reopen %s: %s\n", info.dli_fname, dlerror());
        return;
    }
    for (int i = 0; i < E_CUDA_COUNT; i++)
        own_entry[i] = dlsym(self, cuda_api.names[i]);
    dlclose(self);
}

/* What DUMMY_CUDA_PROC_ANSWER ("base=symbol,...") makes cuGetProcAddress answer for
 * base: the dummy's symbol, or, for "internal", a function the dummy does not export
 * (as a real driver may hand out). NULL: base is not listed, or names no entry. */
static CUresult internal_function(void)
{
    return CUDA_SUCCESS;
}

static void *forced_answer(const char *base, bool *listed)
{
    *listed = false;
    size_t n = strlen(base);
    for (const char *p = cuda_cfg.proc_answer; p && *p;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len > n + 1 && strncmp(p, base, n) == 0 && p[n] == '=') {
            char symbol[256];
            snprintf(symbol, sizeof(symbol), "%.*s", (int)(len - n - 1), p + n + 1);
            *listed = true;
            if (strcmp(symbol, "internal") == 0)
                return (void *)internal_function;
            int idx = dummy_api_find(&cuda_api, symbol);
            return idx >= 0 ? own_entry[idx] : NULL;
        }
        p = end ? end + 1 : p + len;
    }
    return NULL;
}

/*
 * Look symbol up as symbol_ptsz (only with the per-thread-stream flag), then
 * symbol_v2, then symbol; names in DUMMY_CUDA_PROC_MISSING are not found.
 */
static CUresult get_proc(const char *symbol, void **pfn, cuuint64_t flags, int *status)
{
    const char *suffixes[] = {"_ptsz", "_v2", ""};
    char name[256];

    if (!symbol || !pfn)
        return CUDA_ERROR_INVALID_VALUE;
    *pfn = NULL;
    *status = PROC_SYMBOL_NOT_FOUND;
    pthread_once(&own_entry_once, resolve_own_entries);
    if (dummy_list_contains(cuda_cfg.proc_missing, symbol))
        return CUDA_ERROR_NOT_FOUND;
    bool listed;
    void *forced = forced_answer(symbol, &listed);
    if (listed) {
        *pfn = forced;
        *status = forced ? PROC_SUCCESS : PROC_SYMBOL_NOT_FOUND;
        return forced ? CUDA_SUCCESS : CUDA_ERROR_NOT_FOUND;
    }

    size_t first = (flags & PROC_FLAG_PER_THREAD_DEFAULT_STREAM) ? 0 : 1;
    for (size_t i = first; i < sizeof suffixes / sizeof suffixes[0]; i++) {
        if ((size_t)snprintf(name, sizeof name, "%s%s", symbol, suffixes[i]) >= sizeof name)
            continue;
        int idx = dummy_api_find(&cuda_api, name);
        if (idx < 0 || !own_entry[idx])
            continue;
        if (dummy_list_contains(cuda_cfg.proc_missing, name))
            return CUDA_ERROR_NOT_FOUND;
        *pfn = own_entry[idx];
        *status = PROC_SUCCESS;
        return CUDA_SUCCESS;
    }
    return CUDA_ERROR_NOT_FOUND;
}

DUMMY_EXPORT CUresult cuGetProcAddress(const char *symbol, void **pfn, int cuda_version,
                                       cuuint64_t flags)
{
    (void)cuda_version;
    CU_ENTER(cuGetProcAddress);
    int status;
    return get_proc(symbol, pfn, flags, &status);
}

DUMMY_EXPORT CUresult cuGetProcAddress_v2(const char *symbol, void **pfn, int cuda_version,
                                          cuuint64_t flags, CUdriverProcAddressQueryResult *status)
{
    (void)cuda_version;
    CU_ENTER(cuGetProcAddress_v2);
    int found;
    CUresult rc = get_proc(symbol, pfn, flags, &found);
    if (status && rc != CUDA_ERROR_INVALID_VALUE)
        *status = found;
    return rc;
}

/* ---- cuGetExportTable ---------------------------------------------------- */

/* The one export table the dummy knows: a size, then two functions. */
struct dummy_export_table {
    size_t size;
    int (*answer42)(void);
    int (*answer43)(void);
};

static int answer42(void)
{
    return 42;
}

static int answer43(void)
{
    return 43;
}

static const struct dummy_export_table export_table = {sizeof export_table, answer42, answer43};

/* 00112233-4455-6677-8899-aabbccddeeff */
static const unsigned char export_table_id[16] = {0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77,
                                                  0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff};

DUMMY_EXPORT CUresult cuGetExportTable(const void **table, const CUuuid *id)
{
    CU_ENTER(cuGetExportTable);
    if (!table || !id)
        return CUDA_ERROR_INVALID_VALUE;
    if (memcmp(id->bytes, export_table_id, sizeof export_table_id) != 0) {
        *table = NULL;
        return CUDA_ERROR_INVALID_VALUE;
    }
    *table = &export_table;
    return CUDA_SUCCESS;
}
