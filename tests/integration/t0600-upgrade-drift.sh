#!/bin/sh
# After an upgrade replaced patched files (new inodes, as tar and install.sh do):
# status exits 4 and names them; rollback restores what is still ours, refuses to
# clobber the replaced files (exit 4); patching again takes the new files as the
# originals, and rollback then restores exactly the upgraded tree.
. "$(dirname "$0")/lib.sh"

setup_era e
snapshot "$TREE" >"$T/pristine"
vp_ollama
expect_rc 0 "first patch"

note "only bin/ollama is replaced"
cp "$VGPU_TEST_FIXTURES/trees/e/bin/ollama" "$T/new-ollama"
mv "$T/new-ollama" "$TREE/bin/ollama"
vp status --json
expect_rc 4 "status after bin/ollama was replaced"
grep -q '"state": "changed"' "$T/out" || fail "status does not say changed"
vp rollback
expect_rc 4 "rollback over a replaced bin/ollama"
grep -q "left alone" "$T/out" || fail "rollback does not say what it refused"
grep -q "llama-server" "$T/pristine" || fail "bad pristine snapshot"
snapshot "$TREE" | grep -v '^\./bin/ollama ' | grep -v ' \./bin/ollama$' >"$T/now"
grep -v '^\./bin/ollama ' "$T/pristine" | grep -v ' \./bin/ollama$' | diff - "$T/now" >&2 ||
    fail "the files still ours are not back to the original"
cmp -s "$TREE/bin/ollama" "$VGPU_TEST_FIXTURES/trees/e/bin/ollama" || fail "bin/ollama was clobbered"

note "patch again over the new file"
vp_ollama
expect_rc 0 "patch after the upgrade"
vp status
expect_rc 0 "status after re-patching"

note "install.sh-style upgrade: lib/ollama removed and extracted anew, bin/ollama replaced"
rm -rf "$TREE/lib/ollama"
cp -a "$VGPU_TEST_FIXTURES/trees/e/lib/ollama" "$TREE/lib/ollama"
cp "$VGPU_TEST_FIXTURES/trees/e/bin/ollama" "$T/new-ollama"
mv "$T/new-ollama" "$TREE/bin/ollama"
touch -d '2026-01-02 03:04:05' "$TREE/bin/ollama" "$TREE/lib/ollama/llama-server"
snapshot "$TREE" >"$T/upgraded"
vp status
expect_rc 4 "status after the upgrade"
vp rollback
expect_rc 4 "rollback refuses to clobber upgraded files"
snapshot "$TREE" >"$T/now"
diff "$T/upgraded" "$T/now" >&2 || fail "rollback touched upgraded files"
vp_ollama
expect_rc 0 "patch the upgraded tree"
run_fixture "$T/r"
assert_answers "$T/r" "$SHIMS/libvgpu-cuda.so.1" "$SHIMS/libvgpu-nvml.so.1"
vp rollback
expect_rc 0 "rollback of the upgraded tree"
snapshot "$TREE" >"$T/now"
diff "$T/upgraded" "$T/now" >&2 || fail "rollback did not restore the upgraded originals"
left=$(find "$ROOT/var/lib/vgpu-patch/backups" -type f | wc -l)
[ "$left" -eq 0 ] || fail "$left stale backup(s) left"
echo PASS
