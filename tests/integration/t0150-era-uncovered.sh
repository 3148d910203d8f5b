#!/bin/sh
# Eras whose runners are extracted to a temp dir at every start (A0, A) cannot be covered
# on disk alone: `--mechanism patch` exits 3, names the audit fallback and writes nothing;
# without it, vgpu-patch chooses the audit mechanism (the patch still applied where it
# helps), verifies it and says how it is delivered; rollback gives the tree back.
. "$(dirname "$0")/lib.sh"

for era in a0 a; do
    note "era $era"
    rm -rf "$ROOT" "$SHIMS"
    setup_era "$era"
    snapshot "$TREE" >"$T/before"
    vp_ollama --mechanism patch --json
    expect_rc 3 "era $era, --mechanism patch"
    [ "$(json_field fallback_mechanism)" = audit ] || fail "exit 3 without naming the audit fallback"
    [ "$(json_field mechanism)" = none ] || fail "mechanism should be none when nothing is applied"
    grep -q '"kind": "extracted"' "$T/out" || fail "the extracted runner route is not named"
    grep -q '"covered": false' "$T/out" || fail "no uncovered route listed"
    snapshot "$TREE" >"$T/after"
    cmp -s "$T/before" "$T/after" || fail "era $era: the tree changed although nothing was applied"
    [ ! -e "$ROOT/var/lib/vgpu-patch" ] || fail "era $era: a state dir was created"
    vp_ollama --mechanism patch
    expect_rc 3 "era $era, --mechanism patch, text output"
    grep -q "LD_AUDIT" "$T/out" || fail "the text output does not name LD_AUDIT"

    vp_ollama --json
    expect_rc 0 "era $era, mechanism chosen"
    [ "$(json_field mechanism)" = audit ] || fail "era $era: mechanism $(json_field mechanism)"
    grep -q '"check": "audit-probe"' "$T/out" || fail "era $era: the audit probe did not run"
    if grep -q '"ok": false' "$T/out"; then fail "era $era: a check failed"; fi
    grep -q "^LD_AUDIT=$SHIMS/libvgpu-audit.so$" "$ROOT/var/lib/vgpu-patch/ollama.env" ||
        fail "era $era: ollama.env does not carry LD_AUDIT"
    vp status --json
    [ "$(json_field mechanism)" = audit ] || fail "era $era: status mechanism $(json_field mechanism)"
    vp rollback
    expect_rc 0 "era $era rollback"
    snapshot "$TREE" >"$T/after"
    cmp -s "$T/before" "$T/after" || fail "era $era: rollback is not exact"
done
echo PASS
