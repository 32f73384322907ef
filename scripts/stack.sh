#!/usr/bin/env bash
# The local stack for the demo and manual testing: a Temporal dev server (Web UI
# included) and moto, both on loopback, as background processes whose pids and logs
# live in .stack/. Tests do not use this: they start private servers (test/support).
#
#   scripts/stack.sh up|down|status
#
# Ports: TEMPORAL_PORT (7233), TEMPORAL_UI_PORT (8233), MOTO_PORT (4566).
# NSTANCE_UI_CODEC_ENDPOINT, when set, points the Web UI at a codec server (nstance codec-server).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

TEMPORAL_PORT="${TEMPORAL_PORT:-7233}"
TEMPORAL_UI_PORT="${TEMPORAL_UI_PORT:-8233}"
MOTO_PORT="${MOTO_PORT:-4566}"
HOST=127.0.0.1
STACK_DIR="$root/.stack"
STOP_GRACE_SECONDS=5
START_TIMEOUT_SECONDS=60

# Keep in step with SEARCH_ATTRIBUTES in common/names.ts.
SEARCH_ATTRIBUTES=(NstanceShard NstanceGroup NstanceInstanceId NstancePhase)

usage() {
  echo "usage: $0 up|down|status" >&2
  exit 2
}

load_tools() {
  bash "$root/scripts/tools.sh"
  # shellcheck source=/dev/null
  . "$root/.tools/env.sh"
}

pid_of() { # service -> pid, if its pidfile names a live process that is still that service
  local file="$STACK_DIR/$1.pid" pid
  [ -f "$file" ] || return 1
  pid="$(cat "$file")"
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
  # A pidfile that survived a reboot may name an unrelated process by now.
  case "$(ps -o args= -p "$pid" 2>/dev/null)" in
    *temporal*server*|*moto_server*) echo "$pid" ;;
    *) return 1 ;;
  esac
}

temporal_healthy() {
  "$NSTANCE_TEMPORAL_BIN" operator cluster health --address "$HOST:$TEMPORAL_PORT" >/dev/null 2>&1
}

moto_healthy() {
  local url="http://$HOST:$MOTO_PORT/moto-api/"
  if command -v curl >/dev/null 2>&1; then
    curl -fsS -o /dev/null --max-time 2 "$url" 2>/dev/null
  else
    # moto's own venv always has a Python, so this works where curl is missing.
    "$(dirname "$NSTANCE_MOTO_BIN")/python" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' "$url" >/dev/null 2>&1
  fi
}

port_busy() { # port -> true when something accepts connections on it
  (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null
}

# A running service keeps the ports it was started with, whatever the env says now,
# so `status`, `up` and the health checks look where it actually listens.
use_recorded_ports() {
  local ports
  if pid_of temporal >/dev/null && ports="$(cat "$STACK_DIR/temporal.ports" 2>/dev/null)"; then
    read -r TEMPORAL_PORT TEMPORAL_UI_PORT <<<"$ports"
  fi
  if pid_of moto >/dev/null && ports="$(cat "$STACK_DIR/moto.ports" 2>/dev/null)"; then
    read -r MOTO_PORT <<<"$ports"
  fi
}

check_free() { # service port...: fail before starting anything if a port is taken
  local svc="$1" port
  shift
  pid_of "$svc" >/dev/null && return 0
  for port in "$@"; do
    if port_busy "$port"; then
      echo "stack.sh: $HOST:$port (for $svc) is in use by a process not started from .stack/; stop it or pick other ports (TEMPORAL_PORT, TEMPORAL_UI_PORT, MOTO_PORT)" >&2
      exit 1
    fi
  done
}

start() { # service "ports" -- command...
  local svc="$1" ports="$2"
  shift 3
  if pid_of "$svc" >/dev/null; then
    return 0
  fi
  : >"$STACK_DIR/$svc.log"
  echo "$ports" >"$STACK_DIR/$svc.ports"
  # Own session/process group: Ctrl-C in the calling terminal must not reach the
  # servers, and `down` can signal the whole group (start-dev spawns no children today,
  # but moto's reloader or a future wrapper might).
  if command -v setsid >/dev/null 2>&1; then
    nohup setsid "$@" >>"$STACK_DIR/$svc.log" 2>&1 </dev/null &
  else
    nohup "$@" >>"$STACK_DIR/$svc.log" 2>&1 </dev/null &
  fi
  echo $! >"$STACK_DIR/$svc.pid"
}

wait_healthy() { # service check-function address
  local svc="$1" check="$2" addr="$3" waited=0 pid
  until "$check"; do
    if ! pid="$(pid_of "$svc")"; then
      echo "stack.sh: $svc exited during startup; last lines of .stack/$svc.log:" >&2
      tail -n 20 "$STACK_DIR/$svc.log" >&2
      exit 1
    fi
    if [ "$waited" -ge $((START_TIMEOUT_SECONDS * 4)) ]; then
      echo "stack.sh: $svc (pid $pid) did not answer on $addr within ${START_TIMEOUT_SECONDS}s; see .stack/$svc.log" >&2
      exit 1
    fi
    sleep 0.25
    waited=$((waited + 1))
  done
}

stop() { # service
  local svc="$1" pid i
  if ! pid="$(pid_of "$svc")"; then
    rm -f "$STACK_DIR/$svc.pid"
    return 0
  fi
  signal_group TERM "$pid"
  for ((i = 0; i < STOP_GRACE_SECONDS * 4; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.25
  done
  if kill -0 "$pid" 2>/dev/null; then
    echo "stack.sh: $svc (pid $pid) ignored SIGTERM for ${STOP_GRACE_SECONDS}s, killing it" >&2
    signal_group KILL "$pid"
  fi
  rm -f "$STACK_DIR/$svc.pid" "$STACK_DIR/$svc.ports"
  echo "stopped $svc (pid $pid)"
}

signal_group() { # signal pid: the group when the pid leads one (setsid), else the pid
  local sig="$1" pid="$2"
  if [ "$(ps -o pgid= -p "$pid" 2>/dev/null | tr -d ' ')" = "$pid" ]; then
    kill "-$sig" -- "-$pid" 2>/dev/null || true
  else
    kill "-$sig" "$pid" 2>/dev/null || true
  fi
}

up() {
  load_tools
  mkdir -p "$STACK_DIR"
  local sa_flags=() name
  for name in "${SEARCH_ATTRIBUTES[@]}"; do sa_flags+=(--search-attribute "$name=Keyword"); done

  use_recorded_ports
  check_free temporal "$TEMPORAL_PORT" "$TEMPORAL_UI_PORT"
  check_free moto "$MOTO_PORT"
  # In memory, like moto: a Temporal history kept across runs would describe instances the
  # fresh emulator no longer has (and may predate the current workflow code).
  start temporal "$TEMPORAL_PORT $TEMPORAL_UI_PORT" -- "$NSTANCE_TEMPORAL_BIN" server start-dev \
    --ip "$HOST" --port "$TEMPORAL_PORT" --ui-port "$TEMPORAL_UI_PORT" \
    --namespace default --log-level warn \
    ${NSTANCE_UI_CODEC_ENDPOINT:+--ui-codec-endpoint "$NSTANCE_UI_CODEC_ENDPOINT"} \
    "${sa_flags[@]}"
  start moto "$MOTO_PORT" -- "$NSTANCE_MOTO_BIN" -H "$HOST" -p "$MOTO_PORT"

  wait_healthy temporal temporal_healthy "$HOST:$TEMPORAL_PORT"
  wait_healthy moto moto_healthy "http://$HOST:$MOTO_PORT"
  status
}

status() {
  local rc=0 pid
  if pid="$(pid_of temporal)"; then
    echo "temporal  running  pid $pid  grpc $HOST:$TEMPORAL_PORT  ui http://localhost:$TEMPORAL_UI_PORT  log .stack/temporal.log"
  else
    echo "temporal  stopped"
    rc=1
  fi
  if pid="$(pid_of moto)"; then
    echo "moto      running  pid $pid  http://$HOST:$MOTO_PORT  log .stack/moto.log"
  else
    echo "moto      stopped"
    rc=1
  fi
  return "$rc"
}

case "${1:-}" in
  up) up ;;
  down)
    stop temporal
    stop moto
    ;;
  status)
    use_recorded_ports
    status
    ;;
  *) usage ;;
esac
