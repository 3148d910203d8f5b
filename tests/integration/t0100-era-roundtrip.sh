#!/bin/sh
# Each era whose routes can all be covered on disk: before patching the decoy driver
# answers in every fixture process; after `vgpu-patch ollama` the shims answer in every
# process (decoy still first on LD_LIBRARY_PATH); a second run writes zero bytes and
# touches no inode; rollback gives back a byte-identical tree.
. "$(dirname "$0")/lib.sh"

roundtrip() {
    era=$1
    want=$2
    note "era $era"
    rm -rf "$ROOT" "$SHIMS"
    setup_era "$era"
    snapshot "$TREE" >"$T/before"

    run_fixture "$T/r0"
    assert_answers "$T/r0" "$DECOY/*" "*"

    vp_ollama --json
    expect_rc 0 "ollama on era $era"
    [ "$(json_field mechanism)" = patch ] || fail "mechanism is not patch"
    grep -q '"schema": 1' "$T/out" || fail "no schema 1 in the JSON"
    [ "$(json_field era)" = "$want" ] || fail "era $era identified as $(json_field era), not $want"

    run_fixture "$T/r1"
    assert_answers "$T/r1" "$SHIMS/libvgpu-cuda.so.1" "$SHIMS/libvgpu-nvml.so.1"
    assert_no_decoy "$T/r1"
    [ "$(wc -l <"$T/r1")" -eq "$(wc -l <"$T/r0")" ] || fail "a process stopped reporting"

    snapshot "$TREE" >"$T/patched"
    vp_ollama --json
    expect_rc 0 "second ollama on era $era"
    [ "$(json_field bytes_written)" = 0 ] || fail "the second run wrote bytes"
    snapshot "$TREE" >"$T/patched2"
    cmp -s "$T/patched" "$T/patched2" || fail "the second run changed the tree"
    ls -i "$TREE/bin/ollama" >"$T/ino1"

    vp status
    expect_rc 0 "status after patching"

    vp rollback
    expect_rc 0 "rollback of era $era"
    snapshot "$TREE" >"$T/after"
    diff "$T/before" "$T/after" >&2 || fail "rollback is not byte-identical for era $era"
    run_fixture "$T/r2"
    assert_answers "$T/r2" "$DECOY/*" "*"
}

# c-trim and d-trim carry no version (a -trimpath build, like real releases): the era
# comes from the layout and the routes compiled into the files.
for pair in b:B c:C d:D e:E c-trim:C d-trim:D; do
    roundtrip "${pair%%:*}" "${pair#*:}"
done
if [ -d "$VGPU_TEST_FIXTURES/trees/e-go" ]; then
    roundtrip e-go E
else
    note "no cgo fixture (Go is not installed): era e-go skipped"
fi
echo "PASS"
