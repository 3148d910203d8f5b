#!/bin/sh
# Builds vgpu-patch and shows it at work on a built-in Ollama-shaped tree (era E, the
# current release layout): before patching, a decoy "real driver" first on
# LD_LIBRARY_PATH answers libcuda.so.1 in every Ollama process; after
# `vgpu-patch ollama`, the shims do, and through their native backend reach a (dummy)
# driver, or through their remote backend vgpu-hostd's simulated device. Then status and
# an exact rollback.
# Everything happens under the build directory (a fake root; no system file changes).
set -eu
cd "$(dirname "$0")/.."
build=${BUILD_DIR:-build}
jobs=$(nproc 2>/dev/null || echo 2)

if [ ! -f "$build/CMakeCache.txt" ]; then
    cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
fi
cmake --build "$build" -j "$jobs" >/dev/null

top=$(pwd)
ex=$top/$build/example
vp=$top/$build/bin/vgpu-patch
rm -rf "$ex"
mkdir -p "$ex/root/usr/local" "$ex/shims"
VGPU_TEST_FIXTURES=$top/$build/fixtures sh tests/fixtures/make-tree.sh e "$ex/root/usr/local"
# The shims as built (lib/vgpu of the build tree mirrors <prefix>/lib/vgpu), in a shim
# dir of their own that only root can write, as vgpu-patch requires.
cp "$build/lib/vgpu/libvgpu-cuda.so.1" "$build/lib/vgpu/libvgpu-nvml.so.1" "$ex/shims/"
chmod 755 "$ex" "$ex/shims"
chmod 644 "$ex/shims/"*

answers() {
    rm -f "$ex/report"
    VGPU_FIXTURE_REPORT=$ex/report LD_LIBRARY_PATH=$top/$build/fixtures/decoy \
        "$ex/root/usr/local/bin/ollama" serve >/dev/null 2>&1
    sed 's/ loaded=.*//; s/^/  /' "$ex/report"
}

echo "== Ollama 0.30-shaped tree in $ex/root/usr/local; decoy driver first on LD_LIBRARY_PATH"
echo "-- before: which file answers the driver names in each Ollama process"
answers
echo
echo "== vgpu-patch ollama --root $ex/root --prefix /usr/local --shim-dir $ex/shims"
"$vp" ollama --root "$ex/root" --prefix /usr/local --shim-dir "$ex/shims"
echo
echo "-- after: the same processes, same environment"
answers
echo
echo "-- and on through the shims to a driver: their native backend pointed at the test"
echo "   suite's dummy driver (a real host points it at NVIDIA's libcuda.so.1). cuInit=0 is"
echo "   the dummy answering; NVIDIA's libcudart, where the tree has it, then fails cleanly:"
echo "   the dummy has none of the runtime's private export tables."
VGPU_CONFIG=/nonexistent VGPU_BACKEND=native VGPU_NATIVE_CUDA=$top/$build/tests/dummy/libcuda.so.1 \
    VGPU_NATIVE_NVML=$top/$build/tests/dummy/libnvidia-ml.so.1 VGPU_MEMORY_LIMIT=8G VGPU_LOG=info \
    LD_LIBRARY_PATH=$top/$build/fixtures/decoy "$ex/root/usr/local/bin/ollama" serve 2>&1 |
    grep -e '^ggml_cuda_init' -e '^vgpu-cuda.*backend' | sed 's/^/  /' || :
echo
echo "-- or through their remote backend (the default) to vgpu-hostd, here its simulated"
echo "   device on a unix socket (a VM reaches the GPU host's daemon over vsock). The driver"
echo "   API answers over the wire (cuInit=0); libcudart then stops at cuGetExportTable (801),"
echo "   whose private tables cannot cross a wire (docs/protocol.md)."
"$top/$build/bin/vgpu-hostd" --sim --listen "unix:$ex/hostd.sock" --allow "uid:$(id -u)" \
    --log-level warn &
hostd=$!
i=0
while [ ! -S "$ex/hostd.sock" ] && [ "$i" -lt 50 ]; do
    sleep 0.1
    i=$((i + 1))
done
VGPU_CONFIG=/nonexistent VGPU_BACKEND=remote VGPU_ENDPOINT=unix:$ex/hostd.sock VGPU_LOG=info \
    LD_LIBRARY_PATH=$top/$build/fixtures/decoy "$ex/root/usr/local/bin/ollama" serve 2>&1 |
    grep -e '^ggml_cuda_init' -e '^vgpu-cuda.*backend' | sed 's/^/  /' || :
kill -TERM "$hostd"
wait "$hostd" || :
echo
echo "== vgpu-patch status"
"$vp" status --root "$ex/root"
echo
echo "== vgpu-patch rollback"
"$vp" rollback --root "$ex/root"
echo "-- after rollback"
answers
