#!/bin/sh
# With the state dir on another file system the backups are exact copies, not hard
# links: owner, mode, extended attributes (capabilities too) and mtime survive a patch
# and a rollback, and a crash at any step, recovered by rollback, gives back the tree
# byte for byte. A tmpfs in a private mount namespace is the other file system.
if [ -z "${VGPU_IN_NAMESPACE:-}" ]; then
    if [ "$(id -u)" -ne 0 ] || ! unshare -m true 2>/dev/null; then
        echo "SKIP: a private mount namespace (unshare -m, as root) is not available"
        exit 77
    fi
    VGPU_IN_NAMESPACE=1 exec unshare -m sh "$0"
fi
. "$(dirname "$0")/lib.sh"
command -v setfattr >/dev/null || skip "setfattr (package attr) is not installed"
mount --make-rprivate /
STATE=$ROOT/var/lib/vgpu-patch
mkdir -p "$STATE"
mount -t tmpfs -o size=64m,mode=0700 vgpu-state "$STATE"
trap 'umount "$STATE" 2>/dev/null; rm -rf "$T"' EXIT
setup_era e
EXE=$TREE/lib/ollama/llama-server
setfattr -n user.vgpu.test -v kept "$EXE" || skip "no user xattrs on this file system"
setfattr -n user.vgpu.test -v kept "$TREE/bin/ollama"
if command -v setcap >/dev/null; then
    setcap cap_net_bind_service+ep "$TREE/bin/ollama"
fi
touch -d '2025-05-06 07:08:09' "$EXE"
snapshot "$TREE" >"$T/pristine"

vp_ollama
expect_rc 0 "patch with the state dir elsewhere"
[ "$(find "$STATE/backups" -type f | wc -l)" -eq 2 ] || fail "expected two backup copies"
vp rollback
expect_rc 0 "rollback from copies"
snapshot "$TREE" >"$T/after"
diff "$T/pristine" "$T/after" >&2 || fail "rollback from copies lost something"

for point in staged:2 renamed:1 renamed:2 after-manifest; do
    note "crash at $point with copied backups"
    set +e
    VGPU_FAULT=$point "$VGPU_PATCH" ollama --root "$ROOT" --prefix "$PREFIX" \
        --shim-dir "$SHIMS" >"$T/out" 2>"$T/err"
    rc=$?
    set -e
    [ "$rc" -eq 137 ] || fail "VGPU_FAULT=$point did not crash the run (exit $rc)"
    vp rollback
    expect_rc 0 "rollback after a crash at $point"
    snapshot "$TREE" >"$T/after"
    diff "$T/pristine" "$T/after" >&2 || fail "$point: the tree is not back byte for byte"
done
echo PASS
