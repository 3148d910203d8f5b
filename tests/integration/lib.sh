# lib.sh: helpers shared by the integration scenarios (sourced by each t*.sh).
# Every scenario works in its own temporary tree: a fake root for /etc, /var and the
# Ollama prefix, a shim dir, and the fixtures' decoy driver; nothing outside it changes.
set -eu

: "${VGPU_BUILD_DIR:?set by CTest: the build directory}"
: "${VGPU_TEST_FIXTURES:?set by CTest: <build>/fixtures}"
: "${VGPU_SOURCE_DIR:?set by CTest: the source directory}"

VGPU_PATCH=$VGPU_BUILD_DIR/bin/vgpu-patch
DECOY=$VGPU_TEST_FIXTURES/decoy
T=$(mktemp -d "${TMPDIR:-/tmp}/vgpu-it.XXXXXX")
chmod 755 "$T"
trap 'rm -rf "$T"' EXIT
ROOT=$T/root
PREFIX=/usr/local
TREE=$ROOT$PREFIX
SHIMS=$T/shims

fail() {
    echo "FAIL: $*" >&2
    exit 1
}

skip() {
    echo "SKIP: $*"
    exit 77
}

note() {
    echo "-- $*"
}

# setup_era ERA: an Ollama tree of that era under $TREE, stand-in shims and the audit
# module in $SHIMS.
setup_era() {
    mkdir -p "$ROOT"
    sh "$VGPU_SOURCE_DIR/tests/fixtures/make-tree.sh" "$1" "$TREE"
    mkdir -p "$SHIMS"
    cp "$VGPU_TEST_FIXTURES/standin/libvgpu-cuda.so.1" "$VGPU_TEST_FIXTURES/standin/libvgpu-nvml.so.1" "$SHIMS/"
    # The audit module (ours, as built) beside them, for the audit mechanism.
    cp "$VGPU_BUILD_DIR/lib/vgpu/libvgpu-audit.so" "$SHIMS/"
    chmod 755 "$SHIMS"
    chmod 644 "$SHIMS"/*
}

# vp COMMAND [ARGS]: vgpu-patch on the fake root; the exit code lands in $rc (read by
# expect_rc), output in $T/out and $T/err.
rc=0
vp() {
    cmd=$1
    shift
    set +e
    "$VGPU_PATCH" "$cmd" --root "$ROOT" "$@" >"$T/out" 2>"$T/err"
    rc=$?
    set -e
}

# vp_ollama [ARGS]: `vgpu-patch ollama` on the tree with the test's shims.
vp_ollama() {
    vp ollama --prefix "$PREFIX" --shim-dir "$SHIMS" "$@"
}

expect_rc() {
    [ "$rc" -eq "$1" ] || {
        cat "$T/out" "$T/err" >&2
        fail "expected exit $1, got $rc ($2)"
    }
}

# snapshot DIR: every entry with type, mode, owner, size, mtime, link target and, for
# files, a content hash and every extended attribute (capabilities included) — what
# "byte-identical tree" means here.
snapshot() {
    (cd "$1" && find . ! -type d -printf '%p %y %m %u %g %s %T@ %l\n' | sort &&
        find . -type d -printf '%p %y %m %u %g\n' | sort &&
        find . -type f -exec sha256sum {} + | sort &&
        if command -v getfattr >/dev/null; then
            find . -type f -exec getfattr --absolute-names -h -d -m - {} + 2>/dev/null
        fi)
}

# run_fixture FILE: run the tree's `ollama serve` with the decoy driver first on
# LD_LIBRARY_PATH; every process appends its report line to FILE.
run_fixture() {
    rm -f "$1"
    VGPU_FIXTURE_REPORT=$1 LD_LIBRARY_PATH=$DECOY "$TREE/bin/ollama" serve >"$T/serve.out" 2>"$T/serve.err" ||
        fail "the fixture's ollama serve failed: $(tail -5 "$T/serve.err")"
    [ -s "$1" ] || fail "the fixture wrote no report"
}

# run_fixture_env FILE ENVFILE: run_fixture with the variables of an environment file
# (KEY=VALUE lines, as vgpu-patch writes them) in serve's environment, as systemd's
# EnvironmentFile= would put them.
run_fixture_env() {
    rm -f "$1"
    (
        while IFS= read -r line; do
            [ -n "$line" ] && export "${line?}"
        done <"$2"
        VGPU_FIXTURE_REPORT=$1 LD_LIBRARY_PATH=$DECOY "$TREE/bin/ollama" serve \
            >"$T/serve.out" 2>"$T/serve.err"
    ) || fail "the fixture's ollama serve failed: $(tail -5 "$T/serve.err")"
    [ -s "$1" ] || fail "the fixture wrote no report"
}

# assert_answers FILE CUDA NVML: every process in the report found CUDA answering
# libcuda.so.1 and NVML answering libnvidia-ml.so.1 ("*" matches anything).
assert_answers() {
    while IFS= read -r line; do
        proc=${line%% *}
        cuda=$(printf '%s\n' "$line" | sed -n 's/.* libcuda\.so\.1=\([^ ]*\).*/\1/p')
        nvml=$(printf '%s\n' "$line" | sed -n 's/.* libnvidia-ml\.so\.1=\([^ ]*\).*/\1/p')
        # shellcheck disable=SC2254 # the expected values are patterns
        case $cuda in $2) ;; *) fail "$proc: libcuda.so.1 answered by $cuda, expected $2" ;; esac
        # shellcheck disable=SC2254
        case $nvml in $3) ;; *) fail "$proc: libnvidia-ml.so.1 answered by $nvml, expected $3" ;; esac
    done <"$1"
}

# assert_no_decoy FILE: no process loaded any file of the decoy driver.
assert_no_decoy() {
    if grep -q "$DECOY" "$1"; then
        grep "$DECOY" "$1" >&2
        fail "a process loaded the decoy driver"
    fi
}

# json_field KEY: the first value of "KEY": in $T/out (our JSON puts one key per line).
json_field() {
    sed -n "s/^ *\"$1\": \"\{0,1\}\([^\",]*\)\"\{0,1\},\{0,1\}$/\1/p" "$T/out" | head -n 1
}
