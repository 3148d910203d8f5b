#!/bin/sh
# Verification runs code from the Ollama tree (a backend's constructors in the load
# probe, an executable's start in the exec probe). When another user can change that
# code, it must not run as root: the probes then run as nobody, and say so.
. "$(dirname "$0")/lib.sh"

[ "$(id -u)" -eq 0 ] || skip "needs root (the point is what runs as root)"
command -v cc >/dev/null || skip "no C compiler to build the library with a constructor"
command -v setpriv >/dev/null || skip "setpriv (util-linux) is not installed"
# nobody must be able to reach the probes of this build at all
setpriv --reuid=nobody --regid=nogroup --clear-groups \
    test -x "$VGPU_BUILD_DIR/libexec/vgpu-patch/vgpu-probe" ||
    skip "the build dir is not readable by nobody"

setup_era e
cat >"$T/ctor.c" <<CODE
#include <stdio.h>
#include <unistd.h>
__attribute__((constructor)) static void said(void)
{
    FILE *f = fopen("$T/ctor-uid", "a");
    if (f) {
        fprintf(f, "%u\n", (unsigned)geteuid());
        fclose(f);
    }
}
int cublasCreate_v2(void **h) { if (h) *h = 0; return 0; }
CODE
cc -shared -fPIC -o "$T/libcublas.so.12" -Wl,-soname,libcublas.so.12 "$T/ctor.c" ||
    fail "cannot build the test library"
touch "$T/ctor-uid"
chmod 666 "$T/ctor-uid"

note "a tree root owns: the probes run as root"
cp "$T/libcublas.so.12" "$TREE/lib/ollama/cuda_v12/libcublas.so.12"
vp_ollama
expect_rc 0 "root-owned tree"
grep -qx 0 "$T/ctor-uid" || fail "the constructor did not run as root in a trusted tree"
vp rollback
expect_rc 0 "rollback"

note "a library another user owns: the probes run as nobody"
: >"$T/ctor-uid"
chown nobody "$TREE/lib/ollama/cuda_v12/libcublas.so.12"
vp_ollama --json
expect_rc 0 "a tree with a user-owned library"
[ -s "$T/ctor-uid" ] || fail "the load probe did not run the library at all"
if grep -qx 0 "$T/ctor-uid"; then
    fail "code another user can change ran as root"
fi
grep -qx 65534 "$T/ctor-uid" || fail "the probe did not run as nobody: $(cat "$T/ctor-uid")"
grep -q "ran as nobody" "$T/out" || fail "the output does not say the probes ran as nobody"
echo PASS
