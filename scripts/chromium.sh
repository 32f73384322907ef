#!/usr/bin/env bash
# Makes sure a headless-capable Chromium is installed for the browser tests and the docs'
# screenshots, from Debian's own packages (apt-get). Prints the browser's path on stdout.
# Idempotent: when a browser is found (NSTANCE_CHROMIUM, or chromium on PATH) it installs nothing.
# Exit 1 with a message on stderr when no browser can be had (not root, no apt-get, no network).
set -euo pipefail

find_browser() {
  if [ -n "${NSTANCE_CHROMIUM:-}" ] && [ -x "$NSTANCE_CHROMIUM" ]; then echo "$NSTANCE_CHROMIUM"; return 0; fi
  local name
  for name in chromium chromium-browser; do
    if command -v "$name" >/dev/null 2>&1; then command -v "$name"; return 0; fi
  done
  return 1
}

if find_browser; then exit 0; fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "chromium.sh: no chromium on PATH and no apt-get to install it with; set NSTANCE_CHROMIUM to a Chromium binary" >&2
  exit 1
fi
runner=()
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then runner=(sudo -n); else
    echo "chromium.sh: installing chromium needs root (apt-get install chromium); set NSTANCE_CHROMIUM to a Chromium binary instead" >&2
    exit 1
  fi
fi
log="$(mktemp -t nstance-chromium-install.XXXXXX)"
echo "chromium.sh: installing Debian's chromium (log: $log)" >&2
if ! { "${runner[@]}" apt-get update && DEBIAN_FRONTEND=noninteractive "${runner[@]}" apt-get install -y --no-install-recommends chromium fonts-dejavu-core; } >"$log" 2>&1; then
  echo "chromium.sh: apt-get could not install chromium; last lines of $log:" >&2
  tail -n 20 "$log" >&2
  exit 1
fi
find_browser || { echo "chromium.sh: chromium installed but not found on PATH" >&2; exit 1; }
