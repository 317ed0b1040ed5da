#!/usr/bin/env bash
# GPU benchmark on full-size random-weight SD-Turbo and SDXL-Turbo models, float32 and float16.
#
#   bash bench/gpu.sh prepare [DIR]   here (needs the fixture venv: torch, diffusers, onnx): writes
#                                     the four model folders' graphs (a few MB, no weights) to DIR
#                                     (default .cache/gpu-models; ignored by git)
#   bash bench/gpu.sh run [DIR]       on the GPU machine (needs node >= 20 with this project's
#                                     node_modules, onnxruntime-node's CUDA binaries, python3 with
#                                     numpy): writes the random weights (about 30 GB), then prints
#                                     UNet ms per step, decode ms (one image; per image in a batch of
#                                     4), a 10-frame transition with batch 1 and 4, and the accuracy of
#                                     the time-budget stop, per folder; under 10 minutes on an H100/H200
#   bash bench/gpu.sh self-test       here, on the CPU: the same path on tiny configurations
#
# Environment: DEVICE (default cuda), SIZE (pixels, default 512), REPEATS (default 5),
# RESULTS (folder for gpu-*.json, default bench/results, or $OUT when set),
# BUDGET_S (seconds for the whole run, default 560: models that no longer fit are skipped),
# FIXTURES_VENV (venv for prepare, default tools/fixtures/.venv).
# The GPU machine gets DIR with the working tree (graphs only, about 20 MB: the SDXL-Turbo UNet graph
# alone is 4 MB; tracing it took 10 minutes of the loaded 2-core machine).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
COMMAND="${1:-run}"
DIR="${2:-$ROOT/.cache/gpu-models}"
VENV="${FIXTURES_VENV:-$ROOT/tools/fixtures/.venv}"
FOLDERS=(sd-turbo-fp32 sd-turbo-fp16 sdxl-turbo-fp32 sdxl-turbo-fp16)

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
  command -v node >/dev/null || die "node is not installed (Node 20 or later is needed)"
  local major
  major="$(node -p 'process.versions.node.split(".")[0]')"
  [ "$major" -ge 20 ] || die "node $(node -v) is too old; Node 20 or later is needed"
  [ -d node_modules/onnxruntime-node ] || die "node_modules/onnxruntime-node is missing: run npm ci here first (or carry node_modules)"
  python3 -c 'import numpy' 2>/dev/null || die "python3 with numpy is needed to write the weights"
  local folder
  for folder in "${FOLDERS[@]}"; do
    [ -f "$DIR/$folder/weights.json" ] || die "$DIR/$folder has no graphs: run 'bash bench/gpu.sh prepare' where the fixture venv is, and bring $DIR along"
  done
  if command -v nvidia-smi >/dev/null; then nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader >&2 || true; fi
}

# Writes weights and measures each folder of $1 (a list) on $DEVICE, stopping before the budget ends.
measure() {
  local device="$1" size="$2" repeats="$3" frames="$4" budget="$5"
  shift 5
  local results="${RESULTS:-${OUT:-$ROOT/bench/results}}"
  mkdir -p "$results"
  local folder started took
  for folder in "$@"; do
    if [ "$SECONDS" -ge "$budget" ]; then say "skipping $folder: the time budget ($budget s) is spent"; continue; fi
    started=$SECONDS
    python3 tools/fixtures/make_weights.py "$DIR/$folder"
    if ! timeout $((budget - SECONDS > 30 ? budget - SECONDS : 30)) node --import tsx bench/gpu.ts --device "$device" --size "$size" \
        --repeats "$repeats" --frames "$frames" --out "$results/gpu-$folder.json" "$folder=$DIR/$folder"; then
      say "$folder: the measurement failed or ran out of time (see above)"
    fi
    took=$((SECONDS - started))
    say "$folder: $took s (weights and measurements)"
  done
}

case "$COMMAND" in
  prepare)
    prepare_graphs "" "$DIR"
    du -sh "$DIR" >&2
    ;;
  run)
    preflight
    DEVICE="${DEVICE:-cuda}"
    if ! node --import tsx -e "import('./src/runtime/onnx.ts').then((m) => process.exit(m.availableDevices().includes(process.argv[1]) ? 0 : 3))" "$DEVICE"; then
      die "onnxruntime-node here cannot use $DEVICE: its GPU binaries are fetched by its install script (ONNXRUNTIME_NODE_INSTALL=cuda12 node node_modules/onnxruntime-node/script/install.js, needs network), or run with DEVICE=cpu"
    fi
    measure "$DEVICE" "${SIZE:-512}" "${REPEATS:-5}" 10 "${BUDGET_S:-560}" "${FOLDERS[@]}"
    ;;
  self-test)
    TMP="$(mktemp -d)"
    trap 'rm -rf "$TMP"' EXIT
    DIR="$TMP"
    prepare_graphs "tiny-" "$DIR"
    RESULTS="$TMP/results" measure cpu 64 1 4 600 "${FOLDERS[@]}"
    for folder in "${FOLDERS[@]}"; do [ -s "$TMP/results/gpu-$folder.json" ] || die "self-test: no result for $folder"; done
    say "self-test passed: graphs, weights and measurements of the four tiny folders on the CPU"
    ;;
  *)
    die "unknown command $COMMAND; use prepare, run or self-test"
    ;;
esac
