#!/bin/sh
# The eras the patch cannot cover end in the shims under the audit mechanism. A0's serve
# dlopen()s the first NVML its glob finds by absolute path and an extracted
# libext_server.so; A's serve runs a runner extracted to a temp dir at every start. With
# a decoy driver first on LD_LIBRARY_PATH and in a system-like directory, every report
# line names the shims once the service gets ollama.env's variables — and the same
# through vgpu-launch — while the patch alone leaves the decoy answering. With the real
# shims, their native backend still reaches the (dummy) driver under the audit module.
. "$(dirname "$0")/lib.sh"

ENV=$ROOT/var/lib/vgpu-patch/ollama.env
SYS=$ROOT/sysroot
LAUNCH=$VGPU_BUILD_DIR/bin/vgpu-launch

# A decoy driver where a system install would put it.
system_decoy() {
    d=$SYS/usr/lib/x86_64-linux-gnu
    mkdir -p "$d"
    cp -P "$DECOY"/libcuda.so* "$DECOY"/libnvidia-ml.so* "$d/"
}

# serve_env OUT [VAR=VALUE...]: serve with the decoys, the system root and the variables.
serve_env() {
    out=$1
    shift
    rm -f "$out"
    env VGPU_FIXTURE_SYSTEM_ROOT="$SYS" VGPU_FIXTURE_REPORT="$out" LD_LIBRARY_PATH="$DECOY" \
        "$@" "$TREE/bin/ollama" serve >"$T/serve.out" 2>"$T/serve.err" ||
        fail "serve failed: $(tail -5 "$T/serve.err")"
}

# env_vars: ollama.env as VAR=VALUE words (the test paths have no spaces).
env_vars() {
    grep -v '^$' "$ENV"
}

# shim_lines FILE: every report line has the CUDA shim, and NVML from the shim or none.
shim_lines() {
    [ -s "$1" ] || fail "no report"
    assert_answers "$1" "$SHIMS/libvgpu-cuda.so.1" "*"
    if grep -v "libnvidia-ml.so.1=\($SHIMS/libvgpu-nvml.so.1\|none\) " "$1" | grep -q .; then
        fail "NVML answered by something else: $(cat "$1")"
    fi
    assert_no_decoy "$1"
}

for era in a0 a; do
    note "era $era"
    rm -rf "$ROOT" "$SHIMS"
    setup_era "$era"
    system_decoy
    snapshot "$TREE" >"$T/before"
    vp_ollama --json
    expect_rc 0 "era $era"
    [ "$(json_field mechanism)" = audit ] || fail "era $era: mechanism $(json_field mechanism)"

    if [ "$era" = a0 ]; then
        # (In era A the in-tree link happens to reach the runner too, since its
        # LD_LIBRARY_PATH starts with lib/ollama; the verifier cannot prove that for a
        # program that is not on disk, so the audit mechanism stays.)
        note "era $era: the patch alone leaves the decoy answering"
        serve_env "$T/patch-only"
        grep -q "$DECOY\|$SYS" "$T/patch-only" ||
            fail "era $era: no decoy without the variables: $(cat "$T/patch-only")"
    fi

    note "era $era: with ollama.env's variables every process ends in the shims"
    # shellcheck disable=SC2046 # one word per variable
    serve_env "$T/audit" $(env_vars)
    shim_lines "$T/audit"
    [ "$(grep -c '^process=' "$T/audit")" -ge "$([ "$era" = a ] && echo 2 || echo 1)" ] ||
        fail "era $era: a process did not report: $(cat "$T/audit")"
    if [ "$era" = a0 ]; then
        grep -q "libnvidia-ml.so.1=$SHIMS/libvgpu-nvml.so.1" "$T/audit" ||
            fail "a0: the absolute-path NVML dlopen was not redirected: $(cat "$T/audit")"
    else
        grep -q '^process=runner ' "$T/audit" || fail "a: the extracted runner did not report"
    fi

    note "era $era: the same through vgpu-launch"
    rm -f "$T/launch"
    env VGPU_FIXTURE_SYSTEM_ROOT="$SYS" VGPU_FIXTURE_REPORT="$T/launch" LD_LIBRARY_PATH="$DECOY" \
        "$LAUNCH" --strict --shim-dir "$SHIMS" -- "$TREE/bin/ollama" serve \
        >"$T/serve.out" 2>"$T/serve.err" || fail "vgpu-launch failed: $(tail -5 "$T/serve.err")"
    shim_lines "$T/launch"

    vp rollback
    expect_rc 0 "era $era rollback"
    snapshot "$TREE" >"$T/after"
    cmp -s "$T/before" "$T/after" || fail "era $era: rollback is not exact"
done

note "era a0: the native backend opens the very file the glob found and the module redirected"
# A0's discovery dlopen()s <system dir>/libnvidia-ml.so.580.65.06, which the module answers
# with the shim; the shim's native backend names that same path for the real NVML.
rm -rf "$ROOT" "$SHIMS"
setup_era a0
system_decoy
cp "$VGPU_BUILD_DIR/lib/vgpu/libvgpu-cuda.so.1" "$VGPU_BUILD_DIR/lib/vgpu/libvgpu-nvml.so.1" "$SHIMS/"
vp_ollama --json
expect_rc 0 "era a0 with the built shims"
real=$SYS/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.580.65.06
# shellcheck disable=SC2046
serve_env "$T/same-path" $(env_vars) VGPU_CONFIG=/nonexistent VGPU_BACKEND=native \
    VGPU_NATIVE_NVML="$real" VGPU_NATIVE_CUDA="$SYS/usr/lib/x86_64-linux-gnu/libcuda.so.580.65.06"
grep -q "discovery: $real nvmlInit_v2=0" "$T/serve.err" ||
    fail "the native backend did not reach $real: $(grep -i 'discovery\|vgpu' "$T/serve.err")"
if grep -q "is a vgpu shim" "$T/serve.err"; then fail "the backend got the shim back"; fi

note "the native backend reaches the dummy driver under the audit module (era a)"
rm -rf "$ROOT" "$SHIMS"
setup_era a
system_decoy
cp "$VGPU_BUILD_DIR/lib/vgpu/libvgpu-cuda.so.1" "$VGPU_BUILD_DIR/lib/vgpu/libvgpu-nvml.so.1" "$SHIMS/"
vp_ollama --json
expect_rc 0 "era a with the built shims"
# shellcheck disable=SC2046
serve_env "$T/native" $(env_vars) VGPU_CONFIG=/nonexistent VGPU_BACKEND=native \
    VGPU_NATIVE_CUDA="$VGPU_BUILD_DIR/tests/dummy/libcuda.so.1"
shim_lines "$T/native"
grep -q 'cuInit=0 cudaGetDeviceCount=0: found 1 CUDA devices' "$T/serve.err" ||
    fail "the runner did not reach the dummy driver: $(grep -i 'cuinit\|vgpu' "$T/serve.err")"
echo PASS
