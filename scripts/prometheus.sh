#!/usr/bin/env bash
# Makes sure a real Prometheus (and its promtool) is installed, for the dashboard picture
# (scripts/dashboard-picture.ts) and the dashboard's unit test, from Debian's own packages
# (apt-get). Prints the prometheus binary's path on stdout; promtool is beside it.
# Idempotent: when both are found (NSTANCE_PROMETHEUS, or on PATH) it installs nothing.
# The package's service is not started (a policy-rc.d refuses it for the install): the
# callers run their own Prometheus on a loopback port, with a config of their own.
# Exit 1 with a message on stderr when none can be had (not root, no apt-get, no network).
set -euo pipefail

find_prometheus() {
  local bin
  if [ -n "${NSTANCE_PROMETHEUS:-}" ] && [ -x "$NSTANCE_PROMETHEUS" ]; then bin="$NSTANCE_PROMETHEUS"
  elif command -v prometheus >/dev/null 2>&1; then bin="$(command -v prometheus)"
  else return 1
  fi
  [ -x "$(dirname "$bin")/promtool" ] || return 1
  echo "$bin"
}

if find_prometheus; then exit 0; fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "prometheus.sh: no prometheus and promtool on PATH and no apt-get to install them with; set NSTANCE_PROMETHEUS to a prometheus binary with promtool beside it" >&2
  exit 1
fi
if [ "$(id -u)" != 0 ]; then
  echo "prometheus.sh: installing prometheus needs root (apt-get install prometheus); set NSTANCE_PROMETHEUS instead" >&2
  exit 1
fi
log="$(mktemp -t nstance-prometheus-install.XXXXXX)"
echo "prometheus.sh: installing Debian's prometheus (log: $log)" >&2
# The package starts its service on install (a Prometheus on :9090 scraping this machine): refused for the
# install, as container images do, unless a policy is already in place.
policy=/usr/sbin/policy-rc.d
own_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && own_policy=1
fi
status=0
{ apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends prometheus; } >"$log" 2>&1 || status=$?
if [ "$own_policy" = 1 ]; then rm -f "$policy"; fi
if [ "$status" != 0 ]; then
  echo "prometheus.sh: apt-get could not install prometheus; last lines of $log:" >&2
  tail -n 20 "$log" >&2
  exit 1
fi
find_prometheus || { echo "prometheus.sh: prometheus installed but it or promtool is not on PATH" >&2; exit 1; }
