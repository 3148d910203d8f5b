#!/bin/sh
# A crash while re-patching an already patched tree (the shims moved) must not lose the
# original: whatever the crash point, the next run recovers, and rollback still gives
# back the pristine tree byte for byte.
. "$(dirname "$0")/lib.sh"

setup_era e
snapshot "$TREE" >"$T/pristine"
OTHER=$T/moved-shims-with-a-longer-name
mkdir -p "$OTHER"
cp "$SHIMS"/* "$OTHER/"
chmod 755 "$OTHER"

for point in staged:1 prev:1 renamed:1 renamed:2 before-manifest after-manifest committed; do
    for recover in ollama rollback; do
        note "re-patch crash at $point, recover with $recover"
        vp_ollama
        expect_rc 0 "first patch"
        set +e
        VGPU_FAULT=$point "$VGPU_PATCH" ollama --root "$ROOT" --prefix "$PREFIX" \
            --shim-dir "$OTHER" >"$T/out" 2>"$T/err"
        rc=$?
        set -e
        [ "$rc" -eq 137 ] || fail "VGPU_FAULT=$point did not crash the re-patch (exit $rc)"
        if [ "$recover" = ollama ]; then
            vp ollama --prefix "$PREFIX" --shim-dir "$OTHER"
            expect_rc 0 "re-patch after a crash at $point"
            run_fixture "$T/r"
            assert_answers "$T/r" "$OTHER/libvgpu-cuda.so.1" "$OTHER/libvgpu-nvml.so.1"
        fi
        vp rollback
        expect_rc 0 "rollback after a crash at $point"
        snapshot "$TREE" >"$T/after"
        diff "$T/pristine" "$T/after" >&2 || fail "$point/$recover: the original is lost"
        left=$(find "$ROOT/var/lib/vgpu-patch/backups" -type f | wc -l)
        [ "$left" -eq 0 ] || fail "$point/$recover: $left backup(s) left after rollback"
    done
done
echo PASS
