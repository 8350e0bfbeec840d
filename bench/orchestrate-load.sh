#!/usr/bin/env bash
# Orchestrate under load, against the server's own cheapest RPC as the ceiling.
#
# Starts a release build of brain-server on a fresh SQLite file, seeds
# PROJECTS projects (3 scenes and 3 preferences each), then runs ghz in the
# same session: first ProjectService.GetProject (one indexed read: the
# ceiling of this server on this machine), then OrchestratorService.Orchestrate
# (context, budget, decision and one write transaction per call), round-robin
# over the projects and a set of realistic prompts. Prints RPS and p50/p95/p99
# for both and the ratio, and keeps the raw ghz JSON in OUT_DIR.
#
# Usage: bench/orchestrate-load.sh            (env: DURATION=20s CONCURRENCY=32
#        CONNECTIONS=4 PROJECTS=64 WARMUP=3000 OUT_DIR=target/bench-load; METRICS_ADDR=127.0.0.1:9464
#        adds the group commit's batch size and time; REQUEST_IDS=1 gives every Orchestrate a
#        fresh request_id (its full response is then stored for replays); KEEP_WORK=1 keeps
#        the database and server log for a look at the stored stage timings; PATTERN=burst sends
#        BURST consecutive calls (default 8) to one project before moving to the next, PATTERN=hot
#        sends every call to one project: the hot-project profiles of docs/PERFORMANCE.md;
#        BENCH_POSTGRES_URL=postgres://user:pass@host/db runs the server on a new database there)
# Needs: ghz (go install github.com/bojand/ghz/cmd/ghz@latest), grpcurl, jq, bc.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
DURATION=${DURATION:-20s}
CONCURRENCY=${CONCURRENCY:-32}
CONNECTIONS=${CONNECTIONS:-4}
PROJECTS=${PROJECTS:-64}
WARMUP=${WARMUP:-3000}
OUT_DIR=${OUT_DIR:-$ROOT/target/bench-load}
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
command -v bc >/dev/null || { echo "missing: bc" >&2; exit 1; }

mkdir -p "$OUT_DIR"
bench_start --metrics-addr "${METRICS_ADDR:-off}" --log-format json --set log_level=warn --set max_concurrent_requests=4096
bench_seed "$PROJECTS"
PATTERN=${PATTERN:-spread}
BURST=${BURST:-8}
case "$PATTERN" in
  spread) ;; # consecutive calls go to different projects
  burst) # BURST consecutive calls per project: ghz hands consecutive messages to different workers, so they overlap
    jq -R . "$WORK/ids" | jq -s --slurpfile prompts "$WORK/prompts.json" --argjson burst "$BURST" \
      '[ . as $ids | range(0; ($ids|length) * ($prompts[0]|length)) as $i
         | {project_id: $ids[($i / $burst | floor) % ($ids|length)], prompt: $prompts[0][$i % ($prompts[0]|length)]} ]' \
      >"$WORK/orchestrate.json" ;;
  hot) # every call on the first project
    jq --arg id "$(head -1 "$WORK/ids")" 'map(.project_id = $id)' "$WORK/orchestrate.json" >"$WORK/hot.json"
    mv "$WORK/hot.json" "$WORK/orchestrate.json" ;;
  *) echo "PATTERN must be spread, burst or hot" >&2; exit 1 ;;
esac
if [[ -n "${REQUEST_IDS:-}" ]]; then # every call carries a fresh idempotency key, so its full response is stored
  jq 'map(. + {request_id: "{{newUUID}}"})' "$WORK/orchestrate.json" >"$WORK/keyed.json"
  mv "$WORK/keyed.json" "$WORK/orchestrate.json"
fi

ghz_run() { # method data-file out-file [extra ghz args]
  local method=$1 data=$2 out=$3
  shift 3
  "$GHZ" --insecure --call "$method" -D "$data" -c "$CONCURRENCY" --connections "$CONNECTIONS" --duration-stop wait \
    -O json "$@" "$ADDR" >"$out"
}

echo "warming up ..." >&2
ghz_run brain.v1.ProjectService.GetProject "$WORK/get.json" "$WORK/warm1.json" -n "$WARMUP"
ghz_run brain.v1.OrchestratorService.Orchestrate "$WORK/orchestrate.json" "$WORK/warm2.json" -n "$WARMUP"

# CPU seconds the server used, and the machine's idle seconds (all cores), from /proc.
server_cpu() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$SERVER_PID/stat"; }
idle_cpu() { awk -v hz="$(getconf CLK_TCK)" '/^cpu / { printf "%.2f", ($5 + $6) / hz }' /proc/stat; }
measured() { # label method data-file out-file: runs ghz and records the CPU split
  local s0 i0 t0 s1 i1 t1 g
  s0=$(server_cpu) i0=$(idle_cpu) t0=$(date +%s.%N)
  # ghz runs in a child shell whose /proc stat then holds the CPU time of its waited-for child (ghz).
  g=$(bash -c 'out=$1; shift; "$@" >"$out"; awk -v hz="$(getconf CLK_TCK)" "{ printf \"%.2f\", (\$16 + \$17) / hz }" /proc/$$/stat' \
    _ "$4" "$GHZ" --insecure --call "$2" -D "$3" -c "$CONCURRENCY" --connections "$CONNECTIONS" --duration-stop wait -O json -z "$DURATION" "$ADDR")
  s1=$(server_cpu) i1=$(idle_cpu) t1=$(date +%s.%N)
  awk -v l="$1" -v s="$(echo "$s1 - $s0" | bc)" -v g="$g" -v i="$(echo "$i1 - $i0" | bc)" -v t="$(echo "$t1 - $t0" | bc)" \
    -v n="$(nproc)" -v calls="$(jq .count "$4")" \
    'BEGIN { printf "| %s | %.0f%% | %.0f%% | %.0f%% | %.3f | %.3f |\n", l, 100 * s / t, 100 * g / t, 100 * i / (t * n), 1000 * s / calls, 1000 * g / calls }' >>"$WORK/cpu.md"
}

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
echo "ceiling: GetProject for $DURATION ..." >&2
measured "GetProject" brain.v1.ProjectService.GetProject "$WORK/get.json" "$OUT_DIR/ghz-getproject.json"
echo "Orchestrate for $DURATION ..." >&2
measured "Orchestrate" brain.v1.OrchestratorService.Orchestrate "$WORK/orchestrate.json" "$OUT_DIR/ghz-orchestrate.json"
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
if [[ -n "${METRICS_ADDR:-}" ]]; then # the group commit's own figures, when the metrics port is on
  curl -s "http://$METRICS_ADDR/metrics" | grep -E '^brain_orchestration_commit_(batch_size|seconds)_(sum|count)|^brain_cache_lookups_total\{cache="context_packet"' >"$WORK/commit.txt" || true
fi

summary() { # file label
  jq -r --arg name "$2" '
    def ms(p): ((.latencyDistribution // []) | map(select(.percentage == p)) | first | .latency // 0) / 1e6;
    def ok: (.statusCodeDistribution.OK // 0);
    "| \($name) | \(.rps | floor) | \(ms(50) * 100 | round / 100) | \(ms(95) * 100 | round / 100) | \(ms(99) * 100 | round / 100) | \(.count) | \(.count - ok) |"
  ' "$1"
}
CEIL=$(jq -r .rps "$OUT_DIR/ghz-getproject.json")
ORCH=$(jq -r .rps "$OUT_DIR/ghz-orchestrate.json")
STORED=$(stored_orchestrations)

{
  echo "date: $(date -u +%Y-%m-%dT%H:%MZ); machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
  echo "load average before/after: $LOAD_BEFORE / $LOAD_AFTER"
  echo "ghz: -c $CONCURRENCY --connections $CONNECTIONS -z $DURATION, $PROJECTS projects, ${#PROMPTS[@]} prompts, $([[ -n $BENCH_DB ]] && echo PostgreSQL || echo SQLite), pattern $PATTERN$([[ $PATTERN == burst ]] && echo " of $BURST")${REQUEST_IDS:+; a fresh request_id per call}"
  echo
  echo "| RPC | RPS | p50 ms | p95 ms | p99 ms | requests | errors |"
  echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
  summary "$OUT_DIR/ghz-getproject.json" "GetProject (ceiling)"
  summary "$OUT_DIR/ghz-orchestrate.json" "Orchestrate"
  echo
  echo "| Run | server CPU (100% = one core) | ghz CPU | machine idle | server CPU ms per call | ghz CPU ms per call |"
  echo "| --- | ---: | ---: | ---: | ---: | ---: |"
  cat "$WORK/cpu.md"
  echo
  awk -v o="$ORCH" -v c="$CEIL" 'BEGIN { printf "Orchestrate / ceiling: %.1f%% (target >= 25%%)\n", 100 * o / c }'
  echo "orchestrations stored: $STORED"
  if [[ -s "$WORK/commit.txt" ]]; then
    awk '{ v[$1] = $2 } END {
      printf "group commit: %d transactions, %.1f orchestrations and %.2f ms each on average\n",
        v["brain_orchestration_commit_batch_size_count"],
        v["brain_orchestration_commit_batch_size_sum"] / v["brain_orchestration_commit_batch_size_count"],
        1000 * v["brain_orchestration_commit_seconds_sum"] / v["brain_orchestration_commit_seconds_count"] }' "$WORK/commit.txt"
    awk '/^brain_cache_lookups_total/ { if ($1 ~ /result="hit"/) h += $2; else m += $2 } END {
      if (h + m > 0) printf "context packet cache (whole run, warm-up included): %.1f%% hits of %d lookups\n", 100 * h / (h + m), h + m }' "$WORK/commit.txt"
  fi
} | tee "$OUT_DIR/summary.md"
