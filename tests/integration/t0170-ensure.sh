#!/bin/sh
# `vgpu-patch ensure`, the check for every service start: with nothing changed it only
# confirms (and keeps ollama.env as the mechanism needs); after an "upgrade" replaced a
# patched file it patches again; with shims that no longer load it puts the originals
# back so that Ollama can start; with no record it does what `ollama` does; inherited
# LD_* variables (the service's environment file reaches ExecStartPre= too) are ignored.
. "$(dirname "$0")/lib.sh"

ENV=$ROOT/var/lib/vgpu-patch/ollama.env

note "no record: ensure patches (with the shim dir vgpu.conf names)"
setup_era e
mkdir -p "$ROOT/etc/vgpu"
printf 'shim_dir = %s\n' "$SHIMS" >"$ROOT/etc/vgpu/vgpu.conf"
snapshot "$TREE" >"$T/pristine"
cp "$TREE/bin/ollama" "$T/ollama.orig"
vp ensure --json
expect_rc 0 "ensure without a record"
[ "$(json_field mechanism)" = patch ] || fail "ensure did not patch: $(json_field mechanism)"
run_fixture "$T/r"
assert_answers "$T/r" "$SHIMS/libvgpu-cuda.so.1" "$SHIMS/libvgpu-nvml.so.1"

note "nothing changed: ensure only confirms"
snapshot "$TREE" >"$T/patched"
LD_AUDIT=/nonexistent/libaudit.so LD_PRELOAD='' LD_LIBRARY_PATH=/nonexistent vp ensure --json
expect_rc 0 "ensure on a patched install"
[ "$(json_field action)" = none ] || fail "action $(json_field action)"
[ -f "$ENV" ] || fail "ensure wrote no ollama.env"
[ ! -s "$ENV" ] || fail "ollama.env should be empty under the patch: $(cat "$ENV")"
snapshot "$TREE" >"$T/again"
cmp -s "$T/patched" "$T/again" || fail "ensure changed the tree"

note "an upgrade replaced bin/ollama: ensure patches again"
cp "$T/ollama.orig" "$TREE/bin/ollama.new"
mv "$TREE/bin/ollama.new" "$TREE/bin/ollama"
vp ensure
expect_rc 0 "ensure after an upgrade"
grep -q "changed since it was patched" "$T/err" || fail "the re-apply is not explained: $(cat "$T/err")"
vp status
expect_rc 0 "status after ensure re-applied"
run_fixture "$T/r"
assert_answers "$T/r" "$SHIMS/libvgpu-cuda.so.1" "$SHIMS/libvgpu-nvml.so.1"

note "the shims no longer load: ensure puts the originals back"
cp "$SHIMS/libvgpu-cuda.so.1" "$T/cuda.keep"
echo "not a library" >"$SHIMS/libvgpu-cuda.so.1"
vp ensure --json
expect_rc 1 "ensure with a broken shim"
[ "$(json_field action)" = restored ] || fail "action $(json_field action)"
grep -q "do not load" "$T/out" || fail "the restore is not explained"
# The originals: the "upgraded" bin/ollama, the pristine rest.
cmp -s "$TREE/bin/ollama" "$T/ollama.orig" || fail "bin/ollama is not the upgraded original"
snapshot "$TREE" | grep -v '\./bin/ollama\( \|$\)' >"$T/after"
grep -v '\./bin/ollama\( \|$\)' "$T/pristine" | diff - "$T/after" >&2 || fail "the originals are not back exactly"
[ ! -s "$ENV" ] || fail "ollama.env is not empty"
cp "$T/cuda.keep" "$SHIMS/libvgpu-cuda.so.1"

note "the audit mechanism: ensure keeps ollama.env"
vp_ollama --mechanism audit
expect_rc 0 "--mechanism audit"
: >"$ENV"
vp ensure
expect_rc 0 "ensure with the audit mechanism"
grep -qx "LD_AUDIT=$SHIMS/libvgpu-audit.so" "$ENV" || fail "ensure did not restore ollama.env"
rm "$TREE/bin/ollama" # gone, as an upgrade in progress might leave it
cp "$T/ollama.orig" "$TREE/bin/ollama"
vp ensure
expect_rc 0 "ensure after an upgrade, audit mechanism"
vp status --json
[ "$(json_field mechanism)" = audit ] || fail "the audit mechanism was not kept: $(json_field mechanism)"
echo PASS
