#!/usr/bin/env bash
# System packages the tests use, from Debian, never downloaded by a test tool:
#   chromium      headless browser for the studio's and the browser engine's tests
#   redis-server  the BullMQ queue for the worker-pool tests (each test starts its own on a free port)
#   libvulkan1    the Vulkan loader, for onnxruntime-node's WebGPU provider (Dawn runs on Vulkan on
#                 Linux); the tests point it at Chromium's SwiftShader driver, a GPU on the CPU
# Installs what is missing with apt-get when allowed; otherwise warns which tests will fail.
set -euo pipefail
missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
{ ldconfig -p 2>/dev/null || /sbin/ldconfig -p 2>/dev/null; } | grep -q 'libvulkan\.so\.1 ' || missing+=(libvulkan1)
if [ "${#missing[@]}" -eq 0 ]; then
  exit 0
fi
SUDO=""
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO=sudo; else SUDO=none; fi
fi
if command -v apt-get >/dev/null 2>&1 && [ "$SUDO" != none ]; then
  $SUDO apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  echo "installed: ${missing[*]}" >&2
else
  echo "warning: missing ${missing[*]} and cannot install here; the browser, worker-pool and Node WebGPU tests will fail until Debian's packages are installed." >&2
fi
