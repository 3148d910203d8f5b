#!/bin/sh
# A read-only Ollama tree cannot be patched on disk: the audit mechanism covers it
# (nothing written into the tree); --mechanism patch exits 3 naming the audit fallback.
# A full disk in the middle of writing the copies: exit 1, every installed file as it
# was, no staging file left. Both on a tmpfs in a private mount namespace.
if [ -z "${VGPU_IN_NAMESPACE:-}" ]; then
    if [ "$(id -u)" -ne 0 ] || ! unshare -m true 2>/dev/null; then
        echo "SKIP: a private mount namespace (unshare -m, as root) is not available"
        exit 77
    fi
    VGPU_IN_NAMESPACE=1 exec unshare -m sh "$0"
fi
. "$(dirname "$0")/lib.sh"
mount --make-rprivate /
mkdir -p "$TREE"
mount -t tmpfs -o size=64m vgpu-test "$TREE"
trap 'umount "$TREE" 2>/dev/null; rm -rf "$T"' EXIT
setup_era e
snapshot "$TREE" >"$T/before"

note "read-only tree"
mount -o remount,ro "$TREE"
vp_ollama --mechanism patch --json
expect_rc 3 "read-only tree, --mechanism patch"
grep -q "read-only" "$T/out" || fail "read-only: not explained"
[ "$(json_field fallback_mechanism)" = audit ] || fail "read-only: audit not named"
vp_ollama --json
expect_rc 0 "read-only tree"
[ "$(json_field mechanism)" = audit ] || fail "read-only: mechanism $(json_field mechanism)"
grep -q "read-only" "$T/out" || fail "read-only: not explained"
mount -o remount,rw "$TREE"
snapshot "$TREE" >"$T/after"
diff "$T/before" "$T/after" >&2 || fail "read-only: the tree changed"

note "full disk"
avail=$(df -k --output=avail "$TREE" | tail -n 1)
dd if=/dev/zero of="$TREE/filler" bs=1k count=$((avail - 8)) 2>/dev/null || true
vp_ollama
expect_rc 1 "full disk"
grep -qi "no space left" "$T/err" || {
    cat "$T/err" >&2
    fail "full disk: not explained"
}
rm "$TREE/filler"
snapshot "$TREE" >"$T/after"
diff "$T/before" "$T/after" >&2 || fail "full disk: the tree changed"
if find "$TREE" -name '.*.vgpu-*' | grep -q .; then
    fail "full disk: staging files left"
fi
[ ! -e "$ROOT/var/lib/vgpu-patch/journal" ] || fail "full disk: journal left"
vp_ollama
expect_rc 0 "after freeing space"
echo PASS
