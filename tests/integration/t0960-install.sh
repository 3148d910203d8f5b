#!/bin/sh
# `cmake --install` lays out bin/vgpu-patch, its helpers in libexec/vgpu-patch, the shims
# in lib/vgpu and the man pages; the installed vgpu-patch finds its helpers and patches
# and verifies a tree, with the test's shims and with its own (the default shim dir).
. "$(dirname "$0")/lib.sh"

command -v cmake >/dev/null || skip "cmake is not installed"
cmake --install "$VGPU_BUILD_DIR" --prefix "$T/inst" >"$T/install.log" 2>&1 ||
    fail "cmake --install failed: $(tail -5 "$T/install.log")"
for f in bin/vgpu-patch libexec/vgpu-patch/vgpu-probe libexec/vgpu-patch/libvgpu-probe-audit.so \
    libexec/vgpu-patch/decoy/libcuda.so.1 libexec/vgpu-patch/decoy/libnvidia-ml.so.1 \
    lib/vgpu/libvgpu-cuda.so.1 lib/vgpu/libvgpu-nvml.so.1 \
    share/man/man1/vgpu-patch.1 share/man/man7/vgpu-shims.7; do
    [ -e "$T/inst/$f" ] || fail "$f is not installed"
done
# shellcheck disable=SC2034 # read by vp() in lib.sh
VGPU_PATCH=$T/inst/bin/vgpu-patch
setup_era e
vp_ollama --json
expect_rc 0 "the installed vgpu-patch"
grep -q '"ok": true' "$T/out" || fail "the installed vgpu-patch did not verify"
vp rollback
expect_rc 0 "rollback with the installed vgpu-patch"
vp ollama --prefix "$PREFIX" --json
expect_rc 0 "the installed vgpu-patch with its own shims"
grep -q "\"shim_dir\": \"$T/inst/lib/vgpu\"" "$T/out" || fail "the default shim dir is not lib/vgpu"
grep -q '"ok": true' "$T/out" || fail "the installed vgpu-patch did not verify its own shims"
vp rollback
expect_rc 0 "rollback after patching with the installed shims"
echo PASS
