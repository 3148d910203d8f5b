#!/bin/sh
# The shim dir is what patched programs load: vgpu-patch refuses (exit 1, nothing
# written) a dir others can write, a shim owned by another user, a library that is not
# our shim (no marker, wrong soname), and a shim that does not load on this system.
. "$(dirname "$0")/lib.sh"

setup_era e
snapshot "$TREE" >"$T/before"

refused() {
    vp_ollama
    expect_rc 1 "$1"
    grep -q "$2" "$T/err" || {
        cat "$T/err" >&2
        fail "$1: the message does not say '$2'"
    }
    snapshot "$TREE" >"$T/after"
    cmp -s "$T/before" "$T/after" || fail "$1: the tree changed"
}

note "world-writable shim dir"
chmod 777 "$SHIMS"
refused "world-writable shim dir" "writable by others"
chmod 755 "$SHIMS"

note "group-writable shim"
chmod 664 "$SHIMS/libvgpu-cuda.so.1"
refused "group-writable shim" "writable by its group"
chmod 644 "$SHIMS/libvgpu-cuda.so.1"

if [ "$(id -u)" -eq 0 ]; then
    note "shim owned by nobody"
    chown nobody "$SHIMS/libvgpu-nvml.so.1"
    refused "shim owned by another user" "not root"
    chown 0 "$SHIMS/libvgpu-nvml.so.1"
fi

note "a hand-made shim (no marker)"
cp "$SHIMS/libvgpu-cuda.so.1" "$T/good-cuda"
cp "$VGPU_TEST_FIXTURES/legacy/libcuda.so.1" "$SHIMS/libvgpu-cuda.so.1"
refused "hand-made shim" "does not export vgpu_shim_abi_version"

note "wrong soname"
cp "$SHIMS/libvgpu-nvml.so.1" "$SHIMS/libvgpu-cuda.so.1"
refused "NVML shim in the CUDA slot" "DT_SONAME"

note "a shim that does not load here"
command -v patchelf >/dev/null || skip "patchelf is not installed"
cp "$T/good-cuda" "$SHIMS/libvgpu-cuda.so.1"
patchelf --add-needed libvgpu-test-missing.so.7 "$SHIMS/libvgpu-cuda.so.1"
refused "shim with a missing dependency" "does not load on this system"

note "missing shim dir"
vp ollama --prefix "$PREFIX" --shim-dir "$T/nowhere"
expect_rc 1 "missing shim dir"
echo PASS
