#!/bin/sh
# scripts/install.sh builds (Release) and installs exactly what its manifest lists, staged
# with --destdir or to a prefix, with the trust rule's owners and modes whatever the umask;
# a second run replaces each file by rename (a process keeps the shim it has open); it
# refuses an untrusted prefix and, as a user, a root-owned one, before building; the
# installed vgpu-patch runs and plans a fixture tree. scripts/uninstall.sh rolls every
# patched install back first, then removes exactly what was installed and the state dir;
# when the rollback refuses (a file changed since it was patched) it removes nothing.
. "$(dirname "$0")/lib.sh"

command -v cmake >/dev/null || skip "cmake is not installed"
[ "$(id -u)" -eq 0 ] || skip "needs root (installs root-owned files)"
INSTALL=$VGPU_SOURCE_DIR/scripts/install.sh
UNINSTALL=$VGPU_SOURCE_DIR/scripts/uninstall.sh
BUILD=$T/build
EXPECTED="bin/vgpu-patch bin/vgpu-launch lib/vgpu/libvgpu-cuda.so.1 lib/vgpu/libvgpu-nvml.so.1
lib/vgpu/libvgpu-audit.so libexec/vgpu-patch/vgpu-probe libexec/vgpu-patch/libvgpu-probe-audit.so
libexec/vgpu-patch/decoy/libcuda.so.1 libexec/vgpu-patch/decoy/libnvidia-ml.so.1
share/man/man1/vgpu-patch.1 share/man/man1/vgpu-launch.1 share/man/man7/vgpu-shims.7
share/doc/vgpu-patch/operator-guide.md share/vgpu-patch/install_manifest.txt"

# sh_run SCRIPT ARGS...: rc, $T/out, $T/err as vp().
sh_run() {
    set +e
    sh "$@" >"$T/out" 2>"$T/err"
    rc=$?
    set -e
}

# check_install DESTDIR PREFIX: the expected files, nothing the manifest does not list
# (but the test's own keep.txt) and nothing it lists missing, owners and modes.
check_install() {
    top=$1$2
    mf=$top/share/vgpu-patch/install_manifest.txt
    for f in $EXPECTED; do
        [ -f "$top/$f" ] || fail "$2/$f is not installed"
        grep -qxF "file $2/$f" "$mf" || fail "the manifest does not list $2/$f"
    done
    grep -q "^prefix $2\$" "$mf" || fail "the manifest does not name prefix $2"
    if [ -n "$1" ] && grep -qF "$1" "$mf"; then
        fail "the manifest names the staging dir $1"
    fi
    (cd "$top" && find . ! -type d ! -name keep.txt | sed "s|^\.|file $2|" | sort) >"$T/found"
    grep '^file ' "$mf" | sort | diff - "$T/found" >&2 || fail "the manifest and the installed files differ"
    bad=$(find "$top" \( ! -user root -o -perm /022 \) -print)
    [ -z "$bad" ] || fail "not root-owned, or writable by group/others: $bad"
    for f in bin/vgpu-patch bin/vgpu-launch libexec/vgpu-patch/vgpu-probe; do
        [ "$(stat -c %a "$top/$f")" = 755 ] || fail "$f has mode $(stat -c %a "$top/$f")"
    done
    sed -n 's/^dir //p' "$mf" >"$T/dirs"
    while IFS= read -r d; do
        [ "$(stat -c %a "$1$d")" = 755 ] || fail "created directory $d has mode $(stat -c %a "$1$d")"
    done <"$T/dirs"
}

# trusted DIR: DIR and its ancestors as vgpu-patch's rule wants them (root-owned, not
# group/other-writable unless a root-owned sticky ancestor), checked here independently.
trusted() {
    p=$1
    while :; do
        [ "$(stat -c %u "$p")" = 0 ] || fail "$p is not root-owned"
        mode=$(stat -c %a "$p")
        if [ $((0$mode & 022)) -ne 0 ] && { [ "$p" = "$1" ] || [ $((0$mode & 01000)) -eq 0 ]; }; then
            fail "$p is writable by group or others ($mode)"
        fi
        [ "$p" != / ] || break
        p=$(dirname "$p")
    done
}

note "staged install (--destdir) under umask 002"
(umask 002 && sh "$INSTALL" --destdir "$T/stage" --prefix /opt/vgpu --build-dir "$BUILD" --jobs 2) \
    >"$T/build.log" 2>&1 || fail "install.sh --destdir failed: $(tail -20 "$T/build.log")"
check_install "$T/stage" /opt/vgpu
grep -qxF "dir /opt" "$T/stage/opt/vgpu/share/vgpu-patch/install_manifest.txt" ||
    fail "the manifest does not record /opt, which the install created"
"$T/stage/opt/vgpu/bin/vgpu-patch" --version | grep -q '^vgpu-patch [0-9]' ||
    fail "the staged vgpu-patch does not run"

note "install to a prefix; what existed before is not recorded"
mkdir -p "$T/inst/share"
echo "someone else's" >"$T/inst/share/keep.txt"
sh_run "$INSTALL" --prefix "$T/inst" --build-dir "$BUILD" --jobs 2
expect_rc 0 "install.sh --prefix"
check_install "" "$T/inst"
MF=$T/inst/share/vgpu-patch/install_manifest.txt
for d in "$T/inst" "$T/inst/share"; do
    ! grep -qxF "dir $d" "$MF" || fail "the manifest claims $d, which existed before"
done
grep -qxF "dir $T/inst/share/man" "$MF" || fail "the manifest does not record share/man"
trusted "$T/inst/lib/vgpu"
grep -q "Nothing was patched" "$T/out" || fail "install.sh does not say nothing was patched"
grep -q "$T/inst/bin/vgpu-patch ollama" "$T/out" || fail "install.sh does not say what to run next"
"$T/inst/bin/vgpu-patch" --version | grep -q '^vgpu-patch [0-9]' || fail "the installed vgpu-patch does not run"

note "the installed vgpu-patch plans a fixture tree with its own shims, writing nothing"
# shellcheck disable=SC2034 # read by vp() in lib.sh
VGPU_PATCH=$T/inst/bin/vgpu-patch
setup_era e
snapshot "$TREE" >"$T/tree.orig"
vp ollama --prefix "$PREFIX" --dry-run
expect_rc 0 "ollama --dry-run with the installed vgpu-patch"
grep -qF "$T/inst/lib/vgpu/libvgpu-cuda.so.1" "$T/out" || fail "the plan does not use the installed shims"
snapshot "$TREE" | diff "$T/tree.orig" - >&2 || fail "--dry-run changed the tree"
[ ! -e "$ROOT/var/lib/vgpu-patch/manifest" ] || fail "--dry-run recorded something"

note "a second install replaces each file by rename"
shim=$T/inst/lib/vgpu/libvgpu-cuda.so.1
cp "$shim" "$T/old-shim"
ino=$(stat -c %i "$shim")
exec 3<"$shim"
sh_run "$INSTALL" --prefix "$T/inst" --build-dir "$BUILD" --jobs 2
expect_rc 0 "install.sh again"
[ "$(stat -c %i "$shim")" != "$ino" ] || fail "the shim was rewritten in place"
cmp -s "$T/old-shim" - <&3 || fail "the shim a process had open changed under it"
exec 3<&-
check_install "" "$T/inst"
grep -qxF "dir $T/inst/share/man" "$MF" || fail "the second install forgot the directories the first created"
if find "$T/inst" -name '*.vgpu-new.*' | grep -q .; then
    fail "a temporary file was left"
fi

note "refusals: untrusted prefix, a user to a root-owned prefix, usage"
mkdir -m 775 "$T/gw"
sh_run "$INSTALL" --prefix "$T/gw/usr" --build-dir "$T/build-unused"
expect_rc 1 "install.sh under a group-writable directory"
grep -q "$T/gw is writable by its group" "$T/err" || fail "the refusal does not name $T/gw: $(cat "$T/err")"
[ -z "$(ls -A "$T/gw")" ] || fail "the refused install created files"
[ ! -e "$T/build-unused" ] || fail "the refused install built before checking"
if command -v setpriv >/dev/null; then
    mkdir -p "$T/nb/scripts"
    cp "$INSTALL" "$T/nb/scripts/install.sh"
    chmod -R a+rX "$T/nb"
    set +e
    setpriv --reuid=nobody --regid=nogroup --clear-groups sh "$T/nb/scripts/install.sh" \
        --prefix "$T/inst2" --build-dir "$T/build-unused" >"$T/out" 2>"$T/err"
    # shellcheck disable=SC2034 # read by expect_rc
    rc=$?
    set -e
    expect_rc 1 "install.sh as nobody to a root-owned prefix"
    grep -q "cannot write to $T (owned by root).*as root" "$T/err" ||
        fail "no clear message for nobody: $(cat "$T/err")"
    for p in "$T/inst2" "$T/build-unused"; do
        [ ! -e "$p" ] || fail "install.sh as nobody created $p"
    done
else
    note "setpriv is not installed: the non-root refusal is not tried"
fi
sh_run "$INSTALL" --prefix relative/dir
expect_rc 2 "install.sh with a relative prefix"
sh_run "$UNINSTALL" --bogus
expect_rc 2 "uninstall.sh with an unknown option"
sh_run "$UNINSTALL" --prefix "$T/nothing-here"
expect_rc 1 "uninstall.sh without a manifest"
grep -q "no install manifest" "$T/err" || fail "uninstall.sh does not say the manifest is missing"

note "uninstall.sh refuses a manifest that names a path outside the prefix"
echo "outside" >"$T/outside.txt"
cp "$MF" "$T/manifest.good"
echo "file $T/outside.txt" >>"$MF"
sh_run "$UNINSTALL" --prefix "$T/inst" --root "$ROOT"
expect_rc 1 "uninstall.sh with a damaged manifest"
for f in "$T/outside.txt" "$T/inst/bin/vgpu-patch"; do
    [ -f "$f" ] || fail "a refused uninstall removed $f"
done
cp "$T/manifest.good" "$MF"

note "uninstall.sh rolls back, then removes exactly what was installed"
vp ollama --prefix "$PREFIX" --no-wire
expect_rc 0 "patching with the installed vgpu-patch"
if snapshot "$TREE" | diff -q "$T/tree.orig" - >/dev/null; then
    fail "the tree was not patched"
fi
# Someone else's page in a directory the install created: it and its directories stay.
echo "another package's page" >"$T/inst/share/man/man1/other.1"
sh_run "$UNINSTALL" --prefix "$T/inst" --root "$ROOT"
expect_rc 0 "uninstall.sh"
snapshot "$TREE" | diff "$T/tree.orig" - >&2 || fail "uninstall.sh did not restore Ollama"
sed -n 's/^file //p; s/^dir //p' "$T/manifest.good" | grep -v "^$T/inst/share/man\(/man1\)\{0,1\}\$" >"$T/paths"
while IFS= read -r p; do
    [ ! -e "$p" ] || fail "uninstall.sh left $p"
done <"$T/paths"
[ -f "$T/inst/share/keep.txt" ] || fail "uninstall.sh removed a file it did not install"
[ -f "$T/inst/share/man/man1/other.1" ] || fail "uninstall.sh removed a file it did not install"
grep -q "kept $T/inst/share/man/man1: not empty" "$T/out" || fail "uninstall.sh does not say what it kept"
rm -r "$T/inst/share/man"
[ ! -e "$ROOT/var/lib/vgpu-patch" ] || fail "uninstall.sh left the state dir"

note "uninstall.sh removes nothing when the rollback refuses (Ollama upgraded since patching)"
sh_run "$INSTALL" --prefix "$T/inst" --build-dir "$BUILD" --jobs 2
expect_rc 0 "install.sh after uninstall"
vp ollama --prefix "$PREFIX" --no-wire
expect_rc 0 "patching again"
cp "$VGPU_TEST_FIXTURES/trees/e/bin/ollama" "$TREE/bin/ollama.new"
mv "$TREE/bin/ollama.new" "$TREE/bin/ollama"
cp "$MF" "$T/manifest.good"
sh_run "$UNINSTALL" --prefix "$T/inst" --root "$ROOT"
expect_rc 4 "uninstall.sh after an Ollama upgrade"
grep -q "nothing was removed" "$T/err" || fail "uninstall.sh does not say nothing was removed"
sed -n 's/^file //p' "$T/manifest.good" >"$T/paths"
while IFS= read -r f; do
    [ -f "$f" ] || fail "the refused uninstall removed $f"
done <"$T/paths"
[ -d "$ROOT/var/lib/vgpu-patch" ] || fail "the refused uninstall removed the state dir"
snapshot "$TREE" >"$T/tree.upgraded"
# What the message says: patch the new files, then uninstall again (here keeping the state).
vp ollama --prefix "$PREFIX" --no-wire
expect_rc 0 "patching the upgraded tree"
sh_run "$UNINSTALL" --prefix "$T/inst" --root "$ROOT" --keep-state
expect_rc 0 "uninstall.sh --keep-state"
snapshot "$TREE" | diff "$T/tree.upgraded" - >&2 || fail "uninstall.sh did not restore the upgraded Ollama"
[ -d "$ROOT/var/lib/vgpu-patch" ] || fail "--keep-state removed the state dir"
[ ! -e "$T/inst/bin/vgpu-patch" ] || fail "uninstall.sh --keep-state left bin/vgpu-patch"
echo PASS
