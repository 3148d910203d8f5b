#!/bin/sh
# GPU check for a machine with a real NVIDIA driver, PyTorch and CuPy (never run in CI):
# builds the shims alone (the shims-only preset: no libelf, no tests, no network),
# then runs the same PyTorch matmul and CuPy kernel twice — straight on the driver, and
# with libvgpu-cuda.so.1 / libvgpu-nvml.so.1 loaded first and their native backend
# pointed at the real driver under a memory limit — and requires correct results,
# non-zero shim call counters, torch.cuda.mem_get_info() showing the limit, and an
# allocation past the limit failing. Prints the overhead against the direct run.
#   sh tests/gpu/run.sh [--limit SIZE] [--build DIR]
# Exit: 0 all checks passed; 1 a check failed; 77 no GPU, driver, PyTorch or CuPy.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
limit=4G
build=$src/build-shims
while [ "$#" -gt 0 ]; do
    case $1 in
    --limit) limit=$2; shift 2 ;;
    --build) build=$2; shift 2 ;;
    *) echo "usage: run.sh [--limit SIZE] [--build DIR]" >&2; exit 2 ;;
    esac
done

skip() {
    echo "SKIP: $*"
    exit 77
}

# The real driver libraries, from the loader cache (the shims are not in it).
driver() {
    /sbin/ldconfig -p | awk -v n="$1" '$1 == n && /x86-64/ { print $NF; exit }'
}
cuda=$(driver libcuda.so.1)
nvml=$(driver libnvidia-ml.so.1)
[ -n "$cuda" ] || skip "no libcuda.so.1 in the loader cache: no NVIDIA driver"
[ -n "$nvml" ] || skip "no libnvidia-ml.so.1 in the loader cache"
command -v nvidia-smi >/dev/null && nvidia-smi -L
python3 -c 'import torch, cupy' 2>/dev/null || skip "PyTorch and CuPy are needed"

echo "== building the shims alone in $build"
cmake -S "$src" -B "$build" -DVGPU_SHIMS_ONLY=ON -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j "$(nproc)" >/dev/null
shim_cuda=$build/lib/vgpu/libvgpu-cuda.so.1
shim_nvml=$build/lib/vgpu/libvgpu-nvml.so.1

echo "== direct: $cuda"
env -u LD_PRELOAD python3 "$here/check.py" --mode direct >"$build/gpu-direct.json"
echo "== through the shims (limit $limit)"
env LD_PRELOAD="$shim_cuda $shim_nvml" VGPU_CONFIG=/nonexistent VGPU_BACKEND=native \
    VGPU_NATIVE_CUDA="$cuda" VGPU_NATIVE_NVML="$nvml" VGPU_MEMORY_LIMIT="$limit" \
    VGPU_LOG=info python3 "$here/check.py" --mode shim --limit "$limit" \
    --baseline "$build/gpu-direct.json"
