#!/usr/bin/env bash
# Headless Chromium for the studio's browser tests: Debian's `chromium` package, never a
# browser downloaded by a test tool. Installs it with apt-get when missing and allowed.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
  exit 0
fi
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
  /usr/bin/chromium --version
elif command -v apt-get >/dev/null 2>&1 && command -v sudo >/dev/null 2>&1; then
  sudo apt-get update -qq
  sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
  /usr/bin/chromium --version
else
  echo "warning: /usr/bin/chromium is missing and cannot be installed here; the studio's browser tests will fail until Debian's chromium package (or a Chromium at /usr/bin/chromium) is installed." >&2
fi
