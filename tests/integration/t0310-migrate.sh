#!/bin/sh
# `vgpu-patch migrate` takes away every kind of loader hook an earlier deployment left —
# ld.so.preload entries, LD_PRELOAD/LD_AUDIT in drop-ins and /etc/environment, an
# ExecStart= wrapper, hand-made shims linked system-wide and inside the Ollama tree, and
# the loader cache naming them — while unrelated entries and settings survive byte for
# byte, NVIDIA's driver, our own links and package-owned files stay, --dry-run writes
# nothing, a crash leaves each file original or migrated, and `rollback` restores all.
. "$(dirname "$0")/lib.sh"

LEGACY=$VGPU_TEST_FIXTURES/legacy
DROPINS=$ROOT/etc/systemd/system/ollama.service.d
SYSLIB=$ROOT/usr/lib/x86_64-linux-gnu

# The root without the state dir and ldconfig's own scratch file.
snap() {
    snapshot "$ROOT" | grep -v -e '^\./var/lib/vgpu-patch' -e '^\./var/cache/ldconfig' \
        -e ' \./var/lib/vgpu-patch' -e ' \./var/cache/ldconfig'
}

# expect FILE CONTENT: FILE holds exactly CONTENT (printf format).
expect() {
    # shellcheck disable=SC2059 # the expected content is a format
    printf "$2" >"$T/expected"
    cmp "$T/expected" "$1" || {
        od -c "$1" | head -20 >&2
        fail "$1 is not what migrate should leave"
    }
}

setup_era c
mkdir -p "$DROPINS" "$ROOT/opt/old" "$ROOT/usr/lib64" "$SYSLIB" "$ROOT/etc" "$ROOT/var/lib"
cp "$LEGACY/libcuda.so.1" "$LEGACY/libnvidia-ml.so.1" "$ROOT/opt/old/"
printf '[Service]\nExecStart=/usr/local/bin/ollama serve\n' >"$ROOT/etc/systemd/system/ollama.service"

note "the leftovers of an earlier deployment"
printf '# allocator\n/usr/lib/x86_64-linux-gnu/libjemalloc.so.2\n/opt/old/libcuda.so.1 /usr/lib/x86_64-linux-gnu/libjemalloc.so.2:/opt/old/libnvidia-ml.so.1 # old vgpu\n' \
    >"$ROOT/etc/ld.so.preload"
printf '[Service]\nEnvironment="OLLAMA_HOST=0.0.0.0:11434"\nEnvironment="LD_PRELOAD=/opt/old/libcuda.so.1"\nLimitNOFILE=65536\n' \
    >"$DROPINS/vgpu.conf"
printf '[Service]\n# audit hook\nEnvironment=LD_AUDIT=/opt/old/libvgpu-audit.so\n' >"$DROPINS/20-audit.conf"
mkdir -p "$ROOT/usr/local/bin"
printf '#!/bin/sh\nLD_PRELOAD=/opt/old/libcuda.so.1 exec "$@"\n' >"$ROOT/usr/local/bin/force_load_shim"
chmod 755 "$ROOT/usr/local/bin/force_load_shim"
printf '[Service]\nExecStart=\nExecStart=/usr/local/bin/force_load_shim /usr/local/bin/ollama serve\nRestart=always\n' \
    >"$DROPINS/30-wrapper.conf"
printf 'LANG=C.UTF-8\nLD_PRELOAD=/opt/old/libcuda.so.1\n' >"$ROOT/etc/environment"
ln -s /opt/old/libcuda.so.1 "$ROOT/usr/lib64/libcuda.so.1"
ln -s libcuda.so.1 "$ROOT/usr/lib64/libcuda.so"
ln -s /opt/old/libnvidia-ml.so.1 "$TREE/lib/ollama/cuda_v12/libnvidia-ml.so.1"
# NVIDIA's driver (the decoy looks like it) in a system dir: never a hook.
cp -a "$DECOY"/libcuda.so* "$SYSLIB/"
# The loader cache names the hand-made shim (ldconfig -r needs root: chroot).
CACHE=no
printf '/usr/lib64\n' >"$ROOT/etc/ld.so.conf"
if [ "$(id -u)" -eq 0 ] && [ -x /sbin/ldconfig ]; then
    /sbin/ldconfig -X -r "$ROOT"
    grep -q /usr/lib64/libcuda.so.1 "$ROOT/etc/ld.so.cache" || fail "the cache lacks the shim"
    CACHE=yes
else
    note "not root: the ldconfig decision is only tested in test-migrate"
fi
snap >"$T/S0"
(cd "$ROOT" && find . -path ./var -prune -o -type f -exec sha256sum {} + | sort) >"$T/orig-sums"

note "ollama refuses while they are there"
vp_ollama
expect_rc 5 "ollama over legacy hooks"

note "doctor names each hook"
vp doctor
expect_rc 5 "doctor with leftovers"
cp "$T/out" "$T/doctor-leftovers"
for what in "preloads /opt/old/libcuda.so.1" "preloads /opt/old/libnvidia-ml.so.1" \
    "sets LD_PRELOAD" "sets LD_AUDIT" "force_load_shim" "/usr/lib64/libcuda.so.1 ->" \
    "cuda_v12/libnvidia-ml.so.1 ->"; do
    grep -q -- "$what" "$T/out" || fail "doctor does not report '$what'"
done
grep -q "libjemalloc" "$T/out" && fail "doctor reports an unrelated preload entry"
grep -q "x86_64-linux-gnu/libcuda" "$T/out" && fail "doctor reports NVIDIA's driver"
sed 's/^/    | /' "$T/out"

note "--dry-run prints the plan and writes nothing"
vp migrate --dry-run --json
expect_rc 0 "migrate --dry-run"
grep -q '"command": "migrate"' "$T/out" || fail "no migrate JSON"
grep -q '"action": "disabled"' "$T/out" || fail "the dry run does not plan to disable 20-audit.conf"
[ "$(json_field changed)" = false ] || fail "a dry run says it changed something"
[ ! -e "$ROOT/var/lib/vgpu-patch" ] || fail "a dry run created the state dir"
snap | cmp -s - "$T/S0" || fail "--dry-run wrote something"

note "ollama --migrate: migrate, then patch"
vp_ollama --migrate --json
expect_rc 0 "ollama --migrate"
grep -q '"migrate": {' "$T/out" || fail "ollama's JSON has no migrate section"
grep -q '"systemd": ".*daemon-reload.*restart Ollama' "$T/out" ||
    fail "no daemon-reload and restart hint after unit files changed under --root"
[ "$(json_field mechanism)" = patch ] || fail "not patched after the migration"
expect "$ROOT/etc/ld.so.preload" \
    '# allocator\n/usr/lib/x86_64-linux-gnu/libjemalloc.so.2\n/usr/lib/x86_64-linux-gnu/libjemalloc.so.2 # old vgpu\n'
expect "$DROPINS/vgpu.conf" '[Service]\nEnvironment="OLLAMA_HOST=0.0.0.0:11434"\nLimitNOFILE=65536\n'
[ ! -e "$DROPINS/20-audit.conf" ] || fail "the hook-only drop-in is still active"
expect "$DROPINS/20-audit.conf.disabled-by-vgpu-patch" '[Service]\n# audit hook\nEnvironment=LD_AUDIT=/opt/old/libvgpu-audit.so\n'
expect "$DROPINS/30-wrapper.conf" '[Service]\nRestart=always\n'
expect "$ROOT/etc/environment" 'LANG=C.UTF-8\n'
for l in "$ROOT/usr/lib64/libcuda.so.1" "$ROOT/usr/lib64/libcuda.so" \
    "$TREE/lib/ollama/cuda_v12/libnvidia-ml.so.1"; do
    if [ -e "$l" ] || [ -L "$l" ]; then
        fail "$l is still there"
    fi
done
(cd "$SYSLIB" && sha256sum libcuda.so*) >"$T/syslib-sums"
(cd "$DECOY" && sha256sum libcuda.so*) | cmp -s - "$T/syslib-sums" || fail "NVIDIA's driver was touched"
[ -f "$ROOT/opt/old/libcuda.so.1" ] || fail "the hand-made shim itself (not a hook) was removed"
if [ "$CACHE" = yes ]; then
    grep -q '"ran": true' "$T/out" || fail "ldconfig did not run although the cache named a removed file"
    grep -q /usr/lib64/libcuda.so.1 "$ROOT/etc/ld.so.cache" && fail "the cache still names the removed link"
fi
(cd "$ROOT" && find . -path ./var -prune -o -type f -exec sha256sum {} + | sort) >"$T/migrated-sums"

note "doctor and ollama see no hook now"
vp doctor
grep -q "no global loader hooks" "$T/out" || {
    cat "$T/out" >&2
    fail "doctor still reports hooks"
}
vp_ollama
expect_rc 0 "ollama after the migration"

note "our own links are never a hook, a new hand-made one beside them is"
ours=$(find "$TREE/lib/ollama" -type l -name 'lib*.so*' -printf '%p %l %T@\n' | sort)
[ -n "$ours" ] || fail "era c has no link of ours"
ln -s /opt/old/libcuda.so.1 "$TREE/lib/ollama/cuda_v13/libcuda.so"
vp migrate --json
expect_rc 0 "migrate beside our links"
[ ! -L "$TREE/lib/ollama/cuda_v13/libcuda.so" ] || fail "the new hand-made link is still there"
[ "$(find "$TREE/lib/ollama" -type l -name 'lib*.so*' -printf '%p %l %T@\n' | sort)" = "$ours" ] ||
    fail "migrate touched our own links"
vp migrate
expect_rc 0 "migrate with nothing to do"
grep -q "no global loader hooks" "$T/out" || fail "nothing to do is not said"

note "NVIDIA's driver in WSL's plain unversioned files is no hook and stays"
mkdir -p "$ROOT/usr/lib/wsl/lib" "$ROOT/etc/ld.so.conf.d"
cp "$DECOY/libcuda.so.580.65.06" "$ROOT/usr/lib/wsl/lib/libcuda.so.1"
cp "$DECOY/libnvidia-ml.so.580.65.06" "$ROOT/usr/lib/wsl/lib/libnvidia-ml.so.1"
cp -p "$ROOT/etc/ld.so.conf" "$T/ld.so.conf"
printf 'include /etc/ld.so.conf.d/*.conf\n' >>"$ROOT/etc/ld.so.conf"
printf '/usr/lib/wsl/lib\n' >"$ROOT/etc/ld.so.conf.d/ld.wsl.conf"
vp migrate
expect_rc 0 "migrate beside WSL's driver"
grep -q "no global loader hooks" "$T/out" || fail "WSL's driver is judged a hook"
cmp -s "$DECOY/libcuda.so.580.65.06" "$ROOT/usr/lib/wsl/lib/libcuda.so.1" ||
    fail "WSL's libcuda.so.1 was touched"
cmp -s "$DECOY/libnvidia-ml.so.580.65.06" "$ROOT/usr/lib/wsl/lib/libnvidia-ml.so.1" ||
    fail "WSL's libnvidia-ml.so.1 was touched"
rm -r "$ROOT/usr/lib/wsl" "$ROOT/etc/ld.so.conf.d"
cp -p "$T/ld.so.conf" "$ROOT/etc/ld.so.conf"

note "rollback restores every file byte for byte"
vp rollback
expect_rc 0 "rollback"
grep -q "unit files came back: .*daemon-reload" "$T/out" ||
    fail "no daemon-reload hint after drop-ins came back under --root"
[ "$(readlink "$TREE/lib/ollama/cuda_v13/libcuda.so")" = /opt/old/libcuda.so.1 ] ||
    fail "rollback did not bring back the link the second migration removed"
rm "$TREE/lib/ollama/cuda_v13/libcuda.so"
snap >"$T/S1"
diff "$T/S0" "$T/S1" >&2 || fail "rollback did not restore the root exactly"

note "a crash in the middle leaves each file original or migrated"
for point in prev:2 renamed:1 renamed:3 before-manifest committed; do
    set +e
    VGPU_FAULT=$point "$VGPU_PATCH" migrate --root "$ROOT" >"$T/out" 2>"$T/err"
    rc=$?
    set -e
    [ "$rc" -eq 137 ] || fail "VGPU_FAULT=$point did not crash migrate (exit $rc)"
    (cd "$ROOT" && find . -path ./var -prune -o -type f -exec sha256sum {} + | sort) >"$T/now"
    while read -r sum path; do
        # The cache is ldconfig's; staging files are the journal's to clean up.
        case $path in ./etc/ld.so.cache | */.*.vgpu-*) continue ;; esac
        grep -qx "$sum  $path" "$T/orig-sums" || grep -qx "$sum  $path" "$T/migrated-sums" ||
            fail "$point: $path is neither the original nor the migrated file"
    done <"$T/now"
    vp migrate
    expect_rc 0 "migrate after a crash at $point"
    grep -q "interrupted run" "$T/out" || fail "$point: the recovery is not reported"
    if find "$ROOT" -path "$ROOT/var" -prune -o -name '.*.vgpu-*' -print | grep -q .; then
        fail "$point: staging files left behind after the recovery"
    fi
    vp rollback
    expect_rc 0 "rollback after a crash at $point"
    snap | diff "$T/S0" - >&2 || fail "$point: not restored exactly"
done

note "a failed ldconfig after the change is exit 1, names it, and ollama --migrate stops"
if [ "$CACHE" = yes ]; then
    mkdir "$ROOT/etc/ld.so.cache~" # ldconfig cannot write its temporary cache
    vp_ollama --migrate
    expect_rc 1 "ollama --migrate with a failing ldconfig"
    grep -q "ldconfig" "$T/out" || fail "the failing ldconfig is not named"
    grep -q "vgpu-patch rollback" "$T/out" || fail "rollback is not offered"
    grep -q "^patched\|mechanism: patch" "$T/out" && fail "ollama --migrate patched after the failure"
    rmdir "$ROOT/etc/ld.so.cache~"
    vp rollback
    expect_rc 0 "rollback after the failed ldconfig"
    snap | diff "$T/S0" - >&2 || fail "not restored exactly after the failed ldconfig"
fi

note "reruns: a taken .disabled name, a drop-in that is a link, a linked ld.so.preload"
mv "$ROOT/etc/ld.so.preload" "$ROOT/etc/ld.so.preload.real"
ln -s ld.so.preload.real "$ROOT/etc/ld.so.preload"
printf 'kept from before\n' >"$DROPINS/20-audit.conf.disabled-by-vgpu-patch"
mkdir -p "$ROOT/opt/conf"
printf '[Service]\nEnvironment=LD_PRELOAD=/opt/old/libcuda.so.1\n' >"$ROOT/opt/conf/40-link.conf"
ln -s /opt/conf/40-link.conf "$DROPINS/40-link.conf"
snap >"$T/S2"
for run in 1 2; do
    vp migrate
    expect_rc 0 "migrate over leftovers of earlier runs (run $run)"
    [ -L "$ROOT/etc/ld.so.preload" ] || fail "the ld.so.preload link was replaced"
    expect "$ROOT/etc/ld.so.preload.real" \
        '# allocator\n/usr/lib/x86_64-linux-gnu/libjemalloc.so.2\n/usr/lib/x86_64-linux-gnu/libjemalloc.so.2 # old vgpu\n'
    expect "$DROPINS/20-audit.conf.disabled-by-vgpu-patch" 'kept from before\n'
    [ -f "$DROPINS/20-audit.conf.disabled-by-vgpu-patch.1" ] || fail "no numbered disabled name"
    [ -L "$DROPINS/40-link.conf.disabled-by-vgpu-patch" ] || fail "the linked drop-in is not disabled as a link"
done
vp rollback
expect_rc 0 "rollback of the reruns"
snap | diff "$T/S2" - >&2 || fail "the reruns are not restored exactly"
rm "$ROOT/etc/ld.so.preload" "$DROPINS/40-link.conf" "$DROPINS/20-audit.conf.disabled-by-vgpu-patch"
rm -r "$ROOT/opt/conf"
mv "$ROOT/etc/ld.so.preload.real" "$ROOT/etc/ld.so.preload"

note "a file changed since the migration is not clobbered by rollback"
vp migrate
expect_rc 0 "migrate again"
printf '# edited by hand\n' >>"$ROOT/etc/environment"
vp rollback
expect_rc 4 "rollback over an edited file"
grep -q "etc/environment" "$T/out" || fail "the refused file is not named"

note "a package-owned hook is reported and kept"
command -v dpkg-query >/dev/null || skip "dpkg-query (dpkg) is not installed"
mkdir -p "$ROOT/var/lib/dpkg/info" "$ROOT/var/lib/dpkg/updates"
printf 'Package: oldvgpu\nStatus: install ok installed\nVersion: 1.0\nArchitecture: amd64\nMaintainer: Nobody <nobody@example.org>\nDescription: a hand-made vGPU setup\n\n' \
    >"$ROOT/var/lib/dpkg/status"
cp "$LEGACY/libnvidia-ml.so.1" "$SYSLIB/libnvidia-ml.so.1"
printf '/.\n/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.1\n' >"$ROOT/var/lib/dpkg/info/oldvgpu.list"
vp migrate --json
expect_rc 5 "migrate with a package-owned hook"
grep -q '"action": "kept-package-owned"' "$T/out" || fail "the package-owned hook is not reported"
grep -q '"package": "oldvgpu"' "$T/out" || fail "the owning package is not named"
cmp -s "$LEGACY/libnvidia-ml.so.1" "$SYSLIB/libnvidia-ml.so.1" || fail "a package's file was changed"
echo PASS
