/* era: Ollama release eras and their loading routes, as data. */
#include "era.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define NEEDED_CUDA {VP_ROUTE_NEEDED, "libcuda.so.1", false, "DT_NEEDED of the CUDA backend"}
#define CUDART_DLOPEN                                                                      \
    {VP_ROUTE_DLOPEN_BARE, "libcuda.so.1", false, "bundled libcudart dlopen()s the driver"}
#define GLOB_CUDA                                                                          \
    {VP_ROUTE_GLOB, "lib/ollama/libcuda.so*, $LD_LIBRARY_PATH/libcuda.so*, system dirs",   \
     false, "Go discovery dlopen()s the first match by absolute path"}

static const struct vp_era_spec eras[VP_ERA_COUNT] = {
    [VP_ERA_A0] = {
        VP_ERA_A0, "A0", "0.1.20", "0.1.31",
        "llama.cpp embedded as libext_server.so, extracted to a temp dir and dlopen()ed "
        "in the serve process",
        false,
        {{"serve", "bin/ollama", false, {0}, NULL,
          {{VP_ROUTE_EXTRACTED, "libext_server.so", false,
            "extracted to a temp dir at every start"},
           {VP_ROUTE_GLOB, "system libnvidia-ml.so* globs", true,
            "NVML found through globs and dlopen()ed by absolute path"}}}},
    },
    [VP_ERA_A] = {
        VP_ERA_A, "A", "0.1.32", "0.5.1",
        "ollama_llama_server runners extracted to a temp dir at every start",
        true,
        {{"serve", "bin/ollama", false, {0}, NULL, {GLOB_CUDA, CUDART_DLOPEN}},
         {"runner", "<tmp>/ollama*/runners/*/ollama_llama_server", true, {0}, NULL,
          {{VP_ROUTE_EXTRACTED, "ollama_llama_server", false,
            "extracted to a temp dir at every start"}}}},
    },
    [VP_ERA_B] = {
        VP_ERA_B, "B", "0.5.2", "0.5.7",
        "runners on disk in lib/ollama/runners/<variant>/",
        true,
        {{"serve", "bin/ollama", false, {0}, NULL, {GLOB_CUDA, CUDART_DLOPEN}},
         {"ollama_llama_server", "lib/ollama/runners/*/ollama_llama_server", false,
          {"lib/ollama", "$EXEDIR"}, NULL, {NEEDED_CUDA, CUDART_DLOPEN}}},
    },
    [VP_ERA_C] = {
        VP_ERA_C, "C", "0.5.8", "0.12.3",
        "`ollama runner` loads lib/ollama/cuda_vNN/libggml-cuda.so",
        true,
        {{"serve", "bin/ollama", false, {0}, NULL, {GLOB_CUDA, CUDART_DLOPEN}},
         {"runner", "bin/ollama", false, {"lib/ollama/cuda_v*", "lib/ollama"},
          "lib/ollama/cuda_v*/libggml-cuda.so", {NEEDED_CUDA, CUDART_DLOPEN}}},
    },
    [VP_ERA_D] = {
        VP_ERA_D, "D", "0.12.4", "0.30.0-rc31",
        "discovery in bootstrap `ollama runner` subprocesses; NVML from ggml's mem_nvml",
        false,
        {{"serve", "bin/ollama", false, {0}, NULL, {{0}}},
         {"runner", "bin/ollama", false, {"lib/ollama", "lib/ollama/cuda_v*"},
          "lib/ollama/cuda_v*/libggml-cuda.so",
          {NEEDED_CUDA, CUDART_DLOPEN,
           {VP_ROUTE_DLOPEN_ABS, "/usr/lib/wsl/lib/libnvidia-ml.so.1", true,
            "mem_nvml tries the WSL path first"},
           {VP_ROUTE_DLOPEN_BARE, "libnvidia-ml.so.1", true, "mem_nvml"}}}},
    },
    [VP_ERA_E] = {
        VP_ERA_E, "E", "0.30.0-rc32", NULL,
        "llama-server with lib/ollama/cuda_vNN/libggml-cuda.so; `ollama gpu-discover` probe",
        false,
        {{"serve", "bin/ollama", false, {0}, NULL, {{0}}},
         {"gpu-discover", "bin/ollama", false, {"lib/ollama", "lib/ollama/cuda_v*"},
          "lib/ollama/cuda_v*/libggml-cuda.so",
          {NEEDED_CUDA, CUDART_DLOPEN,
           {VP_ROUTE_DLOPEN_BARE, "libcuda.so.1", false, "native probe"},
           {VP_ROUTE_DLOPEN_BARE, "libnvidia-ml.so.1", true, "native probe"}}},
         {"llama-server", "lib/ollama/llama-server", false,
          {"lib/ollama", "lib/ollama/cuda_v*"}, "lib/ollama/cuda_v*/libggml-cuda.so",
          {NEEDED_CUDA, CUDART_DLOPEN}}},
    },
};

const struct vp_era_spec *vp_era_get(enum vp_era era)
{
    return era < VP_ERA_COUNT ? &eras[era] : NULL;
}

const char *vp_era_name(enum vp_era era)
{
    return era < VP_ERA_COUNT ? eras[era].name : "unknown";
}

int vp_era_parse(const char *s)
{
    for (int i = 0; i < VP_ERA_COUNT; i++)
        if (strcasecmp(s, eras[i].name) == 0)
            return i;
    return -1;
}

const char *vp_route_kind_name(enum vp_route_kind k)
{
    static const char *const names[] = {"needed", "dlopen", "dlopen-absolute", "glob",
                                        "extracted"};
    return names[k];
}

/* Splits "0.30.0-rc32" into numeric parts and a pre-release number (-1: release). */
static void parse_version(const char *v, long part[4], long *pre)
{
    memset(part, 0, 4 * sizeof(long));
    *pre = -1;
    if (*v == 'v')
        v++;
    for (int i = 0; i < 4 && isdigit((unsigned char)*v); i++) {
        char *end;
        part[i] = strtol(v, &end, 10);
        v = end;
        if (*v != '.')
            break;
        v++;
    }
    const char *dash = strchr(v, '-');
    if (!dash && *v && !isdigit((unsigned char)*v))
        dash = v - 1;
    if (dash) {
        const char *d = dash + 1;
        while (*d && !isdigit((unsigned char)*d))
            d++;
        *pre = *d ? strtol(d, NULL, 10) : 0;
    }
}

int vp_version_cmp(const char *a, const char *b)
{
    long pa[4], pb[4], ra, rb;
    parse_version(a, pa, &ra);
    parse_version(b, pb, &rb);
    for (int i = 0; i < 4; i++)
        if (pa[i] != pb[i])
            return pa[i] < pb[i] ? -1 : 1;
    if (ra == rb)
        return 0;
    if (ra < 0)
        return 1; /* a release sorts after its pre-releases */
    if (rb < 0)
        return -1;
    return ra < rb ? -1 : 1;
}

unsigned vp_era_from_version(const char *version)
{
    if (!version || !isdigit((unsigned char)version[version[0] == 'v']))
        return 0;
    for (int i = VP_ERA_COUNT - 1; i >= 0; i--) {
        /* Era boundaries count the first pre-release of a version as that version,
         * except where a boundary is itself a pre-release (E began at 0.30.0-rc32). */
        long part[4], pre;
        parse_version(eras[i].first, part, &pre);
        int c;
        if (pre >= 0) {
            c = vp_version_cmp(version, eras[i].first);
        } else {
            long vp[4], vpre;
            parse_version(version, vp, &vpre);
            c = 0;
            for (int k = 0; k < 4 && c == 0; k++)
                c = vp[k] < part[k] ? -1 : vp[k] > part[k];
        }
        if (c >= 0)
            return 1u << i;
    }
    return 0;
}
