#!/bin/sh
# NVIDIA's libcudart.so.13 with libvgpu-cuda.so.1 loaded first: every driver entry
# point the runtime takes through cuGetProcAddress_v2 is the shim's, and without a
# real driver it fails cleanly — cudaErrorNoDevice with no backend, an error (not a
# crash) when the dummy driver cannot serve the runtime's export tables.
set -eu
probe=$1
shim=$VGPU_TEST_SHIM_DIR/libvgpu-cuda.so.1
dummy=$VGPU_TEST_DUMMY_DIR/libcuda.so.1
out=$(mktemp)
trap 'rm -f "$out"' EXIT
fail() {
    echo "FAIL: $*"
    cat "$out"
    exit 1
}

# calls NAME: how often the shim counted a call to NAME.
calls() {
    awk -v n="$1" '$1 == "stat" && $2 == n { c = $3 } END { print c + 0 }' "$out"
}

env -u LD_LIBRARY_PATH VGPU_CONFIG=/nonexistent VGPU_BACKEND=none LD_PRELOAD="$shim" \
    "$probe" >"$out" 2>&1 || fail "the probe crashed without a backend"
grep -q '^cudaGetDeviceCount 100 cudaErrorNoDevice -1$' "$out" ||
    fail "want cudaErrorNoDevice without a backend"
n=$(calls cuGetProcAddress_v2)
[ "$n" -ge 100 ] || fail "the runtime took only $n entry points through the shim"
[ "$(calls cuInit)" -ge 1 ] || fail "cuInit did not reach the shim"
echo "no backend: cudaErrorNoDevice; $n entry points taken via cuGetProcAddress_v2"

env -u LD_LIBRARY_PATH VGPU_CONFIG=/nonexistent VGPU_BACKEND=native VGPU_NATIVE_CUDA="$dummy" \
    LD_PRELOAD="$shim" "$probe" >"$out" 2>&1 || fail "the probe crashed with the dummy driver"
grep -q '^cudaGetDeviceCount [1-9][0-9]* cuda' "$out" ||
    fail "want an error: the dummy serves none of the runtime's export tables"
[ "$(calls cuGetExportTable)" -ge 1 ] || fail "cuGetExportTable did not reach the shim"
[ "$(calls cuDriverGetVersion)" -ge 1 ] || fail "cuDriverGetVersion did not reach the shim"
echo "dummy driver: $(grep '^cudaGetDeviceCount' "$out")"
