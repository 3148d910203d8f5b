#!/bin/sh
# Bad input gets a clear message and loses nothing: inspect names the problem of each
# broken file (exit 1); `vgpu-patch ollama` over a tree whose bin/ollama or backend is
# broken exits 1 and leaves every file as it was. A section-less ("super-stripped")
# executable is not bad input: it is patched through PT_DYNAMIC and still runs.
. "$(dirname "$0")/lib.sh"

MANGLE=$VGPU_TEST_FIXTURES/tools/elf-mangle
setup_era e
GOOD=$TREE/lib/ollama/llama-server
mkdir -p "$T/bad"
for mode in truncate-half truncate-headers class32 bigendian corrupt-dynamic corrupt-needed; do
    "$MANGLE" "$mode" "$GOOD" "$T/bad/$mode"
done
cp "$VGPU_TEST_FIXTURES/bad/static-exe" "$VGPU_TEST_FIXTURES/bad/notelf" "$T/bad/"

inspect_says() {
    set +e
    "$VGPU_PATCH" inspect "$T/bad/$1" >"$T/out" 2>"$T/err"
    # shellcheck disable=SC2034 # read by expect_rc
    rc=$?
    set -e
    expect_rc "$2" "inspect $1"
    grep -qi "$3" "$T/err" "$T/out" || {
        cat "$T/err" >&2
        fail "inspect $1: the message does not say '$3'"
    }
}
inspect_says notelf 1 "not an ELF file"
inspect_says truncate-headers 1 "truncated"
inspect_says truncate-half 1 "truncated"
inspect_says class32 1 "32-bit"
inspect_says bigendian 1 "big-endian"
inspect_says corrupt-dynamic 1 "corrupt dynamic section"
inspect_says corrupt-needed 1 "outside the string table"
inspect_says static-exe 0 "static-executable"

# The patcher over a tree with a broken file: exit 1, a message naming it, no change.
for mode in notelf truncate-half class32 bigendian corrupt-dynamic corrupt-needed; do
    for victim in bin/ollama lib/ollama/cuda_v13/libggml-cuda.so; do
        note "$victim is $mode"
        rm -rf "$ROOT"
        setup_era e
        cp "$T/bad/$mode" "$TREE/$victim"
        snapshot "$ROOT" >"$T/before"
        vp_ollama
        expect_rc 1 "$victim as $mode"
        grep -q "$(basename "$victim")" "$T/err" || fail "$victim as $mode: the error does not name the file"
        snapshot "$ROOT" >"$T/after"
        cmp -s "$T/before" "$T/after" || fail "$victim as $mode: something changed"
    done
done

note "a static bin/ollama has no route to the driver; the rest is still patched"
rm -rf "$ROOT"
setup_era e
cp "$T/bad/static-exe" "$TREE/bin/ollama"
vp_ollama --json
expect_rc 0 "static bin/ollama"
grep -q "static-executable: it cannot load libcuda" "$T/out" || fail "static bin/ollama: not explained"
grep -q '"path": "/usr/local/lib/ollama/llama-server"' "$T/out" || fail "llama-server not planned"

note "section-less executables are patched through PT_DYNAMIC and run"
rm -rf "$ROOT"
setup_era e
"$MANGLE" strip-sections "$GOOD" "$T/stripped"
cp "$T/stripped" "$GOOD"
"$MANGLE" strip-sections "$TREE/bin/ollama" "$T/stripped-ollama"
cp "$T/stripped-ollama" "$TREE/bin/ollama"
snapshot "$TREE" >"$T/before"
vp_ollama
expect_rc 0 "section-less executables"
run_fixture "$T/r1"
assert_answers "$T/r1" "$SHIMS/libvgpu-cuda.so.1" "$SHIMS/libvgpu-nvml.so.1"
vp rollback
expect_rc 0 "rollback of section-less files"
snapshot "$TREE" >"$T/after"
diff "$T/before" "$T/after" >&2 || fail "section-less rollback not byte-identical"
echo PASS
