#!/bin/sh
# Upgrade survival through `ensure` alone. An install of era D (0.24) under a unit is
# patched and wired; then an upgrade does what Ollama's install.sh does — `rm -rf
# lib/ollama`, extract the new release's lib/ollama, replace bin/ollama by a new inode —
# to era E (0.30), and only `ensure` runs (as ExecStartPre= would): the new files are
# patched and verified, every fixture process ends in the shims, the manifest records
# the new originals, and rollback then gives back exactly the new release. Rollback over
# a tree that changed since it was patched refuses (exit 4) and says what changed; a run
# killed in the middle is recovered by the next ensure; shims that stop loading make
# ensure restore the originals so that Ollama still starts.
. "$(dirname "$0")/lib.sh"

SD=$ROOT/etc/systemd/system
NEW=$T/new-release

# install_sh_upgrade: what install.sh does to an existing install (reference §5).
install_sh_upgrade() {
    rm -rf "$TREE/lib/ollama"
    mkdir -p "$TREE/lib"
    cp -a "$NEW/lib/ollama" "$TREE/lib/ollama"
    cp -p "$NEW/bin/ollama" "$TREE/bin/ollama.tar-tmp" # tar unlinks and recreates: a new inode
    mv "$TREE/bin/ollama.tar-tmp" "$TREE/bin/ollama"
}

setup_era d
mkdir -p "$SD"
printf '[Service]\nExecStart=%s/bin/ollama serve\n' "$PREFIX" >"$SD/ollama.service"
mkdir -p "$NEW"
sh "$VGPU_SOURCE_DIR/tests/fixtures/make-tree.sh" e "$NEW"
snapshot "$NEW" >"$T/new-pristine"

vp_ollama --json
expect_rc 0 "patch era D"
[ -f "$SD/ollama.service.d/50-vgpu-patch.conf" ] || fail "not wired"
old_ino=$(stat -c %i "$TREE/bin/ollama")

note "the upgrade to era E, then ensure alone"
install_sh_upgrade
[ "$(stat -c %i "$TREE/bin/ollama")" != "$old_ino" ] || fail "the upgrade kept the inode"
vp ensure --json
expect_rc 0 "ensure after the upgrade"
[ "$(json_field action)" = reapplied ] || fail "action $(json_field action)"
grep -q '"era": "E"' "$T/out" || fail "the new release was not identified as era E"
if grep -q '"ok": false' "$T/out"; then fail "a verification check failed"; fi
run_fixture "$T/r"
assert_answers "$T/r" "$SHIMS/libvgpu-cuda.so.1" "$SHIMS/libvgpu-nvml.so.1"
assert_no_decoy "$T/r"
vp status --json
expect_rc 0 "status after the upgrade"
grep -q '"version": "0.30.1"' "$T/out" || fail "the manifest does not record the new release"
vp ensure --json
[ "$(json_field action)" = none ] || fail "a second ensure still found work: $(json_field action)"

note "rollback gives back exactly the new release"
vp rollback
expect_rc 0 "rollback after the upgrade"
snapshot "$TREE" >"$T/after"
diff "$T/new-pristine" "$T/after" >&2 || fail "rollback did not restore the new originals"

note "rollback over a tree that changed since it was patched refuses"
vp_ollama
expect_rc 0 "patch era E"
# A later build of the same release: another bin/ollama.
cp -p "$NEW/bin/ollama" "$T/ollama.next"
printf 'x' >>"$T/ollama.next"
cp "$T/ollama.next" "$TREE/bin/ollama.tar-tmp"
mv "$TREE/bin/ollama.tar-tmp" "$TREE/bin/ollama"
vp rollback
expect_rc 4 "rollback after an unpatched upgrade"
grep -q "bin/ollama is changed: replaced or modified since it was patched" "$T/out" ||
    fail "rollback does not say what changed: $(cat "$T/out")"
cmp -s "$TREE/bin/ollama" "$T/ollama.next" || fail "rollback clobbered the new bin/ollama"
# The rollback could not finish: the service must keep running ensure.
for f in ollama.service.d/50-vgpu-patch.conf vgpu-patch-ollama.path; do
    [ -f "$SD/$f" ] || fail "a rollback that could not finish removed $f"
done
grep -q "our systemd files are kept" "$T/out" "$T/err" || fail "rollback does not say the units are kept"

note "a run killed in the middle: the next ensure recovers and finishes"
vp ensure
expect_rc 0 "ensure before the crash"
install_sh_upgrade
set +e
VGPU_FAULT=renamed:1 "$VGPU_PATCH" ensure --root "$ROOT" >"$T/out" 2>"$T/err"
rc=$?
set -e
[ "$rc" -eq 137 ] || fail "the fault did not kill ensure (exit $rc)"
[ -e "$ROOT/var/lib/vgpu-patch/journal" ] || fail "the killed run left no journal"
vp ensure --json
expect_rc 0 "ensure after the crash"
[ ! -e "$ROOT/var/lib/vgpu-patch/journal" ] || fail "the journal is still there"
run_fixture "$T/r"
assert_answers "$T/r" "$SHIMS/libvgpu-cuda.so.1" "$SHIMS/libvgpu-nvml.so.1"

note "the shims removed: ensure restores the originals, Ollama still starts"
mv "$SHIMS" "$T/shims.away"
vp ensure --json
expect_rc 0 "ensure without shims"
[ "$(json_field action)" = restored ] || fail "action $(json_field action)"
snapshot "$TREE" >"$T/after"
diff "$T/new-pristine" "$T/after" >&2 || fail "the originals are not back"
# Our systemd files stay: the next start runs ensure again, which patches once they load.
for f in ollama.service.d/50-vgpu-patch.conf vgpu-patch-ollama.path vgpu-patch-ollama.service; do
    [ -f "$SD/$f" ] || fail "ensure's restore removed $f"
done
vp status
expect_rc 1 "status after ensure restored the originals"
VGPU_FIXTURE_REPORT=$T/r LD_LIBRARY_PATH=$DECOY "$TREE/bin/ollama" serve >/dev/null 2>&1 ||
    fail "Ollama does not start after the restore"
mv "$T/shims.away" "$SHIMS"
vp ensure --json
expect_rc 0 "ensure with the shims back"
[ "$(json_field action)" = resumed ] || fail "action $(json_field action)"
echo PASS
