#!/bin/sh
# vgpu-launch, the exec wrapper of the LD_AUDIT fallback: argv, exit status and stdout
# pass through untouched; with good shims PROGRAM gets LD_AUDIT and VGPU_SHIM_DIR (and
# LD_BIND_NOW=1 only on glibc < 2.35), never LD_PRELOAD, and the audit module really
# redirects the driver; with a missing or broken shim --strict exits 69 naming the file,
# and without it PROGRAM runs unchanged with a warning; exec failures give 127/126 and
# usage errors 2.
. "$(dirname "$0")/lib.sh"

LAUNCH=$VGPU_BUILD_DIR/bin/vgpu-launch
PROBE=$VGPU_BUILD_DIR/libexec/vgpu-patch/vgpu-probe
[ -x "$LAUNCH" ] || fail "$LAUNCH is not built"
unset LD_AUDIT LD_PRELOAD LD_BIND_NOW LD_LIBRARY_PATH VGPU_SHIM_DIR VGPU_LAUNCH_GLIBC_VERSION

# shim_dir NAME: a shim dir of our own, $T/NAME, with the built shims and audit module.
shim_dir() {
    mkdir -p "$T/$1"
    for f in libvgpu-cuda.so.1 libvgpu-nvml.so.1 libvgpu-audit.so; do
        cp "$VGPU_BUILD_DIR/lib/vgpu/$f" "$T/$1/$f"
    done
}
shim_dir good
GOOD=$T/good

# run [VAR=VALUE...] COMMAND [ARGS]: through env(1), which leaves the environment as it
# is but for the assignments; exit code in $rc, output in $T/out and $T/err.
run() {
    set +e
    env "$@" >"$T/out" 2>"$T/err"
    # shellcheck disable=SC2034 # read by expect_rc
    rc=$?
    set -e
}

# launch [ARGS]: vgpu-launch ARGS.
launch() {
    run "$LAUNCH" "$@"
}

# launch_env VAR=VALUE [ARGS]: the same with one more variable in its environment.
launch_env() {
    assignment=$1
    shift
    run "$assignment" "$LAUNCH" "$@"
}

no_stdout() {
    [ ! -s "$T/out" ] || {
        cat "$T/out" >&2
        fail "$1: vgpu-launch wrote to stdout"
    }
}

err_says() {
    grep -qF -- "$2" "$T/err" || {
        cat "$T/err" >&2
        fail "$1: stderr does not say '$2'"
    }
}

# var NAME: NAME's value in $T/out (the output of env), or "(unset)".
var() {
    if grep -q "^$1=" "$T/out"; then sed -n "s/^$1=//p" "$T/out"; else echo "(unset)"; fi
}

expect_var() {
    v=$(var "$1")
    [ "$v" = "$2" ] || fail "$3: $1 is '$v', expected '$2'"
}

note "argv passes through byte for byte (empty, spaces, newline, leading '-', '--')"
nl='
'
show_argv='cat "/proc/$$/cmdline"'
sh -c "$show_argv" prog '' 'a b' "x${nl}y" -n -- --strict '' >"$T/direct"
launch --shim-dir "$GOOD" -- sh -c "$show_argv" prog '' 'a b' "x${nl}y" -n -- --strict ''
expect_rc 0 "argv"
cmp -s "$T/direct" "$T/out" || fail "PROGRAM's argv differs from a direct run"
[ ! -s "$T/err" ] || fail "vgpu-launch wrote to stderr with good shims: $(cat "$T/err")"

note "exit status passes through"
for code in 0 3 42 141 255; do
    launch --shim-dir "$GOOD" -- sh -c "exit $code"
    expect_rc "$code" "sh -c 'exit $code'"
done
launch --shim-dir "$GOOD" -- sh -c 'kill -TERM $$'
expect_rc 143 "a program killed by SIGTERM"

note "PROGRAM replaces vgpu-launch (exec, same pid)"
"$LAUNCH" --shim-dir "$GOOD" -- sh -c 'echo $$' >"$T/pid" &
pid=$!
wait "$pid"
[ "$(cat "$T/pid")" = "$pid" ] || fail "PROGRAM ran as pid $(cat "$T/pid"), not as vgpu-launch's $pid"

note "PROGRAM's stdout is untouched and vgpu-launch writes none of its own"
launch --shim-dir "$GOOD" -- cat "$LAUNCH"
expect_rc 0 "cat of a binary file"
cmp -s "$LAUNCH" "$T/out" || fail "PROGRAM's stdout differs from the file it copied"
launch --shim-dir "$GOOD" -- true
expect_rc 0 "true"
no_stdout "good shims"

note "good shims: LD_AUDIT and VGPU_SHIM_DIR, never LD_PRELOAD"
launch --shim-dir "$GOOD" -- env
expect_rc 0 "env"
expect_var LD_AUDIT "$GOOD/libvgpu-audit.so" "good shims"
expect_var VGPU_SHIM_DIR "$GOOD" "good shims"
expect_var LD_PRELOAD "(unset)" "good shims"
launch --shim-dir "$GOOD/" -- env
expect_var LD_AUDIT "$GOOD/libvgpu-audit.so" "--shim-dir with a trailing slash"

note "an inherited LD_AUDIT is kept after ours; ours is never there twice"
shim_dir other
OTHER=$T/other/libvgpu-audit.so
launch_env "LD_AUDIT=$OTHER" --shim-dir "$GOOD" -- env
expect_var LD_AUDIT "$GOOD/libvgpu-audit.so:$OTHER" "inherited LD_AUDIT"
launch_env "LD_AUDIT=$GOOD/libvgpu-audit.so" --shim-dir "$GOOD" -- env
expect_var LD_AUDIT "$GOOD/libvgpu-audit.so" "inherited LD_AUDIT that is ours"
launch_env "LD_AUDIT=$OTHER:$GOOD/libvgpu-audit.so" --shim-dir "$GOOD" -- env
expect_var LD_AUDIT "$OTHER:$GOOD/libvgpu-audit.so" "inherited LD_AUDIT with ours second"

note "LD_BIND_NOW=1 only on glibc older than 2.35; the test knob is not passed on"
for case in 2.28:1 2.31:1 2.34:1 2.35:unset 2.36:unset 3.0:unset; do
    v=${case%%:*}
    want=${case#*:}
    [ "$want" = unset ] && want="(unset)"
    launch_env "VGPU_LAUNCH_GLIBC_VERSION=$v" --shim-dir "$GOOD" -- env
    expect_rc 0 "glibc $v"
    expect_var LD_BIND_NOW "$want" "glibc $v"
    expect_var VGPU_LAUNCH_GLIBC_VERSION "(unset)" "glibc $v"
done
launch --shim-dir "$GOOD" -- env
real=$(getconf GNU_LIBC_VERSION | sed 's/^glibc //')
case $real in
2.[0-9] | 2.[0-9].* | 2.[12][0-9] | 2.[12][0-9].* | 2.3[0-4] | 2.3[0-4].*) want=1 ;;
*) want="(unset)" ;;
esac
expect_var LD_BIND_NOW "$want" "this system's glibc $real"

note "shim dir: --shim-dir beats VGPU_SHIM_DIR, which beats the default"
launch_env "VGPU_SHIM_DIR=$T/nowhere" --strict --shim-dir "$GOOD" -- env
expect_rc 0 "--shim-dir over VGPU_SHIM_DIR"
expect_var VGPU_SHIM_DIR "$GOOD" "--shim-dir over VGPU_SHIM_DIR"
launch_env "VGPU_SHIM_DIR=$GOOD" --strict -- env
expect_rc 0 "VGPU_SHIM_DIR"
expect_var LD_AUDIT "$GOOD/libvgpu-audit.so" "VGPU_SHIM_DIR"
launch_env "VGPU_SHIM_DIR=relative/dir" --strict -- true
expect_rc 69 "a relative VGPU_SHIM_DIR"
err_says "a relative VGPU_SHIM_DIR" "VGPU_SHIM_DIR"
if [ -e /etc/vgpu/vgpu.conf ]; then
    note "(not checking the default: /etc/vgpu/vgpu.conf exists here)"
else
    launch --strict -- env
    expect_rc 0 "the default shim dir"
    prefix=$(cd "$(dirname "$(readlink -f "$LAUNCH")")/.." && pwd -P)
    expect_var VGPU_SHIM_DIR "$prefix/lib/vgpu" "the default shim dir"
fi

note "the audit module redirects the driver through vgpu-launch"
request() {
    LD_LIBRARY_PATH=$DECOY "$@" "$PROBE" request libcuda.so.1 "$DECOY/libcuda.so.580.65.06" \
        libnvidia-ml.so.1 >"$T/out" 2>"$T/err" || fail "vgpu-probe request failed: $(cat "$T/err")"
}
answers() {
    for want in "libcuda.so.1 $1/$2" "$DECOY/libcuda.so.580.65.06 $1/$2" "libnvidia-ml.so.1 $1/$3"; do
        grep -qxF "answer $want" "$T/out" || {
            cat "$T/out" "$T/err" >&2
            fail "$4: no 'answer $want'"
        }
    done
}
request
grep -q "^answer libcuda.so.1 $DECOY/" "$T/out" || fail "without vgpu-launch the decoy does not answer"
request "$LAUNCH" --strict --shim-dir "$GOOD" --
answers "$GOOD" libvgpu-cuda.so.1 libvgpu-nvml.so.1 "through vgpu-launch"

note "broken shim dirs: --strict refuses (69), otherwise PROGRAM runs unchanged"
env >"$T/env-direct"
broken() { # NAME REASON
    dir=$T/$1
    rm -f "$T/ran"
    # shellcheck disable=SC2016 # $1 is for PROGRAM's shell
    launch --strict --shim-dir "$dir" -- sh -c ': >"$1"' sh "$T/ran"
    expect_rc 69 "$1 --strict"
    [ ! -e "$T/ran" ] || fail "$1 --strict: PROGRAM ran"
    no_stdout "$1 --strict"
    [ "$(wc -l <"$T/err")" -eq 1 ] || fail "$1 --strict: not one line: $(cat "$T/err")"
    grep -q '^vgpu-launch: ' "$T/err" || fail "$1 --strict: no 'vgpu-launch: ' prefix"
    err_says "$1 --strict" "$2"

    launch --shim-dir "$dir" -- env
    expect_rc 0 "$1 without --strict"
    cmp -s "$T/env-direct" "$T/out" || fail "$1: PROGRAM's environment was changed"
    expect_var LD_AUDIT "(unset)" "$1 without --strict"
    err_says "$1 without --strict" "WITHOUT the vGPU"
    err_says "$1 without --strict" "$2"

    launch --shim-dir "$dir" -- sh -c "$show_argv" prog '' 'a b' "x${nl}y" -n -- --strict ''
    cmp -s "$T/direct" "$T/out" || fail "$1: PROGRAM's argv differs from a direct run"
    launch --shim-dir "$dir" -- sh -c 'exit 7'
    expect_rc 7 "$1: exit status"
    request "$LAUNCH" --shim-dir "$dir" --
    grep -q "^answer libcuda.so.1 $DECOY/" "$T/out" || fail "$1: the driver was redirected"
}

shim_dir missing
rm "$T/missing/libvgpu-nvml.so.1"
broken missing "$T/missing/libvgpu-nvml.so.1: cannot open shared object file"

shim_dir text
echo "not a library" >"$T/text/libvgpu-cuda.so.1"
broken text "$T/text/libvgpu-cuda.so.1"

shim_dir nomarker
cp "$VGPU_TEST_FIXTURES/legacy/libcuda.so.1" "$T/nomarker/libvgpu-cuda.so.1"
broken nomarker "$T/nomarker/libvgpu-cuda.so.1 does not export vgpu_shim_abi_version"

shim_dir noaudit
rm "$T/noaudit/libvgpu-audit.so"
broken noaudit "$T/noaudit/libvgpu-audit.so"

shim_dir notaudit
cp "$GOOD/libvgpu-nvml.so.1" "$T/notaudit/libvgpu-audit.so"
broken notaudit "$T/notaudit/libvgpu-audit.so does not export la_version"

shim_dir swapped
cp "$GOOD/libvgpu-cuda.so.1" "$T/swapped/libvgpu-nvml.so.1"
broken swapped "$T/swapped/libvgpu-nvml.so.1 does not export nvmlInit_v2"

note "exec failures: 127 when PROGRAM is not found, 126 when it cannot run"
launch --shim-dir "$GOOD" -- "$T/no-such-program"
expect_rc 127 "a missing program"
err_says "a missing program" "$T/no-such-program"
no_stdout "a missing program"
launch --shim-dir "$GOOD" -- vgpu-no-such-program-on-path
expect_rc 127 "a program not on PATH"
launch --shim-dir "$T/missing" -- "$T/no-such-program"
expect_rc 127 "a missing program, broken shims"
echo "data" >"$T/not-executable"
chmod 644 "$T/not-executable"
launch --shim-dir "$GOOD" -- "$T/not-executable"
expect_rc 126 "a file that is not executable"

note "usage errors exit 2 and write nothing to stdout"
usage_error() {
    launch "$@"
    expect_rc 2 "vgpu-launch $*"
    no_stdout "vgpu-launch $*"
    grep -q '^vgpu-launch: ' "$T/err" || fail "vgpu-launch $*: no message"
}
usage_error
usage_error --strict
usage_error --strict --
usage_error --bogus true
usage_error --shim-dir
usage_error --shim-dir relative/dir true
# A test knob left behind is said and ignored: it must not keep the program from starting.
launch_env VGPU_LAUNCH_GLIBC_VERSION=bogus --shim-dir "$GOOD" true
expect_rc 0 "a bad VGPU_LAUNCH_GLIBC_VERSION"
err_says "a bad VGPU_LAUNCH_GLIBC_VERSION" "VGPU_LAUNCH_GLIBC_VERSION"

note "--help and --version"
launch --help
expect_rc 0 "--help"
grep -q '^Usage: vgpu-launch ' "$T/out" || fail "--help shows no usage"
version=$(sed -n 's/^project(vgpu-patch VERSION \([0-9.]*\).*/\1/p' "$VGPU_SOURCE_DIR/CMakeLists.txt")
launch --version
expect_rc 0 "--version"
[ "$(cat "$T/out")" = "vgpu-launch $version" ] || fail "--version says '$(cat "$T/out")'"
echo PASS
