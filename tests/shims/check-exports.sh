#!/bin/sh
# The shims' dynamic symbol tables are exactly their committed export tables plus the
# marker and the statistics function; their sonames, dependencies and flags are what
# DESIGN §5 asks; every name of NVIDIA's CUDA 13.0 driver stub is exported where the
# stub is installed.
set -eu
src=$VGPU_SOURCE_DIR/shims
dir=$VGPU_TEST_SHIM_DIR
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
status=0
fail() {
    echo "FAIL: $*"
    status=1
}

# check LIB DEF PREFIX SONAME
check() {
    lib=$dir/$1
    sed -n 's/^VGPU_[A-Z]*(\([A-Za-z0-9_]*\))$/\1/p' "$2" >"$work/want"
    printf '%s\n' vgpu_shim_abi_version "vgpu_$3_stat" >>"$work/want"
    LC_ALL=C sort -u "$work/want" -o "$work/want"
    nm -D --defined-only "$lib" | awk '{ print $3 }' | LC_ALL=C sort -u >"$work/have"
    if ! cmp -s "$work/want" "$work/have"; then
        fail "$1 exports differ from $2 (< table only, > library only):"
        diff "$work/want" "$work/have" | grep '^[<>]' | head -20
    fi
    echo "$1: $(wc -l <"$work/have") exports"
    readelf -d "$lib" >"$work/dyn"
    grep -q "Library soname: \[$4\]" "$work/dyn" || fail "$1: DT_SONAME is not $4"
    grep -q 'BIND_NOW' "$work/dyn" || fail "$1: not linked -z now"
    sed -n 's/.*Shared library: \[\(.*\)\]/\1/p' "$work/dyn" | while read -r needed; do
        case $needed in
        libc.so.6 | libdl.so.2 | libpthread.so.0 | ld-linux-x86-64.so.2) ;;
        *) echo "FAIL: $1 needs $needed (only libc/libdl/libpthread are allowed)" ;;
        esac
    done | grep . && status=1
    readelf -lW "$lib" | grep -q 'GNU_RELRO' || fail "$1: no RELRO segment"
    readelf -lW "$lib" | awk '$1 == "GNU_STACK" && $7 ~ /E/ { exit 1 }' ||
        fail "$1: executable stack"
    if readelf -d "$lib" | grep -q TEXTREL; then fail "$1: text relocations"; fi
}

check libvgpu-cuda.so.1 "$src/cuda/cuda-exports.def" cuda libcuda.so.1
check libvgpu-nvml.so.1 "$src/nvml/nvml-exports.def" nvml libnvidia-ml.so.1

stub=${VGPU_TEST_CUDA_STUB:-/usr/local/cuda/lib64/stubs/libcuda.so}
if [ -f "$stub" ]; then
    nm -D --defined-only "$stub" | awk '{ print $3 }' | LC_ALL=C sort -u >"$work/stub"
    nm -D --defined-only "$dir/libvgpu-cuda.so.1" | awk '{ print $3 }' | LC_ALL=C sort -u >"$work/cuda"
    missing=$(comm -23 "$work/stub" "$work/cuda")
    [ -z "$missing" ] || fail "names of $stub missing from the shim: $missing"
    echo "$stub: all $(wc -l <"$work/stub") names exported by the shim"
else
    echo "SKIP stub cross-check: $stub is absent"
fi
exit $status
