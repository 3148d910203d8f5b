#!/bin/sh
# The audit mechanism, forced on a tree the patch could cover (era E): nothing in the
# tree is written; the manifest, status and the environment file say mechanism audit;
# with that file's variables every fixture process ends in the shims although the
# decoy is first on LD_LIBRARY_PATH; the delivery is the environment file when a
# systemd unit runs Ollama and vgpu-launch otherwise; LD_BIND_NOW only before glibc
# 2.35; no audit module means exit 3 and nothing written; rollback empties the file.
. "$(dirname "$0")/lib.sh"

ENV=$ROOT/var/lib/vgpu-patch/ollama.env

setup_era e
snapshot "$TREE" >"$T/before"
VGPU_PATCH_GLIBC_VERSION=2.36 vp_ollama --mechanism audit --json
expect_rc 0 "--mechanism audit"
[ "$(json_field mechanism)" = audit ] || fail "mechanism is $(json_field mechanism), not audit"
[ "$(json_field delivery)" = launcher ] || fail "no unit runs Ollama: the delivery is the launcher"
grep -q "\"launch\": \"vgpu-launch --shim-dir $SHIMS -- $PREFIX/bin/ollama serve\"" "$T/out" ||
    fail "the launch command is not named"
grep -q '"check": "audit-probe"' "$T/out" || fail "no audit probe ran"
if grep -q '"ok": false' "$T/out"; then fail "a check failed: $(grep -B8 '"ok": false' "$T/out")"; fi
snapshot "$TREE" >"$T/after"
cmp -s "$T/before" "$T/after" || fail "--mechanism audit wrote into the tree"
grep -qx "LD_AUDIT=$SHIMS/libvgpu-audit.so" "$ENV" || fail "ollama.env lacks LD_AUDIT: $(cat "$ENV")"
grep -qx "VGPU_SHIM_DIR=$SHIMS" "$ENV" || fail "ollama.env lacks VGPU_SHIM_DIR"
if grep -q LD_BIND_NOW "$ENV"; then fail "LD_BIND_NOW on glibc 2.36"; fi

note "every process under the environment file"
run_fixture_env "$T/r" "$ENV"
# Unpatched, a process loads a shim only when it asks for that driver: llama-server
# never asks for NVML.
assert_answers "$T/r" "$SHIMS/libvgpu-cuda.so.1" "*"
grep -q "^process=gpu-discover .*libnvidia-ml.so.1=$SHIMS/libvgpu-nvml.so.1" "$T/r" ||
    fail "gpu-discover's NVML is not the shim: $(cat "$T/r")"
assert_no_decoy "$T/r"
run_fixture "$T/r0"
assert_answers "$T/r0" "$DECOY/*" "*"

vp status --json
expect_rc 0 "status"
[ "$(json_field mechanism)" = audit ] || fail "status: mechanism $(json_field mechanism)"
[ "$(json_field delivery)" = launcher ] || fail "status: delivery $(json_field delivery)"

note "idempotent"
VGPU_PATCH_GLIBC_VERSION=2.36 vp_ollama --mechanism audit --json
expect_rc 0 "second --mechanism audit"
[ "$(json_field bytes_written)" = 0 ] || fail "the second run wrote bytes"

note "a unit runs Ollama: the environment file is the delivery; glibc 2.31 adds LD_BIND_NOW"
mkdir -p "$ROOT/etc/systemd/system"
printf '[Service]\nExecStart=%s/bin/ollama serve\n' "$PREFIX" >"$ROOT/etc/systemd/system/ollama.service"
VGPU_PATCH_GLIBC_VERSION=2.31 vp_ollama --mechanism audit --no-wire --json
expect_rc 0 "--mechanism audit with a unit, --no-wire"
[ "$(json_field delivery)" = environment-file ] || fail "delivery $(json_field delivery)"
grep -qx "LD_BIND_NOW=1" "$ENV" || fail "no LD_BIND_NOW=1 for glibc 2.31"
[ "$(json_field delivered)" = false ] || fail "the unit does not read ollama.env, yet delivered"
vp_ollama --mechanism audit --no-wire
grep -q "NOT YET DELIVERED" "$T/out" || fail "the missing EnvironmentFile= is not said"
vp status
grep -q "NOT YET DELIVERED" "$T/out" || fail "status does not say it is not delivered"
# Our drop-in (the wiring) is what makes the unit read it.
vp_ollama --mechanism audit --json
[ "$(json_field delivered)" = true ] || fail "the wired drop-in's EnvironmentFile= is not seen"
vp status --json
grep -q '"delivered": true' "$T/out" || fail "status does not say delivered"

note "rollback"
vp rollback
expect_rc 0 "rollback"
[ ! -s "$ENV" ] || fail "ollama.env still says: $(cat "$ENV")"
vp status --json
[ "$(json_field mechanism)" = none ] || fail "after rollback the mechanism is $(json_field mechanism)"
snapshot "$TREE" >"$T/after"
cmp -s "$T/before" "$T/after" || fail "the tree changed"

note "no audit module: exit 3, nothing written"
rm "$SHIMS/libvgpu-audit.so"
vp_ollama --mechanism audit
expect_rc 3 "--mechanism audit without the module"
grep -q "libvgpu-audit.so is missing" "$T/err" || fail "the missing module is not named: $(cat "$T/err")"
[ ! -s "$ENV" ] || fail "ollama.env was written"
echo PASS
