#!/bin/sh
# The operator guide's commands work: every code block of docs/operator-guide.md that holds
# commands (sh, dockerfile, yaml) carries a marker on the line before it, and this test runs
# each `<!-- test: SCENARIO [after-upgrade] -->` block in that scenario's temporary root —
# the built vgpu-patch with --root, the built vgpu-launch, Ollama-shaped fixture trees, the
# guide's own vgpu.conf (`test: config`) with the dummy driver behind the native backend —
# and fails on any command that fails. `<!-- not tested: REASON -->` blocks are counted and
# listed; the reasons allowed are a real systemd, the network, installing into this
# machine, and a GPU host. Every fixture process a block started must have loaded the shims.
# Dockerfile blocks: the `RUN vgpu-patch …` lines, ENV and ENTRYPOINT+CMD are run (building
# the image needs Docker). YAML blocks: every `cmd:` is run and must exit 0, and every field a
# `from_json` expression reads must be in their output.
. "$(dirname "$0")/lib.sh"

GUIDE=$VGPU_SOURCE_DIR/docs/operator-guide.md
dummy=$VGPU_BUILD_DIR/tests/dummy
SHIM_DIR=$VGPU_BUILD_DIR/lib/vgpu
[ -f "$GUIDE" ] || fail "no $GUIDE"
[ -f "$SHIM_DIR/libvgpu-audit.so" ] || fail "the shims are not built in $SHIM_DIR"

# The blocks: $T/blocks/NNN (contents) and $T/blocks/index ("NNN<TAB>lang<TAB>marker").
mkdir -p "$T/blocks" "$T/bin"
awk -v dir="$T/blocks" '
    /^<!-- .* -->$/ { marker = $0; mline = NR; next }
    !inblock && /^```/ {
        n++; file = sprintf("%s/%03d", dir, n); printf "" >file
        printf "%03d\t%s\t%s\n", n, substr($0, 4), (mline == NR - 1 ? marker : "") >(dir "/index")
        inblock = 1; next
    }
    inblock && /^```$/ { inblock = 0; close(file); next }
    inblock { print >file }
' "$GUIDE"
[ -s "$T/blocks/index" ] || fail "no code block in the guide"

# The commands as an operator types them: vgpu-patch acts on the scenario's root.
cat >"$T/bin/vgpu-patch" <<EOF
#!/bin/sh
case \${1-} in "" | -* | inspect) exec "$VGPU_PATCH" "\$@" ;; esac
cmd=\$1
shift
exec "$VGPU_PATCH" "\$cmd" --root "\$GUIDE_ROOT" "\$@"
EOF
ln -s "$VGPU_BUILD_DIR/bin/vgpu-launch" "$T/bin/vgpu-launch"
chmod 755 "$T/bin/vgpu-patch"

# What Ollama's install.sh does to an install at PREFIX in ROOT: lib/ollama removed and
# extracted again, bin/ollama a new inode (here: the era-E fixture).
install_sh_upgrade() {
    tree=$1
    sh "$VGPU_SOURCE_DIR/tests/fixtures/make-tree.sh" e "$T/new"
    rm -rf "$tree/lib/ollama"
    cp -a "$T/new/lib/ollama" "$tree/lib/ollama"
    cp -p "$T/new/bin/ollama" "$tree/bin/ollama.tmp" && mv "$tree/bin/ollama.tmp" "$tree/bin/ollama"
    rm -rf "$T/new"
}

# scenario NAME: sets ROOT, W (the work dir), P (the Ollama prefix) for NAME, creating them
# on first use: the tree of the era the guide's section is about, a unit where
# Ollama's install.sh would have written one, and the guide's vgpu.conf.
scenario() {
    ROOT=$T/s-$1
    W=$T/w-$1
    case $1 in
    vm | fleet | doctor) P=/usr/local era=e unit=yes ;;
    usr | docker) P=/usr era=e unit=no ;;
    hand) P=/usr/local era=a unit=no ;;
    *) fail "the guide names an unknown scenario '$1'" ;;
    esac
    [ "$1" = vm ] && era=d # an older release, which the upgrade block replaces
    [ ! -d "$ROOT" ] || return 0
    mkdir -p "$W" "$ROOT/etc/vgpu"
    sh "$VGPU_SOURCE_DIR/tests/fixtures/make-tree.sh" "$era" "$ROOT$P"
    [ -f "$T/vgpu.conf" ] || fail "the guide's vgpu.conf block (test: config) must come first"
    cp "$T/vgpu.conf" "$ROOT/etc/vgpu/vgpu.conf"
    if [ "$unit" = yes ]; then
        mkdir -p "$ROOT/etc/systemd/system"
        printf '[Unit]\nDescription=Ollama Service\nAfter=network-online.target\n\n[Service]\nExecStart=%s/bin/ollama serve\nUser=ollama\nGroup=ollama\nRestart=always\nRestartSec=3\nEnvironment="PATH=/usr/local/bin:/usr/bin:/bin"\n\n[Install]\nWantedBy=default.target\n' \
            "$P" >"$ROOT/etc/systemd/system/ollama.service"
    fi
    if [ "$1" = doctor ]; then # troubleshooting starts from a patched install
        GUIDE_ROOT=$ROOT VGPU_SHIM_DIR=$SHIM_DIR "$T/bin/vgpu-patch" ollama >"$W/setup.out" 2>&1 ||
            fail "doctor scenario: vgpu-patch ollama failed: $(tail -5 "$W/setup.out")"
    fi
}

# in_scenario COMMAND...: run it as the operator would in the scenario: its root, the
# guide's configuration (with the dummy driver standing in for the paths it names), the
# decoy driver first on LD_LIBRARY_PATH, every fixture process reporting what it loaded.
in_scenario() {
    (
        cd "$W" || exit 1
        export GUIDE_ROOT="$ROOT" VGPU_CONFIG="$ROOT/etc/vgpu/vgpu.conf" VGPU_SHIM_DIR="$SHIM_DIR"
        export VGPU_NATIVE_CUDA="$dummy/libcuda.so.1" VGPU_NATIVE_NVML="$dummy/libnvidia-ml.so.1"
        export VGPU_FIXTURE_REPORT="$W/report" LD_LIBRARY_PATH="$DECOY"
        export PATH="$T/bin:$ROOT$P/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        "$@"
    )
}

# run_block FILE WHAT: a shell block, as one script, stopping at the first failure.
run_block() {
    in_scenario sh -eu "$1" >"$W/out" 2>"$W/err" ||
        fail "$2 failed: $(cat "$W/out" "$W/err" | tail -20)"
}

# run_dockerfile FILE WHAT: its vgpu-patch RUN lines, ENV, ENTRYPOINT + CMD.
run_dockerfile() {
    sed -e ':a' -e '/\\$/N; s/\\\n//; ta' "$1" >"$W/joined"
    : >"$W/docker.sh"
    entry=''
    cmd=''
    while IFS= read -r line; do
        case $line in
        "RUN vgpu-patch "*) printf '%s\n' "${line#RUN }" >>"$W/docker.sh" ;;
        "ENV "*=*) printf 'export %s\n' "${line#ENV }" >>"$W/docker.sh" ;;
        "ENTRYPOINT ["*) entry=${line#ENTRYPOINT } ;;
        "CMD ["*) cmd=${line#CMD } ;;
        "RUN "*) docker_only=$((docker_only + 1)) ;;
        esac
    done <"$W/joined"
    [ -n "$entry" ] || fail "$2: no ENTRYPOINT"
    grep -q '^vgpu-patch ' "$W/docker.sh" || fail "$2: no RUN vgpu-patch line"
    # An exec-form array of plain words: ["a", "b"] -> a b
    printf '%s %s\n' "$entry" "$cmd" | sed 's/[][",]/ /g' >>"$W/docker.sh"
    run_block "$W/docker.sh" "$2"
}

# run_yaml FILE WHAT: every `cmd:`, then the fields the playbook reads from their JSON.
run_yaml() {
    sed -n 's/^ *cmd: *//p' "$1" >"$W/yaml.sh"
    [ -s "$W/yaml.sh" ] || fail "$2: no cmd:"
    run_block "$W/yaml.sh" "$2"
    sed -n 's/.*from_json)\.\([a-z_]*\).*/\1/p' "$1" | sort -u >"$W/fields"
    [ -s "$W/fields" ] || fail "$2: the playbook reads nothing from the JSON"
    while IFS= read -r field; do
        grep -q "^  \"$field\":" "$W/out" || fail "$2: the playbook reads '$field', which the JSON lacks"
    done <"$W/fields"
}

# The configuration comes first: every scenario's root gets it.
while IFS="$(printf '\t')" read -r n lang marker; do
    [ "$marker" = "<!-- test: config -->" ] || continue
    [ "$lang" = ini ] || fail "block $n: the config block is not ini"
    cp "$T/blocks/$n" "$T/vgpu.conf"
    grep -q '^backend = native' "$T/vgpu.conf" || fail "the guide's vgpu.conf has no native backend"
done <"$T/blocks/index"

tested=0 untested=0 docker_only=0 scenarios=
while IFS="$(printf '\t')" read -r n lang marker; do
    case $lang in
    sh | dockerfile | yaml) ;;
    *) continue ;; # configuration and output samples
    esac
    what="block $n ($lang) $(sed -n 1p "$T/blocks/$n")"
    case $marker in
    "<!-- test: "*" -->")
        # shellcheck disable=SC2046 # the marker's words
        set -- $(printf '%s\n' "$marker" | sed 's/^<!-- test: \(.*\) -->$/\1/')
        scenario "$1"
        case ${2-} in
        "") ;;
        after-upgrade) install_sh_upgrade "$ROOT$P" ;;
        *) fail "$what: unknown event '$2'" ;;
        esac
        note "$what: scenario $*"
        case $lang in
        sh) run_block "$T/blocks/$n" "$what" ;;
        dockerfile) run_dockerfile "$T/blocks/$n" "$what" ;;
        yaml) run_yaml "$T/blocks/$n" "$what" ;;
        esac
        case " $scenarios " in *" $1 "*) ;; *) scenarios="$scenarios $1" ;; esac
        tested=$((tested + 1))
        ;;
    "<!-- not tested: needs a real systemd"*" -->" | "<!-- not tested: needs the network"*" -->" | \
        "<!-- not tested: installs into this machine"*" -->" | \
        "<!-- not tested: needs a GPU host"*" -->")
        note "$what: not run (${marker#<!-- not tested: }"
        untested=$((untested + 1))
        ;;
    *) fail "$what has no marker (<!-- test: SCENARIO --> or <!-- not tested: REASON -->) on the line before it, or an unknown one: '$marker'" ;;
    esac
done <"$T/blocks/index"

# Every process of every fixture a block started loaded the shims, never the decoy.
for s in $scenarios; do
    [ -f "$T/w-$s/report" ] || continue
    note "scenario $s: $(wc -l <"$T/w-$s/report") fixture processes"
    # NVML from the shim, or not loaded at all (era A's runners never load it).
    assert_answers "$T/w-$s/report" "$SHIM_DIR/libvgpu-cuda.so.1" "*"
    if grep -v "libnvidia-ml.so.1=\($SHIM_DIR/libvgpu-nvml.so.1\|none\) " "$T/w-$s/report" | grep -q .; then
        fail "scenario $s: NVML answered by something else: $(cat "$T/w-$s/report")"
    fi
    assert_no_decoy "$T/w-$s/report"
done
for s in hand docker; do
    [ -s "$T/w-$s/report" ] || fail "scenario $s started no Ollama process"
done

# What the guide says happened, checked where the output shows it.
scenario vm
in_scenario vgpu-patch status --json >"$T/out" 2>&1 || true
if ! grep -q '"mechanism": "none"' "$T/out" || ! grep -q '"installs": \[\]' "$T/out"; then
    fail "after the guide's rollback, status still shows a patch: $(head -40 "$T/out")"
fi
sh "$VGPU_SOURCE_DIR/tests/fixtures/make-tree.sh" e "$T/pristine"
snapshot "$T/pristine" >"$T/pristine.snap"
snapshot "$ROOT$P" >"$T/rolled-back.snap"
diff "$T/pristine.snap" "$T/rolled-back.snap" >&2 ||
    fail "the guide's rollback did not give back the upgraded release byte for byte"
[ ! -e "$ROOT/etc/systemd/system/ollama.service.d/50-vgpu-patch.conf" ] ||
    fail "the guide's rollback left our drop-in"

note "$tested blocks run in scenarios:$scenarios; $untested not run; $docker_only Dockerfile RUN lines need Docker"
[ "$tested" -ge 10 ] || fail "only $tested blocks ran"
echo "PASS"
