#!/bin/sh
# Eras whose runners are extracted to a temp dir at every start (A0, A) cannot be covered
# on disk: `vgpu-patch ollama` exits 3, names the audit fallback, and writes nothing.
. "$(dirname "$0")/lib.sh"

for era in a0 a; do
    note "era $era"
    rm -rf "$ROOT" "$SHIMS"
    setup_era "$era"
    snapshot "$TREE" >"$T/before"
    vp_ollama --json
    expect_rc 3 "era $era"
    [ "$(json_field fallback_mechanism)" = audit ] || fail "exit 3 without naming the audit fallback"
    [ "$(json_field mechanism)" = none ] || fail "mechanism should be none when nothing is applied"
    grep -q '"kind": "extracted"' "$T/out" || fail "the extracted runner route is not named"
    grep -q '"covered": false' "$T/out" || fail "no uncovered route listed"
    snapshot "$TREE" >"$T/after"
    cmp -s "$T/before" "$T/after" || fail "era $era: the tree changed although nothing was applied"
    [ ! -e "$ROOT/var/lib/vgpu-patch" ] || fail "era $era: a state dir was created"
    vp_ollama
    expect_rc 3 "era $era, text output"
    grep -q "LD_AUDIT" "$T/out" || fail "the text output does not name LD_AUDIT"
done
echo PASS
