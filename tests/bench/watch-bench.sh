#!/usr/bin/env bash
# Commit-to-subscriber latency of WatchImageFacts with many concurrent streams.
#
# Starts a release brain-server on a fresh database, runs watch-bench against
# it, stops it. Build first:
#   cargo build --release -p brain-server --bin brain-server -p brain-e2e --bin watch-bench
#
# Usage: tests/bench/watch-bench.sh [sqlite|postgres] STREAMS [PROJECTS] [RATE] [SECONDS]
#   STREAMS   concurrent WatchImageFacts streams             (default 1000)
#   PROJECTS  projects the streams are spread over            (default 50)
#   RATE      images per second sent with AnalyzeImages       (default 20)
#   SECONDS   how long to send                                (default 20)
# Environment: CONNECTIONS (HTTP/2 connections; default STREAMS/100, at least 1), SLOW_MS (list
#   every event some subscriber received later than this),
#   BRAIN_BENCH_POSTGRES_URL (admin URL for the throwaway database;
#   default postgres://brain:brain@127.0.0.1:5432/postgres).
set -euo pipefail

backend=${1:-sqlite}
streams=${2:-1000}
projects=${3:-50}
rate=${4:-20}
seconds=${5:-20}
connections=${CONNECTIONS:-$(( streams / 100 > 1 ? streams / 100 : 1 ))}

root=$(cd "$(dirname "$0")/../.." && pwd)
bin="$root/target/release"
[ -x "$bin/brain-server" ] && [ -x "$bin/watch-bench" ] || {
  echo "build first: cargo build --release -p brain-server --bin brain-server -p brain-e2e --bin watch-bench" >&2
  exit 2
}
# Each HTTP/2 connection is one descriptor on each side; raise the limit anyway
# so CONNECTIONS can be pushed to one connection per stream.
ulimit -n "$(ulimit -Hn)"

work=$(mktemp -d)
pg_admin=${BRAIN_BENCH_POSTGRES_URL:-postgres://brain:brain@127.0.0.1:5432/postgres}
pg_db="brain_bench_$$"
cleanup() {
  [ -n "${server_pid:-}" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null || true
  if [ "$backend" = postgres ]; then psql "$pg_admin" -qc "DROP DATABASE IF EXISTS $pg_db WITH (FORCE)" >/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

case "$backend" in
  sqlite) db_url="sqlite://$work/brain.db" ;;
  postgres)
    psql "$pg_admin" -qc "CREATE DATABASE $pg_db" >/dev/null
    db_url="${pg_admin%/*}/$pg_db"
    ;;
  *) echo "backend must be sqlite or postgres" >&2; exit 2 ;;
esac

"$bin/brain-server" --listen-addr 127.0.0.1:0 --ready-file "$work/ready.json" --database-url "$db_url" \
  --metrics-addr off --log-format json --set log_level=warn --set max_concurrent_requests=4096 \
  >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 600); do [ -s "$work/ready.json" ] && break; sleep 0.1; done
addr=$(sed -E 's/.*"grpc_addr":"([^"]+)".*/\1/' "$work/ready.json")
for _ in $(seq 600); do
  grpc_health_probe -addr "$addr" >/dev/null 2>&1 && break
  PATH="$HOME/go/bin:$PATH" grpc_health_probe -addr "$addr" >/dev/null 2>&1 && break
  sleep 0.1
done

echo "# $(date -u +%Y-%m-%dT%H:%MZ) backend=$backend streams=$streams projects=$projects rate=$rate/s seconds=$seconds connections=$connections"
echo "# machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), $(free -g | awk '/Mem:/ {print $2}') GiB, load $(cut -d' ' -f1-3 /proc/loadavg)"
"$bin/watch-bench" --addr "$addr" --pid "$server_pid" --streams "$streams" --connections "$connections" \
  --projects "$projects" --rate "$rate" --seconds "$seconds" ${SLOW_MS:+--slow-ms "$SLOW_MS"}
