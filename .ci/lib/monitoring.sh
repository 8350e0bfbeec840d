# shellcheck shell=bash
# .ci/lib/monitoring.sh — CI's monitoring and deployment checks (issue 15 §3). Source it after
# .ci/lib/tools.sh; .ci/run calls each function in its own ci::section, and .ci/monitoring.sh runs
# them on their own. Each function installs what it needs (through tools.sh), cleans up what it
# started, and returns non-zero when a check fails.
#
#   mon::rules                    promtool check rules / test rules / check config on
#                                 deploy/prometheus, and every metric the rules name is one brain
#                                 exports (server/src/perf/prom.rs)
#   mon::prometheus SERVER_BIN WORK
#                                 a real Prometheus (1 s scrapes, brain.rules.yml loaded) scrapes
#                                 brain while ghz sends a counted load; brain_rpc_requests_total,
#                                 brain_orchestrations_total and histogram p99s queried through
#                                 Prometheus's HTTP API must match what was sent; every rule
#                                 evaluates without error and no alert is pending or firing;
#                                 `promtool check metrics` passes on /metrics
#   mon::kubernetes WORK          kubeconform (strict, real Kubernetes schemas for every version in
#                                 MON_K8S_VERSIONS) on deploy/kubernetes/base/brain.yaml and the
#                                 kustomize build of every kustomization under deploy/kubernetes
#                                 (components are built through the overlays that use them), plus
#                                 what a schema cannot say (a PDB selects the pods and lets a drain
#                                 evict; CPU and memory requests and a memory limit are set)
#
# Tunables: MON_K8S_VERSIONS (default "1.30.0 1.37.0": the oldest and newest Kubernetes the
# manifests are meant for), MON_TIMEOUT (seconds to wait for Prometheus to see a value, default 30).

MON_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
MON_K8S_VERSIONS="${MON_K8S_VERSIONS:-1.30.0 1.37.0}"
MON_TIMEOUT="${MON_TIMEOUT:-30}"

# ---- promtool on deploy/prometheus -----------------------------------------------------------
mon::rules() (
  set -euo pipefail
  ci::ensure_prometheus
  cd "$MON_ROOT/deploy/prometheus"
  ci::log "\$ promtool check rules brain.rules.yml"
  promtool check rules brain.rules.yml
  ci::log "\$ promtool test rules brain.rules.test.yml"
  promtool test rules brain.rules.test.yml
  ci::log "\$ promtool check config prometheus.yml   (the example scrape config; loads the rules too)"
  promtool check config prometheus.yml

  # A rule on a metric brain does not export never fires: every brain_* name in the rules must be
  # one of prom.rs's constants (histograms with their _bucket/_count/_sum series).
  local exported used name base missing=0
  exported="$(grep -oE '^pub const [A-Z_]+: &str = "brain_[a-z0-9_]+"' "$MON_ROOT/server/src/perf/prom.rs" |
    sed -E 's/.*"(brain_[a-z0-9_]+)"/\1/' | sort -u)"
  [[ -n "$exported" ]] || { ci::die "no metric names found in server/src/perf/prom.rs"; return 1; }
  used="$(grep -v '^\s*#' brain.rules.yml | grep -oE '\bbrain_[a-z0-9_]+' | sort -u)"
  for name in $used; do
    base="$(sed -E 's/_(bucket|count|sum)$//' <<<"$name")"
    if ! grep -qx "$name" <<<"$exported" && ! grep -qx "$base" <<<"$exported"; then
      ci::log "ERROR: brain.rules.yml uses ${name}, which server/src/perf/prom.rs does not export"
      missing=1
    fi
  done
  ((missing == 0)) || return 1
  ci::log "rules: $(wc -w <<<"$used") brain metrics used, all exported by server/src/perf/prom.rs"
)

# ---- a real Prometheus scraping brain under load ---------------------------------------------
# The load: counted calls, each ghz run checked against its own report first.
MON_GET_OK=300 MON_GET_NOT_FOUND=40 MON_PUT_MEMORY=50 MON_ORCHESTRATE=60

mon::_free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# mon::_query EXPR -> the value of a one-element instant vector or a scalar; "" when empty.
mon::_query() {
  curl -fsS --max-time 5 --get --data-urlencode "query=$1" "${MON_PROM}/api/v1/query" | jq -r '
    if .status != "success" then error("query failed: \(.error)")
    elif .data.resultType == "scalar" then .data.result[1]
    elif (.data.result | length) == 0 then ""
    elif (.data.result | length) == 1 then .data.result[0].value[1]
    else error("\(.data.result | length) series, expected one") end'
}

# mon::_expect EXPR EXPECTED -> waits (MON_TIMEOUT) until Prometheus answers EXPECTED for EXPR; a
# value above it fails at once (counters only grow).
mon::_expect() {
  local expr="$1" want="$2" got="" deadline=$(($(date +%s) + MON_TIMEOUT))
  while :; do
    got="$(mon::_query "$expr")" || got="(query error)"
    if [[ -n "$got" && "$got" != "(query error)" ]]; then
      if jq -en --arg g "$got" --arg w "$want" '($g | tonumber) == ($w | tonumber)' >/dev/null; then
        ci::log "prometheus: ${expr} = ${got} (expected ${want})"
        return 0
      fi
      if jq -en --arg g "$got" --arg w "$want" '($g | tonumber) > ($w | tonumber)' >/dev/null; then
        ci::die "prometheus: ${expr} = ${got}, more than the ${want} sent"
        return 1
      fi
    fi
    if (($(date +%s) >= deadline)); then
      ci::die "prometheus: ${expr} = '${got}' after ${MON_TIMEOUT}s, expected ${want}"
      return 1
    fi
    sleep 0.5
  done
}

# mon::_ghz NAME N CODE CALL DATA -> N calls with ghz (JSON report in $MON_WORK/ghz-NAME.json), all
# of which must end with CODE (ghz's spelling: OK, NotFound).
mon::_ghz() {
  local name="$1" n="$2" code="$3" call="$4" data="$5" out="$MON_WORK/ghz-$1.json"
  ghz --insecure --call "$call" --data "$data" --total "$n" --concurrency 4 --connections 1 \
    --format json --output "$out" "$MON_GRPC" || true # the report below is what counts
  jq -e --argjson n "$n" --arg code "$code" \
    '.count == $n and .statusCodeDistribution == {($code): $n}' "$out" >/dev/null || {
    ci::die "ghz ${name}: expected ${n} calls ending ${code}, got $(jq -c '{count, statusCodeDistribution, errorDistribution}' "$out")"
    return 1
  }
  ci::log "ghz ${name}: $(jq -r '"\(.count) calls, \(.statusCodeDistribution | to_entries | map("\(.key) \(.value)") | join(", ")); client slowest \(.slowest / 1e6 | . * 100 | round / 100) ms"' "$out")"
}

# mon::_p99_check SELECTOR GHZ_NAME -> Prometheus's histogram_quantile(0.99) over everything brain
# recorded for SELECTOR equals the same quantile computed here from /metrics (the same
# interpolation), and lies within the bucket that holds the slowest call ghz saw (no call took
# longer on the server than on the client).
mon::_p99_check() {
  local selector="$1" name="$2" expr got want bound
  expr="histogram_quantile(0.99, sum by (le) (brain_rpc_duration_seconds_bucket${selector}))"
  got="$(mon::_query "$expr")"
  [[ -n "$got" ]] || { ci::die "prometheus: ${expr} is empty"; return 1; }
  read -r want bound < <(python3 - "$MON_WORK/metrics.txt" "$selector" \
    "$(jq -r '.slowest / 1e9' "$MON_WORK/ghz-${name}.json")" <<'PY'
import math, re, sys
path, selector, slowest = sys.argv[1], sys.argv[2], float(sys.argv[3])
want = dict(re.findall(r'(\w+)="([^"]*)"', selector))
want.pop("job", None)
buckets = {}
for line in open(path):
    m = re.match(r'brain_rpc_duration_seconds_bucket\{(.*)\} (\S+)$', line.strip())
    if not m:
        continue
    labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1)))
    if all(labels.get(k) == v for k, v in want.items()):
        le = math.inf if labels["le"] == "+Inf" else float(labels["le"])
        buckets[le] = buckets.get(le, 0.0) + float(m.group(2))
bounds = sorted(buckets)
# Prometheus's histogram_quantile: rank q*count, linear interpolation inside the bucket holding it,
# the first bucket starting at 0, the +Inf bucket answered by the highest finite bound.
count = buckets[math.inf]
rank = 0.99 * count
i = next(i for i, b in enumerate(bounds) if buckets[b] >= rank)
if bounds[i] == math.inf:
    q = bounds[-2]
else:
    lo = 0.0 if i == 0 else bounds[i - 1]
    below = 0.0 if i == 0 else buckets[bounds[i - 1]]
    q = lo + (bounds[i] - lo) * (rank - below) / (buckets[bounds[i]] - below)
bound = next((b for b in bounds if b >= slowest), math.inf)
print(repr(q), repr(bound))
PY
  )
  python3 - "$got" "$want" "$bound" <<'PY' || { ci::die "prometheus: ${expr} = ${got}; from /metrics: ${want}; must be in (0, ${bound}]"; return 1; }
import math, sys
got, want, bound = (float(x) for x in sys.argv[1:])
sys.exit(0 if math.isclose(got, want, rel_tol=1e-9) and 0 < got <= bound else 1)
PY
  ci::log "prometheus: ${expr} = ${got} s (from /metrics: ${want}; the bucket of ghz's slowest call ends at ${bound})"
}

mon::prometheus() (
  set -euo pipefail
  local bin="${1:?mon::prometheus SERVER_BIN WORK}" work="${2:?mon::prometheus SERVER_BIN WORK}"
  ci::ensure_prometheus
  if ! command -v ghz >/dev/null || ! command -v grpcurl >/dev/null || ! command -v grpc_health_probe >/dev/null; then
    ci::ensure_go_tools
  fi
  MON_WORK="$work"
  mkdir -p "$work"
  local brain_pid="" prom_pid=""
  # shellcheck disable=SC2317  # called by the trap
  cleanup() {
    local rc=$?
    if ((rc != 0)); then
      ci::log "brain log (tail):"; tail -n 20 "$work/brain.log" 2>/dev/null | sed 's/^/    /' >&2
      ci::log "prometheus log (tail):"; tail -n 20 "$work/prometheus.log" 2>/dev/null | sed 's/^/    /' >&2
    fi
    if [[ -n "$prom_pid" ]]; then kill "$prom_pid" 2>/dev/null || true; wait "$prom_pid" 2>/dev/null || true; fi
    if [[ -n "$brain_pid" ]]; then kill -KILL "$brain_pid" 2>/dev/null || true; wait "$brain_pid" 2>/dev/null || true; fi
    return "$rc"
  }
  trap cleanup EXIT

  # brain, on a fresh SQLite file, with /metrics on a free port. Scheduled retention every 2 s, so
  # the counter BrainRetentionNotRunning watches exists.
  (cd "$work" && exec "$bin" --listen-addr 127.0.0.1:0 --metrics-addr 127.0.0.1:0 \
    --ready-file "$work/ready.json" --database-url "sqlite://$work/brain.db" --log-format json \
    --set retention_interval_ms=2000) >"$work/brain.log" 2>&1 &
  brain_pid=$!
  local deadline=$(($(date +%s) + 60))
  until [[ -s "$work/ready.json" ]] && grpc_health_probe -addr "$(jq -r .grpc_addr "$work/ready.json")" \
    -connect-timeout 1s -rpc-timeout 1s >/dev/null 2>&1; do
    kill -0 "$brain_pid" 2>/dev/null || { ci::die "brain-server exited early"; return 1; }
    (($(date +%s) < deadline)) || { ci::die "brain-server not SERVING within 60 s"; return 1; }
    sleep 0.2
  done
  MON_GRPC="$(jq -r .grpc_addr "$work/ready.json")"
  local metrics_addr
  metrics_addr="$(jq -r .metrics_addr "$work/ready.json")"
  ci::log "brain-server (pid ${brain_pid}) SERVING on ${MON_GRPC}, /metrics on ${metrics_addr}"

  # Prometheus: scrape and evaluate the rules every second.
  local port
  port="$(mon::_free_port)"
  MON_PROM="http://127.0.0.1:${port}"
  cat >"$work/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files:
  - ${MON_ROOT}/deploy/prometheus/brain.rules.yml
scrape_configs:
  - job_name: brain
    static_configs:
      - targets: ["${metrics_addr}"]
EOF
  promtool check config "$work/prometheus.yml" >&2
  prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/tsdb" \
    --web.listen-address="127.0.0.1:${port}" --log.level=warn >"$work/prometheus.log" 2>&1 &
  prom_pid=$!
  deadline=$(($(date +%s) + 60))
  until curl -fsS --max-time 2 "${MON_PROM}/-/ready" >/dev/null 2>&1; do
    kill -0 "$prom_pid" 2>/dev/null || { ci::die "prometheus exited early"; return 1; }
    (($(date +%s) < deadline)) || { ci::die "prometheus not ready within 60 s"; return 1; }
    sleep 0.2
  done
  ci::log "$(prometheus --version 2>&1 | head -n 1) (pid ${prom_pid}) ready on ${MON_PROM}"
  mon::_expect 'up{job="brain"}' 1

  # The load.
  local project
  project="$(grpcurl -plaintext -d '{"name":"monitoring"}' "$MON_GRPC" brain.v1.ProjectService/CreateProject |
    jq -r .project.projectId)"
  [[ -n "$project" && "$project" != null ]] || { ci::die "CreateProject returned no projectId"; return 1; }
  grpcurl -plaintext -d @ "$MON_GRPC" brain.v1.ProjectService/UpsertScene >/dev/null <<EOF
{"project_id": "$project", "scene_id": "intro", "name": "Intro", "summary": "Logo reveal over a dark gradient", "duration_seconds": 4}
EOF
  mon::_ghz get-ok "$MON_GET_OK" OK brain.v1.ProjectService/GetProject "{\"project_id\":\"$project\"}"
  mon::_ghz get-not-found "$MON_GET_NOT_FOUND" NotFound brain.v1.ProjectService/GetProject '{"project_id":"does-not-exist"}'
  mon::_ghz put-memory "$MON_PUT_MEMORY" OK brain.v1.ProjectService/PutMemory \
    "{\"project_id\":\"$project\",\"type\":\"MEMORY_TYPE_USER_PREFERENCE\",\"key\":\"k{{.RequestNumber}}\",\"value\":\"v\",\"confidence\":0.5}"
  mon::_ghz orchestrate "$MON_ORCHESTRATE" OK brain.v1.OrchestratorService/Orchestrate \
    "{\"project_id\":\"$project\",\"prompt\":\"make the intro shorter and use a serif font\"}"

  # What Prometheus scraped must be exactly what was sent.
  local total=$((2 + MON_GET_OK + MON_GET_NOT_FOUND + MON_PUT_MEMORY + MON_ORCHESTRATE))
  mon::_expect 'brain_rpc_requests_total{job="brain",method="GetProject",code="OK"}' "$MON_GET_OK"
  mon::_expect 'brain_rpc_requests_total{job="brain",method="GetProject",code="NOT_FOUND"}' "$MON_GET_NOT_FOUND"
  mon::_expect 'brain_rpc_requests_total{job="brain",method="PutMemory",code="OK"}' "$MON_PUT_MEMORY"
  mon::_expect 'brain_rpc_requests_total{job="brain",method="Orchestrate",code="OK"}' "$MON_ORCHESTRATE"
  mon::_expect 'brain_rpc_requests_total{job="brain",method="CreateProject",code="OK"}' 1
  mon::_expect 'brain_rpc_requests_total{job="brain",method="UpsertScene",code="OK"}' 1
  mon::_expect 'sum(brain_rpc_requests_total{job="brain"})' "$total"
  mon::_expect 'brain_orchestrations_total{job="brain"}' "$MON_ORCHESTRATE"
  mon::_expect 'brain_rpc_duration_seconds_count{job="brain",method="GetProject",code="OK"}' "$MON_GET_OK"
  mon::_expect 'sum(brain_stage_duration_seconds_count{job="brain",stage="decision"})' "$MON_ORCHESTRATE"
  mon::_expect 'brain_retention_runs_total{job="brain"} > bool 0' 1

  # /metrics now, for the quantiles and promtool (RPC histograms no longer change: no more calls).
  curl -fsS --max-time 5 "http://${metrics_addr}/metrics" >"$work/metrics.txt"
  mon::_p99_check '{job="brain",method="Orchestrate",code="OK"}' orchestrate
  mon::_p99_check '{job="brain",method="GetProject",code="OK"}' get-ok

  ci::log "\$ curl -s http://${metrics_addr}/metrics | promtool check metrics"
  promtool check metrics <"$work/metrics.txt"
  ci::log "promtool check metrics: clean ($(grep -c '^brain_' "$work/metrics.txt") samples)"

  # Every rule of brain.rules.yml loaded, evaluated on these real series without error.
  local rules
  rules="$(grep -cE '^\s*- (alert|record):' "$MON_ROOT/deploy/prometheus/brain.rules.yml")"
  deadline=$(($(date +%s) + MON_TIMEOUT))
  until curl -fsS --max-time 5 "${MON_PROM}/api/v1/rules" >"$work/rules.json" &&
    jq -e --argjson n "$rules" '[.data.groups[].rules[]] | length == $n and all(.lastEvaluation | startswith("0001") | not)' \
      "$work/rules.json" >/dev/null; do
    (($(date +%s) < deadline)) || { ci::die "prometheus did not load and evaluate the ${rules} rules: $(jq -c '[.data.groups[].rules[] | {name, lastEvaluation}]' "$work/rules.json")"; return 1; }
    sleep 0.5
  done
  jq -e 'all(.data.groups[].rules[]; .health == "ok" and ((.lastError // "") == ""))' "$work/rules.json" >/dev/null || {
    ci::die "rules with errors: $(jq -c '[.data.groups[].rules[] | select(.health != "ok") | {name, health, lastError}]' "$work/rules.json")"
    return 1
  }
  ci::log "prometheus: ${rules} rules of brain.rules.yml loaded and evaluated, all healthy"
  curl -fsS --max-time 5 "${MON_PROM}/api/v1/alerts" >"$work/alerts.json"
  jq -e '.data.alerts == []' "$work/alerts.json" >/dev/null || {
    ci::die "alerts on a healthy server: $(jq -c '[.data.alerts[] | {name: .labels.alertname, state}]' "$work/alerts.json")"
    return 1
  }
  ci::log "prometheus: no alert pending or firing on the healthy server"

  # brain stops cleanly under scraping.
  kill -TERM "$brain_pid"
  local rc=0
  wait "$brain_pid" || rc=$?
  brain_pid=""
  ((rc == 0)) || { ci::die "brain-server exited with status ${rc} after SIGTERM"; return 1; }
  ci::log "brain-server exited 0 after SIGTERM"
)

# ---- deploy/kubernetes -----------------------------------------------------------------------
mon::kubernetes() (
  set -euo pipefail
  local work="${1:?mon::kubernetes WORK}"
  ci::ensure_k8s_tools
  # shellcheck disable=SC2086  # a list of versions
  ci::ensure_k8s_schemas $MON_K8S_VERSIONS
  python3 -c 'import yaml' 2>/dev/null || python3 -m pip install --quiet pyyaml >&2
  mkdir -p "$work"
  cd "$MON_ROOT"

  # Every kustomization under deploy/kubernetes, rendered (a Component renders only inside the
  # overlays that use it).
  local files=(deploy/kubernetes/base/brain.yaml) k dir out
  while IFS= read -r k; do
    grep -qE '^kind: *Component' "$k" && continue
    dir="$(dirname "$k")"
    out="$work/kustomize-$(tr '/' '_' <<<"${dir#deploy/kubernetes/}").yaml"
    ci::log "\$ kustomize build ${dir}"
    kustomize build "$dir" >"$out"
    files+=("$out")
  done < <(find deploy/kubernetes -name kustomization.yaml | sort)
  ((${#files[@]} > 2)) || { ci::die "no kustomize overlay found under deploy/kubernetes"; return 1; }
  while IFS= read -r k; do # a component no overlay uses would go unchecked
    dir="$(basename "$(dirname "$k")")"
    grep -rqE "^\s*- .*components/${dir}\s*$" --include=kustomization.yaml deploy/kubernetes || {
      ci::die "component ${dir} is used by no kustomization, so nothing checks it"; return 1; }
  done < <(grep -lE '^kind: *Component' -r --include=kustomization.yaml deploy/kubernetes)

  local v summary
  for v in $MON_K8S_VERSIONS; do
    ci::log "\$ kubeconform -strict -kubernetes-version ${v} ... (${#files[@]} files)"
    summary="$work/kubeconform-${v}.json"
    kubeconform -strict -summary -output json -kubernetes-version "$v" \
      -schema-location "${BRAIN_CI_K8S_SCHEMAS}/{{.NormalizedKubernetesVersion}}-local{{.StrictSuffix}}/{{.ResourceKind}}{{.KindSuffix}}.json" \
      "${files[@]}" >"$summary" || {
      jq -r '.resources[]? | "    \(.filename): \(.kind) \(.name): \(.status) \(.msg)"' "$summary" >&2 || cat "$summary" >&2
      ci::die "kubeconform: invalid for Kubernetes ${v}"
      return 1
    }
    jq -e '.summary.valid > 0 and .summary.invalid == 0 and .summary.errors == 0 and .summary.skipped == 0' \
      "$summary" >/dev/null || { ci::die "kubeconform summary for ${v}: $(jq -c .summary "$summary")"; return 1; }
    ci::log "kubeconform (Kubernetes ${v}, strict): $(jq -c .summary "$summary")"
  done

  # What a schema cannot say.
  python3 - "${files[@]}" <<'PY'
import sys, yaml
failed = False
for path in sys.argv[1:]:
    docs = [d for d in yaml.safe_load_all(open(path)) if d]
    deployments = [d for d in docs if d["kind"] == "Deployment"]
    pdbs = [d for d in docs if d["kind"] == "PodDisruptionBudget"]
    def fail(msg):
        global failed
        failed = True
        print(f"ERROR: {path}: {msg}", file=sys.stderr)
    for dep in deployments:
        name = dep["metadata"]["name"]
        pod_labels = dep["spec"]["template"]["metadata"].get("labels", {})
        replicas = dep["spec"].get("replicas", 1)
        for c in dep["spec"]["template"]["spec"]["containers"]:
            res = c.get("resources", {})
            for key in ("cpu", "memory"):
                if key not in res.get("requests", {}):
                    fail(f"container {c['name']} of {name} has no {key} request")
            if "memory" not in res.get("limits", {}):
                fail(f"container {c['name']} of {name} has no memory limit")
        covering = [p for p in pdbs
                    if p["spec"]["selector"].get("matchLabels")
                    and all(pod_labels.get(k) == v for k, v in p["spec"]["selector"]["matchLabels"].items())]
        if not covering:
            fail(f"no PodDisruptionBudget selects the pods of Deployment {name}")
        for p in covering:
            spec = p["spec"]
            if "minAvailable" in spec and isinstance(spec["minAvailable"], int) and spec["minAvailable"] >= replicas:
                fail(f"PodDisruptionBudget {p['metadata']['name']}: minAvailable {spec['minAvailable']} >= {replicas} replicas blocks every eviction (node drains hang)")
            if spec.get("maxUnavailable") == 0:
                fail(f"PodDisruptionBudget {p['metadata']['name']}: maxUnavailable 0 blocks every eviction")
    print(f"{path}: {len(deployments)} Deployment(s), {len(pdbs)} PodDisruptionBudget(s): requests, limits and PDB checked", file=sys.stderr)
sys.exit(1 if failed else 0)
PY
)
