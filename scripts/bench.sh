#!/usr/bin/env bash
# `npm run bench`: leader failover benchmark (kill -9 of the leader -> ENI attached
# to the new leader). Starts its own Temporal dev server and moto; see bench/failover.ts.
# Env: BENCH_RUNS (default 7), BENCH_HEARTBEAT_TIMEOUT (default 4s, the worker default).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/tools.sh --no-npm >/dev/null
npm run build
NODE_NO_WARNINGS=1 node dist/bench/failover.js
