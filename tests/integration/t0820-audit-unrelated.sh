#!/bin/sh
# LD_AUDIT is inherited by every child of Ollama, so the audit module must leave every
# other program alone: sh, ls, cat, perl, python3, a static binary and a set-user-ID
# program give the same exit code, stdout and stderr with the audit mechanism's
# variables as without them (the module sets itself up only when a driver name is
# asked for, so it prints nothing for them either). A 32-bit program, where gcc can
# build one, keeps its exit code and stdout; the loader may add one "ignored" line.
. "$(dirname "$0")/lib.sh"

AUDIT=$VGPU_BUILD_DIR/lib/vgpu/libvgpu-audit.so
[ -f "$AUDIT" ] || fail "the audit module is not built: $AUDIT"
mkdir -p "$T/work"
printf 'line one\nline two\n' >"$T/work/input"

# same NAME CMD...: run CMD plainly and under the audit variables; compare.
same() {
    name=$1
    shift
    set +e
    (cd "$T/work" && "$@") >"$T/plain.out" 2>"$T/plain.err" </dev/null
    plain=$?
    (cd "$T/work" && env LD_AUDIT="$AUDIT" VGPU_SHIM_DIR="$SHIMS" "$@") \
        >"$T/audit.out" 2>"$T/audit.err" </dev/null
    audit=$?
    set -e
    [ "$plain" = "$audit" ] || fail "$name: exit $plain plainly, $audit under LD_AUDIT"
    cmp -s "$T/plain.out" "$T/audit.out" || fail "$name: stdout differs under LD_AUDIT"
    cmp -s "$T/plain.err" "$T/audit.err" ||
        fail "$name: stderr differs under LD_AUDIT: $(diff "$T/plain.err" "$T/audit.err")"
    note "$name: exit $plain, same output"
}

setup_era e
same sh sh -c 'echo out; echo err >&2; exit 3'
same ls ls -la .
same "ls (missing file)" ls /nonexistent-vgpu-test
same cat cat input
same "sh pipeline" sh -c 'cat input | sort -r | head -n 1'
same perl perl -e 'use POSIX; print "pid ok\n"; print STDERR "warn\n"; exit 7'
if command -v python3 >/dev/null; then
    same python3 python3 -c 'import ctypes.util, sys; print(ctypes.util.find_library("m") is not None); sys.exit(5)'
else
    note "python3 is not installed: skipped"
fi
same "static binary" "$VGPU_TEST_FIXTURES/bad/static-exe"

# A set-user-ID program started by root runs in secure mode: the loader drops LD_AUDIT.
if [ "$(id -u)" = 0 ]; then
    cp "$(command -v id)" "$T/work/suid-id"
    chown nobody "$T/work/suid-id"
    chmod 4755 "$T/work/suid-id"
    same "set-user-ID program" ./suid-id -u
else
    note "not root: the set-user-ID case is skipped"
fi

# 32-bit: the loader cannot load a 64-bit audit module into it and says so (ignored).
printf 'int main(void){return 4;}\n' >"$T/m32.c"
if cc -m32 -o "$T/work/m32" "$T/m32.c" 2>/dev/null; then
    set +e
    "$T/work/m32"
    plain=$?
    env LD_AUDIT="$AUDIT" "$T/work/m32" 2>"$T/m32.err"
    audit=$?
    set -e
    [ "$plain" = "$audit" ] || fail "32-bit: exit $plain plainly, $audit under LD_AUDIT"
    [ "$(wc -l <"$T/m32.err")" -le 1 ] || fail "32-bit: more than one line on stderr"
    note "32-bit: exit $plain, at most one loader line"
else
    note "no 32-bit toolchain (gcc -m32): the 32-bit case is skipped"
fi
echo PASS
