#!/bin/sh
# GPU check of the remote backend on a machine with a real NVIDIA driver (never run in CI;
# no network needed): builds vgpu-hostd and the shims alone (the shims-only preset), starts
# `vgpu-hostd --listen unix:... --native-cuda <the real libcuda.so.1>`, and through
# libvgpu-cuda.so.1 with VGPU_BACKEND=remote runs a PTX vecadd and saxpy
# (tests/remote/kernels.ptx) whose results are checked on the host; then the remote bench
# (bench/bench-remote.c) against that daemon: latency of a small call and copy throughput
# next to raw unix sockets. Stops the daemon with SIGTERM (it must exit 0).
#   sh tests/gpu/remote.sh [--build DIR] [--quick]
# Exit: 0 all checks passed; 1 a check failed; 77 no GPU or driver.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
build=$src/build-shims
calls=20000
rounds=3
while [ "$#" -gt 0 ]; do
    case $1 in
    --build) build=$2; shift 2 ;;
    --quick) calls=5000; rounds=1; shift ;;
    *) echo "usage: remote.sh [--build DIR] [--quick]" >&2; exit 2 ;;
    esac
done

skip() {
    echo "SKIP: $*"
    exit 77
}
fail() {
    echo "FAIL: $*" >&2
    exit 1
}

command -v nvidia-smi >/dev/null 2>&1 || skip "nvidia-smi is missing: no NVIDIA GPU here"
cuda=$(/sbin/ldconfig -p 2>/dev/null | awk '$1 == "libcuda.so.1" && /x86-64/ { print $NF; exit }')
[ -n "$cuda" ] || cuda=/usr/lib/x86_64-linux-gnu/libcuda.so.1
[ -e "$cuda" ] || skip "no libcuda.so.1 in the loader cache or /usr/lib/x86_64-linux-gnu"
nvidia-smi -L || skip "nvidia-smi sees no GPU"
echo "== driver: $cuda"

echo "== building vgpu-hostd and the shims alone in $build"
# The preset where cmake knows presets (3.21+) and the build dir is the preset's.
if [ "$build" != "$src/build-shims" ] || ! (cd "$src" && cmake --preset shims-only >/dev/null); then
    cmake -S "$src" -B "$build" -DVGPU_SHIMS_ONLY=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
fi
cmake --build "$build" -j "$(nproc)" --target vgpu-hostd vgpu-cuda vgpu-nvml >/dev/null
hostd=$build/bin/vgpu-hostd
shims=$build/lib/vgpu
bin=$build/remote-check
mkdir -p "$bin"
cflags="-std=gnu11 -D_GNU_SOURCE -O2 -Wall -Wextra -I$src/tests/remote -I$src/shims/remote"
# shellcheck disable=SC2086 # cflags is a list of words
cc $cflags -o "$bin/remote-client" "$here/remote-client.c" "$src/tests/remote/cuapi.c" -ldl -lm
# shellcheck disable=SC2086
cc $cflags -o "$bin/vgpu-bench-remote" "$src/bench/bench-remote.c" \
    "$src/tests/remote/harness.c" "$src/tests/remote/cuapi.c" "$src/tests/remote/rawproto.c" \
    "$src/shims/remote/proto.c" -ldl -lpthread

tmp=$(mktemp -d /tmp/vgpu-remote-gpu.XXXXXX)
sock=$tmp/hostd.sock
pid=
trap '[ -z "$pid" ] || kill -KILL "$pid" 2>/dev/null || :; rm -rf "$tmp"' EXIT
trap 'exit 1' INT TERM

echo "== vgpu-hostd --listen unix:$sock --native-cuda $cuda"
"$hostd" --listen "unix:$sock" --native-cuda "$cuda" >"$tmp/hostd.log" 2>&1 &
pid=$!
i=0
while [ ! -S "$sock" ]; do
    i=$((i + 1))
    if [ "$i" -gt 100 ] || ! kill -0 "$pid" 2>/dev/null; then
        cat "$tmp/hostd.log" >&2
        fail "vgpu-hostd did not listen on $sock within 10 s"
    fi
    sleep 0.1
done

status=0
echo "== vecadd and saxpy through the remote backend"
if ! env VGPU_CONFIG=/nonexistent/vgpu.conf VGPU_BACKEND=remote VGPU_ENDPOINT="unix:$sock" \
    VGPU_LOG=info timeout 120 "$bin/remote-client" "$shims" "$src/tests/remote/kernels.ptx"; then
    echo "FAIL: the remote client" >&2
    status=1
fi

echo "== bench: latency and throughput against the GPU daemon, next to raw unix sockets"
if ! env VGPU_CONFIG=/nonexistent/vgpu.conf VGPU_LOG=warn timeout 300 \
    "$bin/vgpu-bench-remote" --endpoint "unix:$sock" --shim-dir "$shims" \
    --calls "$calls" --rounds "$rounds" --copies 8 --size 64; then
    echo "FAIL: the bench could not run" >&2
    status=1
fi

echo "== SIGTERM"
kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
pid=
if [ "$rc" -ne 0 ]; then
    echo "FAIL: vgpu-hostd exited $rc on SIGTERM" >&2
    status=1
fi
if [ -e "$sock" ]; then
    echo "FAIL: vgpu-hostd left $sock behind" >&2
    status=1
fi
if [ "$status" -ne 0 ]; then
    echo "---- vgpu-hostd log ----" >&2
    tail -n 50 "$tmp/hostd.log" >&2
fi
[ "$status" -eq 0 ] && echo "PASS: remote backend on $(nvidia-smi --query-gpu=name --format=csv,noheader | head -n 1)"
exit "$status"
