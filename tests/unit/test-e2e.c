/* e2e: the parser of Ollama's compute-library log lines over every era's spelling
 * (reference/ollama-loading.md §4, the examples filled in as Ollama prints them), and the
 * verdict over them: CUDA with a device the shim reports passes; the CPU, Vulkan, another
 * library, another driver's device, and a detection the shim cannot back fail. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "e2e.h"

/* v0.1.40–v0.3.9: no variant key. */
#define L_CUDA_040                                                                                 \
    "time=2024-05-20T10:11:12.345+02:00 level=INFO source=types.go:71 msg=\"inference "            \
    "compute\" id=GPU-5c6b0a3e-1d2f-4a5b-8c7d-0e1f2a3b4c5d library=cuda compute=8.6 "              \
    "driver=12.4 name=\"NVIDIA GeForce RTX 3090\" total=\"23.7 GiB\" available=\"23.4 GiB\""
/* v0.3.10–v0.12.3: variant=. */
#define L_CUDA_VARIANT                                                                             \
    "time=2025-09-30T08:00:00.000Z level=INFO source=types.go:130 msg=\"inference compute\" "      \
    "id=GPU-5c6b0a3e-1d2f-4a5b-8c7d-0e1f2a3b4c5d library=cuda variant=v12 compute=8.6 "            \
    "driver=12.4 name=\"NVIDIA GeForce RTX 3090\" total=\"23.7 GiB\" available=\"23.4 GiB\""
/* v0.12.4 on: library=CUDA, name= the ggml device, description= the GPU. */
#define L_CUDA_UPPER                                                                               \
    "time=2026-01-10T09:00:00.000Z level=INFO source=types.go:60 msg=\"inference compute\" "       \
    "id=GPU-5c6b0a3e-1d2f-4a5b-8c7d-0e1f2a3b4c5d filter_id=\"\" library=CUDA compute=8.9 "         \
    "name=CUDA0 description=\"NVIDIA GeForce RTX 4090\" libdirs=ollama,cuda_v12 driver=12.8 "      \
    "pci_id=0000:01:00.0 type=discrete total=\"24.0 GiB\" available=\"23.1 GiB\""
#define L_CPU_LOWER                                                                                \
    "time=2025-01-01T00:00:00.000Z level=INFO source=types.go:107 msg=\"inference compute\" "      \
    "id=0 library=cpu variant=avx2 compute=\"\" driver=0.0 name=\"\" total=\"31.3 GiB\" "          \
    "available=\"28.1 GiB\""
#define L_CPU_UPPER                                                                                \
    "time=2026-01-10T09:00:00.000Z level=INFO source=types.go:60 msg=\"inference compute\" "       \
    "id=cpu library=cpu compute=\"\" name=cpu description=cpu libdirs=ollama driver=\"\" "         \
    "pci_id=\"\" type=\"\" total=\"31.3 GiB\" available=\"28.1 GiB\""
/* CUDA bypassed: the card through Vulkan (E enables Vulkan by default). */
#define L_VULKAN                                                                                   \
    "time=2026-01-10T09:00:00.000Z level=INFO source=types.go:60 msg=\"inference compute\" "       \
    "id=0 filter_id=\"\" library=Vulkan compute=0.0 name=Vulkan0 "                                 \
    "description=\"NVIDIA GeForce RTX 4090\" libdirs=ollama,vulkan driver=0.0 "                    \
    "pci_id=0000:01:00.0 type=discrete total=\"24.0 GiB\" available=\"23.1 GiB\""
#define L_NO_GPUS                                                                                  \
    "time=2025-01-01T00:00:00.000Z level=INFO source=gpu.go:386 msg=\"no compatible GPUs "         \
    "were discovered\""
/* v0.1.20: log.Printf, no key=value. */
#define L_DETECTED_0120 "2024/01/10 12:00:00 gpu.go:146: Nvidia GPU detected"
#define L_CC_0120       "2024/01/10 12:00:00 gpu.go:174: CUDA Compute Capability detected: 8.6"
#define L_TOO_OLD_0120                                                                             \
    "2024/01/10 12:00:00 gpu.go:172: CUDA GPU is too old. Falling back to CPU mode"
#define L_DETECTED_0125                                                                            \
    "time=2024-02-20T10:00:00.000+01:00 level=INFO source=gpu.go:100 msg=\"Nvidia GPU detected\""
#define L_DETECTED_0132                                                                            \
    "time=2024-04-20T10:00:00.000+01:00 level=INFO source=gpu.go:105 msg=\"Nvidia GPU "            \
    "detected via cudart\""
#define L_DETECTED_NVML                                                                            \
    "time=2024-04-20T10:00:00.000+01:00 level=INFO source=gpu.go:110 msg=\"Nvidia GPU "            \
    "detected via nvidia-ml\""
#define L_DISCOVERY_FAILED                                                                         \
    "time=2026-01-10T09:00:00.000Z level=WARN source=runner.go:100 msg=\"failure during GPU "      \
    "discovery\" OLLAMA_LIBRARY_PATH=[/usr/lib/ollama] extra_envs=map[] error=\"exit status 2\""

static enum vp_e2e_kind parse(const char *line, struct vp_e2e_line *l)
{
    return vp_e2e_parse_line(line, l);
}

static void assert_compute(const char *line, const char *library, const char *device)
{
    struct vp_e2e_line l;
    assert_int_equal(parse(line, &l), VP_E2E_COMPUTE);
    assert_string_equal(l.library, library);
    if (device)
        assert_string_equal(vp_e2e_line_device(&l), device);
    else
        assert_null(vp_e2e_line_device(&l));
    assert_string_equal(l.text, line);
    vp_e2e_line_release(&l);
}

static void compute_lines_of_every_era_give_library_and_device(void **state)
{
    (void)state;
    assert_compute(L_CUDA_040, "cuda", "NVIDIA GeForce RTX 3090");
    assert_compute(L_CUDA_VARIANT, "cuda", "NVIDIA GeForce RTX 3090");
    /* From v0.12.4 name= is CUDA0: the device is the description. */
    assert_compute(L_CUDA_UPPER, "CUDA", "NVIDIA GeForce RTX 4090");
    assert_compute(L_CPU_LOWER, "cpu", NULL);
    assert_compute(L_CPU_UPPER, "cpu", "cpu");
    assert_compute(L_VULKAN, "Vulkan", "NVIDIA GeForce RTX 4090");
    struct vp_e2e_line l;
    parse(L_CUDA_UPPER, &l);
    assert_string_equal(l.name, "CUDA0");
    assert_string_equal(l.id, "GPU-5c6b0a3e-1d2f-4a5b-8c7d-0e1f2a3b4c5d");
    assert_true(vp_e2e_line_is_cuda(&l));
    vp_e2e_line_release(&l);
    parse(L_VULKAN, &l);
    assert_false(vp_e2e_line_is_cuda(&l));
    vp_e2e_line_release(&l);
}

static void detection_and_fallback_lines_of_v01_are_recognised(void **state)
{
    (void)state;
    static const char *const detected[] = {L_DETECTED_0120, L_DETECTED_0125, L_DETECTED_0132,
                                           L_DETECTED_NVML};
    struct vp_e2e_line l;
    for (size_t i = 0; i < VP_ARRAY_SIZE(detected); i++) {
        assert_int_equal(parse(detected[i], &l), VP_E2E_GPU_DETECTED);
        assert_string_equal(l.library, "cuda");
        assert_null(vp_e2e_line_device(&l));
        vp_e2e_line_release(&l);
    }
    static const char *const fallback[] = {
        L_TOO_OLD_0120, L_NO_GPUS,
        "time=2024-02-20T10:00:00.000Z level=INFO source=gpu.go:190 msg=\"[nvidia-ml] CUDA GPU "
        "is too old. Falling back to CPU mode. Compute Capability detected: 3.0\""};
    for (size_t i = 0; i < VP_ARRAY_SIZE(fallback); i++) {
        assert_int_equal(parse(fallback[i], &l), VP_E2E_CPU_FALLBACK);
        assert_string_equal(l.library, "cpu");
        vp_e2e_line_release(&l);
    }
}

static void other_lines_are_not_decisive(void **state)
{
    (void)state;
    static const char *const other[] = {
        L_CC_0120, L_DISCOVERY_FAILED, "",
        "time=2026-01-10T09:00:00.000Z level=INFO source=routes.go:1 msg=\"Listening on "
        "127.0.0.1:11434 (version 0.30.1)\"",
        /* the words elsewhere than in msg= */
        "time=2026-01-10T09:00:00.000Z level=INFO msg=\"starting runner\" note=\"inference "
        "compute\" library=cuda name=\"NVIDIA GeForce RTX 3090\"",
        "time=2026-01-10T09:00:00.000Z level=INFO msg=\"loading\" cmd=\"echo Nvidia GPU detected\"",
        "load_backend: loaded CUDA backend from /usr/lib/ollama/cuda_v12/libggml-cuda.so",
        "inference compute library=cuda", /* no msg= key */
    };
    struct vp_e2e_line l;
    for (size_t i = 0; i < VP_ARRAY_SIZE(other); i++) {
        assert_int_equal(parse(other[i], &l), VP_E2E_OTHER);
        assert_null(l.library);
        vp_e2e_line_release(&l);
    }
}

static void journal_prefix_and_quoting_are_handled(void **state)
{
    (void)state;
    /* journalctl -u ollama, and a name with Go's escapes in it */
    assert_compute("Jan 10 09:00:00 vm ollama[812]: time=2026-01-10T09:00:00.000Z level=INFO "
                   "source=types.go:60 msg=\"inference compute\" id=GPU-1 library=CUDA "
                   "compute=8.9 name=CUDA0 description=\"NVIDIA \\\"Ada\\\" 4090 \\\\ x\" "
                   "libdirs=ollama,cuda_v12",
                   "CUDA", "NVIDIA \"Ada\" 4090 \\ x");
    /* a bare value, and a quoted stretch before the keys that holds key=value text */
    assert_compute("prefix \"a=b c\" msg=\"inference compute\" library=cuda name=vGPU", "cuda",
                   "vGPU");
    /* an unterminated quote does not run past the end */
    assert_compute("msg=\"inference compute\" library=cuda name=\"unterminated", "cuda",
                   "unterminated");
    struct vp_e2e_line l;
    assert_int_equal(parse("msg=\"inference compute\" id=x", &l), VP_E2E_COMPUTE);
    assert_null(l.library);
    vp_e2e_line_release(&l);
}

/* The verdict over lines given as text. */
static bool judge(const char *const *text, size_t n, const char *const *devices, size_t nd,
                  size_t *ret_line, char **ret_why)
{
    struct vp_e2e_line *lines = calloc(n ? n : 1, sizeof(*lines));
    struct vp_strv dev = {0};
    for (size_t i = 0; i < nd; i++)
        vp_strv_push(&dev, devices[i]);
    for (size_t i = 0; i < n; i++)
        parse(text[i], &lines[i]);
    bool ok = vp_e2e_judge(lines, n, &dev, ret_line, ret_why);
    for (size_t i = 0; i < n; i++)
        vp_e2e_line_release(&lines[i]);
    free(lines);
    vp_strv_release(&dev);
    return ok;
}

#define JUDGE(lines, devices, ret_line, ret_why)                                                   \
    judge(lines, VP_ARRAY_SIZE(lines), devices, VP_ARRAY_SIZE(devices), ret_line, ret_why)

static const char *const rtx3090[] = {"NVIDIA GeForce RTX 3090"};
static const char *const rtx4090[] = {"NVIDIA GeForce RTX 4090", "NVIDIA GeForce RTX 3090"};

static void cuda_with_a_device_the_shim_reports_passes(void **state)
{
    (void)state;
    size_t at;
    char *why;
    static const char *const lower[] = {L_CUDA_VARIANT};
    assert_true(JUDGE(lower, rtx3090, &at, &why));
    assert_int_equal(at, 0);
    assert_non_null(strstr(why, "NVIDIA GeForce RTX 3090"));
    free(why);
    static const char *const upper[] = {L_CUDA_UPPER};
    assert_true(JUDGE(upper, rtx4090, &at, &why));
    free(why);
    /* a second card through Vulkan beside the CUDA one does not spoil it */
    static const char *const both[] = {L_VULKAN, L_CUDA_UPPER};
    assert_true(JUDGE(both, rtx4090, &at, &why));
    assert_int_equal(at, 1);
    free(why);
}

static void another_drivers_device_fails(void **state)
{
    (void)state;
    size_t at;
    char *why;
    static const char *const stand_in[] = {"vGPU stand-in"};
    static const char *const lines[] = {L_CUDA_UPPER};
    assert_false(JUDGE(lines, stand_in, &at, &why));
    assert_int_equal(at, 0);
    assert_non_null(strstr(why, "not a device the shim reports"));
    assert_non_null(strstr(why, "NVIDIA GeForce RTX 4090"));
    free(why);
    /* the shim reports nothing at all */
    assert_false(judge(lines, 1, NULL, 0, &at, &why));
    assert_non_null(strstr(why, "the shim reports no device"));
    free(why);
    /* CUDA without a device name */
    static const char *const nameless[] = {"msg=\"inference compute\" library=cuda id=GPU-1"};
    assert_false(JUDGE(nameless, stand_in, &at, &why));
    assert_non_null(strstr(why, "names no device"));
    free(why);
}

static void cpu_vulkan_and_other_libraries_fail(void **state)
{
    (void)state;
    size_t at;
    char *why;
    static const char *const cpu_lower[] = {L_NO_GPUS, L_CPU_LOWER};
    assert_false(JUDGE(cpu_lower, rtx3090, &at, &why));
    assert_int_equal(at, 0);
    free(why);
    static const char *const cpu_upper[] = {L_CPU_UPPER};
    assert_false(JUDGE(cpu_upper, rtx3090, &at, &why));
    assert_non_null(strstr(why, "library=cpu"));
    free(why);
    /* Vulkan on the very card the shim reports: CUDA was bypassed */
    static const char *const vulkan[] = {L_VULKAN};
    assert_false(JUDGE(vulkan, rtx4090, &at, &why));
    assert_non_null(strstr(why, "Vulkan"));
    free(why);
    static const char *const rocm[] = {
        "msg=\"inference compute\" id=0 library=ROCm name=ROCm0 description=\"AMD Radeon\""};
    static const char *const radeon[] = {"AMD Radeon"};
    assert_false(JUDGE(rocm, radeon, &at, &why));
    assert_non_null(strstr(why, "not CUDA"));
    free(why);
}

static void v01_detection_passes_only_when_the_shim_reports_a_device(void **state)
{
    (void)state;
    size_t at;
    char *why;
    static const char *const detected[] = {L_DETECTED_0125, L_CC_0120};
    assert_true(JUDGE(detected, rtx3090, &at, &why));
    assert_int_equal(at, 0);
    assert_non_null(strstr(why, "logs no device name"));
    free(why);
    assert_false(judge(detected, 2, NULL, 0, &at, &why));
    assert_non_null(strstr(why, "the shim reports no device"));
    free(why);
    static const char *const too_old[] = {L_DETECTED_0120, L_TOO_OLD_0120};
    assert_false(JUDGE(too_old, rtx3090, &at, &why));
    assert_int_equal(at, 1);
    assert_non_null(strstr(why, "CPU"));
    free(why);
}

static void no_decisive_line_fails(void **state)
{
    (void)state;
    size_t at = 0;
    char *why;
    assert_false(judge(NULL, 0, rtx3090, 1, &at, &why));
    assert_int_equal(at, SIZE_MAX);
    assert_non_null(strstr(why, "no line"));
    free(why);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(compute_lines_of_every_era_give_library_and_device),
        cmocka_unit_test(detection_and_fallback_lines_of_v01_are_recognised),
        cmocka_unit_test(other_lines_are_not_decisive),
        cmocka_unit_test(journal_prefix_and_quoting_are_handled),
        cmocka_unit_test(cuda_with_a_device_the_shim_reports_passes),
        cmocka_unit_test(another_drivers_device_fails),
        cmocka_unit_test(cpu_vulkan_and_other_libraries_fail),
        cmocka_unit_test(v01_detection_passes_only_when_the_shim_reports_a_device),
        cmocka_unit_test(no_decisive_line_fails),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
