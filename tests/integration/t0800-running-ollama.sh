#!/bin/sh
# A running Ollama is not an error: rename leaves the inode it runs untouched. The
# output names the processes that still run the replaced files and says to restart.
. "$(dirname "$0")/lib.sh"

setup_era e
"$TREE/bin/ollama" linger 30 &
pid=$!
trap 'kill "$pid" 2>/dev/null; rm -rf "$T"' EXIT
sleep 0.3
before=$(stat -L -c %i "/proc/$pid/exe")

vp_ollama --json
expect_rc 0 "patching while Ollama runs"
grep -q "\"$pid (" "$T/out" || {
    cat "$T/out" >&2
    fail "the running process $pid is not named in restart_needed"
}
kill -0 "$pid" || fail "the running Ollama died"
[ "$(stat -L -c %i "/proc/$pid/exe")" = "$before" ] || fail "the running process' executable changed"

vp_ollama
expect_rc 0 "second run"
vp rollback
expect_rc 0 "rollback"
grep -q "restored" "$T/out" || fail "nothing restored"
echo PASS
