#!/bin/sh
# The patched copy keeps the original's owner, group, mode (set-id bits included) and
# extended attributes; rollback brings back the original inode itself.
. "$(dirname "$0")/lib.sh"

command -v setfattr >/dev/null || skip "setfattr (package attr) is not installed"
[ "$(id -u)" -eq 0 ] || skip "needs root to give files another owner"
setup_era e
EXE=$TREE/lib/ollama/llama-server
chown nobody:nogroup "$EXE"
chmod 4750 "$EXE"
setfattr -n user.vgpu.test -v kept "$EXE" || skip "this file system has no user xattrs"
ino=$(stat -c %i "$EXE")

vp_ollama
expect_rc 0 "patch"
[ "$(stat -c '%U:%G %a' "$EXE")" = "nobody:nogroup 4750" ] ||
    fail "owner/mode not kept: $(stat -c '%U:%G %a' "$EXE")"
[ "$(getfattr --only-values -n user.vgpu.test "$EXE")" = kept ] || fail "xattr not kept"
[ "$(stat -c %i "$EXE")" != "$ino" ] || fail "the file was written in place"

vp rollback
expect_rc 0 "rollback"
[ "$(stat -c %i "$EXE")" = "$ino" ] || fail "rollback did not bring back the original inode"
echo PASS
