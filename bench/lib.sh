# Shared by the load scripts in bench/: start a release brain-server on a fresh SQLite file and
# seed projects to load. Source it after setting ROOT; it sets GHZ, GRPCURL and BIN when unset.
#
#   bench_start [server args...]   starts the server in WORK (a new temp dir), waits until SERVING;
#                                  sets WORK, SERVER_PID, ADDR and DATABASE_URL; bench_cleanup (the EXIT
#                                  trap) stops it. With BENCH_POSTGRES_URL (a PostgreSQL URL whose user may
#                                  create databases) the server runs on a new database there, dropped after
#   stored_orchestrations          how many orchestrations the database holds
#   bench_seed PROJECTS            creates PROJECTS projects (3 scenes, 3 preferences each) and writes
#                                  $WORK/get.json and $WORK/orchestrate.json (ghz -D data files)
#   server_rss_kib                 the server's VmRSS in KiB

GHZ=${GHZ:-$(command -v ghz || echo "$HOME/go/bin/ghz")}
GRPCURL=${GRPCURL:-$(command -v grpcurl || echo "$HOME/go/bin/grpcurl")}
BIN=${BRAIN_SERVER_BIN:-$ROOT/target/release/brain-server}

for tool in "$GHZ" "$GRPCURL" jq; do
  command -v "$tool" >/dev/null || { echo "missing: $tool" >&2; exit 1; }
done
if [[ ! -x "$BIN" ]]; then
  (cd "$ROOT" && cargo build --release -p brain-server)
fi

WORK=
SERVER_PID=
BENCH_DB=
bench_cleanup() {
  if [[ -n "$SERVER_PID" ]]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
  if [[ -n "$BENCH_DB" ]]; then psql -q "$BENCH_POSTGRES_URL" -c "DROP DATABASE IF EXISTS $BENCH_DB" >/dev/null || true; fi
  if [[ -z "$WORK" ]]; then return; fi
  if [[ -n "${KEEP_WORK:-}" ]]; then echo "kept $WORK (database, server log)" >&2; else rm -rf "$WORK"; fi
}
trap bench_cleanup EXIT

bench_start() {
  WORK=$(mktemp -d)
  DATABASE_URL="sqlite://$WORK/brain.db"
  if [[ -n "${BENCH_POSTGRES_URL:-}" ]]; then
    BENCH_DB="brain_bench_$$"
    psql -q "$BENCH_POSTGRES_URL" -c "CREATE DATABASE $BENCH_DB" >/dev/null
    DATABASE_URL="${BENCH_POSTGRES_URL%/*}/$BENCH_DB"
  fi
  # Per-tenant rate limits off: the benchmarks measure what one tenant (the implicit one) can get
  # from the server; arguments after these may turn them on again.
  "$BIN" --listen-addr 127.0.0.1:0 --ready-file "$WORK/ready.json" --database-url "$DATABASE_URL" \
    --set rate_limit_orchestrate_per_sec=0 --set rate_limit_unary_per_sec=0 --set rate_limit_images_per_minute=0 \
    --set rate_limit_open_streams=0 "$@" \
    >"$WORK/server.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 300); do
    [[ -s "$WORK/ready.json" ]] && break
    sleep 0.1
  done
  ADDR=$(jq -r .grpc_addr "$WORK/ready.json")
  for _ in $(seq 1 300); do
    if "$GRPCURL" -plaintext -d '{"service":""}' "$ADDR" grpc.health.v1.Health/Check 2>/dev/null | grep -q SERVING; then
      break
    fi
    sleep 0.1
  done
}

call() { "$GRPCURL" -plaintext -d "$2" "$ADDR" "$1"; }

stored_orchestrations() {
  if [[ -n "$BENCH_DB" ]]; then
    psql -qtA "$DATABASE_URL" -c 'select count(*) from orchestrations' 2>/dev/null || echo "n/a"
  else
    sqlite3 "$WORK/brain.db" 'select count(*) from orchestrations' 2>/dev/null || echo "n/a"
  fi
}

server_rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$SERVER_PID/status"; }

bench_seed() {
  local projects=$1
  echo "seeding $projects projects on $ADDR ..." >&2
  PROMPTS=(
    "make the intro title red"
    "add a scene about pricing after the demo"
    "make the outro 8 seconds long"
    "the demo scene is broken, fix it"
    "keep the pace fast and the style minimal"
    "change the font of the intro to a geometric sans"
    "make the whole video feel calmer"
    "move the call to action to the end and make it bigger"
  )
  : >"$WORK/ids"
  for p in $(seq 1 "$projects"); do
    id=$(call brain.v1.ProjectService/CreateProject "{\"name\":\"load $p\"}" | jq -r .project.projectId)
    echo "$id" >>"$WORK/ids"
    call brain.v1.ProjectService/UpsertScene \
      "{\"project_id\":\"$id\",\"scene_id\":\"intro\",\"name\":\"Intro\",\"summary\":\"Logo reveal over a dark gradient with the product name.\",\"duration_seconds\":5}" >/dev/null
    call brain.v1.ProjectService/UpsertScene \
      "{\"project_id\":\"$id\",\"scene_id\":\"demo\",\"name\":\"Demo\",\"summary\":\"Screen recording of the dashboard with animated charts.\",\"duration_seconds\":12}" >/dev/null
    call brain.v1.ProjectService/UpsertScene \
      "{\"project_id\":\"$id\",\"scene_id\":\"outro\",\"name\":\"Outro\",\"summary\":\"Call to action with the website address.\",\"duration_seconds\":4}" >/dev/null
    for pref in "style minimal 0.8" "color dark_blue 0.7" "pace fast 0.6"; do
      read -r key value conf <<<"$pref"
      call brain.v1.ProjectService/PutMemory \
        "{\"project_id\":\"$id\",\"type\":\"MEMORY_TYPE_USER_PREFERENCE\",\"key\":\"$key\",\"value\":\"${value/_/ }\",\"confidence\":$conf}" >/dev/null
    done
  done

  jq -R '{project_id: .}' "$WORK/ids" | jq -s . >"$WORK/get.json"
  printf '%s\n' "${PROMPTS[@]}" | jq -R . | jq -s . >"$WORK/prompts.json"
  jq -R . "$WORK/ids" | jq -s --slurpfile prompts "$WORK/prompts.json" \
    '[ . as $ids | range(0; ($ids|length) * ($prompts[0]|length)) as $i
       | {project_id: $ids[$i % ($ids|length)], prompt: $prompts[0][($i / ($ids|length) | floor) % ($prompts[0]|length)]} ]' \
    >"$WORK/orchestrate.json"
}
