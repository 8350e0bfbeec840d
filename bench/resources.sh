#!/usr/bin/env bash
# bench/resources.sh — CPU and resident memory of one brain-server, for sizing Kubernetes resource
# requests (deploy/kubernetes/base/brain.yaml; numbers in docs/OPERATIONS.md "Resources").
#
#   cargo build --release -p brain-server -p brain-client
#   bench/resources.sh                                   # SQLite, in a temp dir
#   DATABASE_URL=postgres://brain:brain@127.0.0.1:5432/brain_resources bench/resources.sh
#
# Starts the server (metrics off), then measures, from /proc/PID (utime + stime, VmRSS every
# second): 20 s idle; `brain stress --rps 200` (default mix) for 50 s of a 60 s run; `brain stress`
# flat out (16 in flight) for 30 s of a 40 s run; 20 s idle after. Prints cores used (CPU seconds /
# wall seconds) and peak RSS per phase, and stress's own report. Loopback only; stops by itself.
# BRAIN_SERVER_BIN and BRAIN_CLI_BIN override the binaries.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN=${BRAIN_SERVER_BIN:-$ROOT/target/release/brain-server}
CLI=${BRAIN_CLI_BIN:-$ROOT/target/release/brain}
PROBE=${GRPC_HEALTH_PROBE:-$(command -v grpc_health_probe || echo "$HOME/go/bin/grpc_health_probe")}
# The server refuses unknown BRAIN_* variables, and BRAIN_CLI_BIN is not one of its own.
export -n BRAIN_SERVER_BIN BRAIN_CLI_BIN 2>/dev/null || true
for tool in "$BIN" "$CLI" "$PROBE" jq; do
  command -v "$tool" >/dev/null || { echo "missing: $tool" >&2; exit 1; }
done

W=$(mktemp -d)
"$BIN" --listen-addr 127.0.0.1:0 --metrics-addr off --ready-file "$W/ready.json" \
  --database-url "${DATABASE_URL:-sqlite://$W/brain.db}" --log-format json >"$W/server.log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null; rm -rf "$W"' EXIT
for _ in $(seq 1 300); do [[ -s $W/ready.json ]] && break; sleep 0.1; done
ADDR=$(jq -r .grpc_addr "$W/ready.json")
for _ in $(seq 1 300); do "$PROBE" -addr "$ADDR" >/dev/null 2>&1 && break; sleep 0.2; done

TCK=$(getconf CLK_TCK)
cpu_seconds() { awk -v t="$TCK" '{ print ($14 + $15) / t }' "/proc/$PID/stat"; }
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$PID/status"; }
sample() { # sample LABEL SECONDS
  local label=$1 secs=$2 c0 c1 t0 t1 peak=0 r
  c0=$(cpu_seconds); t0=$(date +%s.%N)
  for _ in $(seq 1 "$secs"); do
    sleep 1
    r=$(rss_kib)
    ((r > peak)) && peak=$r
  done
  c1=$(cpu_seconds); t1=$(date +%s.%N)
  awk -v l="$label" -v c0="$c0" -v c1="$c1" -v t0="$t0" -v t1="$t1" -v p="$peak" 'BEGIN {
    printf "%-34s cpu %.3f cores (%.1f s CPU in %.1f s), peak RSS %.1f MiB\n", l, (c1 - c0) / (t1 - t0), c1 - c0, t1 - t0, p / 1024 }'
}

echo "database: ${DATABASE_URL:-sqlite (temp dir)}; $(nproc) CPUs; load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "RSS at start: $(($(rss_kib) / 1024)) MiB"
sample "idle (20 s)" 20
"$CLI" --addr "$ADDR" stress --duration 60s --rps 200 --concurrency 16 >"$W/steady.txt" 2>&1 &
S=$!
sleep 5
sample "stress --rps 200, default mix" 50
wait $S || true
sed -n '1,9p' "$W/steady.txt"
"$CLI" --addr "$ADDR" stress --duration 40s --concurrency 16 >"$W/flat-out.txt" 2>&1 &
S=$!
sleep 5
sample "stress flat out, 16 in flight" 30
wait $S || true
sed -n '1,9p' "$W/flat-out.txt"
sample "idle after the load (20 s)" 20
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
