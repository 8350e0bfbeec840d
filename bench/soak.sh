#!/usr/bin/env bash
# Soak: `brain stress` at a steady rate with the default mix (Orchestrate
# included) against a fresh server, sampling the server's VmRSS, to find leaks
# and slow growth.
#
# Prints the RSS at the start, after warm-up and at the end, the peak, and the
# slope after warm-up by least squares (MB per hour; the leak bar is 1 MB/h),
# plus the stress report. Exits 1 when the stress run had errors or the peak RSS
# exceeded MAX_RSS_MB. Samples are kept in OUT_DIR/rss.csv (seconds, KiB).
#
# Usage: bench/soak.sh   (env: MINUTES=32 RPS=200 CONCURRENCY=16 WARMUP_MINUTES=16
#        SAMPLE_SECONDS=10 MAX_RSS_MB=1024 DATABASE_URL=sqlite://<tmp>/brain.db
#        BRAIN_SERVER_BIN=target/release/brain-server BRAIN_CLI_BIN=target/release/brain
#        OUT_DIR=target/bench-soak)
# CI runs a short version: MINUTES=2 WARMUP_MINUTES=0.5 on the debug build, which checks
# that nothing errors and RSS stays under the bound; it asserts nothing about time.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
MINUTES=${MINUTES:-32}
RPS=${RPS:-200}
CONCURRENCY=${CONCURRENCY:-16}
# The warm-up outlasts the performance recorder's 15-minute ring of slots, whose histograms are
# allocated as each slot is first used (docs/PERFORMANCE.md, "Soak").
WARMUP_MINUTES=${WARMUP_MINUTES:-16}
SAMPLE_SECONDS=${SAMPLE_SECONDS:-10}
MAX_RSS_MB=${MAX_RSS_MB:-1024}
OUT_DIR=${OUT_DIR:-$ROOT/target/bench-soak}
BIN=${BRAIN_SERVER_BIN:-$ROOT/target/release/brain-server}
CLI=${BRAIN_CLI_BIN:-$ROOT/target/release/brain}
# The server refuses BRAIN_* variables it does not know; these two are this script's.
export -n BRAIN_SERVER_BIN BRAIN_CLI_BIN 2>/dev/null || true

if [[ ! -x "$BIN" || ! -x "$CLI" ]]; then
  (cd "$ROOT" && cargo build --release -p brain-server -p brain-client)
fi

mkdir -p "$OUT_DIR"
WORK=$(mktemp -d)
SERVER_PID=
cleanup() {
  if [[ -n "$SERVER_PID" ]]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

DATABASE_URL=${DATABASE_URL:-sqlite://$WORK/brain.db}
"$BIN" --listen-addr 127.0.0.1:0 --ready-file "$WORK/ready.json" --database-url "$DATABASE_URL" \
  --metrics-addr off --log-format json --set log_level=warn \
  --set rate_limit_orchestrate_per_sec=0 --set rate_limit_unary_per_sec=0 >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 600); do
  [[ -s "$WORK/ready.json" ]] && break
  sleep 0.1
done
ADDR=$(sed -n 's/.*"grpc_addr":"\([^"]*\)".*/\1/p' "$WORK/ready.json")
for _ in $(seq 1 300); do
  "$CLI" health --addr "$ADDR" 2>/dev/null | grep -q SERVING && break
  sleep 0.2
done

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$SERVER_PID/status"; }
echo "seconds,rss_kib" >"$OUT_DIR/rss.csv"
started=$(date +%s)
(
  while kill -0 "$SERVER_PID" 2>/dev/null; do
    echo "$(($(date +%s) - started)),$(rss_kib)" >>"$OUT_DIR/rss.csv"
    sleep "$SAMPLE_SECONDS"
  done
) &
SAMPLER=$!

echo "soak: $MINUTES min at $RPS calls/s (concurrency $CONCURRENCY) against $ADDR" >&2
status=0
"$CLI" stress --addr "$ADDR" --duration "${MINUTES}m" --rps "$RPS" --concurrency "$CONCURRENCY" \
  --max-error-rate 0 >"$OUT_DIR/stress.txt" 2>&1 || status=$?
echo "$(($(date +%s) - started)),$(rss_kib)" >>"$OUT_DIR/rss.csv"
kill "$SAMPLER" 2>/dev/null || true
cat "$OUT_DIR/stress.txt"

# Least-squares slope of RSS over time after the warm-up, in MB per hour.
awk -F, -v warm_minutes="$WARMUP_MINUTES" -v max_mb="$MAX_RSS_MB" '
  BEGIN { warm = warm_minutes * 60 }
  NR == 1 { next }
  NR == 2 { first = $2 }
  { last = $2; if ($2 > peak) peak = $2 }
  $1 >= warm { if (!w) w = $2; n++; sx += $1; sy += $2; sxx += $1 * $1; sxy += $1 * $2 }
  END {
    slope = (n > 1 && n * sxx - sx * sx != 0) ? (n * sxy - sx * sy) / (n * sxx - sx * sx) : 0
    printf "rss: start %.1f MB, after warm-up %.1f MB, end %.1f MB, peak %.1f MB\n", first / 1024, w / 1024, last / 1024, peak / 1024
    printf "rss slope after warm-up: %.2f MB/h (%d samples; leak bar 1 MB/h)\n", slope * 3600 / 1024, n
    if (peak / 1024 > max_mb) { printf "FAIL: peak RSS %.1f MB exceeds MAX_RSS_MB=%d\n", peak / 1024, max_mb; exit 1 }
  }' "$OUT_DIR/rss.csv" || status=1
if ! kill -0 "$SERVER_PID" 2>/dev/null; then
  echo "FAIL: the server exited during the soak" >&2
  tail -20 "$WORK/server.log" >&2
  status=1
fi
if ((status != 0)); then
  echo "soak FAILED (stress exit or RSS bound); server log tail:" >&2
  tail -20 "$WORK/server.log" >&2
fi
exit "$status"
