#!/bin/sh
# `cpack -G DEB` makes vgpu-patch_<version>_amd64.deb: the control fields, the files and
# their modes under /usr, no build path or RPATH inside, stripped shims that still carry
# the driver sonames and still patch and verify a tree, maintainer scripts that are sh -n
# and shellcheck clean, lintian clean but for the warnings accepted below. The maintainer
# scripts run against a temporary DPKG_ROOT with a fake vgpu-patch: remove rolls back and a
# failed rollback aborts the removal, upgrade does nothing, purge removes the state dir.
# Then dpkg --root installs, upgrades and removes the package in a temporary root for real.
. "$(dirname "$0")/lib.sh"

command -v cpack >/dev/null || skip "cpack (cmake) is not installed"
command -v dpkg-deb >/dev/null || skip "dpkg-deb (dpkg) is not installed"
[ -f "$VGPU_BUILD_DIR/CPackConfig.cmake" ] ||
    fail "no CPackConfig.cmake in $VGPU_BUILD_DIR: packaging/ is not configured"

version=$("$VGPU_BUILD_DIR/bin/vgpu-patch" --version | sed -n 's/^vgpu-patch //p')
[ -n "$version" ] || fail "vgpu-patch --version says no version"
# Under a permissive umask, as a packager's may be: the modes must not depend on it.
(cd "$T" && umask 002 && cpack --config "$VGPU_BUILD_DIR/CPackConfig.cmake" -G DEB -B "$T/pkg") \
    >"$T/cpack.log" 2>&1 || fail "cpack -G DEB failed: $(tail -20 "$T/cpack.log")"
DEB=$T/pkg/vgpu-patch_${version}_amd64.deb
[ -f "$DEB" ] || fail "no $DEB; cpack made: $(ls "$T/pkg")"

note "control fields"
field() {
    dpkg-deb -f "$DEB" "$1"
}
[ "$(field Package)" = vgpu-patch ] || fail "Package is '$(field Package)'"
[ "$(field Version)" = "$version" ] || fail "Version is '$(field Version)', not $version"
[ "$(field Architecture)" = amd64 ] || fail "Architecture is '$(field Architecture)'"
[ "$(field Section)" = admin ] || fail "Section is '$(field Section)'"
[ "$(field Priority)" = optional ] || fail "Priority is '$(field Priority)'"
field Maintainer | grep -Eq '^[^<>]+ <[^<>@ ]+@[^<>@ ]+>$' || fail "Maintainer '$(field Maintainer)'"
depends=$(field Depends)
for dep in libc6 libelf1; do
    printf '%s\n' "$depends" | grep -Eq "(^|, )$dep( |,|$)" || fail "Depends lacks $dep: $depends"
done
case $depends in *patchelf*) fail "patchelf is a Depends, not a Recommends: $depends" ;; esac
[ "$(field Recommends)" = patchelf ] || fail "Recommends is '$(field Recommends)'"
[ "$(field Description | wc -l)" -ge 5 ] || fail "no extended Description"

note "files, modes, owners"
dpkg-deb -c "$DEB" | awk '{ print $1, $2, $6 }' >"$T/contents"
for entry in \
    "-rwxr-xr-x ./usr/bin/vgpu-patch" "-rwxr-xr-x ./usr/bin/vgpu-launch" \
    "drwxr-xr-x ./usr/lib/vgpu/" "-rw-r--r-- ./usr/lib/vgpu/libvgpu-cuda.so.1" \
    "-rw-r--r-- ./usr/lib/vgpu/libvgpu-nvml.so.1" "-rw-r--r-- ./usr/lib/vgpu/libvgpu-audit.so" \
    "-rwxr-xr-x ./usr/libexec/vgpu-patch/vgpu-probe" \
    "-rw-r--r-- ./usr/libexec/vgpu-patch/libvgpu-probe-audit.so" \
    "-rw-r--r-- ./usr/libexec/vgpu-patch/decoy/libcuda.so.1" \
    "-rw-r--r-- ./usr/libexec/vgpu-patch/decoy/libnvidia-ml.so.1" \
    "-rw-r--r-- ./usr/share/man/man1/vgpu-patch.1.gz" "-rw-r--r-- ./usr/share/man/man1/vgpu-launch.1.gz" \
    "-rw-r--r-- ./usr/share/man/man7/vgpu-shims.7.gz" \
    "-rwxr-xr-x ./usr/sbin/vgpu-hostd" "-rw-r--r-- ./usr/share/man/man8/vgpu-hostd.8.gz" \
    "-rw-r--r-- ./usr/share/doc/vgpu-patch/copyright" \
    "-rw-r--r-- ./usr/share/doc/vgpu-patch/changelog.gz" \
    "-rw-r--r-- ./usr/share/doc/vgpu-patch/operator-guide.md.gz"; do
    mode=${entry%% *}
    path=${entry#* }
    grep -qxF -e "$mode root/root $path" "$T/contents" || {
        cat "$T/contents" >&2
        fail "the package lacks $path with mode $mode, owned by root"
    }
done
while read -r mode owner path; do
    [ "$owner" = root/root ] || fail "$path is owned by $owner"
    case $mode in ?????w* | ????????w*) fail "$path is writable by group or others ($mode)" ;; esac
    case $path in
    ./usr/ | ./usr/bin/ | ./usr/sbin/ | ./usr/lib/ | ./usr/libexec/ | ./usr/share/ | ./usr/share/doc/ | \
        ./usr/share/man/ | ./usr/share/man/man?/ | ./usr/share/man/man?/vgpu-*.?.gz | \
        ./usr/bin/vgpu-* | ./usr/sbin/vgpu-hostd | ./usr/lib/vgpu/* | ./usr/libexec/vgpu-patch/* | \
        ./usr/share/doc/vgpu-patch/* | ./usr/share/vgpu-patch/*) ;;
    *) fail "unexpected path in the package: $path" ;;
    esac
done <"$T/contents"

note "no build path, no RPATH; the shims keep their sonames"
dpkg-deb -x "$DEB" "$T/x"
if grep -rlF "$VGPU_BUILD_DIR/" "$T/x"; then
    fail "files above name the build dir $VGPU_BUILD_DIR"
fi
if grep -q '^VGPU_SANITIZE:BOOL=ON' "$VGPU_BUILD_DIR/CMakeCache.txt"; then
    note "sanitized build: UBSan's source locations may name $VGPU_SOURCE_DIR (not checked)"
elif grep -rlF "$VGPU_SOURCE_DIR/" "$T/x"; then
    fail "files above name the source dir $VGPU_SOURCE_DIR"
fi
elves=0
for f in $(find "$T/x" -type f | sort); do
    readelf -h "$f" >/dev/null 2>&1 || continue
    elves=$((elves + 1))
    if readelf -d "$f" | grep -E '\((RPATH|RUNPATH)\)'; then
        fail "${f#"$T/x"} has an RPATH/RUNPATH"
    fi
    if readelf -S "$f" | grep -q '\.debug_info'; then
        fail "${f#"$T/x"} is not stripped"
    fi
done
[ "$elves" -ge 9 ] || fail "only $elves ELF files in the package"
readelf -d "$T/x/usr/lib/vgpu/libvgpu-cuda.so.1" | grep -qF 'Library soname: [libcuda.so.1]' ||
    fail "the packaged CUDA shim lost its soname"
readelf -d "$T/x/usr/lib/vgpu/libvgpu-nvml.so.1" | grep -qF 'Library soname: [libnvidia-ml.so.1]' ||
    fail "the packaged NVML shim lost its soname"

note "the packaged vgpu-patch patches and verifies with the packaged (stripped) shims"
# shellcheck disable=SC2034 # read by vp() in lib.sh
VGPU_PATCH=$T/x/usr/bin/vgpu-patch
setup_era e
vp ollama --prefix "$PREFIX" --no-wire --json
expect_rc 0 "the packaged vgpu-patch"
grep -q "\"shim_dir\": \"$T/x/usr/lib/vgpu\"" "$T/out" || fail "the packaged default shim dir is not /usr/lib/vgpu"
grep -q '"ok": true' "$T/out" || fail "the packaged vgpu-patch did not verify its shims"
vp rollback
expect_rc 0 "rollback with the packaged vgpu-patch"
rm -rf "$ROOT"

note "maintainer scripts"
dpkg-deb -e "$DEB" "$T/ctl"
for s in postinst prerm postrm; do
    [ -f "$T/ctl/$s" ] || fail "no $s in the package"
    [ "$(stat -c %a "$T/ctl/$s")" = 755 ] || fail "$s has mode $(stat -c %a "$T/ctl/$s")"
    sh -n "$T/ctl/$s" || fail "$s: sh -n"
    if command -v shellcheck >/dev/null; then
        shellcheck -s sh "$T/ctl/$s" || fail "$s: shellcheck"
    fi
done

# maint ROOT SCRIPT ARGS...: one maintainer script with DPKG_ROOT=ROOT (never the real
# system); rc, $T/out, $T/err as vp().
maint() {
    r=$1
    shift
    set +e
    script=$T/ctl/$1
    shift
    DPKG_ROOT=$r "$script" "$@" >"$T/out" 2>"$T/err"
    rc=$?
    set -e
}
FR=$T/fake
mkdir -p "$FR/usr/bin" "$FR/var/lib/vgpu-patch/backups"
cat >"$FR/usr/bin/vgpu-patch" <<EOF
#!/bin/sh
echo "\$*" >>"$T/calls"
exit \${FAKE_RC:-0}
EOF
chmod 755 "$FR/usr/bin/vgpu-patch"
calls() {
    if [ -f "$T/calls" ]; then cat "$T/calls"; fi
}

rm -f "$T/calls"
maint "$FR" prerm remove
expect_rc 0 "prerm remove"
[ "$(calls)" = "rollback --root $FR --state-dir /var/lib/vgpu-patch" ] ||
    fail "prerm remove called: '$(calls)'"

for code in 4 1; do
    rm -f "$T/calls"
    FAKE_RC=$code maint "$FR" prerm remove
    [ "$rc" -ne 0 ] || fail "prerm remove succeeded although the rollback exited $code"
    [ -n "$(calls)" ] || fail "prerm remove did not call the rollback"
    grep -q "not removed" "$T/err" || fail "prerm does not say the package stays ($code): $(cat "$T/err")"
    if [ "$code" -eq 4 ]; then
        grep -q "vgpu-patch ollama" "$T/err" || fail "prerm does not say how to proceed: $(cat "$T/err")"
    fi
done

rm -f "$T/calls"
maint "$FR" prerm upgrade 9.9.9
expect_rc 0 "prerm upgrade"
[ -z "$(calls)" ] || fail "prerm upgrade called vgpu-patch: $(calls)"
for args in "deconfigure in-favour other 1.0" "failed-upgrade 0.0.1 $version"; do
    # shellcheck disable=SC2086 # the arguments as dpkg passes them
    maint "$FR" prerm $args
    expect_rc 0 "prerm $args"
done
[ -z "$(calls)" ] || fail "prerm deconfigure/failed-upgrade called vgpu-patch: $(calls)"
maint "$FR" prerm bogus
[ "$rc" -ne 0 ] || fail "prerm accepted an unknown argument"

rm -rf "$T/empty" && mkdir -p "$T/empty/usr/bin"
cp "$FR/usr/bin/vgpu-patch" "$T/empty/usr/bin/"
maint "$T/empty" prerm remove
expect_rc 0 "prerm remove without a state dir"
[ -z "$(calls)" ] || fail "prerm remove without a state dir called vgpu-patch: $(calls)"
rm "$T/empty/usr/bin/vgpu-patch"
mkdir -p "$T/empty/var/lib/vgpu-patch"
maint "$T/empty" prerm remove
[ "$rc" -ne 0 ] || fail "prerm remove succeeded with a state dir and no vgpu-patch to roll back"

maint "$FR" postinst configure
expect_rc 0 "postinst configure"
grep -q "nothing was patched" "$T/out" || fail "postinst gives no hint"
for args in "configure 0.0.1" "abort-remove" "abort-upgrade 0.0.1"; do
    # shellcheck disable=SC2086
    maint "$FR" postinst $args
    expect_rc 0 "postinst $args"
done
[ -z "$(calls)" ] || fail "postinst called vgpu-patch: $(calls)"

maint "$FR" postrm remove
expect_rc 0 "postrm remove"
[ -d "$FR/var/lib/vgpu-patch" ] || fail "postrm remove removed the state dir"
touch "$FR/var/lib/vgpu-patch/backups/original"
maint "$FR" postrm purge
expect_rc 0 "postrm purge with backups left"
[ -f "$FR/var/lib/vgpu-patch/backups/original" ] || fail "postrm purge deleted a backup"
grep -q "keeping" "$T/err" || fail "postrm purge does not say why it keeps the state dir"
rm "$FR/var/lib/vgpu-patch/backups/original"
touch "$FR/var/lib/vgpu-patch/manifest" "$FR/var/lib/vgpu-patch/lock"
maint "$FR" postrm purge
expect_rc 0 "postrm purge"
[ ! -e "$FR/var/lib/vgpu-patch" ] || fail "postrm purge left the state dir"
[ -d "$FR/var/lib" ] || fail "postrm purge removed more than the state dir"
[ -z "$(calls)" ] || fail "postrm called vgpu-patch: $(calls)"

if command -v lintian >/dev/null; then
    note "lintian"
    lintian "$DEB" >"$T/lintian" 2>&1 || true
    # Accepted warnings, with the reason:
    # - shared-library-lacks-prerequisites on the decoys: libexec/vgpu-patch/decoy/* are
    #   verification's stand-ins for the driver, one data symbol each; they need no library
    #   (not even libc) by design.
    while IFS= read -r line; do
        case $line in
        "W: vgpu-patch: shared-library-lacks-prerequisites [usr/libexec/vgpu-patch/decoy/"*) ;;
        [EW]:*) fail "lintian: $line" ;;
        esac
    done <"$T/lintian"
    grep -q '^E:' "$T/lintian" && fail "lintian errors"
else
    note "lintian is not installed: not run"
fi

# dpkg --root with --force-script-chrootless works on a private root: its own database
# (ROOT/var/lib/dpkg), the maintainer scripts run with DPKG_ROOT=ROOT and act on it alone.
# Root only (dpkg wants to chown what it unpacks); dependencies are not in that root.
if [ "$(id -u)" -ne 0 ]; then
    note "not root: dpkg --root not tried"
    echo PASS
    exit 0
fi
note "dpkg --root: install, patch, upgrade in place, refused and successful removal, purge"
real_before=$(dpkg-query -W -f='${Status} ${Version}' vgpu-patch 2>/dev/null || true)
ROOT=$T/droot
TREE=$ROOT$PREFIX
setup_era e
mkdir -p "$ROOT/var/lib/dpkg/info" "$ROOT/var/lib/dpkg/updates"
: >"$ROOT/var/lib/dpkg/status"
rdpkg() {
    set +e
    dpkg --root="$ROOT" --force-script-chrootless --force-depends --log="$T/dpkg.log" "$@" \
        >"$T/out" 2>"$T/err"
    rc=$?
    set -e
}
status() {
    dpkg-query --admindir="$ROOT/var/lib/dpkg" -W -f='${Status}' vgpu-patch 2>/dev/null || true
}
snapshot "$TREE" >"$T/tree.orig"
rdpkg -i "$DEB"
expect_rc 0 "dpkg --root -i"
[ "$(status)" = "install ok installed" ] || fail "status after install: $(status)"
for f in usr/bin/vgpu-patch usr/lib/vgpu/libvgpu-cuda.so.1 usr/lib/vgpu/libvgpu-nvml.so.1; do
    [ -f "$ROOT/$f" ] || fail "dpkg did not unpack $f into $ROOT"
done
snapshot "$TREE" | diff "$T/tree.orig" - >&2 || fail "installing the package changed Ollama"
[ ! -e "$ROOT/var/lib/vgpu-patch" ] || fail "installing the package created the state dir"

# shellcheck disable=SC2034 # read by vp() in lib.sh
VGPU_PATCH=$ROOT/usr/bin/vgpu-patch
vp ollama --prefix "$PREFIX" --no-wire
expect_rc 0 "patching with the package's vgpu-patch"
shims=$ROOT/usr/lib/vgpu
VGPU_CONFIG=/nonexistent run_fixture "$T/report"
assert_answers "$T/report" "$shims/libvgpu-cuda.so.1" "$shims/libvgpu-nvml.so.1"
snapshot "$TREE" >"$T/tree.patched"

# Upgrade (the same .deb again: dpkg runs prerm upgrade, unpacks, renames): the patch
# stays, each shim is a new inode, and a process that has the old one open keeps it.
exec 3<"$shims/libvgpu-cuda.so.1"
ino=$(stat -c %i "$shims/libvgpu-cuda.so.1")
cp "$shims/libvgpu-cuda.so.1" "$T/old-shim"
rdpkg -i "$DEB"
expect_rc 0 "dpkg --root -i over the installed package"
[ "$(stat -c %i "$shims/libvgpu-cuda.so.1")" != "$ino" ] || fail "the upgrade rewrote the shim in place"
cmp -s "$T/old-shim" - <&3 || fail "the shim a process had open changed under it"
exec 3<&-
snapshot "$TREE" | diff "$T/tree.patched" - >&2 || fail "the upgrade rolled back or changed Ollama"
VGPU_CONFIG=/nonexistent run_fixture "$T/report"
assert_answers "$T/report" "$shims/libvgpu-cuda.so.1" "$shims/libvgpu-nvml.so.1"

# An Ollama upgrade since patching: the rollback refuses, so does the removal.
cp "$VGPU_TEST_FIXTURES/trees/e/bin/ollama" "$TREE/bin/ollama.new"
mv "$TREE/bin/ollama.new" "$TREE/bin/ollama"
rdpkg -r vgpu-patch
[ "$rc" -ne 0 ] || fail "dpkg -r succeeded although the rollback refused"
grep -q "not removed" "$T/err" || fail "the refusal does not say so: $(cat "$T/err")"
case $(status) in *" installed") ;; *) fail "status after the refused removal: $(status)" ;; esac
for f in usr/bin/vgpu-patch usr/lib/vgpu/libvgpu-cuda.so.1 usr/lib/vgpu/libvgpu-nvml.so.1; do
    [ -f "$ROOT/$f" ] || fail "the refused removal removed $f"
done

# The rollback restored what it could: the tree is now the upgraded, unpatched release.
snapshot "$TREE" >"$T/tree.upgraded"
cmp -s "$TREE/bin/ollama" "$VGPU_TEST_FIXTURES/trees/e/bin/ollama" || fail "the refused rollback touched the new file"
# What the message says: patch the new files, remove again.
vp ollama --prefix "$PREFIX" --no-wire
expect_rc 0 "patching the upgraded Ollama"
rdpkg -r vgpu-patch
expect_rc 0 "dpkg -r after patching the upgraded Ollama"
[ "$(status)" = "deinstall ok config-files" ] || fail "status after removal: $(status)"
for f in usr/bin/vgpu-patch usr/lib/vgpu; do
    [ ! -e "$ROOT/$f" ] || fail "dpkg -r left $f"
done
snapshot "$TREE" | diff "$T/tree.upgraded" - >&2 || fail "the removal did not restore the upgraded Ollama"
[ -d "$ROOT/var/lib/vgpu-patch" ] || fail "dpkg -r (not purge) removed the state dir"
rdpkg -P vgpu-patch
expect_rc 0 "dpkg -P"
[ ! -e "$ROOT/var/lib/vgpu-patch" ] || fail "dpkg -P left the state dir"
[ -z "$(status)" ] || [ "$(status)" = "unknown ok not-installed" ] || fail "status after purge: $(status)"
real_after=$(dpkg-query -W -f='${Status} ${Version}' vgpu-patch 2>/dev/null || true)
[ "$real_before" = "$real_after" ] || fail "the real dpkg database changed: '$real_before' -> '$real_after'"
echo PASS
