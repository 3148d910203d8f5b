#!/bin/sh
# Moving the shims (another --shim-dir) re-points the patched files: the old shim paths
# are replaced, not added beside them; repeated changes reuse the segment the first
# patch added instead of piling up program headers; rollback still gives the original.
. "$(dirname "$0")/lib.sh"

setup_era e
snapshot "$TREE" >"$T/pristine"
OTHER=$T/a-much-longer-shim-directory-name
mkdir -p "$OTHER"
cp "$SHIMS"/* "$OTHER/"
chmod 755 "$OTHER"

phdrs() {
    readelf -lW "$TREE/bin/ollama" | grep -c '^  [A-Z]'
}

vp_ollama
expect_rc 0 "first patch"
n=$(phdrs)
for dir in "$OTHER" "$SHIMS" "$OTHER"; do
    note "shims moved to $dir"
    vp ollama --prefix "$PREFIX" --shim-dir "$dir"
    expect_rc 0 "re-patch for $dir"
    run_fixture "$T/r"
    assert_answers "$T/r" "$dir/libvgpu-cuda.so.1" "$dir/libvgpu-nvml.so.1"
    assert_no_decoy "$T/r"
    readelf -dW "$TREE/bin/ollama" | grep -c 'libvgpu-cuda' | grep -qx 1 ||
        fail "bin/ollama needs more than one cuda shim"
    [ "$(phdrs)" = "$n" ] || fail "program headers grew from $n to $(phdrs)"
done
vp rollback
expect_rc 0 "rollback"
snapshot "$TREE" >"$T/after"
diff "$T/pristine" "$T/after" >&2 || fail "rollback after shim moves is not byte-identical"
echo PASS
