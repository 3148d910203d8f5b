#!/bin/sh
# gen-tables.sh - DEV-TIME generator of the shims' committed name tables:
#
#   shims/cuda/cuda-exports.def    VGPU_CU(name)    every function libcuda.so exports
#   shims/cuda/cuda-procaddr.def   VGPU_PROC(base, version, ptds, symbol)
#                                  what cuGetProcAddress(base, version, flags) returns
#   shims/nvml/nvml-exports.def    VGPU_NVML(name)  every function libnvidia-ml.so exports
#
# The project build never runs this script and needs no NVIDIA header; only the derived
# name lists are committed. Run it by hand when NVIDIA ships new headers, then review
# the diff of the three tables.
#
# Usage:
#   shims/tools/gen-tables.sh --cuda12 DIR --cuda13 DIR --nvml FILE
#                             [--stub LIBCUDA] [--with-gfx-interop] [--out TOPDIR] [--check]
#
#   --cuda12 DIR, --cuda13 DIR
#       An "include" directory of a CUDA 12.x and of a CUDA 13.x toolkit. Read:
#       cuda.h and cudaTypedefs.h (required), cudaProfiler.h and
#       cudaProfilerTypedefs.h (when present). They come with every CUDA toolkit
#       (/usr/local/cuda/include) and with the "cuda_cudart" component of NVIDIA's CUDA
#       redistributable archives; public mirrors exist (see below).
#   --nvml FILE
#       nvml.h, newest available. It comes with the CUDA toolkit / the "cuda_nvml_dev"
#       redistributable component; NVIDIA/go-nvml vendors a copy as gen/nvml/nvml.h
#       (with a "/*** NVML VERSION: x.y.z ***/" first line, which names the version in
#       the table header).
#   --stub LIBCUDA
#       The driver stub of the --cuda13 toolkit (lib64/stubs/libcuda.so). When given,
#       the CUDA 13 name set derived from the headers must equal the stub's dynamic
#       symbols exactly, or the script fails.
#   --with-gfx-interop
#       Also read cudaGL.h, cudaEGL.h, cudaVDPAU.h and their *Typedefs.h. Off by default:
#       the CUDA 13.0 stub exports none of their functions (see the report of the
#       commit that added this script); with it, such names may exceed the stub.
#   --out TOPDIR   source tree to write (default: the tree holding this script)
#   --check        write nothing; exit 1 when a committed table differs
#
# Method (CUDA): each cuda.h (+ cudaProfiler.h) is run through the C preprocessor three
# times - plain, with -D__CUDA_API_VERSION_INTERNAL (the legacy, unversioned entry
# points) and with -DCUDA_API_PER_THREAD_DEFAULT_STREAM (the _ptds/_ptsz variants) - and
# the names of all declared cu* functions are collected (static inline helpers such as
# cuGetProcAddress_v2_ptsz are not exports). Every PFN_<base>_v<version>[_ptds|_ptsz]
# typedef of cudaTypedefs.h (including its __CUDA_API_VERSION_INTERNAL section) is mapped
# to the exported symbol it types: the k-th version of <base> (ascending) is <base>,
# <base>_v2, <base>_v3, ...; a _ptds/_ptsz typedef at version V is the newest plain
# variant at or below V plus the suffix. The exports are the union of the declared names
# and the mapped symbols of both toolkits; the procaddr table is the mapping plus the
# hand-kept OVERRIDES below. Every procaddr symbol must be an export; Windows-only names
# (cuD3D*, cuWGL*, cuGraphicsD3D*) are never exported on Linux and are rejected.
# Method (NVML): nvml.h is preprocessed plain and with -DNVML_NO_UNVERSIONED_FUNC_DEFS
# (which declares the legacy unversioned entry points); all nvml* functions are kept.
#
# The committed tables were generated from public copies of NVIDIA's headers:
#   CUDA 13.0: the CUDA 13.0 toolkit (include/, lib64/stubs/libcuda.so);
#   CUDA 12.6: zspace/system.cuda-12.6 include/cuda.h and include/cudaTypedefs.h
#              (commit b3d92c837713411301ae5df45b0c7758df7d931e);
#   NVML 13.0.39: JunAr7112/go-nvml gen/nvml/nvml.h (a fork of NVIDIA/go-nvml,
#              commit a77e89273a7a555301150d449b94160008e7cb28).
#
# Needs: a C compiler's preprocessor ($CC, default cc), awk, sed, sort, comm, tr, and nm
# for --stub. POSIX sh.
set -eu
LC_ALL=C
export LC_ALL

# Hand-kept procaddr entries the typedef naming cannot express, one per line:
# "base version ptds symbol". Each replaces a derived entry with the same base, version
# and ptds, or is added. Every base whose cuda.h #define points at a differently named
# function must be listed here (the script fails otherwise).
#   cuGraphInstantiate: CUDA 12.0 made cuGraphInstantiate a macro for
#     cuGraphInstantiateWithFlags (#define cuGraphInstantiate cuGraphInstantiateWithFlags);
#     the 5-argument 11.x variants stay PFN_cuGraphInstantiate_v10000 (cuGraphInstantiate)
#     and _v11000 (cuGraphInstantiate_v2). A caller built for 12.0+ asking for
#     "cuGraphInstantiate" means the 3-argument flags variant.
OVERRIDES='cuGraphInstantiate 12000 0 cuGraphInstantiateWithFlags'

die() {
    printf 'gen-tables.sh: %s\n' "$*" >&2
    exit 1
}
note() {
    printf 'gen-tables.sh: %s\n' "$*" >&2
}

cuda12='' cuda13='' nvml='' stub='' interop=0 check=0
out=$(cd "$(dirname "$0")/../.." && pwd)
while [ $# -gt 0 ]; do
    case $1 in
    --cuda12) [ $# -ge 2 ] || die "$1 needs a directory"; cuda12=$2; shift 2 ;;
    --cuda13) [ $# -ge 2 ] || die "$1 needs a directory"; cuda13=$2; shift 2 ;;
    --nvml) [ $# -ge 2 ] || die "$1 needs a file"; nvml=$2; shift 2 ;;
    --stub) [ $# -ge 2 ] || die "$1 needs a file"; stub=$2; shift 2 ;;
    --out) [ $# -ge 2 ] || die "$1 needs a directory"; out=$2; shift 2 ;;
    --with-gfx-interop) interop=1; shift ;;
    --check) check=1; shift ;;
    -h | --help) sed -n '2,/^set -eu$/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument: $1 (see --help)" ;;
    esac
done
if [ -z "$cuda12" ] || [ -z "$cuda13" ] || [ -z "$nvml" ]; then
    die "--cuda12 DIR, --cuda13 DIR and --nvml FILE are required (see --help)"
fi
for d in "$cuda12" "$cuda13"; do
    [ -f "$d/cuda.h" ] || die "$d/cuda.h: not found"
    [ -f "$d/cudaTypedefs.h" ] || die "$d/cudaTypedefs.h: not found"
done
[ -f "$nvml" ] || die "$nvml: not found"
[ -z "$stub" ] || [ -f "$stub" ] || die "$stub: not found"
CC=${CC:-cc}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' HUP INT TERM

# Empty stand-ins for the system headers the NVIDIA headers include: only names matter
# here, and the output must not depend on the host's libc or GL packages.
mkdir -p "$tmp/stub/GL" "$tmp/stub/EGL" "$tmp/stub/vdpau"
for h in stdlib.h stdint.h stddef.h GL/gl.h EGL/egl.h EGL/eglext.h vdpau/vdpau.h; do
    : >"$tmp/stub/$h"
done

# preprocess OUT DIR FLAGS HEADER... : cc -E of the headers, attributes dropped.
preprocess() {
    pp_out=$1 pp_dir=$2 pp_flags=$3
    shift 3
    : >"$tmp/pp.c"
    for h; do printf '#include "%s"\n' "$h" >>"$tmp/pp.c"; done
    # shellcheck disable=SC2086 # pp_flags is a list of -D options
    "$CC" -E -P -D'__attribute__(x)=' -D'__declspec(x)=' $pp_flags \
        -I"$tmp/stub" -I"$pp_dir" "$tmp/pp.c" >"$pp_out" ||
        die "the preprocessor failed on $pp_dir"
}

# declarations PREFIX < preprocessed : "name<space>return type" of every declared
# function whose name starts with PREFIX (statements split at ; { }).
declarations() {
    # shellcheck disable=SC2020 # one newline per character, on purpose
    tr '\n\t' '  ' | tr ';{}' '\n\n\n' |
        sed -nE "s/^ *([A-Za-z_][A-Za-z0-9_ *]*[ *])(${1}[A-Za-z0-9_]*) *\(.*/\2 \1/p" |
        awk '{ name = $1; $1 = ""; sub(/^ +/, ""); sub(/ +$/, "")
               if ($0 ~ /(^|[ *])(return|static|typedef|if|else)([ *]|$)/) next
               print name " " $0 }' |
        sort -u
}

# typedef_names FILE... : the PFN_* typedef names, without PFN_ (one per line).
# Windows-only names (cuD3D*, cuWGL*, cuGraphicsD3D*), which some headers type even on
# Linux, are dropped: the Linux libcuda.so does not export them.
typedef_names() {
    cat "$@" | grep -E '^[[:space:]]*typedef' |
        sed -n 's/.*\*[[:space:]]*PFN_\([A-Za-z0-9_]*\)[[:space:]]*).*/\1/p' |
        grep -Ev '^cu(D3D|WGL|GraphicsD3D)' || :
}

# cuda_version DIR : CUDA_VERSION of DIR/cuda.h, as "12.6 (CUDA_VERSION 12060)".
cuda_version() {
    cv=$(sed -n 's/^#define[[:space:]]*CUDA_VERSION[[:space:]]*\([0-9][0-9]*\).*/\1/p' "$1/cuda.h" |
        head -n 1)
    [ -n "$cv" ] || die "$1/cuda.h: no #define CUDA_VERSION"
    printf '%s.%s (CUDA_VERSION %s)' $((cv / 1000)) $((cv % 1000 / 10)) "$cv"
}

# scan_cuda TAG DIR : writes $tmp/TAG.decl ("name rettype"), $tmp/TAG.pfn (typedef
# names), $tmp/TAG.alias ("name target" of cuda.h's #defines, PTDS wrappers removed) and
# $tmp/TAG.interop (names declared only by the graphics interop headers).
scan_cuda() {
    tag=$1 dir=$2
    hdrs=cuda.h tdefs=$dir/cudaTypedefs.h
    [ -f "$dir/cudaProfiler.h" ] && hdrs="$hdrs cudaProfiler.h"
    [ -f "$dir/cudaProfilerTypedefs.h" ] && tdefs="$tdefs $dir/cudaProfilerTypedefs.h"
    ihdrs='' itdefs=''
    if [ "$interop" = 1 ]; then
        for h in cudaGL.h cudaEGL.h cudaVDPAU.h; do
            [ -f "$dir/$h" ] || continue
            ihdrs="$ihdrs $h"
            t=$dir/${h%.h}Typedefs.h
            [ -f "$t" ] && itdefs="$itdefs $t"
        done
    fi
    : >"$tmp/$tag.decl"
    : >"$tmp/$tag.idecl"
    for mode in '' -D__CUDA_API_VERSION_INTERNAL -DCUDA_API_PER_THREAD_DEFAULT_STREAM; do
        # shellcheck disable=SC2086 # header lists
        preprocess "$tmp/pp.out" "$dir" "$mode" $hdrs
        declarations cu <"$tmp/pp.out" >>"$tmp/$tag.decl"
        if [ -n "$ihdrs" ]; then
            # shellcheck disable=SC2086
            preprocess "$tmp/pp.out" "$dir" "$mode" $hdrs $ihdrs
            declarations cu <"$tmp/pp.out" >>"$tmp/$tag.idecl"
        fi
    done
    sort -u -o "$tmp/$tag.decl" "$tmp/$tag.decl"
    cut -d' ' -f1 "$tmp/$tag.decl" | sort -u >"$tmp/$tag.base"
    cut -d' ' -f1 "$tmp/$tag.idecl" | sort -u | comm -23 - "$tmp/$tag.base" >"$tmp/$tag.interop"
    sort -u -o "$tmp/$tag.decl" "$tmp/$tag.idecl" "$tmp/$tag.decl"
    # shellcheck disable=SC2086 # tdefs is a list of files
    typedef_names $tdefs | sort -u >"$tmp/$tag.pfn"
    : >"$tmp/$tag.ipfn"
    if [ -n "$itdefs" ]; then
        # shellcheck disable=SC2086
        typedef_names $itdefs | sort -u | comm -23 - "$tmp/$tag.pfn" >"$tmp/$tag.ipfn"
        sort -u -o "$tmp/$tag.pfn" "$tmp/$tag.pfn" "$tmp/$tag.ipfn"
    fi
    [ -s "$tmp/$tag.pfn" ] || die "$dir/cudaTypedefs.h: no PFN_ typedefs"
    sed -n 's/^[[:space:]]*#[[:space:]]*define[[:space:]][[:space:]]*\(cu[A-Za-z0-9_]*\)[[:space:]][[:space:]]*\(.*\)$/\1 \2/p' \
        "$dir/cuda.h" |
        sed 's/__CUDA_API_PT[DS][SZ][[:space:]]*(\([A-Za-z0-9_]*\))/\1/; s/[[:space:]]*$//' |
        awk 'NF == 2 && $2 ~ /^cu[A-Za-z0-9_]*$/' >"$tmp/$tag.alias"
}

# --------------------------------------------------------------------------- CUDA
scan_cuda c12 "$cuda12"
scan_cuda c13 "$cuda13"
v12=$(cuda_version "$cuda12")
v13=$(cuda_version "$cuda13")
sort -u "$tmp/c12.pfn" "$tmp/c13.pfn" >"$tmp/pfn"

# Map every typedef name to "base version ptds symbol typedef" (typedef names without a
# version, a bug of some 12.x headers, go to $tmp/unversioned: their base is exported
# but has no procaddr entry).
awk -v unv="$tmp/unversioned" '
    {
        n = $0; sfx = ""
        if (n ~ /_pt(ds|sz)$/) { sfx = substr(n, length(n) - 4); n = substr(n, 1, length(n) - 5) }
        if (!match(n, /_v[0-9]+$/)) { print $0 > unv; next }
        ver = substr(n, RSTART + 2) + 0; base = substr(n, 1, RSTART - 1)
        bases[base] = 1
        if (sfx == "") { nv[base]++; v[base, nv[base]] = ver }
        else { np[base]++; pv[base, np[base]] = ver; ps[base, np[base]] = sfx }
    }
    END {
        for (b in bases) {
            k = nv[b]
            for (i = 1; i <= k; i++) a[i] = v[b, i]
            for (i = 1; i <= k; i++)
                for (j = i + 1; j <= k; j++)
                    if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
            for (i = 1; i <= k; i++) {
                s[i] = (i == 1) ? b : b "_v" i
                print b, a[i], 0, s[i], b "_v" a[i]
            }
            for (p = 1; p <= np[b]; p++) {
                best = 0
                for (i = 1; i <= k; i++) if (a[i] <= pv[b, p]) best = i
                print b, pv[b, p], 1, ((best == 0) ? b : s[best]) ps[b, p], b "_v" pv[b, p] ps[b, p]
            }
            delete a; delete s
        }
    }' "$tmp/pfn" >"$tmp/map"
touch "$tmp/unversioned"

# Overrides replace or extend the derived entries.
printf '%s\n' "$OVERRIDES" | awk 'NF' >"$tmp/overrides"
awk 'NR == FNR { o[$1 " " $2 " " $3] = $0; next }
     !(($1 " " $2 " " $3) in o) { print }
     END { for (k in o) print o[k] }' "$tmp/overrides" "$tmp/map" | cut -d' ' -f1-4 |
    sort -t' ' -k1,1 -k3,3n -k2,2n >"$tmp/proc"
dup=$(cut -d' ' -f1-3 "$tmp/proc" | uniq -d)
[ -z "$dup" ] || die "procaddr: repeated (base version ptds): $dup"

# Every #define that renames a function to another base needs an override.
cat "$tmp/c12.alias" "$tmp/c13.alias" | awk '
    { a = $1; b = $2; sub(/_pt(ds|sz)$/, "", a); sub(/_pt(ds|sz)$/, "", b)
      sub(/_v[0-9]+$/, "", a); sub(/_v[0-9]+$/, "", b); if (a != b) print $1, $2 }' |
    sort -u >"$tmp/renames"
while read -r from to; do
    awk -v f="$from" -v t="$to" '$1 == f && $4 == t { ok = 1 } END { exit !ok }' "$tmp/overrides" ||
        die "cuda.h renames $from to $to: add an OVERRIDES entry (base version ptds symbol)"
done <"$tmp/renames"

# Exports of each toolkit: declared names and the symbols its typedefs name.
for tag in c12 c13; do
    awk 'NR == FNR { want[$0] = 1; next } $5 in want { print $4 }' \
        "$tmp/$tag.pfn" "$tmp/map" >"$tmp/$tag.typed"
    grep -F -x -f "$tmp/unversioned" "$tmp/$tag.pfn" >>"$tmp/$tag.typed" || :
    sort -u -o "$tmp/$tag.typed" "$tmp/$tag.typed"
    # names typed only by the graphics interop typedef headers count as interop names
    awk 'NR == FNR { want[$0] = 1; next } $5 in want { print $4 }' \
        "$tmp/$tag.ipfn" "$tmp/map" | sort -u | comm -23 - "$tmp/$tag.base" |
        sort -u -o "$tmp/$tag.interop" - "$tmp/$tag.interop"
    sort -u "$tmp/$tag.base" "$tmp/$tag.interop" >"$tmp/$tag.declared"
    sort -u "$tmp/$tag.declared" "$tmp/$tag.typed" >"$tmp/$tag.exports"
    nd=$(comm -13 "$tmp/$tag.declared" "$tmp/$tag.typed" | wc -l)
    [ "$nd" -eq 0 ] ||
        note "$tag: $nd symbols named only by PFN typedefs (not declared by the scanned cuda.h: expected only for a partial header set)"
done
while read -r u; do
    note "typedef PFN_$u has no _v<version>: exported as $u; it adds no procaddr entry"
done <"$tmp/unversioned"

if [ -n "$stub" ]; then
    command -v nm >/dev/null || die "nm is needed for --stub"
    nm -D --defined-only "$stub" | awk 'NF >= 3 { print $3 }' | sort -u >"$tmp/stubnames"
    [ -s "$tmp/stubnames" ] || die "$stub: no dynamic symbols"
    comm -23 "$tmp/c13.exports" "$tmp/stubnames" | comm -23 - "$tmp/c13.interop" >"$tmp/extra"
    comm -13 "$tmp/c13.exports" "$tmp/stubnames" >"$tmp/missing"
    if [ -s "$tmp/extra" ] || [ -s "$tmp/missing" ]; then
        sed 's/^/  headers only: /' "$tmp/extra" >&2
        sed 's/^/  stub only:    /' "$tmp/missing" >&2
        die "CUDA $v13: the header-derived names differ from $stub"
    fi
fi

sort -u "$tmp/c12.exports" "$tmp/c13.exports" >"$tmp/cuda.exports"
win=$(grep -E '^cu(D3D|WGL|GraphicsD3D)' "$tmp/cuda.exports" || :)
[ -z "$win" ] || die "Windows-only names in the exports: $win"
cut -d' ' -f4 "$tmp/proc" | sort -u | comm -23 - "$tmp/cuda.exports" >"$tmp/bad"
[ ! -s "$tmp/bad" ] || die "procaddr symbols that are not exports: $(tr '\n' ' ' <"$tmp/bad")"

# ---------------------------------------------------------------------------- NVML
ndir=$(dirname "$nvml")
nbase=$(basename "$nvml")
: >"$tmp/nvml.decl"
for mode in '' -DNVML_NO_UNVERSIONED_FUNC_DEFS; do
    preprocess "$tmp/pp.out" "$ndir" "$mode" "$nbase"
    declarations nvml <"$tmp/pp.out" >>"$tmp/nvml.decl"
done
sort -u -o "$tmp/nvml.decl" "$tmp/nvml.decl"
cut -d' ' -f1 "$tmp/nvml.decl" | sort -u >"$tmp/nvml.exports"
[ -s "$tmp/nvml.exports" ] || die "$nvml: no nvml* declarations"
nv=$(sed -n 's|^/\*\*\* NVML VERSION: \([^ ]*\) \*\*\*/.*|\1|p' "$nvml" | head -n 1)
if [ -z "$nv" ]; then
    nv="API $(sed -n 's/^#define[[:space:]]*NVML_API_VERSION[[:space:]]*\([0-9]*\).*/\1/p' "$nvml" |
        head -n 1) (no NVML VERSION line)"
fi

# Functions whose return type is not the API's status type, for the reviewer.
cat "$tmp/c12.decl" "$tmp/c13.decl" | sort -u |
    awk '{ n = $1; $1 = "" } $0 != " CUresult" { print "gen-tables.sh: not CUresult:" $0 ":", n }' >&2
awk '{ n = $1; $1 = "" } $0 != " nvmlReturn_t" { print "gen-tables.sh: not nvmlReturn_t:" $0 ":", n }' \
    "$tmp/nvml.decl" >&2

# -------------------------------------------------------------------------- output
hdrs="cuda.h and cudaProfiler.h" tdh="cudaTypedefs.h and cudaProfilerTypedefs.h"
if [ "$interop" = 1 ]; then
    hdrs="cuda.h, cudaProfiler.h, cudaGL.h, cudaEGL.h and cudaVDPAU.h"
    tdh="cudaTypedefs.h, cudaProfilerTypedefs.h and the cudaGL/EGL/VDPAU typedef headers"
fi
stubline=
[ -n "$stub" ] && stubline="
 * The CUDA ${v13%% *} names equal the dynamic symbols of its stub lib64/stubs/libcuda.so."

{
    cat <<EOF
/* Generated by shims/tools/gen-tables.sh: do not edit by hand.
 * Headers: CUDA $v12 and CUDA $v13.
 * Every function NVIDIA's libcuda.so exports for CUDA 12.x and 13.x: the union, over both
 * toolkits, of the functions declared by $hdrs (preprocessed plain, with
 * __CUDA_API_VERSION_INTERNAL and with CUDA_API_PER_THREAD_DEFAULT_STREAM) and of the
 * symbols named by the PFN_* typedefs of $tdh.$stubline
 * One VGPU_CU(name) per line, strcmp-sorted, unique. */
EOF
    sed 's/.*/VGPU_CU(&)/' "$tmp/cuda.exports"
} >"$tmp/cuda-exports.def"

{
    cat <<EOF
/* Generated by shims/tools/gen-tables.sh: do not edit by hand.
 * Headers: CUDA $v12 and CUDA $v13.
 * The cuGetProcAddress table, from the PFN_<base>_v<version>[_ptds|_ptsz] typedefs of
 * $tdh of both toolkits (the k-th version of a base is
 * base, base_v2, base_v3, ...; a _ptds/_ptsz typedef names the newest plain variant at
 * or below its version plus that suffix) and the OVERRIDES kept in the script.
 * VGPU_PROC(base, version, ptds, symbol): from CUDA version "version" on, "base" means
 * "symbol"; ptds 1 marks the variant for CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM.
 * Sorted by base (strcmp), then ptds, then version. */
EOF
    awk '{ printf "VGPU_PROC(%s, %s, %s, %s)\n", $1, $2, $3, $4 }' "$tmp/proc"
} >"$tmp/cuda-procaddr.def"

{
    cat <<EOF
/* Generated by shims/tools/gen-tables.sh: do not edit by hand.
 * Header: nvml.h of NVML $nv.
 * Every function the header declares, preprocessed plain (the versioned names, e.g.
 * nvmlInit_v2) and with NVML_NO_UNVERSIONED_FUNC_DEFS (the legacy unversioned names the
 * library also exports, e.g. nvmlInit).
 * One VGPU_NVML(name) per line, strcmp-sorted, unique. */
EOF
    sed 's/.*/VGPU_NVML(&)/' "$tmp/nvml.exports"
} >"$tmp/nvml-exports.def"

status=0
for f in cuda/cuda-exports.def cuda/cuda-procaddr.def nvml/nvml-exports.def; do
    new=$tmp/$(basename "$f")
    dst=$out/shims/$f
    if [ "$check" = 1 ]; then
        if ! cmp -s "$new" "$dst"; then
            note "$dst differs from what the headers give"
            status=1
        fi
    else
        mkdir -p "$(dirname "$dst")"
        cp "$new" "$dst"
    fi
done
note "CUDA exports: $(wc -l <"$tmp/cuda.exports") (only in $v12: $(comm -23 "$tmp/c12.exports" "$tmp/c13.exports" | wc -l)), procaddr: $(wc -l <"$tmp/proc"), NVML exports: $(wc -l <"$tmp/nvml.exports")"
exit "$status"
