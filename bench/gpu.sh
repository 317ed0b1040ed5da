#!/usr/bin/env bash
# GPU benchmark on full-size random-weight SD-Turbo and SDXL-Turbo models, float32 and float16.
#
#   bash bench/gpu.sh prepare [DIR]   here (needs the fixture venv: torch, diffusers, onnx): writes
#                                     the four model folders' graphs (about 20 MB, no weights) to DIR
#                                     (default .cache/gpu-models; ignored by git)
#   bash bench/gpu-pack.sh            here: packs Node, the bundled benchmark, onnxruntime-node, the
#                                     Vulkan loaders and the graphs into .gpu-carry (bench/GPU.md)
#   bash bench/gpu.sh carried [CARRY] on the GPU machine, which has no Node: unpacks CARRY (default
#                                     .gpu-carry) into GPU_WORK (default /tmp/latentblend-gpu),
#                                     installs the Vulkan loaders if none is there, points Vulkan at
#                                     the NVIDIA driver, checks that a tensor reaches the GPU and comes
#                                     back, then measures as `run` does (DEVICE default webgpu), with
#                                     the log in RESULTS/gpu.log. The exact call: bench/GPU.md
#   bash bench/gpu.sh run [DIR]       where Node and this project's node_modules are installed
#                                     (DEVICE cuda needs onnxruntime-node's CUDA binaries; webgpu
#                                     needs a Vulkan driver and loader): writes the random weights
#                                     (about 30 GB for the four folders; python3 with numpy), then
#                                     prints per folder UNet ms per step, decode ms (one image; per
#                                     image in a batch of 4), on webgpu what keeping the UNet's tensors
#                                     on the GPU saves, a 10-frame transition with batch 1 and 4, and
#                                     the accuracy of the time-budget stop
#   bash bench/gpu.sh self-test       here, on the CPU: the same path on tiny configurations
#
# Environment: DEVICE (default cuda for run, webgpu for carried), SIZE (pixels, default 512),
# REPEATS (default 5), RESULTS (folder for gpu-*.json, default $OUT when set, else bench/results),
# BUDGET_S (seconds for the whole run, default 560, 540 for carried: folders that no longer fit are
# skipped, and each folder gets at most an equal share of what is left, FOLDER_S to set it),
# FOLDERS (which folders, in order), FIXTURES_VENV (venv for prepare, default tools/fixtures/.venv),
# KEEP_WEIGHTS=1 (carried: keep each folder's weights after measuring it; by default they are
# deleted to spare the disk).
# Tracing the SDXL-Turbo UNet graph took 10 minutes of the loaded 2-core machine.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
COMMAND="${1:-run}"
DIR="${2:-$ROOT/.cache/gpu-models}"
VENV="${FIXTURES_VENV:-$ROOT/tools/fixtures/.venv}"
read -r -a FOLDER_LIST <<<"${FOLDERS:-sd-turbo-fp32 sd-turbo-fp16 sdxl-turbo-fp32 sdxl-turbo-fp16}"
# How the measurements are started: from source (tsx) here, from the bundle when carried.
BENCH=(node --import tsx "$ROOT/bench/gpu.ts")
WEIGHTS_PY="$ROOT/tools/fixtures/make_weights.py"
NVIDIA_ICD=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
NVIDIA_EGL=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json

say() { printf 'gpu.sh: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

# Graph-only folders for ARCH prefix (sd-turbo, tiny-sd-turbo, …) in $2, float32 and float16.
prepare_graphs() {
  local prefix="$1" into="$2" arch
  [ -x "$VENV/bin/python" ] || die "no fixture venv at $VENV (bash tools/fixtures/run.sh creates it; or set FIXTURES_VENV)"
  mkdir -p "$into"
  for arch in sd-turbo sdxl-turbo; do
    say "graphs of $prefix$arch (float32, float16)…"
    nice -n 10 "$VENV/bin/python" tools/fixtures/make_full_arch.py "$prefix$arch" "$into/$arch-fp32"
    nice -n 10 "$VENV/bin/python" tools/fixtures/make_full_arch.py "$prefix$arch" "$into/$arch-fp16" --fp16
  done
}

# Checks what `run` needs, naming what is missing and how to get it.
preflight() {
  command -v node >/dev/null || die "node is not installed (Node 20 or later is needed; without it, use 'carried': bench/GPU.md)"
  local major
  major="$(node -p 'process.versions.node.split(".")[0]')"
  [ "$major" -ge 20 ] || die "node $(node -v) is too old; Node 20 or later is needed"
  [ -d node_modules/onnxruntime-node ] || die "node_modules/onnxruntime-node is missing: run npm ci here first (or use 'carried': bench/GPU.md)"
  check_folders
}

check_folders() {
  local folder
  for folder in "${FOLDER_LIST[@]}"; do
    [ -f "$DIR/$folder/model_index.json" ] || die "$DIR/$folder has no graphs: run 'bash bench/gpu.sh prepare' where the fixture venv is, and bring $DIR along"
    if [ -f "$DIR/$folder/weights.json" ]; then
      python3 -c 'import numpy' 2>/dev/null || die "python3 with numpy is needed to write the weights of $folder"
    fi
  done
  if command -v nvidia-smi >/dev/null; then nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader >&2 || true; fi
}

# Writes weights and measures each folder of $@ on $device, stopping before the budget ends.
measure() {
  local device="$1" size="$2" repeats="$3" frames="$4" budget="$5"
  shift 5
  local results="${RESULTS:-${OUT:-$ROOT/bench/results}}"
  mkdir -p "$results"
  local folder started took left=$# share status
  for folder in "$@"; do
    if [ "$SECONDS" -ge "$((budget - 30))" ]; then say "skipping $folder: the time budget ($budget s) is spent"; left=$((left - 1)); continue; fi
    started=$SECONDS
    share=$(((budget - SECONDS) / left))
    [ -n "${FOLDER_S:-}" ] && share=$FOLDER_S
    [ "$share" -ge 60 ] || share=60
    [ "$share" -le "$((budget - SECONDS))" ] || share=$((budget - SECONDS))
    # Folders with their weights inside (the committed tiny fixtures) have no weights.json.
    if [ -f "$DIR/$folder/weights.json" ]; then
      python3 "$WEIGHTS_PY" "$DIR/$folder" || { say "$folder: writing the weights failed"; left=$((left - 1)); continue; }
    fi
    say "$folder: measuring on $device, at most $((share - (SECONDS - started))) s…"
    status=0
    timeout --kill-after=10 "$((share - (SECONDS - started) > 10 ? share - (SECONDS - started) : 10))" "${BENCH[@]}" --device "$device" --size "$size" \
      --repeats "$repeats" --frames "$frames" --out "$results/gpu-$folder.json" "$folder=$DIR/$folder" || status=$?
    case "$status" in
      0) ;;
      124 | 137) say "$folder: stopped at its time share; the JSON holds what was measured before" ;;
      *) say "$folder: the measurement failed or was incomplete (exit $status; see above and the JSON's errors)" ;;
    esac
    [ "${CLEAN_WEIGHTS:-0}" = 1 ] && find "$DIR/$folder" -name '*.onnx_data' -delete
    took=$((SECONDS - started))
    left=$((left - 1))
    say "$folder: $took s (weights and measurements)"
  done
}

# Unpacks a .tar.xz with python3 (there for the weights anyway; tar may lack xz there).
untar() {
  python3 - "$1" "$2" <<'PY'
import sys, tarfile
with tarfile.open(sys.argv[1], "r:xz") as archive:
    if hasattr(tarfile, "data_filter"):
        archive.extractall(sys.argv[2], filter="data")
    else:
        archive.extractall(sys.argv[2])
PY
}

# The part of `carried` whose output goes to the log.
carried() {
  local carry="$1" work="$2"
  [ -f "$carry/runtime.tar.xz" ] && [ -f "$carry/graphs.tar.xz" ] || die "$carry does not hold a pack: run 'bash bench/gpu-pack.sh' where Node is (bench/GPU.md)"
  say "$(head -1 "$carry/MANIFEST" 2>/dev/null || echo 'no MANIFEST')"
  # A second run on the same machine keeps what the first unpacked and wrote (weights too).
  if ! cmp -s "$carry/MANIFEST" "$work/MANIFEST"; then
    rm -rf "$work"
    mkdir -p "$work/models"
    untar "$carry/runtime.tar.xz" "$work"
    untar "$carry/graphs.tar.xz" "$work/models"
    cp "$carry/MANIFEST" "$work/MANIFEST"
    say "unpacked into $work in $SECONDS s"
  fi
  if ! ldconfig -p 2>/dev/null | grep -q 'libvulkan\.so\.1'; then
    if [ -d "$carry/debs" ] && [ "$(id -u)" = 0 ]; then
      local deb
      for deb in "$carry"/debs/*.deb; do dpkg -x "$deb" /; done
      ldconfig
      say "installed the loaders: $(cd "$carry/debs" && ls | tr '\n' ' ')"
    else
      say "no Vulkan loader here, and none can be installed (debs in $carry: $([ -d "$carry/debs" ] && echo yes || echo no); root: $([ "$(id -u)" = 0 ] && echo yes || echo no))"
    fi
  fi
  if [ -z "${VK_DRIVER_FILES:-}${VK_ICD_FILENAMES:-}" ] && [ -f "$NVIDIA_ICD" ]; then export VK_DRIVER_FILES="$NVIDIA_ICD"; fi
  if [ -z "${__EGL_VENDOR_LIBRARY_FILENAMES:-}" ] && [ -f "$NVIDIA_EGL" ]; then export __EGL_VENDOR_LIBRARY_FILENAMES="$NVIDIA_EGL"; fi
  export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}"
  say "Vulkan: loader $(ldconfig -p 2>/dev/null | grep -o 'libvulkan\.so\.1 .*=> [^ ]*' | head -1 || echo none); driver files ${VK_DRIVER_FILES:-${VK_ICD_FILENAMES:-none set, the loader searches}}"
  local node="$work/bin/node"
  export PATH="$work/bin:$PATH"
  BENCH=("$node" "$work/bench/gpu.mjs")
  local available
  available="$("${BENCH[@]}" --list-devices)"
  say "node $("$node" -v) at $node; devices: $available"
  DIR="$work/models"
  if [ -z "${FOLDERS:-}" ]; then read -r -a FOLDER_LIST <<<"$(sed -n 's/^folders: //p' "$work/MANIFEST")"; fi
  check_folders
  local device="${DEVICE:-webgpu}"
  # The pack's onnxruntime-node has no CUDA provider (its binaries are fetched over the network).
  [[ " $available " == *" $device "* ]] || die "the packed onnxruntime-node cannot use $device (it can: $available)"
  [ "$device" != webgpu ] || "${BENCH[@]}" --device "$device" --probe || die "a tensor could not go to $device and back: see above (driver files, loader); nothing measured"
  CLEAN_WEIGHTS="${CLEAN_WEIGHTS:-$([ "${KEEP_WEIGHTS:-0}" = 1 ] && echo 0 || echo 1)}" \
    measure "$device" "${SIZE:-512}" "${REPEATS:-5}" "${FRAMES:-10}" "${BUDGET_S:-540}" "${FOLDER_LIST[@]}"
  say "done in $SECONDS s; results: $(cd "${RESULTS:-${OUT:-$ROOT/bench/results}}" && ls gpu-*.json 2>/dev/null | tr '\n' ' ')"
}

case "$COMMAND" in
  prepare)
    prepare_graphs "" "$DIR"
    du -sh "$DIR" >&2
    ;;
  run)
    preflight
    DEVICE="${DEVICE:-cuda}"
    available="$("${BENCH[@]}" --list-devices)"
    if [[ " $available " != *" $DEVICE "* ]]; then
      die "onnxruntime-node here cannot use $DEVICE (it can: $available): CUDA's binaries are fetched by its install script (ONNXRUNTIME_NODE_INSTALL=cuda12 node node_modules/onnxruntime-node/script/install.js, needs network); webgpu (Vulkan) is bundled; or run with DEVICE=cpu"
    fi
    [ "$DEVICE" != webgpu ] || "${BENCH[@]}" --device "$DEVICE" --probe || die "a tensor could not go to $DEVICE and back: see above"
    measure "$DEVICE" "${SIZE:-512}" "${REPEATS:-5}" "${FRAMES:-10}" "${BUDGET_S:-560}" "${FOLDER_LIST[@]}"
    ;;
  carried)
    CARRY_DIR="$(realpath -m "${2:-$ROOT/.gpu-carry}")"
    RESULTS="${RESULTS:-${OUT:-$ROOT/bench/results}}"
    mkdir -p "$RESULTS"
    carried "$CARRY_DIR" "${GPU_WORK:-/tmp/latentblend-gpu}" 2>&1 | tee -a "$RESULTS/gpu.log"
    ;;
  self-test)
    TMP="$(mktemp -d)"
    trap 'rm -rf "$TMP"' EXIT
    DIR="$TMP"
    prepare_graphs "tiny-" "$DIR"
    RESULTS="$TMP/results" measure cpu 64 1 4 600 "${FOLDER_LIST[@]}"
    for folder in "${FOLDER_LIST[@]}"; do [ -s "$TMP/results/gpu-$folder.json" ] || die "self-test: no result for $folder"; done
    say "self-test passed: graphs, weights and measurements of the four tiny folders on the CPU"
    ;;
  *)
    die "unknown command $COMMAND; use prepare, run, carried or self-test"
    ;;
esac
