#!/bin/sh
# verify --e2e starts the install's own `ollama serve` (the fixture logs its era's
# `inference compute` line for the driver that really answered, then runs until
# signalled) in an environment built from scratch, on a free loopback port, and judges
# the line: patched eras E and C pass with the stand-in's device, and so does the audit
# mechanism with ollama.env's variables; a foreign driver's device, the CPU (an upgrade
# that lost the patch), no binary, a server that exits at once, one that never logs the
# line (and ignores SIGTERM, its child too) and an empty ollama.env under the audit
# mechanism all fail; with nothing patched there is nothing to pass. Run by root on a
# tree another user can change, serve runs as nobody.
# Nothing is left behind: no process of its group, no private directory.
. "$(dirname "$0")/lib.sh"

mkdir -p "$T/tmp"
TMPDIR=$T/tmp # vgpu-patch makes its private directory here
export TMPDIR
ENV=$ROOT/var/lib/vgpu-patch/ollama.env

# e2e_field KEY: the first "KEY": value of the e2e object in $T/out, unquoted.
e2e_field() {
    sed -n '/"e2e": {/,$p' "$T/out" | sed -n "s/^ *\"$1\": //p" | head -n 1 |
        sed 's/,$//; s/^"//; s/"$//'
}

e2e_ok() {
    e2e_field ok
}

# alive PID: the process runs (a zombie waiting for init to reap it does not count).
alive() {
    [ -r "/proc/$1/stat" ] && ! sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | grep -q '^Z'
}

no_leftovers() {
    [ -z "$(ls -A "$T/tmp")" ] || fail "the private directory was left behind: $(ls -A "$T/tmp")"
}

note "patched era e: passes and names the stand-in's device"
setup_era e
vp_ollama
expect_rc 0 "ollama on era e"
vp verify --json
expect_rc 0 "verify without --e2e"
if grep -q '"e2e"' "$T/out"; then fail "verify without --e2e ran the end-to-end check"; fi
VGPU_FIXTURE_REPORT=$T/leak
export VGPU_FIXTURE_REPORT # a variable of ours that must not reach serve
vp verify --e2e --json
unset VGPU_FIXTURE_REPORT
expect_rc 0 "verify --e2e on patched era e"
[ "$(e2e_ok)" = true ] || fail "e2e is not ok: $(e2e_field message)"
[ "$(e2e_field library)" = CUDA ] || fail "library is $(e2e_field library), not CUDA"
[ "$(e2e_field device)" = "vGPU stand-in" ] || fail "device is $(e2e_field device)"
e2e_field line | grep -q 'msg=\\"inference compute\\".*description=\\"vGPU stand-in\\"' ||
    fail "the line found is not the inference compute line: $(e2e_field line)"
addr=$(e2e_field address)
case $addr in 127.0.0.1:[0-9]*) ;; *) fail "serve's address is '$addr'" ;; esac
grep -q "Listening on $addr " "$T/out" || fail "serve did not get OLLAMA_HOST=$addr"
[ "$(e2e_field uid)" = "$(id -u)" ] || fail "serve ran as uid $(e2e_field uid)"
grep -q '"e2e_ok": true' "$T/out" || fail "no e2e_ok true"
[ ! -e "$T/leak" ] || fail "serve inherited vgpu-patch's environment (VGPU_FIXTURE_REPORT)"
no_leftovers
vp verify --e2e
expect_rc 0 "verify --e2e, text"
grep -q '^  ok   serve  *e2e ' "$T/out" || fail "the text does not show the e2e check"
grep -q 'device "vGPU stand-in", which the shim reports' "$T/out" || fail "text: $(cat "$T/out")"
grep -q "end to end: ollama serve uses CUDA through the shim" "$T/out" || fail "no summary"

note "usage: --timeout needs --e2e and a positive number"
vp verify --timeout 5
expect_rc 2 "--timeout without --e2e"
vp verify --e2e --timeout soon
expect_rc 2 "--timeout soon"
vp verify --e2e --timeout 0
expect_rc 2 "--timeout 0"

note "no ollama binary: fails and says so"
mv "$TREE/bin/ollama" "$T/ollama.patched"
vp verify --e2e --json
expect_rc 1 "verify --e2e without bin/ollama"
e2e_field message | grep -q "there is no ollama binary to start at $TREE/bin/ollama" ||
    fail "the message does not say the binary is missing: $(e2e_field message)"

note "a serve that exits at once: fails with its last lines"
cat >"$TREE/bin/ollama" <<'EOF'
#!/bin/sh
echo "Error: listen tcp: address already in use (fixture)" >&2
echo "the last words of a failing server" >&2
exit 3
EOF
chmod 755 "$TREE/bin/ollama"
vp verify --e2e --json
expect_rc 1 "an exiting serve passed"
[ "$(e2e_ok)" = false ] || fail "e2e is ok for a serve that exited"
e2e_field message | grep -q "exited (exit status 3) before it logged" ||
    fail "the message does not say it exited: $(e2e_field message)"
grep -q '"the last words of a failing server"' "$T/out" || fail "its last lines are not shown"
grep -q '"exited_early": true' "$T/out" || fail "exited_early is not true"
vp verify --e2e
grep -q "the last words of a failing server" "$T/out" || fail "text: no last lines"
no_leftovers

note "a serve that never logs the line and ignores SIGTERM: timeout, then SIGKILL to its group"
cat >"$TREE/bin/ollama" <<EOF
#!/bin/sh
trap '' TERM
sleep 300 &
echo \$! >"$T/child.pid"
echo "waiting for nothing (fixture)" >&2
while :; do sleep 1; done
EOF
start=$(date +%s)
vp verify --e2e --timeout 1 --json
took=$(($(date +%s) - start))
expect_rc 1 "a silent serve passed"
grep -q '"timed_out": true' "$T/out" || fail "timed_out is not true"
e2e_field message | grep -q "no line saying which compute library Ollama chose within 1.0 s" ||
    fail "the message does not say it timed out: $(e2e_field message)"
grep -q '"waiting for nothing (fixture)"' "$T/out" || fail "its output is not shown"
[ "$took" -lt 30 ] || fail "the timeout took $took s"
child=$(cat "$T/child.pid")
tries=0
while alive "$child" && [ "$tries" -lt 5 ]; do
    sleep 1 # SIGKILL is delivered, not awaited: give it a moment
    tries=$((tries + 1))
done
if alive "$child"; then
    kill -KILL "$child"
    fail "serve's child $child outlived it: the process group was not killed"
fi
no_leftovers
mv "$T/ollama.patched" "$TREE/bin/ollama"

note "an upgrade that lost the patch: serve runs on the CPU"
rm -rf "$TREE"
sh "$VGPU_SOURCE_DIR/tests/fixtures/make-tree.sh" e "$TREE"
vp verify --e2e --json
expect_rc 1 "an unpatched tree passed"
[ "$(e2e_ok)" = false ] || fail "e2e is ok for an unpatched tree"
[ "$(e2e_field library)" = cpu ] || fail "library is $(e2e_field library), not cpu"
e2e_field message | grep -q "library=cpu" || fail "message: $(e2e_field message)"
no_leftovers

note "era c (library=cuda, name=): passes; a foreign driver's device fails"
rm -rf "$ROOT" "$SHIMS"
setup_era c
vp_ollama
expect_rc 0 "ollama on era c"
vp verify --e2e --json
expect_rc 0 "verify --e2e on era c"
[ "$(e2e_field library)" = cuda ] || fail "era c: library is $(e2e_field library), not cuda"
[ "$(e2e_field device)" = "vGPU stand-in" ] || fail "era c: device is $(e2e_field device)"
e2e_field line | grep -q 'library=cuda variant=v12 .*name=\\"vGPU stand-in\\"' ||
    fail "era c: the line is $(e2e_field line)"
# The glob discovery now finds an operator's old hand-made shim first: its device is not
# one the shim reports.
ln -sf "$VGPU_TEST_FIXTURES/legacy/libcuda.so.1" "$TREE/lib/ollama/libcuda.so.1"
vp verify --e2e --json
expect_rc 1 "a foreign driver's device passed"
[ "$(e2e_ok)" = false ] || fail "e2e is ok with the legacy shim answering"
[ "$(e2e_field device)" = "legacy shim" ] || fail "device is $(e2e_field device)"
e2e_field message | grep -q 'not a device the shim reports' ||
    fail "message: $(e2e_field message)"
no_leftovers
ln -sf "$SHIMS/libvgpu-cuda.so.1" "$TREE/lib/ollama/libcuda.so.1"

note "rolled back: nothing to start, exit 1"
vp rollback
expect_rc 0 "rollback of era c"
vp verify --e2e
expect_rc 1 "verify --e2e with nothing patched"
grep -q "nothing is patched" "$T/out" || fail "the text does not say nothing is patched"

note "audit mechanism: passes because serve gets ollama.env's variables"
rm -rf "$ROOT" "$SHIMS"
setup_era e
VGPU_PATCH_GLIBC_VERSION=2.36 vp_ollama --mechanism audit
expect_rc 0 "--mechanism audit"
vp verify --e2e --json
expect_rc 0 "verify --e2e under the audit mechanism"
[ "$(e2e_field device)" = "vGPU stand-in" ] || fail "audit: device is $(e2e_field device)"
sed -n '/"env_file_variables"/,/]/p' "$T/out" | grep -q '"LD_AUDIT"' ||
    fail "LD_AUDIT is not among the variables given"
cp "$ENV" "$T/env.saved"
: >"$ENV"
vp verify --e2e --json
expect_rc 1 "audit without ollama.env's variables passed"
[ "$(e2e_field library)" = cpu ] || fail "audit, empty env file: library $(e2e_field library)"
cp "$T/env.saved" "$ENV"
no_leftovers

note "run by root, a tree another user can change: serve runs as nobody"
if [ "$(id -u)" -ne 0 ]; then
    note "not root: skipped"
elif ! setpriv --reuid=nobody --regid=nogroup --clear-groups test -x "$TREE/bin/ollama" \
    2>/dev/null; then
    note "nobody cannot run the tree here (or no setpriv): skipped"
else
    chown nobody "$TREE/lib/ollama/cuda_v13/libcublas.so.13"
    vp verify --e2e --json
    [ "$(e2e_ok)" = true ] || fail "as nobody: $(e2e_field message)"
    [ "$(e2e_field uid)" = 65534 ] || fail "serve ran as uid $(e2e_field uid), not nobody"
    e2e_field ran_as_nobody | grep -q "libcublas.so.13" ||
        fail "the reason names no file: $(e2e_field ran_as_nobody)"
    no_leftovers
fi
echo PASS
