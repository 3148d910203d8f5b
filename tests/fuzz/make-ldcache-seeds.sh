#!/bin/sh
# Writes ld.so.cache files in the new, old and compat formats into OUTDIR, with ldconfig -r on
# a private root (nothing outside OUTDIR is written). Needs root for ldconfig's chroot; without
# it, or without ldconfig, OUTDIR only holds the marker and the replay uses other seeds.
# Usage: make-ldcache-seeds.sh OUTDIR
set -eu
out=$1
rm -rf "$out"
mkdir -p "$out"
out=$(cd "$out" && pwd -P)
root=$out/.root
mkdir -p "$root/etc" "$root/libs"
echo /libs >"$root/etc/ld.so.conf"
for lib in libz.so.1 libelf.so.1 libc.so.6; do
    cp -L "/lib/x86_64-linux-gnu/$lib" "$root/libs/" 2>/dev/null || true
done
if [ "$(id -u)" = 0 ] && [ -x /sbin/ldconfig ]; then
    for fmt in new old compat; do
        if /sbin/ldconfig -X -c "$fmt" -r "$root" -C "/etc/ld.so.cache.$fmt" \
            -f /etc/ld.so.conf 2>/dev/null; then
            cp "$root/etc/ld.so.cache.$fmt" "$out/"
        fi
    done
fi
rm -rf "$root"
touch "$out/.complete"
