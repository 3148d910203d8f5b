#!/bin/sh
# make-big-tree.sh --build BUILD --out DIR: a full-size Ollama era-E install prefix in
# DIR/tree/usr/local, made from the era-e fixture tree by re-linking its large files from the
# fixtures' own objects (bench_mirror in CMakeLists.txt) plus generated bulk sections of
# pseudo-random bytes, so every file stays a valid, loadable ELF file of realistic size.
# Reuses DIR/tree when DIR/tree.key matches the inputs (sources, objects, fixture tree, sizes).
set -eu

usage() {
    echo "usage: make-big-tree.sh --build BUILD --out DIR" >&2
    exit 2
}

build=
out=
while [ "$#" -gt 0 ]; do
    case $1 in
    --build) [ "$#" -ge 2 ] || usage; build=$2; shift 2 ;;
    --out) [ "$#" -ge 2 ] || usage; out=$2; shift 2 ;;
    *) usage ;;
    esac
done
if [ -z "$build" ] || [ -z "$out" ]; then
    usage
fi

here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/.." && pwd)
cc=${VGPU_BENCH_CC:-cc}
fixtures=$build/fixtures
objects=$build/bench/objects.txt
fill=$build/bench/vgpu-bench-fill
decoy=$fixtures/decoy
for f in "$fixtures/trees/e/bin/ollama" "$objects" "$fill" "$decoy/libcuda.so.1"; do
    [ -e "$f" ] || {
        echo "make-big-tree.sh: $f is missing (cmake --build $build --target bench-tools fixtures)" >&2
        exit 1
    }
done

# The files that get their real size, in build order (later ones link against earlier ones).
# PATH (in the prefix) | objects (objects.txt) | soname, - for the executable | DT_RUNPATH |
# libraries linked, relative to lib/ollama (@decoy/: the fixtures' decoy driver) |
# bulk sections NAME:KIND:MiB (x code, r read-only data, w writable data) | seed
#
# Sizes: the issue's (~60 MB ollama, ~1 GB libggml-cuda.so, ~550 MB cublasLt, ~100 MB cublas).
# cuBLAS/cuBLASLt split them as CUDA 13.0's libcublas.so.13/libcublasLt.so.13 do (measured:
# .text 12%/20%, .rodata 1%/9%, .nv_fatbin 86%/26%, .cask_resource -/20%, data -/18%);
# libggml-cuda.so and the Go binary are estimates (mostly .nv_fatbin; .text/.rodata/.gopclntab).
layout() {
    cat <<'EOF'
lib/ollama/cuda_v13/libcublasLt.so.13|bench-obj-cublaslt|libcublasLt.so.13|$ORIGIN|-|.bench_text:x:112 .bench_rodata:r:48 .nv_fatbin:r:140 .cask_resource:r:112 .bench_data:w:112|11
lib/ollama/cuda_v13/libcublas.so.13|bench-obj-cublas|libcublas.so.13|$ORIGIN|cuda_v13/libcublasLt.so.13|.bench_text:x:11 .bench_rodata:r:1 .nv_fatbin:r:83|12
lib/ollama/cuda_v12/libggml-cuda.so|bench-obj-ggml-cuda|libggml-cuda.so|$ORIGIN|@decoy/libcuda.so.1 cuda_v12/libcudart.so.12 cuda_v12/libcublas.so.12 libggml-base.so.0|.bench_text:x:32 .bench_rodata:r:8 .nv_fatbin:r:914|13
lib/ollama/cuda_v13/libggml-cuda.so|bench-obj-ggml-cuda|libggml-cuda.so|$ORIGIN|@decoy/libcuda.so.1 cuda_v13/libcudart.so.13 cuda_v13/libcublas.so.13 libggml-base.so.0|.bench_text:x:32 .bench_rodata:r:8 .nv_fatbin:r:914|14
bin/ollama|bench-obj-ollama|-|-|-|.bench_text:x:24 .bench_rodata:r:12 .gopclntab:r:21|15
EOF
}

objects_of() {
    sed -n "s/^$1=//p" "$objects" | tr ':' ' '
}

# The inputs' fingerprint: when it matches tree.key, the tree is reused.
input_key() {
    {
        cat "$0" "$here/fill.c" "$here/cublaslt.c"
        "$cc" --version 2>&1 | head -n 1
        # shellcheck disable=SC2046
        sha256sum $(sed 's/^[^=]*=//' "$objects" | tr ':' ' ')
        (cd "$fixtures/trees/e" && find . -type f -exec sha256sum {} + | sort)
        sha256sum "$decoy/libcuda.so.1"
    } | sha256sum | cut -d' ' -f1
}

# bulk_sources SECTIONS STUB_C LDSCRIPT: a stub input section per bulk section (it gives the
# output section its flags) and a linker script that grows each one after its neighbour.
bulk_sources() {
    : >"$2"
    text='' ro='' rw='' i=0
    for spec in $1; do
        name=${spec%%:*} rest=${spec#*:}
        kind=${rest%%:*} mib=${rest#*:}
        i=$((i + 1))
        case $kind in
        x) printf '__attribute__((used, section("%s"))) static void bulk_%d(void) {}\n' "$name" "$i" >>"$2" ;;
        r) printf '__attribute__((used, section("%s"))) __attribute__((aligned(64))) static const unsigned char bulk_%d[1] = {1};\n' "$name" "$i" >>"$2" ;;
        w) printf '__attribute__((used, section("%s"))) __attribute__((aligned(64))) static unsigned char bulk_%d[1] = {1};\n' "$name" "$i" >>"$2" ;;
        esac
        stmt="  $name : { KEEP(*($name)) . += $((mib * 1048576)); }"
        case $kind in
        x) text="$text$stmt
" ;;
        r) ro="$ro$stmt
" ;;
        w) rw="$rw$stmt
" ;;
        esac
    done
    {
        [ -z "$text" ] || printf 'SECTIONS\n{\n%s}\nINSERT AFTER .text;\n' "$text"
        [ -z "$ro" ] || printf 'SECTIONS\n{\n%s}\nINSERT AFTER .rodata;\n' "$ro"
        [ -z "$rw" ] || printf 'SECTIONS\n{\n%s}\nINSERT AFTER .data;\n' "$rw"
    } >"$3"
}

# make_file PREFIX LINE: links one layout line into PREFIX and fills its bulk sections.
make_file() {
    prefix=$1
    IFS='|' read -r path objs soname runpath libs bulk seed <<EOF
$2
EOF
    work=$out/gen
    rm -rf "$work"
    mkdir -p "$work"
    bulk_sources "$bulk" "$work/bulk.c" "$work/bulk.ld"
    "$cc" -c -O2 -fPIC -o "$work/bulk.o" "$work/bulk.c"
    # shellcheck disable=SC2046
    set -- $(objects_of "$objs") "$work/bulk.o"
    [ "$#" -gt 1 ] || {
        echo "make-big-tree.sh: no objects for $objs in $objects" >&2
        exit 1
    }
    if [ "$libs" != - ]; then
        for l in $libs; do
            case $l in
            @decoy/*) set -- "$@" "$decoy/${l#@decoy/}" ;;
            *) set -- "$@" "$prefix/lib/ollama/$l" ;;
            esac
        done
    fi
    set -- -Wl,--no-as-needed "$@" -Wl,-T,"$work/bulk.ld" -ldl
    if [ "$soname" != - ]; then
        set -- -shared -Wl,-soname,"$soname" -Wl,-z,defs "$@"
    fi
    if [ "$runpath" != - ]; then
        set -- "$@" -Wl,--enable-new-dtags -Wl,-rpath,"$runpath"
    fi
    "$cc" -o "$work/out" "$@"
    sections=
    for spec in $bulk; do
        sections="$sections ${spec%%:*}"
    done
    # shellcheck disable=SC2086
    "$fill" "$work/out" "$seed" $sections
    chmod 0755 "$work/out"
    mkdir -p "$(dirname "$prefix/$path")"
    mv -f "$work/out" "$prefix/$path"
    rm -rf "$work"
}

key=$(input_key)
if [ -f "$out/tree.key" ] && [ "$(cat "$out/tree.key")" = "$key" ] && [ -f "$out/tree.sums" ] &&
    [ -x "$out/tree/usr/local/bin/ollama" ]; then
    echo "make-big-tree.sh: reusing $out/tree (inputs unchanged)"
    exit 0
fi
echo "make-big-tree.sh: generating the full-size era-E tree in $out/tree (once; cached)"
rm -rf "$out/tree" "$out/tree.new" "$out/tree.key" "$out/tree.sums"
mkdir -p "$out"
VGPU_TEST_FIXTURES=$fixtures sh "$src/tests/fixtures/make-tree.sh" e "$out/tree.new/usr/local"
layout | while IFS= read -r line; do
    echo "  ${line%%|*}"
    make_file "$out/tree.new/usr/local" "$line"
done
# The re-linked files must look to vgpu-patch exactly as the fixture's do (needed, soname,
# search path, dynamic slots, routes, build info, how the shims would be added).
for path in bin/ollama lib/ollama/cuda_v12/libggml-cuda.so lib/ollama/cuda_v13/libggml-cuda.so; do
    "$build/bin/vgpu-patch" inspect "$fixtures/trees/e/$path" | tail -n +2 >"$out/inspect.fixture"
    "$build/bin/vgpu-patch" inspect "$out/tree.new/usr/local/$path" | tail -n +2 >"$out/inspect.big"
    if ! cmp -s "$out/inspect.fixture" "$out/inspect.big"; then
        echo "make-big-tree.sh: the full-size $path differs from the fixture's:" >&2
        diff "$out/inspect.fixture" "$out/inspect.big" >&2 || :
        exit 1
    fi
done
rm -f "$out/inspect.fixture" "$out/inspect.big"
# Checksums of the pristine tree: the benchmark hard-links it into its scratch trees and checks
# afterwards that nothing wrote into the shared files.
(cd "$out/tree.new" && find . -type f -exec sha256sum {} + | sort -k 2) >"$out/tree.sums"
mv "$out/tree.new" "$out/tree"
echo "$key" >"$out/tree.key"
