#!/bin/sh
# A crash (SIGKILL, injected with VGPU_FAULT) at every step of apply leaves each installed
# file either the original or the fully patched one; the next run recovers: `rollback`
# gives back the pristine tree byte for byte, `ollama` finishes the patch and verifies.
. "$(dirname "$0")/lib.sh"

"$VGPU_PATCH" --help >/dev/null
setup_era e
snapshot "$TREE" >"$T/pristine"

# Content of every file when fully patched, from an uninterrupted run.
vp_ollama
expect_rc 0 "reference run"
(cd "$TREE" && find . -type f -exec sha256sum {} + | sort) >"$T/patched-sums"
vp rollback
expect_rc 0 "reference rollback"
(cd "$TREE" && find . -type f -exec sha256sum {} + | sort) >"$T/orig-sums"

# Each file must hash to its original or its patched content, nothing else.
consistent() {
    (cd "$TREE" && find . -type f -exec sha256sum {} + | sort) >"$T/now"
    while read -r sum path; do
        grep -qx "$sum  $path" "$T/orig-sums" || grep -qx "$sum  $path" "$T/patched-sums" ||
            fail "$1: $path is neither the original nor the patched file"
    done <"$T/now"
    if find "$TREE" -name '.*.vgpu-*' | grep -q .; then
        fail "$1: staging files left behind"
    fi
}

crash() {
    set +e
    VGPU_FAULT=$1 "$VGPU_PATCH" ollama --root "$ROOT" --prefix "$PREFIX" --shim-dir "$SHIMS" \
        >"$T/out" 2>"$T/err"
    rc=$?
    set -e
    [ "$rc" -eq 137 ] || fail "VGPU_FAULT=$1 did not crash the run (exit $rc)"
}

for point in staged:1 staged:2 prev:1 prev:2 renamed:1 renamed:2 before-manifest \
    after-manifest committed; do
    for recover in rollback ollama; do
        note "crash at $point, recover with $recover"
        crash "$point"
        [ -e "$ROOT/var/lib/vgpu-patch/journal" ] || fail "$point: no journal after the crash"
        vp status
        expect_rc 4 "status after a crash at $point"
        if [ "$recover" = rollback ]; then
            vp rollback
            expect_rc 0 "rollback after a crash at $point"
            snapshot "$TREE" >"$T/after"
            diff "$T/pristine" "$T/after" >&2 || fail "$point: rollback did not restore the tree"
        else
            vp_ollama
            expect_rc 0 "ollama after a crash at $point"
            grep -q "interrupted run" "$T/out" || fail "$point: the recovery is not reported"
            consistent "$point, recovered"
            (cd "$TREE" && find . -type f -exec sha256sum {} + | sort) | cmp -s - "$T/patched-sums" ||
                fail "$point: the recovered run did not leave the patched tree"
            vp rollback
            expect_rc 0 "rollback after recovery at $point"
            snapshot "$TREE" >"$T/after"
            diff "$T/pristine" "$T/after" >&2 || fail "$point: final rollback not byte-identical"
        fi
        [ ! -e "$ROOT/var/lib/vgpu-patch/journal" ] || fail "$point: the journal is still there"
        leftovers=$(find "$ROOT/var/lib/vgpu-patch/backups" -type f | wc -l)
        [ "$leftovers" -eq 0 ] || fail "$point: $leftovers backup(s) left after rollback"
    done
done
echo PASS
