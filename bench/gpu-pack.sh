#!/usr/bin/env bash
# Packs what the GPU machine lacks for `bash bench/gpu.sh carried` into one ignored folder that the
# device tool's `run` carries (bench/GPU.md): that machine has python3 with numpy but no Node, no
# npm, no network and no Vulkan loader, and what travels (working tree and carried paths) must stay
# under 64 MiB.
#
#   bash bench/gpu-pack.sh [CARRY]     (default CARRY: .gpu-carry, ignored by git)
#
# CARRY then holds
#   runtime.tar.xz   bin/node (this machine's Node, stripped), bench/gpu.mjs (bench/gpu.ts bundled by
#                    esbuild; sharp is left out: the benchmark reads no pictures), node_modules/
#                    onnxruntime-node (linux/x64 binaries only; its WebGPU provider runs on Vulkan)
#                    and onnxruntime-common, fixtures/lpips/tiny-lpips.onnx, fixtures/identity/
#   graphs.tar.xz    the model folders (graphs, configs, tokenizers, weights.json; no weights)
#   debs/            the Vulkan and GL loader packages (apt-get download), unpacked into / there
#   MANIFEST         what went in, sizes, and the commit it was packed from
# and the script prints the size of what would travel: the working tree (tracked and untracked
# files that git does not ignore) plus CARRY, failing when it is over the limit.
#
# Environment: GRAPHS (folder of model folders, default .cache/gpu-models, from
# `bash bench/gpu.sh prepare`), FOLDERS (which of them, default the four that exist, in the order
# gpu.sh measures them), NODE_BIN (the Node to carry, default the one on PATH: must be Linux x86-64,
# Node 20 or later), PACK_FAST=1 (light compression and no strip: for tests), PACK_DEBS=0 (no
# loader packages: for tests and machines without apt), LIMIT_MIB (default 64).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
CARRY="$(realpath -m "${1:-$ROOT/.gpu-carry}")"
GRAPHS="${GRAPHS:-$ROOT/.cache/gpu-models}"
NODE_BIN="${NODE_BIN:-$(command -v node || true)}"
LIMIT_MIB="${LIMIT_MIB:-64}"
# The Vulkan loader, and the GL/EGL loaders the NVIDIA driver's libraries expect beside it
# (the device tool's README lists this set as the one that ran there).
DEBS=(libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2)

say() { printf 'gpu-pack.sh: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }
mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }

[ -n "$NODE_BIN" ] && [ -x "$NODE_BIN" ] || die "no Node to carry: put node on PATH or set NODE_BIN"
[ "$("$NODE_BIN" -p 'process.platform + "/" + process.arch')" = linux/x64 ] || die "$NODE_BIN is not a Linux x86-64 Node (the GPU machine is x86-64)"
[ "$("$NODE_BIN" -p 'process.versions.node.split(".")[0]')" -ge 20 ] || die "$NODE_BIN is older than Node 20"
ORT="$ROOT/node_modules/onnxruntime-node"
ORT_BIN="$ORT/bin/napi-v6/linux/x64"
[ -f "$ORT_BIN/libonnxruntime.so.1" ] || die "$ORT_BIN has no libonnxruntime.so.1: run npm ci first"
[ -d "$ROOT/node_modules/onnxruntime-common/dist" ] || die "node_modules/onnxruntime-common is missing: run npm ci first"
for fixture in fixtures/lpips/tiny-lpips.onnx fixtures/identity/identity-float32.onnx fixtures/identity/identity-float16.onnx; do
  [ -f "$fixture" ] || die "$fixture is missing"
done

# The four full-size graphs (no weights) are committed compressed (bench/gpu-graphs.tar.xz, 0.3 MiB;
# made by `gpu.sh prepare`, which takes 20–40 minutes of this CPU): unpacked when GRAPHS has none.
command -v xz >/dev/null || die "xz is not installed (apt-get install xz-utils)"
COMMITTED_GRAPHS="$ROOT/bench/gpu-graphs.tar.xz"
if ! ls "$GRAPHS"/*/model_index.json >/dev/null 2>&1 && [ -f "$COMMITTED_GRAPHS" ]; then
  say "unpacking the committed graphs ($COMMITTED_GRAPHS) into $GRAPHS…"
  # Into a temporary folder first: an interrupted unpack leaves no half set of folders behind.
  UNPACKED="$(mktemp -d "${GRAPHS%/}.unpacking.XXXXXX")"
  tar -C "$UNPACKED" -xJf "$COMMITTED_GRAPHS" || { rm -rf "$UNPACKED"; die "cannot unpack $COMMITTED_GRAPHS"; }
  mkdir -p "$GRAPHS"
  for folder in "$UNPACKED"/*; do rm -rf "$GRAPHS/$(basename "$folder")"; mv "$folder" "$GRAPHS/"; done
  rm -rf "$UNPACKED"
fi

if [ -z "${FOLDERS:-}" ]; then
  FOLDERS=""
  for folder in sd-turbo-fp16 sdxl-turbo-fp16 sd-turbo-fp32 sdxl-turbo-fp32; do
    [ -f "$GRAPHS/$folder/model_index.json" ] && FOLDERS="$FOLDERS $folder"
  done
fi
read -r -a FOLDER_LIST <<<"$FOLDERS"
[ "${#FOLDER_LIST[@]}" -gt 0 ] || die "no model folders in $GRAPHS: run 'bash bench/gpu.sh prepare' first (or set GRAPHS)"
for folder in "${FOLDER_LIST[@]}"; do
  [ -f "$GRAPHS/$folder/model_index.json" ] || die "$GRAPHS/$folder is not a model folder"
done

if [ "${PACK_FAST:-0}" = 1 ]; then XZ=(xz -0 -T0); else XZ=(xz -9 -T0); fi

STAGE="$(mktemp -d)"
NEW="$CARRY.partial"
trap 'rm -rf "$STAGE" "$NEW"' EXIT
rm -rf "$NEW"
mkdir -p "$NEW" "$STAGE/runtime/bin" "$STAGE/runtime/bench" "$STAGE/runtime/node_modules/onnxruntime-node/bin/napi-v6/linux" \
  "$STAGE/runtime/fixtures/lpips" "$STAGE/runtime/fixtures/identity"

say "Node $("$NODE_BIN" -v) from $NODE_BIN"
cp "$NODE_BIN" "$STAGE/runtime/bin/node"
# The distribution's Node carries debug information: 13 MB less without it.
if [ "${PACK_FAST:-0}" != 1 ] && command -v strip >/dev/null; then strip "$STAGE/runtime/bin/node"; fi

say "bundling bench/gpu.ts…"
"$NODE_BIN" --input-type=module -e '
  import { createRequire } from "node:module";
  const require = createRequire(process.cwd() + "/package.json");
  const esbuild = require("esbuild");
  // sharp (native, with libvips: 18 MB) is imported by the platform module for pictures, which the
  // benchmark never reads: a stand-in that fails loudly if that ever changes.
  const noSharp = { name: "no-sharp", setup(build) {
    build.onResolve({ filter: /^sharp$/ }, () => ({ path: "sharp", namespace: "no-sharp" }));
    build.onLoad({ filter: /.*/, namespace: "no-sharp" }, () => ({
      contents: "export default function sharp() { throw new Error(\"sharp is not in the GPU benchmark bundle (bench/gpu-pack.sh)\"); }",
    }));
  } };
  await esbuild.build({ entryPoints: ["bench/gpu.ts"], outfile: process.argv[1], bundle: true, platform: "node",
    format: "esm", target: "node20", external: ["onnxruntime-node", "onnxruntime-common", "esbuild"],
    plugins: [noSharp], logLevel: "warning" });
' "$STAGE/runtime/bench/gpu.mjs"

cp "$ORT/package.json" "$STAGE/runtime/node_modules/onnxruntime-node/"
cp -r "$ORT/dist" "$STAGE/runtime/node_modules/onnxruntime-node/"
cp -r "$ORT_BIN" "$STAGE/runtime/node_modules/onnxruntime-node/bin/napi-v6/linux/"
mkdir -p "$STAGE/runtime/node_modules/onnxruntime-common"
cp "$ROOT/node_modules/onnxruntime-common/package.json" "$STAGE/runtime/node_modules/onnxruntime-common/"
cp -r "$ROOT/node_modules/onnxruntime-common/dist" "$STAGE/runtime/node_modules/onnxruntime-common/"
cp fixtures/lpips/tiny-lpips.onnx "$STAGE/runtime/fixtures/lpips/"
cp fixtures/identity/identity-*.onnx "$STAGE/runtime/fixtures/identity/"

say "compressing the runtime (${XZ[*]})…"
tar -C "$STAGE/runtime" -cf - . | nice -n 10 "${XZ[@]}" >"$NEW/runtime.tar.xz"
say "compressing the graphs of ${FOLDER_LIST[*]}…"
# Weights written here (make_weights.py) stay behind: the GPU machine writes its own.
tar -C "$GRAPHS" --dereference --exclude='*.onnx_data' --exclude='*.partial' -cf - "${FOLDER_LIST[@]}" | nice -n 10 "${XZ[@]}" >"$NEW/graphs.tar.xz"

if [ "${PACK_DEBS:-1}" != 0 ]; then
  say "downloading the loader packages (${DEBS[*]})…"
  mkdir -p "$NEW/debs" /tmp/gpu-pack-amd64/partial
  apt_options=(-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/gpu-pack-amd64)
  apt-get "${apt_options[@]}" update >/dev/null || die "apt-get update failed (network?); PACK_DEBS=0 packs without the loaders"
  (cd "$NEW/debs" && apt-get "${apt_options[@]}" download "${DEBS[@]}" >/dev/null) || die "apt-get download ${DEBS[*]} failed"
fi

{
  echo "packed $(date -u +%Y-%m-%dT%H:%M:%SZ) from $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet HEAD 2>/dev/null || echo ' (with uncommitted changes)')"
  echo "node $("$NODE_BIN" -v), onnxruntime-node $("$NODE_BIN" -p "require('$ORT/package.json').version")"
  echo "folders: ${FOLDER_LIST[*]}"
  (cd "$NEW" && find . -type f ! -name MANIFEST -printf '%P %s\n' | sort)
} >"$NEW/MANIFEST"

# What travels: tracked files and untracked ones git does not ignore, plus the carried folder;
# measured before the new pack replaces the old one, so an oversized pack is never left to carry.
tree_bytes=$(git ls-files -z --cached --others --exclude-standard | xargs -0 stat -c %s 2>/dev/null | awk '{ s += $1 } END { print s + 0 }')
carry_bytes=$(find "$NEW" -type f -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }')
total=$((tree_bytes + carry_bytes))
while read -r name bytes; do say "  $name: $(mib "$bytes")"; done < <(find "$NEW" -type f -printf '%P %s\n' | sort)
say "working tree $(mib "$tree_bytes") + $(basename "$CARRY") $(mib "$carry_bytes") = $(mib "$total") of the ${LIMIT_MIB} MiB that may travel"
[ "$total" -le $((LIMIT_MIB * 1048576)) ] || die "over the limit: pack fewer FOLDERS (e.g. FOLDERS='sd-turbo-fp16 sdxl-turbo-fp16')"

rm -rf "$CARRY"
mv "$NEW" "$CARRY"
