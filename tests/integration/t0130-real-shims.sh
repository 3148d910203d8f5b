#!/bin/sh
# The real shims end to end: `vgpu-patch ollama` points an Ollama-shaped tree at
# libvgpu-cuda.so.1 / libvgpu-nvml.so.1 as built (not the fixtures' stand-ins), and
# every process the release starts then reaches the driver through the shims — with
# the native backend on the dummy driver the CUDA backend module finds its device
# (fixture → DT_NEEDED → shim → RTLD_DEEPBIND → driver), with no backend configured it
# finds none and the shim says why, once in each process that asked.
. "$(dirname "$0")/lib.sh"

built=$VGPU_BUILD_DIR/lib/vgpu
dummy=$VGPU_BUILD_DIR/tests/dummy
[ -f "$built/libvgpu-cuda.so.1" ] || fail "the shims are not built in $built"

# serve_with FILE VAR=VALUE...: run the fixture's serve under the given shim settings
# (and nothing else of the caller's VGPU_* configuration).
serve_with() {
    out=$1
    shift
    rm -f "$out"
    env -u VGPU_BACKEND -u VGPU_NATIVE_CUDA -u VGPU_NATIVE_NVML -u VGPU_MEMORY_LIMIT \
        VGPU_CONFIG=/nonexistent VGPU_FIXTURE_REPORT="$out" LD_LIBRARY_PATH="$DECOY" "$@" \
        "$TREE/bin/ollama" serve >"$T/serve.out" 2>"$T/serve.err" ||
        fail "the fixture's ollama serve failed: $(tail -5 "$T/serve.err")"
}

for era in c e; do
    note "era $era"
    rm -rf "$ROOT" "$SHIMS"
    setup_era "$era"
    cp "$built/libvgpu-cuda.so.1" "$built/libvgpu-nvml.so.1" "$SHIMS/"
    chmod 644 "$SHIMS"/*

    vp_ollama --json
    expect_rc 0 "ollama on era $era with the built shims"

    serve_with "$T/native" VGPU_BACKEND=native VGPU_NATIVE_CUDA="$dummy/libcuda.so.1" \
        VGPU_NATIVE_NVML="$dummy/libnvidia-ml.so.1" VGPU_LOG=info
    assert_answers "$T/native" "$SHIMS/libvgpu-cuda.so.1" "$SHIMS/libvgpu-nvml.so.1"
    assert_no_decoy "$T/native"
    if [ "$era" = e ] && [ -f "$VGPU_TEST_FIXTURES/trees/REAL_CUDART" ]; then
        # NVIDIA's libcudart.so.13 is in the tree: it needs export tables the dummy
        # driver does not have, so it fails, cleanly, after cuInit reached the dummy.
        want='ggml_cuda_init: cuInit=0 cudaGetDeviceCount=[1-9][0-9]*: found 0 CUDA devices'
    else
        want='ggml_cuda_init: cuInit=0 cudaGetDeviceCount=0: found 1 CUDA devices'
    fi
    grep -q "$want" "$T/serve.err" ||
        fail "era $era: want '$want', got: $(grep ggml_cuda "$T/serve.err")"
    grep -q "vgpu-cuda\[[0-9]*\]: info: backend native: $dummy/libcuda.so.1" "$T/serve.err" ||
        fail "era $era: the shim did not report its native backend"
    if [ "$era" = c ]; then
        # This era keeps the first libcuda whose cuInit succeeds: the shim, not the decoy.
        grep -q "discovery=$SHIMS/libvgpu-cuda.so.1" "$T/native" ||
            fail "era c: discovery kept $(sed -n 's/.*discovery=//p' "$T/native")"
    fi

    serve_with "$T/none"
    assert_answers "$T/none" "$SHIMS/libvgpu-cuda.so.1" "$SHIMS/libvgpu-nvml.so.1"
    grep -q 'ggml_cuda_init: cuInit=100 .*found 0 CUDA devices' "$T/serve.err" ||
        fail "era $era: without a backend cuInit should say CUDA_ERROR_NO_DEVICE"
    grep -o 'vgpu-cuda\[[0-9]*\]: warn: backend remote: cannot reach vgpu-hostd' "$T/serve.err" >"$T/said"
    [ -s "$T/said" ] || fail "era $era: the shim did not say why there is no device"
    [ -z "$(sort "$T/said" | uniq -d)" ] || fail "era $era: a process said it twice"
    if grep -q '^fixture-report:' "$T/serve.out"; then fail "a report reached stdout"; fi
done
echo "PASS"
