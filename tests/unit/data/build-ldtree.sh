#!/bin/sh
# Literal $ORIGIN, $LIB and ${PLATFORM} below are meant for the loader, not the shell.
# shellcheck disable=SC2016
# Builds the tree of small libraries and executables that test-loader runs the real ld.so on
# (reference/loader-and-patchelf.md §1-§3): libcuda.so.1 stand-ins in real/ shim/ alt/ and
# elsewhere, each naming itself through cuIdent(), executables and libraries with DT_RPATH or
# DT_RUNPATH, $ORIGIN, DF_1_NODEFLIB, absolute and relative DT_NEEDED, symlinks.
# Usage: build-ldtree.sh CC SRCDIR OUTDIR
set -eu

CC=$1
SRC=$2
T=$3

rm -rf "$T"
mkdir -p "$T"
T=$(cd "$T" && pwd -P)
cd "$T"
mkdir -p real shim alt lib bin stub src sym realdir hw/glibc-hwcaps/x86-64-v2 c32 mach txt pie \
    shimalias "dst/lib/x86_64-linux-gnu" dst/x86_64 inode

RP=-Wl,--disable-new-dtags,-rpath,  # DT_RPATH
RUN=-Wl,--enable-new-dtags,-rpath,  # DT_RUNPATH

cc_lib() {
    "$CC" -shared -fPIC -O0 -fno-optimize-sibling-calls -Wl,--no-as-needed "$@"
}

cc_exe() {
    "$CC" -O0 -Wl,--no-as-needed -Wl,-rpath-link,"$T/real:$T/lib" "$@"
}

printf 'int ldtree_main(void) { return 0; }\nint main(void) { return ldtree_main(); }\n' \
    >src/main.c
printf 'int ldtree_empty;\n' >src/empty.c

# ident NAME OUT [extra flags]: a libcuda.so.1 stand-in whose cuIdent() returns NAME.
ident() {
    name=$1
    out=$2
    shift 2
    printf 'const char *cuIdent(void) { return "%s"; }\n' "$name" >"src/ident-$name.c"
    cc_lib -Wl,-soname,libcuda.so.1 -o "$out" "src/ident-$name.c" "$@"
}

# stub SONAME: a link-time-only library whose DT_SONAME is SONAME, so that linking against it
# records DT_NEEDED SONAME (an absolute path, $ORIGIN/..., a relative path...).
# Called as $(stub ...), a subshell: the file name comes from the soname itself.
stub() {
    file=stub/$(printf '%s' "$1" | tr -c 'A-Za-z0-9._-' '_').so
    cc_lib -Wl,-soname,"$1" -o "$file" src/empty.c
    echo "$file"
}

# lib NAME [flags...]: lib/NAME with DT_SONAME NAME.
lib() {
    name=$1
    shift
    cc_lib -Wl,-soname,"$name" -o "lib/$name" src/empty.c "$@"
}

# exe NAME [flags...]
exe() {
    name=$1
    shift
    cc_exe -o "bin/$name" src/main.c "$@"
}

ident real real/libcuda.so.1
ident shim shim/libcuda.so.1
ident alt alt/libcuda.so.1
ident hw hw/glibc-hwcaps/x86-64-v2/libcuda.so.1
ident hwplain hw/libcuda.so.1
ident dstlib dst/lib/x86_64-linux-gnu/libcuda.so.1
ident dstplatform dst/x86_64/libcuda.so.1
ident realdir realdir/libcuda.so.1
ident sym sym/libcuda.so.1
ln -s ../shim/libcuda.so.1 shimalias/libcuda-shim.so

# Candidates ld.so skips (another class, another machine) or stops at (not ELF, a PIE).
cp real/libcuda.so.1 c32/libcuda.so.1
printf '\001' | dd of=c32/libcuda.so.1 bs=1 seek=4 conv=notrunc 2>/dev/null
cp real/libcuda.so.1 mach/libcuda.so.1
printf '\267\000' | dd of=mach/libcuda.so.1 bs=1 seek=18 conv=notrunc 2>/dev/null
printf 'this is a text file that happens to be named like the CUDA driver library\n' \
    >txt/libcuda.so.1
"$CC" -O0 -fPIE -pie -Wl,-soname,libcuda.so.1 -o pie/libcuda.so.1 src/main.c

CUDA=real/libcuda.so.1
# Mid libraries: DT_NEEDED libcuda.so.1 with no paths, with DT_RPATH, with DT_RUNPATH.
lib libmid.so "$CUDA"
lib libmid-rpath.so "$RP$T/real" "$CUDA"
lib libmid-runpath.so "$RUN$T/real" "$CUDA"
lib libmid-nodeflib.so -Wl,-z,nodefaultlib -lm
# Loader chain: A (RPATH or RUNPATH) needs B, B (no paths) needs libcuda.so.1.
lib libb.so "$CUDA" "$SRC/ldtree-caller.c"
lib liba-rpath.so "$RP$T/real:$T/lib" lib/libb.so
lib liba-runpath.so "$RUN$T/real:$T/lib" lib/libb.so
# dlopen callers.
lib libcaller.so "$SRC/ldtree-caller.c"
lib libcaller-rpath.so "$RP$T/real:$T/lib" "$SRC/ldtree-caller.c"
lib libcaller-runpath.so "$RUN$T/real:$T/lib" "$SRC/ldtree-caller.c"
# $ORIGIN in a library's DT_NEEDED, reached through a symlinked file and a symlinked directory.
cc_lib -Wl,-soname,libmido.so -o realdir/libmido.so src/empty.c "$(stub '$ORIGIN/libcuda.so.1')"
ln -s ../realdir/libmido.so sym/libmido.so
ln -s realdir symd

exe plain "$CUDA"
exe rpath-real "$RP$T/real" "$CUDA"
exe runpath-real "$RUN$T/real" "$CUDA"
exe rpath-mid "$RP$T/real:$T/lib" lib/libmid.so
exe runpath-mid "$RUN$T/real:$T/lib" lib/libmid.so
exe chain-rpath "$RUN$T/lib" lib/liba-rpath.so
exe chain-runpath "$RUN$T/lib" lib/liba-runpath.so
exe mid-rpath "$RUN$T/lib" lib/libmid-rpath.so
exe mid-runpath "$RUN$T/lib" lib/libmid-runpath.so
exe origin-rpath "$RP"'$ORIGIN/../real' "$CUDA"
exe origin-runpath "$RUN"'${ORIGIN}/../real' "$CUDA"
exe origin-needed "$(stub '$ORIGIN/../shim/libcuda.so.1')"
exe relative-needed "$(stub 'shim/libcuda.so.1')"
exe abs-shim "$(stub "$T/shim/libcuda.so.1")" "$RUN$T/lib" lib/libmid-runpath.so
exe abs-shim-last "$RUN$T/lib" lib/libmid.so -lc "$(stub "$T/shim/libcuda.so.1")"
exe cuda-first-shim-last "$CUDA" -lc "$(stub "$T/shim/libcuda.so.1")"
exe inode-alias "$(stub "$T/shim/libcuda.so.1")" "$RUN$T/shimalias" \
    "$(stub libcuda-shim.so)"
exe nodeflib -Wl,-z,nodefaultlib "$CUDA"
exe lib-nodeflib "$RUN$T/lib" lib/libmid-nodeflib.so
exe dst-lib "$RUN$T/dst/\$LIB" "$CUDA"
exe dst-platform "$RP$T/dst/\${PLATFORM}" "$CUDA"
exe sym "$RUN$T/sym" "$(stub libmido.so)"
exe symd "$RUN$T/symd" "$(stub libmido.so)"
exe empty-rpath-elem "$RP:$T/alt" "$CUDA"

# A file only the default directories hold (not in ld.so.cache, which lists sonames): zlib's
# full version name, where the system has one.
zfull=$(readlink -f /lib/x86_64-linux-gnu/libz.so.1 2>/dev/null || true)
if [ -n "$zfull" ] && [ -f "$zfull" ]; then
    exe default-dir "$(stub "$(basename "$zfull")")"
    exe default-dir-nodeflib -Wl,-z,nodefaultlib "$(stub "$(basename "$zfull")")"
fi

# dlopen probes: no paths, DT_RPATH, DT_RUNPATH on the executable.
cc_exe -o bin/probe "$SRC/ldtree-probe.c"
cc_exe -o bin/probe-rpath-real "$RP$T/real" "$SRC/ldtree-probe.c"
cc_exe -o bin/probe-runpath-real "$RUN$T/real" "$SRC/ldtree-probe.c"

rm -rf stub
touch "$T/.complete"
