#!/bin/sh
# fallback.sh: what the fallbacks cost (bench/README.md, "The fallbacks"). In one run:
# the start of a small program plainly, under the audit mechanism's variables (LD_AUDIT
# with libvgpu-audit.so, VGPU_SHIM_DIR) and through vgpu-launch — interleaved rounds,
# the best median of each — and `vgpu-patch ensure` on a patched era-E fixture install,
# under the patch and under the audit mechanism. Goals: the audit module adds under
# 1 ms to a start; ensure on a patched install takes under 20 ms. Informational only:
# a MISS is printed, never an exit status.
#   sh bench/fallback.sh BUILD_DIR [RUNS]
set -eu
build=$(cd "${1:?usage: fallback.sh BUILD_DIR [RUNS]}" && pwd)
runs=${2:-${VGPU_BENCH_RUNS:-500}}
here=$(cd "$(dirname "$0")" && pwd)
start=$build/bench/vgpu-bench-start
hello=$build/bench/vgpu-bench-hello
shims=$build/lib/vgpu
for f in "$start" "$hello" "$build/bin/vgpu-launch" "$build/bin/vgpu-patch" \
    "$shims/libvgpu-audit.so" "$build/fixtures/trees/e"; do
    [ -e "$f" ] || { echo "fallback.sh: $f is missing (cmake --build $build --target bench-fallback)" >&2; exit 1; }
done
work=$(mktemp -d "${TMPDIR:-/tmp}/vgpu-bench-fallback.XXXXXX")
chmod 755 "$work"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/shims"
cp "$shims/libvgpu-cuda.so.1" "$shims/libvgpu-nvml.so.1" "$shims/libvgpu-audit.so" "$work/shims/"
chmod 755 "$work/shims"

median() { sed -n 's/.*median_us=\([0-9.]*\).*/\1/p'; }
best() { printf '%s\n' "$@" | sort -n | head -n 1; }

plain='' audit='' launch=''
for round in 1 2 3; do
    plain="$plain $("$start" --runs "$runs" -- "$hello" | median)"
    audit="$audit $("$start" --runs "$runs" --env "LD_AUDIT=$work/shims/libvgpu-audit.so" \
        --env "VGPU_SHIM_DIR=$work/shims" -- "$hello" | median)"
    launch="$launch $("$start" --runs "$runs" -- "$build/bin/vgpu-launch" --strict \
        --shim-dir "$work/shims" -- "$hello" | median)"
    echo "round $round done" >&2
done
# shellcheck disable=SC2086 # word lists on purpose
p=$(best $plain) a=$(best $audit) l=$(best $launch)

# ensure on a patched install (the era-E fixture tree, the shims as built), wired to a unit
# as install.sh leaves it: what ExecStartPre= runs before every start.
VGPU_TEST_FIXTURES=$build/fixtures sh "$here/../tests/fixtures/make-tree.sh" e "$work/root/usr/local"
mkdir -p "$work/root/etc/systemd/system"
printf '[Service]\nExecStart=/usr/local/bin/ollama serve\nUser=ollama\n' \
    >"$work/root/etc/systemd/system/ollama.service"
vp() { "$build/bin/vgpu-patch" "$@" --root "$work/root" >/dev/null; }
vp ollama --prefix /usr/local --shim-dir "$work/shims"
ep=$("$start" --runs 30 -- "$build/bin/vgpu-patch" ensure --root "$work/root" | median)
vp rollback
vp ollama --prefix /usr/local --shim-dir "$work/shims" --mechanism audit
ea=$("$start" --runs 30 -- "$build/bin/vgpu-patch" ensure --root "$work/root" | median)

awk -v p="$p" -v a="$a" -v l="$l" -v ep="$ep" -v ea="$ea" -v runs="$runs" 'BEGIN {
    printf("start of a small program (median of %d runs, best of 3 rounds)\n", runs)
    printf("  %-34s %9.1f us\n", "plain", p)
    printf("  %-34s %9.1f us  (+%.1f us, %.2fx)\n", "under LD_AUDIT=libvgpu-audit.so", a, a - p, a / p)
    printf("  %-34s %9.1f us  (+%.1f us, %.2fx)\n", "through vgpu-launch --strict", l, l - p, l / p)
    printf("vgpu-patch ensure on a patched, wired install (median of 30 runs)\n")
    printf("  %-34s %9.2f ms\n", "mechanism patch", ep / 1000)
    printf("  %-34s %9.2f ms\n", "mechanism audit", ea / 1000)
    printf("goal: the audit module adds under 1 ms to a start: %s (%.3f ms)\n",
           a - p < 1000 ? "PASS" : "MISS", (a - p) / 1000)
    printf("goal: ensure on a patched install under 20 ms: %s (%.2f ms, %.2f ms)\n",
           ep < 20000 && ea < 20000 ? "PASS" : "MISS", ep / 1000, ea / 1000)
}'
