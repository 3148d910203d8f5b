#!/bin/sh
# An upgrade seen half-way. The path unit fires on an upgrade's first write, so a patch
# can run while the release is still being extracted: it patches what is there. `ensure`
# must notice the files that came after it (the layout stamp recorded with the patch)
# and patch them too; `ensure --settle SEC`, as the path unit runs it, waits until the
# files stopped changing for SEC seconds before it looks.
. "$(dirname "$0")/lib.sh"

SD=$ROOT/etc/systemd/system
setup_era e
mkdir -p "$SD"
printf '[Service]\nExecStart=%s/bin/ollama serve\n' "$PREFIX" >"$SD/ollama.service"

note "patch while cuda_v13 is not extracted yet"
mv "$TREE/lib/ollama/cuda_v13" "$T/cuda_v13"
vp_ollama --json
expect_rc 0 "patch the half-extracted release"
grep -rq 'tree_stamp' "$ROOT/var/lib/vgpu-patch" || fail "the manifest records no layout stamp"
vp ensure --json
expect_rc 0 "ensure with nothing changed"
[ "$(json_field action)" = none ] || fail "ensure found work in an unchanged tree: $(json_field action)"

note "the rest of the release arrives; ensure patches it"
mv "$T/cuda_v13" "$TREE/lib/ollama/cuda_v13"
vp ensure --json
expect_rc 0 "ensure after the rest arrived"
[ "$(json_field action)" = reapplied ] || fail "ensure did not re-apply: $(json_field action)"
grep -q 'added, removed or replaced' "$T/err" || fail "ensure did not say why: $(cat "$T/err")"
grep -q 'cuda_v13/libggml-cuda.so' "$T/out" || fail "cuda_v13 was not patched"
run_fixture "$T/r"
assert_answers "$T/r" "$SHIMS/libvgpu-cuda.so.1" "$SHIMS/libvgpu-nvml.so.1"
assert_no_decoy "$T/r"
vp ensure --json
[ "$(json_field action)" = none ] || fail "a second ensure still found work: $(json_field action)"

note "ensure --settle waits for a writer to stop"
grow=$TREE/lib/ollama/cuda_v13/libggml-cuda.so.part
(
    i=0
    while [ $i -lt 6 ]; do
        printf 'chunk %s\n' "$i" >>"$grow"
        sleep 0.4
        i=$((i + 1))
    done
    rm -f "$grow"
    : >"$T/writer-done"
) &
writer=$!
sleep 0.2
vp ensure --settle 1 --json
[ -e "$T/writer-done" ] || fail "ensure --settle returned while the files were still changing"
wait "$writer"
expect_rc 0 "ensure --settle"
grep -q 'waited [0-9.]* s for the release' "$T/out" "$T/err" || fail "ensure --settle did not say it waited"

note "ensure --settle 0 does not wait; bad values are usage errors"
vp ensure --settle 0 --json
expect_rc 0 "ensure --settle 0"
for bad in -1 x 1801 1.5 ''; do
    vp ensure --settle "$bad"
    expect_rc 2 "ensure --settle '$bad'"
    grep -q 'settle' "$T/err" || fail "no message for --settle '$bad'"
done
