#!/bin/sh
# `vgpu-patch ensure`, the check for every service start: with no record it does what
# `ollama` does; with nothing changed it only confirms (and keeps ollama.env as the
# mechanism needs), whatever LD_* variables it inherits; after an "upgrade" replaced a
# patched file it patches again with the options the install was patched with; with
# shims that no longer load it puts the originals back (exit 0: Ollama must start) and
# patches again once they load; what the operator rolled back stays rolled back.
. "$(dirname "$0")/lib.sh"

ENV=$ROOT/var/lib/vgpu-patch/ollama.env

# upgrade FILE: the tree's FILE replaced by a fresh copy of its original, as an upgrade would.
upgrade() {
    cp "$T/orig/$1" "$TREE/$1.new"
    mv "$TREE/$1.new" "$TREE/$1"
}

note "no record: ensure patches (with the shim dir vgpu.conf names)"
setup_era e
mkdir -p "$ROOT/etc/vgpu" "$T/orig/bin"
printf 'shim_dir = %s\n' "$SHIMS" >"$ROOT/etc/vgpu/vgpu.conf"
snapshot "$TREE" >"$T/pristine"
cp "$TREE/bin/ollama" "$T/orig/bin/ollama"
vp ensure --json
expect_rc 0 "ensure without a record"
grep -q '"command": "ensure"' "$T/out" || fail "the report is not ensure's"
[ "$(json_field action)" = first-start ] || fail "action $(json_field action)"
[ "$(json_field mechanism)" = patch ] || fail "ensure did not patch: $(json_field mechanism)"
run_fixture "$T/r"
assert_answers "$T/r" "$SHIMS/libvgpu-cuda.so.1" "$SHIMS/libvgpu-nvml.so.1"

note "nothing changed: ensure only confirms, whatever LD_* it inherits"
snapshot "$TREE" >"$T/patched"
LD_AUDIT=/nonexistent/libaudit.so LD_PRELOAD='' LD_LIBRARY_PATH=/nonexistent vp ensure --json
expect_rc 0 "ensure on a patched install"
[ "$(json_field action)" = none ] || fail "action $(json_field action)"
[ -f "$ENV" ] || fail "ensure wrote no ollama.env"
[ ! -s "$ENV" ] || fail "ollama.env should be empty under the patch: $(cat "$ENV")"
snapshot "$TREE" >"$T/again"
cmp -s "$T/patched" "$T/again" || fail "ensure changed the tree"

note "an upgrade replaced bin/ollama: ensure patches again"
upgrade bin/ollama
vp ensure --json
expect_rc 0 "ensure after an upgrade"
[ "$(json_field action)" = reapplied ] || fail "action $(json_field action)"
grep -q "changed since it was patched" "$T/err" || fail "the re-apply is not explained: $(cat "$T/err")"
vp status
expect_rc 0 "status after ensure re-applied"

note "the shims no longer load: the originals come back, Ollama starts; later, the patch too"
upgraded=$(snapshot "$TREE" | grep -c .)
cp "$SHIMS/libvgpu-cuda.so.1" "$T/cuda.keep"
echo "not a library" >"$SHIMS/libvgpu-cuda.so.1"
vp ensure --json
expect_rc 0 "ensure with a broken shim"
[ "$(json_field action)" = restored ] || fail "action $(json_field action)"
grep -q "do not load" "$T/out" || fail "the restore is not explained"
cmp -s "$TREE/bin/ollama" "$T/orig/bin/ollama" || fail "bin/ollama is not the (upgraded) original"
snapshot "$TREE" | grep -v '\./bin/ollama\( \|$\)' >"$T/after"
grep -v '\./bin/ollama\( \|$\)' "$T/pristine" | diff - "$T/after" >&2 || fail "the originals are not back"
[ ! -s "$ENV" ] || fail "ollama.env is not empty"
run_fixture "$T/r"
assert_answers "$T/r" "$DECOY/*" "*"
vp status
expect_rc 1 "status after a restore"
grep -q "restored by .vgpu-patch ensure." "$T/out" || fail "status does not say why: $(cat "$T/out")"
vp ensure
expect_rc 0 "ensure, shims still broken"
cmp -s "$TREE/bin/ollama" "$T/orig/bin/ollama" || fail "ensure patched although the shims are broken"
cp "$T/cuda.keep" "$SHIMS/libvgpu-cuda.so.1"
vp ensure --json
expect_rc 0 "ensure, shims fixed"
[ "$(json_field action)" = resumed ] || fail "action $(json_field action)"
run_fixture "$T/r"
assert_answers "$T/r" "$SHIMS/libvgpu-cuda.so.1" "$SHIMS/libvgpu-nvml.so.1"
[ "$(snapshot "$TREE" | grep -c .)" = "$upgraded" ] || fail "the tree has other files now"

note "rolled back by the operator: ensure leaves it so"
vp rollback
expect_rc 0 "rollback"
snapshot "$TREE" >"$T/rolled"
vp ensure --json
expect_rc 0 "ensure after a rollback"
[ "$(json_field action)" = none ] || fail "action $(json_field action)"
snapshot "$TREE" >"$T/after"
cmp -s "$T/rolled" "$T/after" || fail "ensure patched what was rolled back"

note "--mechanism audit on a patched install rolls the patch back first"
vp_ollama
expect_rc 0 "patch"
vp_ollama --mechanism audit --json
expect_rc 0 "--mechanism audit on a patched install"
snapshot "$TREE" >"$T/after"
cmp -s "$T/rolled" "$T/after" || fail "--mechanism audit left the patch in the tree"
grep -qx "LD_AUDIT=$SHIMS/libvgpu-audit.so" "$ENV" || fail "no LD_AUDIT in ollama.env"
: >"$ENV"
vp ensure
expect_rc 0 "ensure with the audit mechanism"
grep -qx "LD_AUDIT=$SHIMS/libvgpu-audit.so" "$ENV" || fail "ensure did not restore ollama.env"

note "an audit module that is not an auditor: ensure restores"
cp "$SHIMS/libvgpu-audit.so" "$T/audit.keep"
cp "$SHIMS/libvgpu-nvml.so.1" "$SHIMS/libvgpu-audit.so"
vp ensure --json
expect_rc 0 "ensure with a broken audit module"
[ "$(json_field action)" = restored ] || fail "a broken audit module was not noticed: $(json_field action)"
[ ! -s "$ENV" ] || fail "ollama.env still names the broken module"
cp "$T/audit.keep" "$SHIMS/libvgpu-audit.so"

note "era A (audit chosen, the patch applied where it helps): an upgrade keeps both"
rm -rf "$ROOT" "$SHIMS" "$T/orig"
setup_era a
mkdir -p "$T/orig/bin"
cp "$TREE/bin/ollama" "$T/orig/bin/ollama"
vp_ollama
expect_rc 0 "era a"
upgrade bin/ollama
vp ensure --json
expect_rc 0 "ensure after an upgrade of era a"
[ "$(json_field action)" = reapplied ] || fail "action $(json_field action)"
[ "$(json_field mechanism)" = audit ] || fail "mechanism $(json_field mechanism)"
cmp -s "$TREE/bin/ollama" "$T/orig/bin/ollama" && fail "bin/ollama was not patched again"
grep -qx "LD_AUDIT=$SHIMS/libvgpu-audit.so" "$ENV" || fail "no LD_AUDIT in ollama.env"
echo PASS
