#!/usr/bin/env bash
# `npm run bench [-- NAME...]`: builds, then runs dist/bench/<NAME>.js for each NAME given,
# or every benchmark below when none is. Each starts its own private Temporal dev server
# and moto (test/support/global-setup.ts) and writes bench/results/<NAME>.json.
#
#   failover   kill -9 of the shard leader -> ENI attached to the new leader (bench/failover.ts)
#     BENCH_RUNS                     failovers measured (default 7)
#     BENCH_HEARTBEAT_TIMEOUT        leader heartbeat timeout (default 4s, the worker's default)
#
#   scale      0 -> N with `nstance group scale` against a direct-SDK floor, through a fault proxy
#              enforcing EC2's token buckets and ClientToken rules; then an expiry replacement
#              with max_surge (bench/scale.ts, bench/scale/)
#     BENCH_SIZES                    sizes measured, in order (default "500,2000"; "none": only the replacement)
#     BENCH_REPLACE_SIZE             size of the expiry replacement (default: the largest size; "off" skips it)
#     BENCH_MAX_SURGE                the group's max_surge during the replacement (default "10%")
#     BENCH_REPLACE_EXPIRY           the cohort's eligible_age, forced_age an hour later (default: 1.5 x the time that size took to be
#                                    in service, at least 2m)
#     BENCH_FLOOR_CONCURRENCY        concurrent RunInstances calls of the floor (default 20)
#     BENCH_HOLD                     steady state watched after all are in service (default 60s)
#     BENCH_PHASE_TIMEOUT            a phase that takes longer fails the run (default 45m)
#     BENCH_FLEET_DISCOVERY          told (default): the bench tells the simulated fleet which instances EC2
#                                    launched (the proxy's ledger), as instances boot their own agents;
#                                    poll: the fleet describes the shard's running instances every poll
#     BENCH_FLEET_POLL               how often the simulated fleet looks (default 1s)
#     BENCH_FLEET_HEALTH_INTERVAL    agents' health interval (default: what the agent API hands out)
#     BENCH_FLEET_USERDATA_CONCURRENCY  userdata reads in flight in the fleet (default 8)
#     BENCH_SAMPLE                   sampling interval of EC2, the group and RSS (default 1s; stretched
#                                    while describing EC2 is slow)
#     BENCH_CREATE_RATE_LIMIT        overrides shard.create_rate_limit (default: the example config's)
#     BENCH_CONFIG                   config to start from (default: Nstance's example config)
#     BENCH_SUGGEST_CONTINUE_AS_NEW_AT  dev server's continue-as-new suggestion (default 4096, Temporal's)
#     BENCH_LEADER_HEARTBEAT_TIMEOUT leader heartbeat timeout of the worker (default 4s)
#     BENCH_OUT                      results file (default bench/results/scale.json)
#     BENCH_KEEP_LOGS=1              keep the worker/fleet logs and configs (their directory is printed)
#
#   agent-api, gc                  see the header of bench/agent-api.ts and bench/gc.ts for their knobs.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

all=(failover scale agent-api gc)
names=("$@")
if [ ${#names[@]} -eq 0 ]; then names=("${all[@]}"); fi

bash scripts/tools.sh --no-npm >/dev/null
npm run build --silent

status=0
for name in "${names[@]}"; do
  script="dist/bench/$name.js"
  if [ ! -f "$script" ]; then
    if [ $# -eq 0 ]; then
      echo "bench: $name is not built here (no bench/$name.ts yet); skipped"
      continue
    fi
    known="$(cd dist/bench && ls -- *.js 2>/dev/null | sed 's/\.js$//' | tr '\n' ' ')"
    echo "bench: no benchmark \"$name\" (dist/bench has: ${known:-none})" >&2
    exit 2
  fi
  echo "== bench $name"
  NODE_NO_WARNINGS=1 node "$script" || status=$?
done
exit "$status"
