#!/bin/sh
# Wiring: `vgpu-patch ollama` gives the unit that runs the install our own drop-in
# (ensure before every start, fail-open and as root; the environment file;
# OLLAMA_VULKAN=0 unless --keep-vulkan) and a path unit for upgrades while it runs; the
# files pass `systemd-analyze verify`; a second run changes nothing; the launcher
# delivery wraps the unit's own command, and is refused when a later drop-in
# (override.conf) sets ExecStart=; ensure writes a deleted drop-in again; --no-wire
# removes an earlier wiring; a wiring failure exits 1 with nothing changed; rollback
# removes exactly what was added and leaves an edited file alone. Nothing outside the
# test's root is touched (systemctl is never run with --root).
. "$(dirname "$0")/lib.sh"

SD=$ROOT/etc/systemd/system
DROPIN=$SD/ollama.service.d/50-vgpu-patch.conf
BIN=$VGPU_BUILD_DIR/bin

unit() {
    mkdir -p "$SD"
    printf '[Unit]\nDescription=Ollama Service\nAfter=network-online.target\n\n[Service]\nExecStart=%s/bin/ollama serve\nUser=ollama\nGroup=ollama\nRestart=always\nRestartSec=3\n\n[Install]\nWantedBy=default.target\n' \
        "$1$PREFIX" >"$SD/ollama.service"
}

has_line() {
    grep -qxF -- "$2" "$1" || fail "$(basename "$1") lacks the line: $2 ($(cat "$1"))"
}

setup_era e
unit ""
# Someone else's drop-in, which must survive everything.
mkdir -p "$SD/ollama.service.d"
printf '[Service]\nEnvironment="OLLAMA_HOST=0.0.0.0"\n' >"$SD/ollama.service.d/10-host.conf"
(cd "$SD" && find . -printf '%p %y %m\n' | sort) >"$T/sd-before"

vp_ollama --json
expect_rc 0 "ollama with a unit"
grep -q '"done": true' "$T/out" || fail "not wired: $(grep -A3 '"wiring"' "$T/out")"
[ "$(json_field changed)" = true ] || fail "the first run does not say changed"
has_line "$DROPIN" "ExecStartPre=-+$BIN/vgpu-patch ensure --state-dir /var/lib/vgpu-patch"
has_line "$DROPIN" "EnvironmentFile=-/var/lib/vgpu-patch/ollama.env"
has_line "$DROPIN" "Environment=OLLAMA_VULKAN=0"
if grep -q '^ExecStart=' "$DROPIN"; then fail "the patch delivery must not touch ExecStart"; fi
has_line "$SD/vgpu-patch-ollama.path" "PathChanged=$PREFIX/bin/ollama"
has_line "$SD/vgpu-patch-ollama.path" "PathChanged=$PREFIX/lib/ollama"
has_line "$SD/vgpu-patch-ollama.path" "Unit=vgpu-patch-ollama.service"
has_line "$SD/vgpu-patch-ollama.service" "ExecStart=$BIN/vgpu-patch ensure --settle 10 --state-dir /var/lib/vgpu-patch"
grep -q "systemctl daemon-reload && systemctl enable --now vgpu-patch-ollama.path" "$T/out" ||
    fail "the activation commands are not given"

note "systemd-analyze verify"
if command -v systemd-analyze >/dev/null; then
    # The unit's program is in the test's root: point a copy at it.
    cp -r "$SD" "$T/units"
    sed -i "s#^ExecStart=$PREFIX#ExecStart=$TREE#" "$T/units/ollama.service"
    systemd-analyze verify "$T/units/ollama.service" "$T/units/vgpu-patch-ollama.path" \
        "$T/units/vgpu-patch-ollama.service" >"$T/verify.out" 2>&1 ||
        fail "systemd-analyze verify failed: $(cat "$T/verify.out")"
    [ ! -s "$T/verify.out" ] || fail "systemd-analyze verify complains: $(cat "$T/verify.out")"
else
    note "systemd-analyze is not installed: not verified"
fi

note "a second run changes nothing"
cp "$DROPIN" "$T/dropin.1"
vp_ollama --json
expect_rc 0 "second run"
if grep -q '"written": true' "$T/out"; then fail "the second run rewrote a unit file"; fi
[ "$(json_field changed)" = false ] || fail "the second run says changed"
cmp -s "$DROPIN" "$T/dropin.1" || fail "the drop-in changed"

note "ensure writes a deleted drop-in again"
rm "$DROPIN"
vp ensure --json
expect_rc 0 "ensure after the drop-in was deleted"
[ "$(json_field action)" = reapplied ] || fail "action $(json_field action)"
[ "$(json_field changed)" = true ] || fail "ensure does not say it changed something"
vp ensure --json
[ "$(json_field changed)" = false ] || fail "a second ensure says changed"
cmp -s "$DROPIN" "$T/dropin.1" || fail "ensure did not write the drop-in again"

note "--keep-vulkan"
vp_ollama --keep-vulkan
expect_rc 0 "--keep-vulkan"
if grep -q OLLAMA_VULKAN "$DROPIN"; then fail "--keep-vulkan still sets OLLAMA_VULKAN"; fi

note "the launcher delivery wraps the unit's own command, prefix characters kept"
unit "-"
vp_ollama --mechanism audit --delivery launcher --json
expect_rc 0 "--delivery launcher"
[ "$(json_field delivery)" = launcher ] || fail "delivery $(json_field delivery)"
has_line "$DROPIN" "ExecStart="
has_line "$DROPIN" "ExecStart=-$BIN/vgpu-launch --shim-dir $SHIMS -- $PREFIX/bin/ollama serve"
vp_ollama --mechanism audit --delivery launcher --json
expect_rc 0 "a second launcher run finds the install through the wrapper"
grep -c "vgpu-launch" "$DROPIN" | grep -qx 1 || fail "the command is wrapped twice: $(cat "$DROPIN")"

note "an override.conf that sets ExecStart= after ours would cancel the launcher: refused"
printf '[Service]\nExecStart=\nExecStart=%s/bin/ollama serve --verbose\n' "$PREFIX" \
    >"$SD/ollama.service.d/override.conf"
snapshot "$TREE" >"$T/tree-launcher"
cp "$DROPIN" "$T/dropin-launcher"
vp_ollama --mechanism audit --delivery launcher --json
expect_rc 1 "launcher delivery under a later ExecStart="
grep -q 'override.conf sets ExecStart= after our drop-in' "$T/out" ||
    fail "the override is not named: $(json_field error)"
[ "$(json_field changed)" = false ] || fail "a failed run says changed"
snapshot "$TREE" >"$T/tree-after"
cmp -s "$T/tree-launcher" "$T/tree-after" || fail "the failed run changed the tree"
cmp -s "$DROPIN" "$T/dropin-launcher" || fail "the failed run changed our drop-in"
rm "$SD/ollama.service.d/override.conf"

note "rollback removes exactly what was added"
vp rollback
expect_rc 0 "rollback"
unit ""
(cd "$SD" && find . -printf '%p %y %m\n' | sort) >"$T/sd-after"
diff "$T/sd-before" "$T/sd-after" >&2 || fail "rollback did not leave the systemd dir as it was"

note "an edited drop-in is left alone"
vp_ollama
expect_rc 0 "patch again"
echo "# my change" >>"$DROPIN"
vp rollback
expect_rc 4 "rollback with an edited drop-in"
grep -q "50-vgpu-patch.conf was edited" "$T/out" || fail "the edited drop-in is not named"
[ -f "$DROPIN" ] || fail "the edited drop-in was removed"
[ ! -e "$SD/vgpu-patch-ollama.path" ] || fail "the untouched path unit was not removed"

note "--no-wire on a wired install removes the wiring, and ensure keeps it so"
vp rollback
vp_ollama
expect_rc 0 "wired"
vp_ollama --no-wire --json
expect_rc 0 "--no-wire after wiring"
[ "$(json_field changed)" = true ] || fail "unwiring is a change"
for f in "$DROPIN" "$SD/vgpu-patch-ollama.path" "$SD/vgpu-patch-ollama.service"; do
    [ ! -e "$f" ] || fail "--no-wire left $f"
done
if grep -q '^systemd_dir' "$ROOT/var/lib/vgpu-patch/manifest"; then
    fail "the record still names a systemd dir"
fi
cp -p "$VGPU_TEST_FIXTURES/trees/e/bin/ollama" "$TREE/bin/ollama.new" # an upgrade
mv "$TREE/bin/ollama.new" "$TREE/bin/ollama"
vp ensure --json
expect_rc 0 "ensure after an upgrade of an unwired install"
[ ! -e "$DROPIN" ] || fail "ensure wired an install the operator unwired"
vp rollback
expect_rc 0 "rollback"

note "a systemd dir that cannot be made: exit 1, nothing changed"
mkdir -p "$ROOT/srv"
: >"$ROOT/srv/afile"
snapshot "$TREE" >"$T/tree-before"
vp_ollama --systemd-dir /srv/afile/system --json
expect_rc 1 "--systemd-dir under a file"
grep -q 'wiring systemd failed: cannot create' "$T/out" || fail "no reason: $(json_field error)"
snapshot "$TREE" >"$T/tree-after"
cmp -s "$T/tree-before" "$T/tree-after" || fail "a failed wiring left the tree changed"
vp status --json
grep -q '"installs": \[\]' "$T/out" || fail "a failed first run left a record: $(cat "$T/out")"

note "no unit: not wired, and said so"
rm -rf "$ROOT" "$SHIMS"
setup_era e
vp_ollama --json
expect_rc 0 "no unit"
grep -q '"done": false' "$T/out" || fail "wired without a unit"
grep -q "no systemd unit runs this install" "$T/out" || fail "the reason is not given"
[ ! -d "$ROOT/etc/systemd" ] || fail "systemd files were written without a unit"
echo PASS
