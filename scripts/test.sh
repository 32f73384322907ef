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
results="$root/.tools/test-results"
mkdir -p "$results"
rm -f "$results"/*.json

step "unit tests"
npx --no-install jest --selectProjects unit --json --outputFile="$results/unit.json"

# Two files at a time: most of an integration file's time is spent waiting on timers and polls,
# and each file has a shard, bucket and task queues of its own on the shared servers.
# NSTANCE_TEST_INTEGRATION_WORKERS=1 runs them one after the other.
workers="${NSTANCE_TEST_INTEGRATION_WORKERS:-2}"
step "integration tests (Temporal dev server + moto, $workers files at a time)"
npx --no-install jest --selectProjects integration --maxWorkers="$workers" --json --outputFile="$results/integration.json"

# docker-compose.yml: `docker compose config` where the plugin exists; otherwise the same
# loader (compose-go, scripts/compose-check) built with Go, since CI's docker lacks the plugin.
if command -v docker >/dev/null 2>&1 && docker compose version >/dev/null 2>&1; then
  step "docker compose config"
  docker compose config -q
elif command -v go >/dev/null 2>&1; then
  step "docker-compose.yml (compose-go loader, scripts/compose-check)"
  checker="$root/.tools/compose-check"
  src="$root/scripts/compose-check"
  # Rebuild only when the source or its pinned modules changed: repeat runs stay quick.
  if [[ ! -x "$checker" || "$src/main.go" -nt "$checker" || "$src/go.mod" -nt "$checker" \
        || "$src/go.sum" -nt "$checker" ]]; then
    (cd "$src" && go build -trimpath -buildvcs=false -o "$checker" .)
  fi
  "$checker" docker-compose.yml
else
  echo "(neither the docker compose plugin nor go is installed: skipping docker-compose.yml validation)"
fi

# One closing line for CI, over both jest runs.
node -e '
  const fs = require("fs");
  let passed = 0, failed = 0;
  for (const f of process.argv.slice(1)) {
    const r = JSON.parse(fs.readFileSync(f, "utf8"));
    passed += r.numPassedTests;
    failed += r.numFailedTests;
  }
  console.log(`tests: ${passed} passed, ${failed} failed`);
' "$results/unit.json" "$results/integration.json"
