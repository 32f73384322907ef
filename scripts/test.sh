#!/usr/bin/env bash
# The project's test command (`npm test`, and CI through .ci/run). Stops at the first
# failure. Needs no running stack: integration tests start private servers
# (test/support/global-setup.ts) from the pinned binaries tools.sh installs.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

step() { printf '\n== %s\n' "$*"; }

step "tools (pinned Temporal CLI, test server, moto; node_modules)"
bash scripts/tools.sh

step "build (type-check and compile)"
npm run build

# --no-install: jest comes from node_modules; never let npx fetch a different one.
step "unit tests"
npx --no-install jest --selectProjects unit

step "integration tests (Temporal dev server + moto)"
npx --no-install jest --selectProjects integration --runInBand

if command -v docker >/dev/null 2>&1; then
  if docker compose version >/dev/null 2>&1; then
    step "docker compose config"
    docker compose config -q
  else
    echo "(docker compose plugin not installed: skipping docker-compose.yml validation)"
  fi
fi
