#!/bin/sh
# Concurrent runs are serialised by the state dir's lock: one that cannot get it within
# --lock-timeout says who holds it (exit 1); two started together both succeed, one
# after the other, and the tree ends patched once, with exact rollback.
. "$(dirname "$0")/lib.sh"

command -v flock >/dev/null || skip "flock (util-linux) is not installed"
setup_era e
snapshot "$TREE" >"$T/before"
STATE=$ROOT/var/lib/vgpu-patch
mkdir -p "$STATE"
chmod 700 "$STATE"

note "lock held elsewhere"
flock "$STATE/lock" sleep 5 &
holder=$!
sleep 0.5
vp_ollama --lock-timeout 1
expect_rc 1 "lock held by another process"
grep -q "another vgpu-patch" "$T/err" || fail "the lock holder is not reported"
kill "$holder" 2>/dev/null || true
wait "$holder" 2>/dev/null || true
snapshot "$TREE" >"$T/after"
diff "$T/before" "$T/after" >&2 || fail "the tree changed while locked out"

note "two runs at once"
for i in 1 2; do
    "$VGPU_PATCH" ollama --root "$ROOT" --prefix "$PREFIX" --shim-dir "$SHIMS" --json \
        >"$T/out$i" 2>"$T/err$i" &
done
wait %1 || fail "first concurrent run failed: $(cat "$T/err1")"
wait %2 || fail "second concurrent run failed: $(cat "$T/err2")"
run_fixture "$T/r"
assert_answers "$T/r" "$SHIMS/libvgpu-cuda.so.1" "$SHIMS/libvgpu-nvml.so.1"
n=$(grep -c '^file ' "$STATE/manifest")
[ "$n" -eq 2 ] || fail "the manifest lists $n files, expected 2"
vp rollback
expect_rc 0 "rollback after concurrent runs"
snapshot "$TREE" >"$T/after"
diff "$T/before" "$T/after" >&2 || fail "rollback after concurrent runs is not exact"
echo PASS
