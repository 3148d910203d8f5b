#!/bin/sh
# `vgpu-patch doctor` tells an operator why Ollama does or does not use the vGPU: on a
# patched, wired era-E tree with the built shims on the dummy driver it finds nothing
# wrong (exit 0) and says so area by area; each thing that would keep Ollama off CUDA
# is then reported as a problem (exit 1) in text and JSON: no backend, an NVML driver
# below the thresholds of the release and runner in use (era-aware), a missing runner
# for the driver API, an upgraded binary with no wiring, a missing drop-in, a launcher
# delivery overridden by a later ExecStart=, and log lines of a start on CPU or Vulkan;
# a legacy global hook exits 5. A CUDA driver API below 13.0 only warns (cuda_v12 runs).
# A second install is a warning. Doctor writes nothing.
. "$(dirname "$0")/lib.sh"

built=$VGPU_BUILD_DIR/lib/vgpu
dummy=$VGPU_BUILD_DIR/tests/dummy
SD=$ROOT/etc/systemd/system

# doctor [ARGS]: vgpu-patch doctor on the fake root, with the native backend on the
# dummy driver (and whatever DUMMY_* knobs the caller exports).
doctor() {
    VGPU_BACKEND=native VGPU_NATIVE_CUDA=$dummy/libcuda.so.1 \
        VGPU_NATIVE_NVML=$dummy/libnvidia-ml.so.1 vp doctor "$@"
}

# finding LEVEL AREA TEXT: the text output has that finding.
finding() {
    sed -n "/^$2:/,/^[a-z]*:\$/p" "$T/out" | grep -q "^  $1 .*$3" || {
        cat "$T/out" "$T/err" >&2
        fail "doctor lacks the $2 finding '$1 ... $3'"
    }
}

setup_era e
cp "$built/libvgpu-cuda.so.1" "$built/libvgpu-nvml.so.1" "$SHIMS/"
chmod 644 "$SHIMS"/*
mkdir -p "$SD"
printf '[Service]\nExecStart=%s/bin/ollama serve\nUser=ollama\n' "$PREFIX" >"$SD/ollama.service"
vp_ollama
expect_rc 0 "ollama on era e, wired"

note "a healthy install"
snapshot "$ROOT" >"$T/before"
doctor
expect_rc 0 "doctor on a healthy install"
finding ok ollama "$PREFIX/bin/ollama: release .*era E, run by /etc/systemd/system/ollama.service"
finding ok hooks "no global loader hooks"
finding ok record "$PREFIX: mechanism patch, delivery elf, wired in /etc/systemd/system"
finding ok shims "$SHIMS: the shims load here"
finding ok driver "1 CUDA device(s): Dummy GPU (compute capability 8.9); CUDA driver API 13.0"
finding ok driver "NVML driver 580.65.06"
finding info log "no Ollama log to read"
grep -q "^doctor: no problem found" "$T/out" || fail "no verdict line"
snapshot "$ROOT" >"$T/after"
cmp -s "$T/before" "$T/after" || fail "doctor wrote into the root"

note "JSON"
doctor --json
expect_rc 0 "doctor --json"
[ "$(json_field command)" = doctor ] || fail "JSON: command is not doctor"
grep -q '"exit_code": 0' "$T/out" || fail "JSON: exit_code"
grep -q '"area": "driver"' "$T/out" || fail "JSON: no driver finding"
if grep -q '"level": "problem"' "$T/out"; then fail "JSON: a problem on a healthy install"; fi

note "Ollama's log"
cat >"$T/old.log" <<'EOF'
time=2026-11-01T10:00:00Z level=INFO source=routes.go:1 msg="Listening on 127.0.0.1:11434 (version 0.12.9)"
time=2026-11-01T10:00:01Z level=INFO source=types.go:1 msg="inference compute" id=cpu library=cpu compute="" name=cpu description=cpu libdirs=ollama driver="" pci_id="" type="" total="7.7 GiB" available="7.1 GiB"
EOF
cp "$T/old.log" "$T/cuda.log"
cat >>"$T/cuda.log" <<'EOF'
time=2026-11-02T10:00:00Z level=INFO source=routes.go:1 msg="Listening on 127.0.0.1:11434 (version 0.13.0)"
time=2026-11-02T10:00:01Z level=INFO source=types.go:1 msg="inference compute" id=GPU-1 library=CUDA compute=8.9 name=CUDA0 description="Dummy GPU" libdirs=ollama,cuda_v13 driver=13.0 pci_id=0000:00:05.0 type=discrete total="16.0 GiB" available="15.5 GiB"
EOF
doctor --log "$T/cuda.log"
expect_rc 0 "a log whose last start used CUDA (an earlier one on CPU)"
finding ok log 'library=CUDA'
if grep -q 'library=cpu' "$T/out"; then fail "a start before the last one was judged"; fi

doctor --log "$T/old.log"
expect_rc 1 "a log whose last start ran on CPU"
finding problem log 'library=cpu'
finding problem log "chose no CUDA device"

sed 's/library=cpu/library=Vulkan/' "$T/old.log" >"$T/vulkan.log"
doctor --log "$T/vulkan.log" --json
expect_rc 1 "a log whose last start used Vulkan"
grep -B1 'library=Vulkan' "$T/out" | grep -q '"level": "problem",' ||
    fail "JSON: Vulkan not a problem: $(cat "$T/out")"
grep -q '"exit_code": 1' "$T/out" || fail "JSON: exit_code is not 1"

# journalctl's prefix, and the v0.1.x spellings.
cat >"$T/journal.log" <<'EOF'
Nov 02 10:00:00 vm ollama[812]: time=2026-11-02T10:00:00Z level=INFO source=routes.go:1 msg="Listening on 127.0.0.1:11434 (version 0.5.7)"
Nov 02 10:00:01 vm ollama[812]: time=2026-11-02T10:00:01Z level=INFO source=types.go:1 msg="inference compute" id=GPU-1 library=cuda variant=v12 compute=8.9 driver=13.0 name="Dummy GPU" total="16.0 GiB" available="15.5 GiB"
EOF
doctor --log "$T/journal.log"
expect_rc 0 "a journal whose last start used CUDA (library=cuda)"
finding ok log 'library=cuda variant=v12'
printf '2024/01/10 10:00:00 gpu.go:1: Nvidia GPU detected\n' >"$T/v0120.log"
doctor --log "$T/v0120.log"
expect_rc 0 "v0.1.20: Nvidia GPU detected"
printf '2024/01/10 10:00:00 gpu.go:1: CUDA GPU is too old. Falling back to CPU mode\n' >"$T/v0120-cpu.log"
doctor --log "$T/v0120-cpu.log"
expect_rc 1 "v0.1.20: Falling back to CPU mode"
finding problem log "Falling back to CPU mode"

doctor --log "$T/missing.log"
expect_rc 0 "an unreadable log only warns"
finding warn log "missing.log"

note "driver thresholds (era E: NVML is read for cuda_v12 only)"
DUMMY_NVML_DRIVER=545.23.08 doctor
expect_rc 0 "NVML driver 545 while cuda_v13 runs"
finding ok driver "NVML driver 545.23.08 (not checked by this release and runner)"
DUMMY_CUDA_VERSION=12080 DUMMY_NVML_DRIVER=545.23.08 doctor
expect_rc 1 "NVML driver 545 under cuda_v12"
finding problem driver "NVML driver 545.23.08: Ollama drops CUDA devices below driver 550"
DUMMY_CUDA_VERSION=12080 DUMMY_NVML_DRIVER=560.35.03 DUMMY_CUDA_CC=6.1 doctor
expect_rc 1 "NVML driver 560 with compute capability 6.1 under cuda_v12"
finding problem driver "compute capability < 7 below driver 570"
DUMMY_CUDA_VERSION=12080 DUMMY_NVML_DRIVER=560.35.03 doctor
expect_rc 0 "NVML driver 560 with compute capability 8.9"
DUMMY_CUDA_VERSION=12080 doctor
expect_rc 0 "a CUDA 12.8 driver API only warns"
finding warn driver "the driver API is 12.8: Ollama's cuda_v13 runners need 13.0; cuda_v12 is used"
mv "$TREE/lib/ollama/cuda_v12" "$T/cuda_v12"
DUMMY_CUDA_VERSION=12080 doctor
expect_rc 1 "a CUDA 12.8 driver API with no cuda_v12 runner"
finding problem driver "there is no cuda_v12 (CPU only)"
mv "$T/cuda_v12" "$TREE/lib/ollama/cuda_v12"

note "the default backend (remote) with no vgpu-hostd"
vp doctor
expect_rc 1 "doctor with the default backend and no vgpu-hostd"
finding info driver "backend remote: cannot reach vgpu-hostd at vsock:2:7735"
finding problem driver "cuInit through the shim returns 100 (no device"
finding ok config "backend remote (default), endpoint vsock:2:7735"

note "the configuration file"
mkdir -p "$ROOT/etc/vgpu"
printf '# the service sees this\nbackend = native\nnative_cuda = %s\nnative_nvml = %s\nmemory_limit = 8G\n' \
    "$dummy/libcuda.so.1" "$dummy/libnvidia-ml.so.1" >"$ROOT/etc/vgpu/vgpu.conf"
vp doctor
expect_rc 0 "doctor with the backend in vgpu.conf"
finding ok config "backend native (/etc/vgpu/vgpu.conf), memory_limit 8G"
finding ok driver "1 CUDA device"
printf 'bogus = 1\n' >>"$ROOT/etc/vgpu/vgpu.conf"
vp doctor
expect_rc 1 "doctor with an unknown key in vgpu.conf"
finding problem config "/etc/vgpu/vgpu.conf:6: unknown key 'bogus'"
finding problem driver "cuInit through the shim returns 3"
rm -r "$ROOT/etc/vgpu"

note "a legacy hook"
printf '/opt/vgpu/libcuda.so.1\n' >"$ROOT/etc/ld.so.preload"
doctor
expect_rc 5 "doctor with /etc/ld.so.preload"
finding problem hooks "/etc/ld.so.preload"
rm "$ROOT/etc/ld.so.preload"

note "an upgraded binary"
sh "$VGPU_SOURCE_DIR/tests/fixtures/make-tree.sh" e "$T/fresh"
upgrade() {
    cp "$T/fresh/bin/ollama" "$TREE/bin/ollama.new" && mv "$TREE/bin/ollama.new" "$TREE/bin/ollama"
}
upgrade
doctor
expect_rc 0 "an upgraded binary of a wired install only warns"
finding warn record "$PREFIX/bin/ollama: .*the next start of the unit patches it again"

note "unwired"
rm -rf "$ROOT" "$SHIMS"
setup_era e
cp "$built/libvgpu-cuda.so.1" "$built/libvgpu-nvml.so.1" "$SHIMS/"
chmod 644 "$SHIMS"/*
vp_ollama --no-wire
expect_rc 0 "ollama, unwired"
doctor
expect_rc 0 "doctor on an unwired install"
finding ok record "$PREFIX: mechanism patch, delivery elf, not wired"
upgrade
doctor
expect_rc 1 "an upgraded binary with nothing to patch it again"
finding problem record "$PREFIX/bin/ollama: .*run \`vgpu-patch ensure\`"

note "the audit mechanism"
rm -rf "$ROOT" "$SHIMS"
setup_era e
cp "$built/libvgpu-cuda.so.1" "$built/libvgpu-nvml.so.1" "$SHIMS/"
chmod 644 "$SHIMS"/*
mkdir -p "$SD"
printf '[Service]\nExecStart=%s/bin/ollama serve\n' "$PREFIX" >"$SD/ollama.service"
vp_ollama --mechanism audit
expect_rc 0 "ollama --mechanism audit, wired"
doctor
expect_rc 0 "doctor on the audit mechanism"
finding ok record "$PREFIX: mechanism audit, delivery environment-file, wired in"
finding ok record "/var/lib/vgpu-patch/ollama.env is read by the unit"
finding ok shims "the shims and the audit module load here"
rm "$SD/ollama.service.d/50-vgpu-patch.conf"
doctor
expect_rc 1 "the drop-in that reads ollama.env is gone"
finding problem record "ollama.env is NOT read by the unit"
finding problem record "50-vgpu-patch.conf: .*starts of the unit no longer run ensure"
rm "$SD/vgpu-patch-ollama.path"
doctor
finding warn record "vgpu-patch-ollama.path: .*upgrades are patched only at the next start"

note "the launcher delivery"
vp_ollama --mechanism audit --delivery launcher
expect_rc 0 "ollama --mechanism audit --delivery launcher"
doctor
expect_rc 0 "doctor on the launcher delivery"
finding ok record "the unit starts Ollama through vgpu-launch"
printf '[Service]\nExecStart=\nExecStart=%s/bin/ollama serve\n' "$PREFIX" >"$SD/ollama.service.d/override.conf"
doctor
expect_rc 1 "a later drop-in sets ExecStart= again"
finding problem record "the unit's ExecStart= is $PREFIX/bin/ollama serve from .*override.conf, not vgpu-launch"
rm "$SD/ollama.service.d/override.conf"

note "era D does not read the NVML driver; era C picks cuda_v11 below driver API 12.1"
rm -rf "$ROOT" "$SHIMS"
setup_era d
cp "$built/libvgpu-cuda.so.1" "$built/libvgpu-nvml.so.1" "$SHIMS/"
chmod 644 "$SHIMS"/*
vp_ollama --no-wire
expect_rc 0 "ollama on era d"
DUMMY_CUDA_VERSION=12080 DUMMY_NVML_DRIVER=545.23.08 doctor
expect_rc 0 "era D with NVML driver 545 under cuda_v12"
finding ok driver "NVML driver 545.23.08 (not checked"
rm -rf "$ROOT" "$SHIMS"
setup_era c
cp "$built/libvgpu-cuda.so.1" "$built/libvgpu-nvml.so.1" "$SHIMS/"
chmod 644 "$SHIMS"/*
vp_ollama --no-wire
expect_rc 0 "ollama on era c"
DUMMY_CUDA_VERSION=12000 doctor
expect_rc 1 "era C with driver API 12.0 and no cuda_v11"
finding problem driver "driver API 12.0 / compute capability 8.9: Ollama C takes its cuda_v11 runner, which this install does not have"
mkdir "$TREE/lib/ollama/cuda_v11"
DUMMY_CUDA_VERSION=12000 doctor
expect_rc 0 "era C with driver API 12.0 and a cuda_v11 runner"
finding warn driver "Ollama C takes its cuda_v11 runner\$"
DUMMY_CUDA_VERSION=12080 doctor
expect_rc 0 "era C with driver API 12.8"
if grep -q "cuda_v1[13]" "$T/out"; then fail "era C judged by another era's rules: $(cat "$T/out")"; fi

note "a second install"
sh "$VGPU_SOURCE_DIR/tests/fixtures/make-tree.sh" e "$ROOT/opt/ollama"
doctor
grep -q "^  warn .*/opt/ollama/bin/ollama: release" "$T/out" ||
    fail "the second install is not a warning: $(cat "$T/out")"
echo "PASS"
