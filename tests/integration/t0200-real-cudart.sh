#!/bin/sh
# NVIDIA's own libcudart (closed source) dlopen()s libcuda.so.1 by bare name at its first
# runtime call. With the CUDA toolkit installed, the era-E tree carries that real
# libcudart.so.13 in cuda_v13/: before patching it gets the decoy driver from
# LD_LIBRARY_PATH; after, the shim the executable loaded first answers it.
. "$(dirname "$0")/lib.sh"

marker=$VGPU_TEST_FIXTURES/trees/REAL_CUDART
[ -f "$marker" ] || skip "no CUDA toolkit when the fixtures were built: NVIDIA's libcudart is not in the trees"
real=$(cat "$marker")
setup_era e
cudart=$TREE/lib/ollama/cuda_v13/libcudart.so.13
cmp -s "$cudart" "$real" || fail "cuda_v13/libcudart.so.13 is not NVIDIA's $real"

run_fixture "$T/r0"
grep '^process=llama-server' "$T/r0" >"$T/ls0" || fail "llama-server wrote no report"
grep -q "libcudart.so.13" "$T/ls0" || fail "llama-server did not load libcudart.so.13"
assert_answers "$T/ls0" "$DECOY/*" "*"
grep -q "cudaGetDeviceCount=" "$T/serve.err" || fail "libcudart was never called"

vp_ollama
expect_rc 0 "patch with NVIDIA's libcudart in the tree"
run_fixture "$T/r1"
assert_answers "$T/r1" "$SHIMS/libvgpu-cuda.so.1" "$SHIMS/libvgpu-nvml.so.1"
assert_no_decoy "$T/r1"
vp rollback
expect_rc 0 "rollback"
echo PASS
