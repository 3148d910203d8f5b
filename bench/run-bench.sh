#!/bin/sh
# Many variables set here are read by report.sh, which this script sources from a computed
# path that shellcheck cannot follow.
# shellcheck disable=SC2034
# run-bench.sh: the vgpu-patch benchmark (README.md in this folder). Makes (once, cached) a
# full-size Ollama era-E tree, then measures in one run: `cp -a` of the whole tree, `cp` of the
# files vgpu-patch rewrites, `vgpu-patch ollama`, the naive patchelf method, `status`, `verify`
# and `rollback`, and prints one table with ratios and goals. The goals are informational: a
# MISS is printed, never an exit status; the script fails only when something could not run.
set -eu

usage() {
    cat <<'EOF'
Usage: run-bench.sh [--build DIR] [--dir DIR] [--repeat N] [--status-runs N] [--json FILE]
                    [--keep-work] [--clean]
  --build DIR        the CMake build directory (default: <source>/build)
  --dir DIR          scratch and cache directory (default: ${TMPDIR:-/tmp}/vgpu-bench); needs
                     about 5.7 GB free on its file system (the cached 2.7 GB tree + one copy)
  --repeat N         runs of each measured step (default 3; median and min are reported)
  --status-runs N    runs of `vgpu-patch status` (default 50; median and p95)
  --json FILE        also write the numbers as JSON to FILE
  --keep-work        keep DIR/work (scratch trees, outputs of every run)
  --clean            remove DIR (the cached tree) and exit
Environment: VGPU_BENCH_DIR, VGPU_BENCH_REPEAT, VGPU_BENCH_STATUS_RUNS, VGPU_BENCH_JSON set the
same defaults; VGPU_BENCH_CC (compiler for the tree), VGPU_BENCH_PATCHELF (default: on PATH).
EOF
}

here=$(cd "$(dirname "$0")" && pwd)
build=
dir=${VGPU_BENCH_DIR:-${TMPDIR:-/tmp}/vgpu-bench}
repeat=${VGPU_BENCH_REPEAT:-3}
status_runs=${VGPU_BENCH_STATUS_RUNS:-50}
json=${VGPU_BENCH_JSON:-}
keep=0
clean=0
while [ "$#" -gt 0 ]; do
    case $1 in
    --build | --dir | --repeat | --status-runs | --json)
        [ "$#" -ge 2 ] || { usage >&2; exit 2; }
        case $1 in
        --build) build=$2 ;;
        --dir) dir=$2 ;;
        --repeat) repeat=$2 ;;
        --status-runs) status_runs=$2 ;;
        --json) json=$2 ;;
        esac
        shift 2
        ;;
    --keep-work) keep=1; shift ;;
    --clean) clean=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
    esac
done
for n in "$repeat" "$status_runs"; do
    case $n in
    '' | *[!0-9]* | 0) echo "run-bench.sh: counts must be positive integers" >&2; exit 2 ;;
    esac
done
case $json in '' | /*) ;; *) json=$(pwd)/$json ;; esac

fail() {
    echo "run-bench.sh: $*" >&2
    exit 1
}

if [ "$clean" = 1 ]; then
    rm -rf "$dir"
    echo "removed $dir"
    exit 0
fi

[ -n "$build" ] || build=$here/../build
build=$(cd "$build" && pwd) || fail "no build directory $build"
vp=$build/bin/vgpu-patch
run=$build/bench/vgpu-bench-run
fixtures=$build/fixtures
for f in "$vp" "$run" "$build/bench/vgpu-bench-fill" "$build/libexec/vgpu-patch/vgpu-probe" \
    "$fixtures/standin/libvgpu-cuda.so.1" "$fixtures/trees/e/bin/ollama"; do
    [ -e "$f" ] || fail "$f is missing: build it with cmake --build $build --target bench"
done
patchelf=${VGPU_BENCH_PATCHELF:-}
case $patchelf in *NOTFOUND) patchelf= ;; esac
[ -n "$patchelf" ] || patchelf=$(command -v patchelf || :)
[ -n "$patchelf" ] || fail "patchelf not found (the naive method needs it; set VGPU_BENCH_PATCHELF)"
export VGPU_BENCH_CC="${VGPU_BENCH_CC:-cc}"

# --- space: the cached tree (2.7 GB) plus one full copy of it (baseline 1), with a margin.
tree_kb=2700000
mkdir -p "$dir"
rm -rf "$dir/work"
have_kb=$(df -Pk "$dir" | awk 'NR == 2 { print $4 }')
cached_kb=0
[ -d "$dir/tree" ] && cached_kb=$(du -sk "$dir/tree" | cut -f1)
need_kb=$((2 * tree_kb + 300000))
if [ $((have_kb + cached_kb)) -lt "$need_kb" ]; then
    fail "$dir needs about $((need_kb / 1000000)).$((need_kb / 100000 % 10)) GB on its file system" \
        "(cached tree included); $(((have_kb + cached_kb) / 1000000)).$(((have_kb + cached_kb) / 100000 % 10)) GB" \
        "available. Use --dir on a larger file system."
fi

# --- the tree
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
key_before=$(stat -c '%Y %s' "$dir/tree.key" 2>/dev/null || :)
gen_t0=$(date +%s)
sh "$here/make-big-tree.sh" --build "$build" --out "$dir"
if [ -n "$key_before" ] && [ "$(stat -c '%Y %s' "$dir/tree.key")" = "$key_before" ]; then
    gen_state="cached in $dir/tree"
else
    gen_state="generated in $(($(date +%s) - gen_t0)) s (then cached in $dir/tree)"
fi
cache=$dir/tree
work=$dir/work
results=$work/results
cleanup() {
    [ "$keep" = 1 ] || rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir -p "$results" "$work/shims"
chmod 755 "$dir" "$work" "$work/shims"
shims=$work/shims
cp "$fixtures/standin/libvgpu-cuda.so.1" "$fixtures/standin/libvgpu-nvml.so.1" "$shims/"
chmod 644 "$shims"/*

. "$here/report.sh"

# fresh NAME [FILE...]: a scratch root whose /usr/local hard-links the cached tree (vgpu-patch
# never writes an installed file in place: it renames new files over them), with real copies of
# the FILEs (relative to the prefix), which the naive method edits in place.
fresh() {
    r=$work/$1/root
    shift
    rm -rf "${r%/root}"
    mkdir -p "$r/usr"
    cp -al "$cache/usr/local" "$r/usr/local"
    for f in "$@"; do
        cp -a --remove-destination "$cache/usr/local/$f" "$r/usr/local/$f"
    done
    echo "$r"
}

# settle: write back dirty pages before a timed step, so it does not pay for the previous one's.
settle() {
    sync
}

# --- warm the page cache (drop_caches is not used: every number is warm-cache)
find "$cache" -type f -exec cat {} + >/dev/null

# --- 0. one traced run of each vgpu-patch command: own and children's peak RSS, the files it
# rewrites and their bytes (from --json).
echo "measuring: traced apply, status, verify, rollback (peak RSS)"
r=$(fresh r0)
settle
"$run" --trace --result "$results/apply.trace" -- \
    "$vp" ollama --root "$r" --prefix /usr/local --shim-dir "$shims" --json \
    >"$work/apply.json" 2>"$work/apply.err" ||
    fail "vgpu-patch ollama failed: $(tail -n 5 "$work/apply.err")"
awk '/^  "verification": \{/ { v = 1; next } v && /^    "ok": / { print $2; exit }' \
    "$work/apply.json" | grep -q '^true' ||
    fail "vgpu-patch ollama did not verify the full-size tree (see $work/apply.json, --keep-work)"
awk '/^  "files": \[/ { f = 1; next } f && /^  \]/ { exit }
     f && /^      "path": / { gsub(/[",]/, "", $2); p = $2 }
     f && /^      "bytes_written": / { gsub(/,/, "", $2); print p, $2 }' \
    "$work/apply.json" >"$work/rewritten"
[ -s "$work/rewritten" ] || fail "vgpu-patch ollama --json listed no rewritten file"
bytes_written=$(sed -n 's/^  "bytes_written": \([0-9]*\),*$/\1/p' "$work/apply.json")
rewritten_rel=$(awk '{ sub("^/", "", $1); print $1 }' "$work/rewritten")
# shellcheck disable=SC2086
rewritten_bytes=$(cd "$cache" && stat -c %s $rewritten_rel | awk '{ s += $1 } END { printf("%.0f", s) }')
for c in status verify rollback; do
    "$run" --trace --result "$results/$c.trace" -- "$vp" "$c" --root "$r" \
        >"$work/$c.out" 2>&1 || fail "vgpu-patch $c failed: $(tail -n 5 "$work/$c.out")"
done
rm -rf "$work/r0"

# --- 1. cp -a of the whole prefix
echo "measuring: cp -a of the whole tree x$repeat"
i=0
while [ "$i" -lt "$repeat" ]; do
    i=$((i + 1))
    settle
    "$run" --result "$results/cp-all" -- cp -a "$cache/usr/local" "$work/cp-all" ||
        fail "cp -a failed"
    rm -rf "$work/cp-all"
done

# --- 2. cp of exactly the files vgpu-patch rewrites (and, for reference, cp + fsync)
echo "measuring: cp of the rewritten files x$repeat"
i=0
while [ "$i" -lt "$repeat" ]; do
    i=$((i + 1))
    for kind in cp-rewritten cp-rewritten-fsync; do
        mkdir -p "$work/$kind"
        settle
        # shellcheck disable=SC2086,SC2016
        (cd "$cache" && if [ "$kind" = cp-rewritten ]; then
            "$run" --result "$results/$kind" -- cp --parents $rewritten_rel "$work/$kind"
        else
            "$run" --result "$results/$kind" -- sh -c \
                'd=$1; shift; cp --parents "$@" "$d" && cd "$d" && sync "$@"' sh \
                "$work/$kind" $rewritten_rel
        fi) || fail "cp of the rewritten files failed"
        rm -rf "${work:?}/$kind"
    done
done

# --- 3. vgpu-patch ollama on fresh trees (after a --dry-run: discover, inspect and plan only);
# status and verify on the first patched tree; rollback of each
echo "measuring: vgpu-patch ollama --dry-run and ollama x$repeat, status x$status_runs," \
    "verify x$repeat, rollback x$repeat"
i=0
while [ "$i" -lt "$repeat" ]; do
    i=$((i + 1))
    r=$(fresh "a$i")
    settle
    "$run" --result "$results/dry-run" -- \
        "$vp" ollama --dry-run --root "$r" --prefix /usr/local --shim-dir "$shims" \
        >/dev/null 2>"$work/err" || fail "vgpu-patch ollama --dry-run failed: $(tail -n 5 "$work/err")"
    "$run" --result "$results/apply" -- \
        "$vp" ollama --root "$r" --prefix /usr/local --shim-dir "$shims" --json \
        >"$work/apply-$i.json" 2>"$work/err" || fail "vgpu-patch ollama failed: $(tail -n 5 "$work/err")"
    # vgpu-patch's own phase timings (its --json "timings_ms"), as ns like the runner's.
    awk '/"timings_ms": \{/ { t = 1; next } t && /}/ { exit }
         t { gsub(/[",:]/, " "); printf("%s_ns=%.0f ", $1, $2 * 1e6) } END { print "" }' \
        "$work/apply-$i.json" >>"$results/apply-phases"
    if [ "$i" = 1 ]; then
        "$run" --repeat "$status_runs" --result "$results/status" -- "$vp" status --root "$r" \
            >/dev/null 2>&1 || fail "vgpu-patch status failed on the patched tree"
        j=0
        while [ "$j" -lt "$repeat" ]; do
            j=$((j + 1))
            "$run" --result "$results/verify" -- "$vp" verify --root "$r" >/dev/null 2>&1 ||
                fail "vgpu-patch verify failed on the patched tree"
        done
    fi
    settle
    "$run" --result "$results/rollback" -- "$vp" rollback --root "$r" >/dev/null 2>&1 ||
        fail "vgpu-patch rollback failed"
    rm -rf "$work/a$i"
done

# --- 4. the naive method: patchelf on every file that needs libcuda/NVML, and --add-needed of
# both shims on each executable Ollama runs; one edit per invocation (0.14.3 corrupts several),
# in place.
echo "measuring: naive patchelf method x$repeat"
naive_files=
# shellcheck disable=SC2016
{
    echo 'set -eu'
    echo 'cd "$1"'
    for f in $(cd "$cache/usr/local" && find . -type f | sed 's|^\./||' | sort); do
        needed=$("$patchelf" --print-needed "$cache/usr/local/$f" 2>/dev/null) || continue
        for pair in libcuda.so.1=libvgpu-cuda.so.1 libnvidia-ml.so.1=libvgpu-nvml.so.1; do
            if printf '%s\n' "$needed" | grep -qx "${pair%%=*}"; then
                echo "\"$patchelf\" --replace-needed ${pair%%=*} \"$shims/${pair#*=}\" $f"
                naive_files="$naive_files $f"
            fi
        done
    done
    for f in bin/ollama lib/ollama/llama-server; do
        [ -f "$cache/usr/local/$f" ] || continue
        echo "\"$patchelf\" --add-needed \"$shims/libvgpu-cuda.so.1\" $f"
        echo "\"$patchelf\" --add-needed \"$shims/libvgpu-nvml.so.1\" $f"
        naive_files="$naive_files $f"
    done
} >"$work/naive.sh"
naive_edits=$(grep -c '^"' "$work/naive.sh")
# shellcheck disable=SC2086
naive_files=$(printf '%s\n' $naive_files | sort -u | tr '\n' ' ' | sed 's/ $//')
# shellcheck disable=SC2086
naive_bytes=$(cd "$cache/usr/local" && stat -c %s $naive_files | awk '{ s += $1 } END { printf("%.0f", s) }')
naive_runs=yes
i=0
while [ "$i" -lt "$repeat" ]; do
    i=$((i + 1))
    # shellcheck disable=SC2086
    r=$(fresh "n$i" $naive_files)
    settle
    "$run" --result "$results/naive" -- sh "$work/naive.sh" "$r/usr/local" >/dev/null \
        2>"$work/err" || fail "the naive method failed: $(tail -n 5 "$work/err")"
    "$r/usr/local/bin/ollama" --version >/dev/null 2>&1 || naive_runs=no
    rm -rf "$work/n$i"
done

# --- the shared (hard-linked) files of the cached tree must be untouched
(cd "$cache" && awk '$2 !~ /libggml-cuda|libcublas/' "$dir/tree.sums" | sha256sum -c --quiet) ||
    fail "a file of the cached tree changed: something wrote into an installed file in place"

report
