#!/bin/sh
# Global loader hooks from an earlier method make verification meaningless: with any of
# them in the fake root, `vgpu-patch ollama` exits 5, lists each with its file, and
# changes nothing. NVIDIA's real driver in a system dir and our own in-tree link are
# not hooks.
. "$(dirname "$0")/lib.sh"

LEGACY=$VGPU_TEST_FIXTURES/legacy
LIBDIR=$ROOT/usr/lib/x86_64-linux-gnu

check_hook() {
    what=$1
    expect=$2
    snapshot "$ROOT" >"$T/before"
    vp_ollama --json
    expect_rc 5 "$what"
    grep -q "\"kind\": \"$expect\"" "$T/out" || {
        cat "$T/out" >&2
        fail "$what: no hook of kind $expect reported"
    }
    snapshot "$ROOT" >"$T/after"
    cmp -s "$T/before" "$T/after" || fail "$what: something was written"
    vp_ollama
    expect_rc 5 "$what (text)"
    grep -q "why it matters" "$T/out" || fail "$what: the text output does not explain"
}

setup_era e

# A real-driver-looking library in a system dir is left alone.
mkdir -p "$LIBDIR"
cp -a "$DECOY"/libcuda.so* "$DECOY"/libnvidia-ml.so* "$LIBDIR/"
vp_ollama --dry-run --json
expect_rc 0 "NVIDIA-looking driver in a system dir"
# The loader model sees that driver answering today, and the shim after the patch.
grep -q '"file": "/usr/lib/x86_64-linux-gnu/libcuda.so.1"' "$T/out" ||
    fail "the prediction does not name the system driver as today's answer"
grep -q "\"file\": \"$SHIMS/libvgpu-cuda.so.1\"" "$T/out" || fail "the prediction lacks the shim"

note "ld.so.preload"
mkdir -p "$ROOT/etc"
printf '# keep\n/usr/lib/libfoo.so /opt/vgpu/libcuda.so.1\n' >"$ROOT/etc/ld.so.preload"
check_hook "ld.so.preload" "ld.so.preload"
rm "$ROOT/etc/ld.so.preload"

note "LD_PRELOAD in a drop-in"
mkdir -p "$ROOT/etc/systemd/system/ollama.service.d"
printf '[Service]\nExecStart=/usr/local/bin/ollama serve\n' >"$ROOT/etc/systemd/system/ollama.service"
printf '[Service]\nEnvironment="OLLAMA_HOST=0.0.0.0"\nEnvironment="LD_PRELOAD=/opt/vgpu/libcuda.so.1"\n' \
    >"$ROOT/etc/systemd/system/ollama.service.d/vgpu.conf"
check_hook "LD_PRELOAD drop-in" "unit-environment"
rm "$ROOT/etc/systemd/system/ollama.service.d/vgpu.conf"

note "LD_AUDIT in an EnvironmentFile"
printf '[Service]\nEnvironmentFile=-/etc/default/ollama\n' >"$ROOT/etc/systemd/system/ollama.service.d/env.conf"
mkdir -p "$ROOT/etc/default"
printf 'LD_AUDIT=/opt/vgpu/libvgpu-audit.so\n' >"$ROOT/etc/default/ollama"
check_hook "LD_AUDIT environment file" "environment-file"
rm "$ROOT/etc/systemd/system/ollama.service.d/env.conf"

note "hand-made shim system-wide"
rm -f "$LIBDIR"/libcuda.so*
cp "$LEGACY/libcuda.so.1" "$LIBDIR/libcuda.so.1"
check_hook "hand-made libcuda.so.1" "system-library"
rm "$LIBDIR/libcuda.so.1"

note "our own shim installed system-wide"
ln -s "$SHIMS/libvgpu-nvml.so.1" "$LIBDIR/libnvidia-ml.so.1.tmp" && rm "$LIBDIR"/libnvidia-ml.so*
ln -s "$SHIMS/libvgpu-nvml.so.1" "$LIBDIR/libnvidia-ml.so.1"
check_hook "our shim in a system dir" "system-library"
rm "$LIBDIR/libnvidia-ml.so.1"

note "hand-made link inside the Ollama tree"
ln -s "$LEGACY/libcuda.so.1" "$TREE/lib/ollama/cuda_v12/libcuda.so.1"
check_hook "hand-made link in lib/ollama/cuda_v12" "ollama-tree-library"
rm "$TREE/lib/ollama/cuda_v12/libcuda.so.1"

note "clean again: patching works, and our own in-tree link (era C) is not a hook"
vp_ollama
expect_rc 0 "clean root"
rm -rf "$ROOT" "$SHIMS"
setup_era c
vp_ollama
expect_rc 0 "era c"
[ -L "$TREE/lib/ollama/libcuda.so.1" ] || fail "era c has no in-tree link"
vp_ollama --json
expect_rc 0 "era c again, with our link in the tree"
echo PASS
