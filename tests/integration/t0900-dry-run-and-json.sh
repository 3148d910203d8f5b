#!/bin/sh
# --dry-run prints the plan and writes nothing (no state dir either); every command's
# --json output is one document with "schema": 1; usage errors exit 2.
. "$(dirname "$0")/lib.sh"

setup_era e
snapshot "$ROOT" >"$T/before"
vp_ollama --dry-run --json
expect_rc 0 "dry run"
[ "$(json_field dry_run)" = true ] || fail "dry_run is not true"
[ "$(json_field mechanism)" = none ] || fail "a dry run reports a mechanism"
grep -q '"method": "segment"' "$T/out" || fail "the plan does not name the write method"
grep -q '"state": "original"' "$T/out" || fail "files are not reported as original"
snapshot "$ROOT" >"$T/after"
cmp -s "$T/before" "$T/after" || fail "the dry run wrote something"

vp_ollama --dry-run
expect_rc 0 "dry run, text"
grep -q "add DT_NEEDED $SHIMS/libvgpu-cuda.so.1" "$T/out" || fail "the text plan lacks the edit"

for cmd in status verify rollback; do
    vp "$cmd" --json
    expect_rc 0 "$cmd --json with nothing patched"
    [ "$(json_field schema)" = 1 ] || fail "$cmd --json has no schema 1"
done
"$VGPU_PATCH" inspect --json "$TREE/bin/ollama" >"$T/out"
[ "$(json_field schema)" = 1 ] || fail "inspect --json has no schema 1"

vp_ollama
expect_rc 0 "patch"
vp verify --json
expect_rc 0 "verify after patching"
grep -q '"ok": true' "$T/out" || fail "verify reports no ok check"
grep -q "\"libcuda.so.1\": \"$SHIMS/libvgpu-cuda.so.1\"" "$T/out" || fail "verify names no answering file"
vp status --json
[ "$(json_field mechanism)" = patch ] || fail "status does not report mechanism patch"
[ "$(json_field delivery)" = elf ] || fail "status does not report delivery elf"

set +e
"$VGPU_PATCH" >/dev/null 2>&1
a=$?
"$VGPU_PATCH" frobnicate >/dev/null 2>&1
b=$?
"$VGPU_PATCH" ollama --no-such-option >/dev/null 2>&1
c=$?
"$VGPU_PATCH" ollama --root relative/path >/dev/null 2>&1
d=$?
set -e
[ "$a$b$c$d" = 2222 ] || fail "usage errors should exit 2 (got $a $b $c $d)"
"$VGPU_PATCH" --help | grep -q rollback || fail "--help does not list the commands"
"$VGPU_PATCH" ollama --help | grep -q -- --shim-dir || fail "ollama --help lacks --shim-dir"
echo PASS
