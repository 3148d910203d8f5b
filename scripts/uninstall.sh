#!/bin/sh
# uninstall.sh: undo scripts/install.sh. First every Ollama install vgpu-patch patched is
# rolled back with the installed `vgpu-patch rollback` (a patched Ollama names the shims
# by absolute path and would not start without them); if that does not succeed nothing is
# removed. Then exactly the files listed in <prefix>/share/vgpu-patch/install_manifest.txt
# are removed, the directories install.sh created when they are empty, and the state dir.
set -eu

usage() {
    cat <<EOF
Usage: scripts/uninstall.sh [--prefix DIR] [--state-dir DIR] [--keep-state] [--root DIR]
Roll back every patched Ollama install, then remove what scripts/install.sh installed.

  --prefix DIR     the prefix given to install.sh (default /usr/local)
  --state-dir DIR  vgpu-patch's state dir (default /var/lib/vgpu-patch)
  --keep-state     leave the state dir in place
  --root DIR       the root vgpu-patch acts on, as its --root (the state dir and the
                   Ollama installs are under DIR); for tests and chroots. The files
                   removed are those of --prefix, as given.
Exit status: 0 removed; 1 error; 2 usage; 4 a file changed since it was patched, so the
rollback left it alone and nothing was removed.
EOF
}

die() {
    echo "uninstall.sh: $*" >&2
    exit 1
}

usage_error() {
    echo "uninstall.sh: $*" >&2
    usage >&2
    exit 2
}

need_value() {
    [ "$2" -ge 2 ] || usage_error "$1 needs a value"
}

prefix=/usr/local
state_dir=/var/lib/vgpu-patch
keep_state=0
root=
while [ "$#" -gt 0 ]; do
    case $1 in
    --prefix) need_value "$1" "$#" && prefix=$2 && shift ;;
    --prefix=*) prefix=${1#*=} ;;
    --state-dir) need_value "$1" "$#" && state_dir=$2 && shift ;;
    --state-dir=*) state_dir=${1#*=} ;;
    --root) need_value "$1" "$#" && root=$2 && shift ;;
    --root=*) root=${1#*=} ;;
    --keep-state) keep_state=1 ;;
    -h | --help)
        usage
        exit 0
        ;;
    *) usage_error "unknown argument '$1'" ;;
    esac
    shift
done
for v in "$prefix" "$state_dir" ${root:+"$root"}; do
    case $v in
    /*) ;;
    *) usage_error "paths must be absolute (got '$v')" ;;
    esac
done
while [ "${prefix%/}" != "$prefix" ] && [ "$prefix" != / ]; do prefix=${prefix%/}; done
while [ "${root%/}" != "$root" ]; do root=${root%/}; done

manifest=$prefix/share/vgpu-patch/install_manifest.txt
[ -f "$manifest" ] || die "no install manifest at $manifest: was vgpu-patch installed" \
    "there by scripts/install.sh? (a .deb is removed with apt/dpkg)"
# Read once: the manifest lists itself and goes with the other files.
content=$(cat "$manifest")
recorded=$(printf '%s\n' "$content" | sed -n 's/^prefix //p')
[ "$recorded" = "$prefix" ] || die "$manifest was written for prefix '$recorded', not $prefix"

# Only paths inside the prefix (files), or the prefix and its ancestors (directories
# install.sh created to make it), are ever removed: a damaged manifest cannot reach
# anything else.
inside() { # PATH: under the prefix, without '..'
    case $1 in
    */../* | */..) return 1 ;;
    "$prefix"/*) return 0 ;;
    esac
    return 1
}
ancestor_or_self() { # PATH: the prefix or a directory above it
    case $1 in
    */../* | */..) return 1 ;;
    "$prefix") return 0 ;;
    esac
    case $prefix in
    "$1"/*) return 0 ;;
    esac
    return 1
}
while IFS= read -r line; do
    case $line in
    "#"* | "prefix "*) ;;
    "file "*) inside "${line#file }" || die "$manifest names ${line#file }, outside $prefix: refusing" ;;
    "dir "*)
        p=${line#dir }
        inside "$p" || ancestor_or_self "$p" || die "$manifest names directory $p, outside $prefix: refusing"
        ;;
    *) die "$manifest: unexpected line '$line'" ;;
    esac
done <<EOF
$content
EOF

# 1. Roll back.
state=$root$state_dir
if [ -d "$state" ]; then
    vgpu_patch=$prefix/bin/vgpu-patch
    [ -x "$vgpu_patch" ] || die "$vgpu_patch is missing, so the installs recorded in $state" \
        "cannot be rolled back; install it again (scripts/install.sh --prefix $prefix), then" \
        "run uninstall.sh again. Nothing was removed."
    if [ -n "$root" ]; then
        set -- --root "$root"
    else
        set --
    fi
    echo "-- rolling back every patched install ($vgpu_patch rollback)"
    rc=0
    "$vgpu_patch" rollback "$@" --state-dir "$state_dir" || rc=$?
    case $rc in
    0) ;;
    4)
        echo "uninstall.sh: a patched file changed since it was patched (an Ollama upgrade?)" \
            "and was left alone (see above); nothing was removed. Run '$vgpu_patch ollama'" \
            "for that install (it patches the new files and records them), then run" \
            "uninstall.sh again: its rollback restores them." >&2
        exit 4
        ;;
    *) die "'$vgpu_patch rollback' failed (exit $rc); nothing was removed" ;;
    esac
else
    echo "-- no state dir $state: nothing to roll back"
fi

# 2. The files, then the directories install.sh created, deepest first, when empty.
removed=0
while IFS= read -r line; do
    case $line in
    "file "*) ;;
    *) continue ;;
    esac
    p=${line#file }
    if [ -L "$p" ] || [ -f "$p" ]; then
        rm -f "$p"
        removed=$((removed + 1))
    elif [ -e "$p" ]; then
        echo "kept $p: not a file (it was installed as one)" >&2
    fi
done <<EOF
$content
EOF
printf '%s\n' "$content" | sed -n 's/^dir //p' | sort -r | while IFS= read -r d; do
    [ -d "$d" ] || continue
    rmdir "$d" 2>/dev/null || echo "kept $d: not empty"
done
echo "removed $removed file(s) installed in $prefix"

# 3. The state dir: after the rollback it holds no backup; one that does (written since,
# by another vgpu-patch) still keeps originals of patched files and stays.
if [ "$keep_state" -eq 1 ]; then
    [ ! -d "$state" ] || echo "kept the state dir $state (--keep-state)"
elif [ -d "$state" ]; then
    if [ -n "$(ls -A "$state/backups" 2>/dev/null)" ]; then
        echo "kept $state: it holds backups of patched files; roll them back with the" \
            "vgpu-patch that patched them, then remove it" >&2
    else
        rm -rf "$state"
        echo "removed the state dir $state"
    fi
fi
