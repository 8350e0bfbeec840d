#!/usr/bin/env bash
# Overload: how fast OVERLOADED refusals come back, and how admitted calls fare, when more
# Orchestrate calls arrive at once than `max_concurrent_requests` (default 1,024) admits.
#
# Starts a release brain-server on a fresh SQLite file with default limits, seeds PROJECTS
# projects, warms Orchestrate up, then runs ghz bursts: every ghz worker sends one call and all
# start together (-c N -n N), so N calls are in flight at once:
#   ok-1000     1,000 concurrent (under the limit): every call is admitted
#   burst-5000  5,000 concurrent: ~1,024 admitted, the rest refused with RESOURCE_EXHAUSTED
# and then, for the record, SUSTAINED seconds of closed-loop load at 5,000 in flight (each worker
# sends its next call as soon as the last one ends; with refusals this cheap the loop is bound by
# the client's CPU on a shared machine, see docs/PERFORMANCE.md).
# Prints, per run and status code: calls, p50, p99 and max latency, and the server's resident
# memory before, after the runs and after IDLE seconds of rest.
#
# Usage: bench/overload.sh   (env: CONNECTIONS=50 PROJECTS=64 WARMUP=2000 SUSTAINED=10s IDLE=15
#        OUT_DIR=target/bench-overload; SERVER_ARGS adds server flags, e.g. "--set max_concurrent_requests=256")
# Needs: ghz, grpcurl, jq.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CONNECTIONS=${CONNECTIONS:-50}
PROJECTS=${PROJECTS:-64}
WARMUP=${WARMUP:-2000}
SUSTAINED=${SUSTAINED:-10s}
IDLE=${IDLE:-15}
OUT_DIR=${OUT_DIR:-$ROOT/target/bench-overload}
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"

mkdir -p "$OUT_DIR"
# shellcheck disable=SC2086 # SERVER_ARGS is a list of flags
bench_start --metrics-addr off --log-format json --set log_level=warn ${SERVER_ARGS:-}
bench_seed "$PROJECTS"

ghz_burst() { # out-file concurrency total [extra ghz args]
  local out=$1 c=$2 n=$3
  shift 3
  "$GHZ" --insecure --call brain.v1.OrchestratorService.Orchestrate -D "$WORK/orchestrate.json" \
    -c "$c" -n "$n" --connections "$CONNECTIONS" --timeout 60s -O json "$@" "$ADDR" >"$out"
}

# One row per status code: calls, p50, p99, max (ms), from every call's own record.
summary() { # file label
  jq -r --arg name "$2" '
    def pct(p): (length * p / 100 | ceil) as $k | sort | .[([$k - 1, 0] | max)];
    (.details // []) | group_by(.status)[]
    | (map(.latency / 1e6)) as $ms
    | "| \($name) | \(.[0].status) | \(length) | \($ms | pct(50) * 100 | round / 100) | \($ms | pct(99) * 100 | round / 100) | \($ms | max * 100 | round / 100) |"
  ' "$1"
}

echo "warming up ..." >&2
ghz_burst "$WORK/warm.json" "$CONNECTIONS" "$WARMUP"
RSS_BEFORE=$(server_rss_kib)
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)

echo "1,000 concurrent ..." >&2
ghz_burst "$OUT_DIR/ok-1000.json" 1000 1000
sleep 2
echo "5,000 concurrent ..." >&2
ghz_burst "$OUT_DIR/burst-5000.json" 5000 5000
RSS_BURST=$(server_rss_kib)
sleep 2
echo "5,000 in flight for $SUSTAINED ..." >&2
ghz_burst "$OUT_DIR/sustained-5000.json" 5000 100000000 -z "$SUSTAINED" --duration-stop wait
RSS_AFTER=$(server_rss_kib)
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
echo "resting ${IDLE}s ..." >&2
sleep "$IDLE"
RSS_IDLE=$(server_rss_kib)
HEALTH=$("$GRPCURL" -plaintext -d '{"service":""}' "$ADDR" grpc.health.v1.Health/Check | jq -r .status)

{
  echo "date: $(date -u +%Y-%m-%dT%H:%MZ); machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/^Mem:/ { print $2 }') GiB"
  echo "load average before/after: $LOAD_BEFORE / $LOAD_AFTER"
  echo "ghz --connections $CONNECTIONS, $PROJECTS projects, SQLite; server args: ${SERVER_ARGS:-defaults}"
  echo
  echo "| Run | Status | Calls | p50 ms | p99 ms | max ms |"
  echo "| --- | --- | ---: | ---: | ---: | ---: |"
  summary "$OUT_DIR/ok-1000.json" "1,000 at once"
  summary "$OUT_DIR/burst-5000.json" "5,000 at once"
  summary "$OUT_DIR/sustained-5000.json" "5,000 in flight, $SUSTAINED"
  echo
  echo "server VmRSS: before $((RSS_BEFORE / 1024)) MiB, after the bursts $((RSS_BURST / 1024)) MiB, after the sustained run $((RSS_AFTER / 1024)) MiB, after ${IDLE}s idle $((RSS_IDLE / 1024)) MiB; health $HEALTH"
} | tee "$OUT_DIR/summary.md"
