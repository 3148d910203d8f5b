#!/bin/sh
# install.sh: build vgpu-patch (Release) and install it under a prefix (default /usr/local):
# bin/vgpu-patch, bin/vgpu-launch, the shims and the audit module in lib/vgpu, the helpers
# in libexec/vgpu-patch, the man pages, and share/vgpu-patch/install_manifest.txt, the list
# scripts/uninstall.sh removes. Every file is copied beside its destination and renamed
# over it, so a running (patched) Ollama keeps the shim it has mapped. The shim dir is
# held to vgpu-patch's trust rule (DESIGN §7) before and after. It never patches anything.
set -eu

usage() {
    cat <<EOF
Usage: scripts/install.sh [--prefix DIR] [--build-dir DIR] [--destdir DIR] [--jobs N]
Build vgpu-patch and install it; nothing is patched.

  --prefix DIR     where it is installed and runs from (default /usr/local); the shims
                   go to DIR/lib/vgpu, where vgpu-patch looks for them
  --build-dir DIR  the build directory (default: build-install in the source tree)
  --destdir DIR    stage the install under DIR (DIR/PREFIX/...) for packagers and tests;
                   the manifest names the final paths
  --jobs N         parallel build jobs (default: the number of CPUs)
EOF
}

die() {
    echo "install.sh: $*" >&2
    exit 1
}

usage_error() {
    echo "install.sh: $*" >&2
    usage >&2
    exit 2
}

need_value() { # OPTION ARGC
    [ "$2" -ge 2 ] || usage_error "$1 needs a value"
}

prefix=/usr/local
build_dir=
destdir=
jobs=
while [ "$#" -gt 0 ]; do
    case $1 in
    --prefix) need_value "$1" "$#" && prefix=$2 && shift ;;
    --prefix=*) prefix=${1#*=} ;;
    --build-dir) need_value "$1" "$#" && build_dir=$2 && shift ;;
    --build-dir=*) build_dir=${1#*=} ;;
    --destdir) need_value "$1" "$#" && destdir=$2 && shift ;;
    --destdir=*) destdir=${1#*=} ;;
    --jobs) need_value "$1" "$#" && jobs=$2 && shift ;;
    --jobs=*) jobs=${1#*=} ;;
    -h | --help)
        usage
        exit 0
        ;;
    *) usage_error "unknown argument '$1'" ;;
    esac
    shift
done

case $prefix in
/*) ;;
*) usage_error "--prefix must be an absolute path (got '$prefix')" ;;
esac
case $destdir in
'' | /*) ;;
*) usage_error "--destdir must be an absolute path (got '$destdir')" ;;
esac
case $jobs in
'') jobs=$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 2) ;;
*[!0-9]* | 0) usage_error "--jobs needs a positive number (got '$jobs')" ;;
esac
# Lexically tidy: no trailing '/', so paths in the manifest are spelled one way.
while [ "${prefix%/}" != "$prefix" ]; do prefix=${prefix%/}; done
while [ "${destdir%/}" != "$destdir" ]; do destdir=${destdir%/}; done
[ -n "$prefix" ] || usage_error "--prefix / is not supported (use /usr)"

me=$(id -u)
target=$destdir$prefix
shim_dir=$target/lib/vgpu
manifest=$prefix/share/vgpu-patch/install_manifest.txt
old_manifest=$destdir$manifest

# Permission first, before minutes of building: the nearest existing directory on the
# way to the target, and the target's own subdirectories, must be writable.
existing=$target
while [ ! -e "$existing" ]; do existing=$(dirname "$existing"); done
for d in "$existing" "$target/bin" "$target/lib" "$target/libexec" "$target/share"; do
    [ -e "$d" ] || continue
    [ -d "$d" ] || die "$d is not a directory"
    if [ ! -w "$d" ]; then
        die "cannot write to $d (owned by $(stat -c %U "$d")) as $(id -un): run" \
            "scripts/install.sh as root (it never calls sudo itself), or choose a --prefix" \
            "or --destdir you can write to"
    fi
done

# The trust rule vgpu-patch applies to the shim dir (DESIGN §7; shims/common/vgpu-trust.c):
# the shims, the dir and every ancestor owned by root (or by the invoking user when that
# is not root) and not writable by group or others; a root-owned sticky ancestor (/tmp)
# is allowed. Under --destdir only what lands on the target system is checked.
untrusted=
check_one() { # PATH ANCESTOR(0|1)
    if ! owner=$(stat -c %u "$1") || ! mode=$(stat -c %a "$1"); then
        untrusted="cannot check $1"
        return 1
    fi
    if [ "$owner" -ne 0 ] && { [ "$me" -eq 0 ] || [ "$owner" -ne "$me" ]; }; then
        untrusted="$1 is owned by uid $owner, not root"
        return 1
    fi
    [ ! -L "$1" ] || return 0 # the directory it leads to is checked as resolved
    if [ $((0$mode & 022)) -ne 0 ]; then
        if [ "$2" -eq 1 ] && [ -d "$1" ] && [ $((0$mode & 01000)) -ne 0 ] && [ "$owner" -eq 0 ]; then
            return 0
        fi
        untrusted="$1 is writable by $([ $((0$mode & 002)) -ne 0 ] && echo others || echo its group) (mode $mode)"
        return 1
    fi
}
# ours DIR: a directory an earlier install.sh created (it may fix its mode).
ours() {
    [ -f "$old_manifest" ] && grep -qxF "dir ${1#"$destdir"}" "$old_manifest"
}
# check_chain PATH ANCESTOR(0|1) SKIP_OURS(0|1): PATH and the existing directories above it,
# up to / (or up to the destdir, not included).
check_chain() {
    p=$1
    a=$2
    while :; do
        if [ "$p" = "$destdir" ] && [ -n "$destdir" ]; then
            return 0
        fi
        if [ -e "$p" ] || [ -L "$p" ]; then
            if [ "$3" -eq 0 ] || ! ours "$p"; then
                check_one "$p" "$a" || return 1
            fi
        fi
        [ "$p" != / ] || return 0
        p=$(dirname "$p")
        a=1
    done
}
trust_hint="vgpu-patch refuses to point Ollama at shims another user could replace: fix the \
owner or mode named, or choose another --prefix, and run install.sh again"

# Before building: what is already there and install.sh will not change.
check_chain "$shim_dir" 0 1 || die "the shim dir $shim_dir would fail vgpu-patch's trust" \
    "rule: $untrusted. $trust_hint"

src=$(cd "$(dirname "$0")/.." && pwd -P)
if [ ! -f "$src/CMakeLists.txt" ] || [ ! -d "$src/patcher" ]; then
    die "no vgpu-patch sources in $src"
fi
[ -n "$build_dir" ] || build_dir=$src/build-install
command -v cmake >/dev/null || die "cmake is not installed (apt-get install cmake)"

# The patcher (with its probes) is what is installed, so it is built; the tests are not.
# No sanitizers and no fault-injection points in what runs on a real machine.
echo "-- configuring $build_dir (Release, prefix $prefix)"
cmake -S "$src" -B "$build_dir" -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX="$prefix" \
    -DVGPU_BUILD_PATCHER=ON -DVGPU_SHIMS_ONLY=OFF -DVGPU_BUILD_TESTS=OFF -DVGPU_SANITIZE=OFF \
    -DVGPU_FAULT_INJECTION=OFF || die "configuring $build_dir failed"
echo "-- building with $jobs jobs"
cmake --build "$build_dir" -j "$jobs" || die "the build failed"

# Stage the install in a private directory, then move each file into place.
stage=$(mktemp -d "${TMPDIR:-/tmp}/vgpu-install.XXXXXX")
tmp_file=
cleanup() {
    [ -z "$tmp_file" ] || rm -f "$tmp_file"
    rm -rf "$stage"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
root=$stage/root
(umask 022 && DESTDIR=$root cmake --install "$build_dir" --prefix "$prefix") >"$stage/install.log" 2>&1 || {
    tail -20 "$stage/install.log" >&2
    die "cmake --install failed"
}
mkdir -p "$root${manifest%/*}"
[ -x "$root$prefix/bin/vgpu-patch" ] || die "the build installed no bin/vgpu-patch"
[ -z "$destdir" ] || mkdir -p "$destdir"
list=$stage/list
: >"$list"

# Directories, parents first. Missing ones are created 0755 whatever the umask and
# recorded (uninstall.sh removes only those, and only when empty); ones an earlier
# install.sh created lose any group/other write bit.
(cd "$root" && find . -type d | sort) >"$stage/dirs"
while IFS= read -r d; do
    path=${d#.}
    [ -n "$path" ] || continue
    if [ -d "$destdir$path" ] && [ ! -L "$destdir$path" ]; then
        if ours "$destdir$path"; then
            chmod go-w "$destdir$path"
        fi
        continue
    elif [ -e "$destdir$path" ] || [ -L "$destdir$path" ]; then
        [ -d "$destdir$path" ] || die "$destdir$path is in the way (not a directory)"
        continue # a link to a directory, made by someone else: used as it is
    fi
    mkdir -m 0755 "$destdir$path" || die "cannot create $destdir$path"
    echo "dir $path" >>"$list"
done <"$stage/dirs"

# Files: copied beside the destination, then renamed over it (atomic for readers; a
# process that has the old file mapped keeps the old inode).
(cd "$root" && find . ! -type d | sort) >"$stage/files"
while IFS= read -r f; do
    path=${f#.}
    if [ ! -f "$root$path" ] || [ -L "$root$path" ]; then
        die "$path: only regular files are expected in the install"
    fi
    dest=$destdir$path
    if [ -d "$dest" ] && [ ! -L "$dest" ]; then
        die "$dest is in the way (a directory)"
    fi
    tmp_file=$dest.vgpu-new.$$
    cp -p "$root$path" "$tmp_file" || die "cannot copy to $tmp_file"
    chmod go-w "$tmp_file"
    mv -f "$tmp_file" "$dest" || die "cannot rename $tmp_file to $dest"
    tmp_file=
    echo "file $path" >>"$list"
done <"$stage/files"

# What an earlier install.sh recorded stays recorded: the directories it created, and
# files of an older version that this one no longer installs.
if [ -f "$old_manifest" ]; then
    while IFS= read -r line; do
        case $line in
        "dir "*)
            grep -qxF "$line" "$list" || echo "$line" >>"$list"
            ;;
        "file "*)
            p=${line#file }
            if [ "$p" != "$manifest" ] && [ -e "$destdir$p" ] && ! grep -qxF "$line" "$list"; then
                echo "$line" >>"$list"
            fi
            ;;
        esac
    done <"$old_manifest"
fi
{
    echo "# vgpu-patch install manifest, written by scripts/install.sh, read by scripts/uninstall.sh."
    echo "# 'file PATH': a file it installed; 'dir PATH': a directory it created."
    echo "prefix $prefix"
    grep '^file ' "$list"
    echo "file $manifest"
    grep '^dir ' "$list" || true
} >"$stage/manifest"
tmp_file=$destdir$manifest.vgpu-new.$$
cp "$stage/manifest" "$tmp_file"
chmod 0644 "$tmp_file"
mv -f "$tmp_file" "$destdir$manifest"
tmp_file=

# After: the whole chain, as named and as resolved, and the shims themselves.
for f in libvgpu-cuda.so.1 libvgpu-nvml.so.1 libvgpu-audit.so; do
    check_one "$shim_dir/$f" 0 || die "$untrusted. $trust_hint"
done
check_chain "$shim_dir" 0 0 || die "the shim dir fails vgpu-patch's trust rule: $untrusted. $trust_hint"
real=$(cd -P "$shim_dir" && pwd -P)
if [ "$real" != "$shim_dir" ]; then
    check_chain "$real" 0 0 || die "the shim dir ($shim_dir, really $real) fails vgpu-patch's" \
        "trust rule: $untrusted. $trust_hint"
fi

version=$("$target/bin/vgpu-patch" --version) || die "the installed vgpu-patch does not run"
if [ -z "$destdir" ]; then
    # The shims and the audit module load on this machine: vgpu-launch's own check (in a
    # child, with the same trust rule); --strict exits 69 when they do not.
    "$target/bin/vgpu-launch" --strict --shim-dir "$shim_dir" -- true ||
        die "the installed shims in $shim_dir do not load on this machine (see above)"
fi

echo "installed $version to $target (shims in $shim_dir; file list in $destdir$manifest)"
if [ -n "$destdir" ]; then
    echo "staged under $destdir: the files run from $prefix once they are there."
    exit 0
fi
if [ "$me" -ne 0 ]; then
    echo "note: installed as uid $me; vgpu-patch run as root refuses shims that root does not own."
fi
cat <<EOF
Nothing was patched. Next:
  $prefix/bin/vgpu-patch ollama --dry-run   # the plan: what would change, and why
  $prefix/bin/vgpu-patch ollama             # patch the Ollama install and verify it
To remove: scripts/uninstall.sh --prefix $prefix (it rolls every patched install back first).
EOF
