#!/bin/sh
# Run without permission to write the Ollama tree (privileges dropped to nobody, with a
# state dir nobody owns): a clear message, exit 1, nothing changed, nothing left.
. "$(dirname "$0")/lib.sh"

[ "$(id -u)" -eq 0 ] || skip "needs root to drop privileges"
command -v setpriv >/dev/null || skip "setpriv (util-linux) is not installed"
setup_era e
mkdir -p "$ROOT/var/lib/nobody-state"
chown nobody "$ROOT/var/lib/nobody-state"
chmod 700 "$ROOT/var/lib/nobody-state"
snapshot "$TREE" >"$T/before"

as_nobody() {
    set +e
    setpriv --reuid=nobody --regid=nogroup --clear-groups "$VGPU_PATCH" "$@" >"$T/out" 2>"$T/err"
    # shellcheck disable=SC2034 # read by expect_rc
    rc=$?
    set -e
}

as_nobody ollama --root "$ROOT" --prefix "$PREFIX" --shim-dir "$SHIMS" \
    --state-dir /var/lib/nobody-state
expect_rc 1 "nobody patching a root-owned tree"
grep -q "no permission" "$T/err" || {
    cat "$T/err" >&2
    fail "the message does not say it lacks permission"
}
snapshot "$TREE" >"$T/after"
diff "$T/before" "$T/after" >&2 || fail "the tree changed"
[ ! -e "$ROOT/var/lib/nobody-state/journal" ] || fail "a journal was left"

note "the default state dir is not writable by nobody either"
as_nobody ollama --root "$ROOT" --prefix "$PREFIX" --shim-dir "$SHIMS"
expect_rc 1 "nobody with the default state dir"
grep -qi "permission denied\|no permission" "$T/err" || fail "state dir refusal not explained"

note "status and inspect work read-only"
as_nobody status --root "$ROOT" --state-dir /var/lib/nobody-state
expect_rc 0 "status as nobody"
as_nobody inspect "$TREE/bin/ollama"
expect_rc 0 "inspect as nobody"
echo PASS
