#!/usr/bin/env bash
# `npm run demo`: the whole system on a laptop. Installs the pinned tools, builds,
# starts Temporal (Web UI) and moto, seeds moto with what the example config refers
# to, applies that config and runs a worker until Ctrl-C, then stops everything.
# Ports: TEMPORAL_PORT (7233), TEMPORAL_UI_PORT (8233), MOTO_PORT (4566), CODEC_SERVER_PORT (8234).
# Payloads are encrypted (a fresh key in .stack/payload.key); the Web UI decodes them through
# `nstance codec-server`, which the demo starts and the UI is pointed at.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

export TEMPORAL_PORT="${TEMPORAL_PORT:-7233}"
export TEMPORAL_UI_PORT="${TEMPORAL_UI_PORT:-8233}"
export MOTO_PORT="${MOTO_PORT:-4566}"
export CODEC_SERVER_PORT="${CODEC_SERVER_PORT:-8234}"
export NSTANCE_UI_CODEC_ENDPOINT="http://localhost:$CODEC_SERVER_PORT"
payload_key="$root/.stack/payload.key"

# What the CLI and the worker read; printed below for a second terminal.
demo_env=(
  "TEMPORAL_ADDRESS=127.0.0.1:$TEMPORAL_PORT"
  "TEMPORAL_NAMESPACE=default"
  "NSTANCE_SHARD=use1-az1"
  "NSTANCE_BUCKET=nstance-demo"
  "AWS_ENDPOINT_URL=http://127.0.0.1:$MOTO_PORT"
  "AWS_REGION=us-east-1"
  "AWS_ACCESS_KEY_ID=test"
  "AWS_SECRET_ACCESS_KEY=test"
  "NSTANCE_PAYLOAD_KEY_FILE=$payload_key"
)
export "${demo_env[@]}"
# A developer's real session or profile must not leak into requests to the emulator.
unset AWS_SESSION_TOKEN AWS_PROFILE NSTANCE_PAYLOAD_KEY NSTANCE_PAYLOAD_CODEC
# Temporal is in memory, so a key only has to outlive one demo (and a second terminal's CLI).
mkdir -p "$root/.stack"
if [ ! -s "$payload_key" ]; then
  (umask 077 && node -e "process.stdout.write(require('crypto').randomBytes(32).toString('base64'))" > "$payload_key")
fi

bash scripts/tools.sh
npm run build --silent
bash scripts/stack.sh up

worker_pid=""
fleet_pid=""
codec_pid=""
stopping=0
cleanup() {
  [ "$stopping" = 1 ] && return
  stopping=1
  trap '' INT TERM
  if [ -n "$fleet_pid" ]; then kill -TERM "$fleet_pid" 2>/dev/null || true; fi
  if [ -n "$codec_pid" ]; then kill -TERM "$codec_pid" 2>/dev/null || true; fi
  if [ -n "$worker_pid" ] && kill -0 "$worker_pid" 2>/dev/null; then
    echo
    echo "demo: stopping the worker (it finishes in-flight tasks first)..."
    kill -TERM "$worker_pid" 2>/dev/null || true
    for _ in $(seq 1 60); do
      kill -0 "$worker_pid" 2>/dev/null || break
      sleep 0.5
    done
    kill -KILL "$worker_pid" 2>/dev/null || true
  fi
  bash scripts/stack.sh down
}
# EXIT too: a failed seed or apply must not leave the stack running.
trap cleanup EXIT
trap 'exit 130' INT TERM

# The Web UI (pointed at it by stack.sh) decodes payloads through it; loopback only, so no token.
node dist/client/cli/main.js codec-server --port "$CODEC_SERVER_PORT" \
  --ui-origin "http://localhost:$TEMPORAL_UI_PORT" "http://127.0.0.1:$TEMPORAL_UI_PORT" \
  > >(tee -a .stack/codec-server.log) 2>&1 &
codec_pid=$!

node dist/scripts/seed-emulator.js --out .stack/config.jsonc
node dist/client/cli/main.js config apply -f .stack/config.jsonc --yes
# The worker's "host" in the emulator: where the leader network ENI gets attached.
NSTANCE_EC2_INSTANCE_ID="$(cat .stack/server-instance-id)"
export NSTANCE_EC2_INSTANCE_ID NSTANCE_WORKER_ID="${NSTANCE_WORKER_ID:-demo-worker-1}"

# Output goes to the terminal and to .stack/worker.log; $! stays the worker's pid.
# /metrics (Prometheus) on 127.0.0.1:9464 by default; Temporal Core's exporter on the next port, loopback only.
NSTANCE_METRICS_PORT="${NSTANCE_METRICS_PORT:-9464}" NSTANCE_METRICS_HOST="${NSTANCE_METRICS_HOST:-127.0.0.1}" \
  node dist/client/cli/main.js worker > >(tee -a .stack/worker.log) 2>&1 &
worker_pid=$!

# The simulated fleet: one agent per emulator instance, booted from the userdata EC2 holds.
# Userdata names the leader network IP (10.0.1.10), which is not on this machine, so the
# agents dial the worker's agent API on loopback instead.
node dist/client/cli/main.js fleet --connect "127.0.0.1:${NSTANCE_AGENT_API_PORT:-8443}" --state-root .stack/fleet \
  > >(tee -a .stack/fleet.log) 2>&1 &
fleet_pid=$!

cat <<EOF

Nstance demo is running (worker pid $worker_pid, log .stack/worker.log; simulated fleet pid $fleet_pid, log .stack/fleet.log).

  Temporal Web UI   http://localhost:$TEMPORAL_UI_PORT (payloads decoded by the codec server, $NSTANCE_UI_CODEC_ENDPOINT)
  worker metrics    http://127.0.0.1:${NSTANCE_METRICS_PORT:-9464}/metrics
  config applied    .stack/config.jsonc
  AWS emulator      http://127.0.0.1:$MOTO_PORT (moto)

In another terminal, from $root:

  export ${demo_env[*]}
  npx nstance groups
  npx nstance --help

Ctrl-C stops the worker, then Temporal and moto.

EOF

# Returns when the worker exits or a trapped signal arrives. Ctrl-C reaches the worker
# too (Node installs its own SIGINT handler), so it may already be draining by then.
set +e
wait "$worker_pid"
status=$?
set -e
if [ "$status" -ne 0 ]; then
  echo "demo: the worker exited with status $status; see .stack/worker.log" >&2
fi
exit "$status"
