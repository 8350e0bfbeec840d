# shellcheck shell=bash
# .ci/lib/tools.sh — CI helper functions for brain. Source it; do not execute it.
#
#   source .ci/lib/tools.sh
#
# Safe under `set -euo pipefail`. Every function logs what it does (to stderr)
# via ci::log. Functions that export variables must be called directly in the
# CI shell (not in $(...) or a pipeline), or the exports are lost.
#
# Public functions:
#   ci::log MSG...                 timestamped log line on stderr
#   ci::section NAME / ci::end_section   section header/footer with elapsed time
#   ci::print_timings              summary of all finished sections
#   ci::ensure_postgres            install/start PostgreSQL, create role + run DB,
#                                  export BRAIN_TEST_POSTGRES_URL (and BRAIN_CI_PG_*)
#   ci::drop_postgres_db           drop the run DB + unused leftover brain_test_% DBs (trap-safe)
#   ci::ensure_go_tools            grpcurl, grpc-health-probe (+grpc_health_probe), ghz
#   ci::ensure_buf                 buf from npm @bufbuild/buf into $HOME cache prefix
#   ci::ensure_prometheus          prometheus + promtool (Debian package prometheus)
#   ci::ensure_k8s_tools           kubeconform + kustomize (go install, pinned)
#   ci::ensure_k8s_schemas VER...  Kubernetes JSON schemas (PyPI kubernetes-validate, pinned by
#                                  sha256), converted for kubeconform; exports BRAIN_CI_K8S_SCHEMAS
#   ci::wait_for_port HOST PORT TIMEOUT_SECS
#
# Tunables (env, all optional):
#   BRAIN_CI_CACHE        base dir for CI-local tools   (default: $HOME/.cache/brain-ci)
#   BRAIN_CI_PG_WAIT      seconds to wait for pg_isready (default: 30)
#   BRAIN_CI_GO_JOBS      set to 1 to run the go installs sequentially

# ---- pinned versions (bump deliberately) -----------------------------------
CI_GRPCURL_VERSION="${CI_GRPCURL_VERSION:-v1.9.4}"
CI_GRPC_HEALTH_PROBE_VERSION="${CI_GRPC_HEALTH_PROBE_VERSION:-v0.4.61}"
CI_GHZ_VERSION="${CI_GHZ_VERSION:-v0.120.0}"
CI_BUF_VERSION="${CI_BUF_VERSION:-1.75.0}"
CI_KUBECONFORM_VERSION="${CI_KUBECONFORM_VERSION:-v0.8.0}"
CI_KUSTOMIZE_VERSION="${CI_KUSTOMIZE_VERSION:-v5.8.2}" # v5.8.3 needs Go 1.27; the machine has 1.26
# Kubernetes JSON schemas: the wheel of PyPI's kubernetes-validate ships them for 1.25 to 1.37,
# generated from Kubernetes' OpenAPI definitions. Pinned by version and sha256.
CI_K8S_SCHEMAS_PACKAGE="${CI_K8S_SCHEMAS_PACKAGE:-kubernetes-validate==1.37.0}"
CI_K8S_SCHEMAS_SHA256="${CI_K8S_SCHEMAS_SHA256:-85136d018a27b50ec7fc049d902bfa5193f5976807e6c0f408e3ab6fe078cad9}"

# ---- logging / sections -----------------------------------------------------
ci::log() {
  printf '[%s] %s\n' "$(date -u '+%Y-%m-%d %H:%M:%SZ')" "$*" >&2
}

ci::die() {
  ci::log "ERROR: $*"
  return 1
}

# Milliseconds since the epoch (bash 5 EPOCHREALTIME; falls back to date).
ci::_now_ms() {
  if [[ -n "${EPOCHREALTIME:-}" ]]; then
    local t="${EPOCHREALTIME/[.,]/}"   # microseconds
    printf '%s' "$((10#$t / 1000))"
  else
    printf '%s' "$(($(date +%s) * 1000))"
  fi
}

ci::_fmt_ms() { # 12345 -> 12.3s
  local ms="$1"
  printf '%d.%ds' "$((ms / 1000))" "$(((ms % 1000) / 100))"
}

if [[ -z "${__CI_SECTIONS_INIT:-}" ]]; then
  __CI_SECTIONS_INIT=1
  __CI_SECTION_NAMES=()
  __CI_SECTION_STARTS=()
  __CI_TIMINGS=()
fi

ci::section() {
  local name="${1:?ci::section NAME}"
  __CI_SECTION_NAMES+=("$name")
  __CI_SECTION_STARTS+=("$(ci::_now_ms)")
  printf '\n' >&2
  ci::log "==================== BEGIN: ${name} ===================="
}

ci::end_section() {
  local n=${#__CI_SECTION_NAMES[@]}
  if ((n == 0)); then
    ci::log "ci::end_section called with no open section (ignored)"
    return 0
  fi
  local i=$((n - 1))
  local name="${__CI_SECTION_NAMES[$i]}"
  local start="${__CI_SECTION_STARTS[$i]}"
  local elapsed=$(($(ci::_now_ms) - start))
  unset "__CI_SECTION_NAMES[$i]" "__CI_SECTION_STARTS[$i]"
  __CI_SECTION_NAMES=("${__CI_SECTION_NAMES[@]+"${__CI_SECTION_NAMES[@]}"}")
  __CI_SECTION_STARTS=("${__CI_SECTION_STARTS[@]+"${__CI_SECTION_STARTS[@]}"}")
  __CI_TIMINGS+=("$(ci::_fmt_ms "$elapsed")	${name}")
  ci::log "-------------------- END:   ${name} ($(ci::_fmt_ms "$elapsed")) --------------------"
}

ci::print_timings() {
  ci::log "Section timings:"
  local line
  for line in "${__CI_TIMINGS[@]+"${__CI_TIMINGS[@]}"}"; do
    printf '    %s\n' "$line" >&2
  done
}

# ---- small utilities --------------------------------------------------------
# Put DIR at the front of PATH (removing any other occurrence) and export it.
ci::path_prepend() {
  local dir="$1" p="" entry
  local IFS=':'
  for entry in ${PATH:-}; do
    [[ -z "$entry" || "$entry" == "$dir" ]] && continue
    p="${p:+$p:}$entry"
  done
  export PATH="$dir${p:+:$p}"
}

ci::_sudo_postgres() { # run a command as the postgres OS user
  if [[ "$(id -u)" == 0 ]]; then
    (cd / && runuser -u postgres -- "$@")
  elif command -v sudo >/dev/null 2>&1; then
    (cd / && sudo -n -u postgres -- "$@")
  else
    ci::die "need root or sudo to run as postgres: $*"
  fi
}

ci::_pg_admin_sql() { # SQL as the postgres superuser via the local socket
  ci::_sudo_postgres psql -X -q -A -t -v ON_ERROR_STOP=1 \
    -p "${BRAIN_CI_PG_PORT:-5432}" -d postgres -c "$1"
}

ci::_apt_update_once() {
  if [[ -n "${__CI_APT_UPDATED:-}" ]]; then return 0; fi
  ci::log "apt-get update"
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=120 update -q >&2
  __CI_APT_UPDATED=1
}

ci::_sudo() {
  if [[ "$(id -u)" == 0 ]]; then "$@"; else sudo -n "$@"; fi
}

# ---- wait_for_port ----------------------------------------------------------
# ci::wait_for_port HOST PORT TIMEOUT_SECS  -> 0 once a TCP connect succeeds, 1 on timeout
ci::wait_for_port() {
  local host="${1:?host}" port="${2:?port}" secs="${3:-30}"
  local deadline=$(($(date +%s) + secs))
  ci::log "waiting up to ${secs}s for ${host}:${port}"
  while :; do
    # shellcheck disable=SC2016  # $1/$2 are expanded by the inner bash
    if timeout 2 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$host" "$port" 2>/dev/null; then
      ci::log "${host}:${port} is accepting connections"
      return 0
    fi
    if (($(date +%s) >= deadline)); then
      ci::log "ERROR: timed out after ${secs}s waiting for ${host}:${port}"
      return 1
    fi
    sleep 0.2
  done
}

# ---- PostgreSQL -------------------------------------------------------------
ci::_pg_server_installed() {
  compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null
}

# Highest major version that has an installed server binary.
ci::_pg_version() {
  local v best=""
  for v in /usr/lib/postgresql/*/bin/postgres; do
    [[ -e "$v" ]] || continue
    v="${v#/usr/lib/postgresql/}"; v="${v%%/*}"
    if [[ -z "$best" ]] || ((${v%%.*} > ${best%%.*})); then best="$v"; fi
  done
  # Prefer a version that already has a 'main' cluster configured.
  for v in /etc/postgresql/*/main; do
    [[ -d "$v" ]] || continue
    v="${v#/etc/postgresql/}"; v="${v%%/*}"
    if [[ -e "/usr/lib/postgresql/$v/bin/postgres" ]] && { [[ -z "$best" ]] || [[ "$v" == "$best" ]]; }; then
      best="$v"
    fi
  done
  [[ -n "$best" ]] || return 1
  printf '%s' "$best"
}

ci::ensure_postgres() {
  local ver port wait_s="${BRAIN_CI_PG_WAIT:-30}"

  if ci::_pg_server_installed; then
    ci::log "postgres: server already installed ($(cd /usr/lib/postgresql && echo *))"
  else
    ci::log "postgres: server not installed -> apt-get install postgresql"
    ci::_apt_update_once
    # C.UTF-8 always exists on Debian; avoids initdb failures from unset/odd locales
    ci::_sudo env DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8 LC_ALL=C.UTF-8 \
      apt-get -o DPkg::Lock::Timeout=120 install -y -q --no-install-recommends postgresql >&2
  fi

  ver="$(ci::_pg_version)" || { ci::die "postgres: cannot determine server version"; return 1; }
  ci::log "postgres: using version ${ver}"

  if [[ ! -f "/etc/postgresql/${ver}/main/postgresql.conf" ]]; then
    ci::log "postgres: cluster ${ver}/main missing -> pg_createcluster"
    ci::_sudo env LANG=C.UTF-8 LC_ALL=C.UTF-8 pg_createcluster --locale=C.UTF-8 "$ver" main >&2
  fi

  port="$(pg_lsclusters -h 2>/dev/null | awk -v v="$ver" '$1==v && $2=="main" {print $3}')"
  port="${port:-5432}"
  export BRAIN_CI_PG_VERSION="$ver" BRAIN_CI_PG_PORT="$port"

  if ci::_sudo pg_ctlcluster "$ver" main status >/dev/null 2>&1; then
    ci::log "postgres: cluster ${ver}/main already running on port ${port}"
  else
    ci::log "postgres: starting cluster ${ver}/main (port ${port})"
    if ! ci::_sudo pg_ctlcluster "$ver" main start >&2; then
      # systemd hosts redirect to systemctl; retry directly if that path fails
      ci::log "postgres: start failed, retrying with --skip-systemctl-redirect"
      ci::_sudo pg_ctlcluster --skip-systemctl-redirect "$ver" main start >&2 || {
        tail -n 30 "/var/log/postgresql/postgresql-${ver}-main.log" >&2 2>/dev/null || true
        ci::die "postgres: could not start cluster ${ver}/main"; return 1
      }
    fi
  fi

  local deadline=$(($(date +%s) + wait_s))
  until pg_isready -q -h 127.0.0.1 -p "$port" -t 2; do
    if (($(date +%s) >= deadline)); then
      tail -n 30 "/var/log/postgresql/postgresql-${ver}-main.log" >&2 2>/dev/null || true
      ci::die "postgres: not ready on 127.0.0.1:${port} after ${wait_s}s"; return 1
    fi
    sleep 0.5
  done
  ci::log "postgres: ready on 127.0.0.1:${port}"

  ci::log "postgres: ensuring role brain (LOGIN CREATEDB, password brain)"
  ci::_pg_admin_sql "
    SET password_encryption = 'scram-sha-256';
    DO \$\$
    BEGIN
      IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'brain') THEN
        CREATE ROLE brain WITH LOGIN CREATEDB PASSWORD 'brain';
      ELSE
        ALTER ROLE brain WITH LOGIN CREATEDB PASSWORD 'brain';
      END IF;
    END
    \$\$;" >/dev/null

  local db
  db="brain_ci_$(date -u +%Y%m%d%H%M%S)_$$"
  ci::log "postgres: creating database ${db} owned by brain"
  ci::_pg_admin_sql "CREATE DATABASE \"${db}\" OWNER brain;" >/dev/null
  export BRAIN_CI_PG_DB="$db"
  export BRAIN_TEST_POSTGRES_URL="postgres://brain:brain@127.0.0.1:${port}/${db}"

  # Verify TCP + password auth with the exact URL the tests will use.
  if ! ci::_pg_check_url; then
    local hba
    hba="$(ci::_pg_admin_sql 'SHOW hba_file;')"
    ci::log "postgres: password login over TCP failed; prepending brain rules to ${hba} and reloading"
    ci::_sudo sed -i -e '1i host all brain 127.0.0.1/32 scram-sha-256' \
      -e '1i host all brain ::1/128 scram-sha-256' "$hba"
    ci::_pg_admin_sql 'SELECT pg_reload_conf();' >/dev/null
    sleep 1
    ci::_pg_check_url || { ci::die "postgres: cannot connect with ${BRAIN_TEST_POSTGRES_URL}"; return 1; }
  fi
  ci::log "postgres: OK -> BRAIN_TEST_POSTGRES_URL=${BRAIN_TEST_POSTGRES_URL}"
}

ci::_pg_check_url() {
  local out
  out="$(PGCONNECT_TIMEOUT=5 psql "$BRAIN_TEST_POSTGRES_URL" -X -A -t -q \
    -c 'SELECT current_user || $$@$$ || current_database()' 2>&1)" || {
    ci::log "postgres: psql check failed: ${out}"
    return 1
  }
  ci::log "postgres: connected via URL as ${out}"
}

# Trap-safe: never fails. Drops this run's DB and brain_ci_<ts>_<pid> DBs whose
# creating process is no longer alive (WITH FORCE), and leftover brain_test_%
# DBs that nobody is connected to (without FORCE: on a shared server a test of
# another run may be using one right now, and then the drop just fails).
ci::drop_postgres_db() {
  local port="${BRAIN_CI_PG_PORT:-5432}" forced="" leftovers="" db force="" pid
  if ! pg_isready -q -h 127.0.0.1 -p "$port" -t 2 2>/dev/null; then
    ci::log "postgres: server not reachable on port ${port}; nothing to drop"
    return 0
  fi
  if [[ "$(ci::_pg_admin_sql 'SHOW server_version_num;' 2>/dev/null || echo 0)" -ge 130000 ]]; then
    force=" WITH (FORCE)"
  fi
  [[ -n "${BRAIN_CI_PG_DB:-}" ]] && forced="${BRAIN_CI_PG_DB}"$'\n'
  while IFS= read -r db; do
    [[ -n "$db" ]] || continue
    pid="${db##*_}"
    if [[ "$pid" =~ ^[0-9]+$ ]] && [[ "$db" != "${BRAIN_CI_PG_DB:-}" ]] && ! kill -0 "$pid" 2>/dev/null; then
      forced+="$db"$'\n'
    fi
  done < <(ci::_pg_admin_sql "SELECT datname FROM pg_database WHERE datname LIKE 'brain\_ci\_%';" 2>/dev/null || true)
  leftovers="$(ci::_pg_admin_sql "SELECT d.datname FROM pg_database d WHERE d.datname LIKE 'brain\_test\_%'
    AND NOT EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.datname = d.datname);" 2>/dev/null || true)"

  while IFS= read -r db; do
    [[ -n "$db" ]] || continue
    ci::log "postgres: dropping database ${db}"
    ci::_pg_admin_sql "DROP DATABASE IF EXISTS \"${db}\"${force};" >/dev/null ||
      ci::log "postgres: WARNING: failed to drop ${db}"
  done < <(printf '%s' "$forced" | awk 'NF && !seen[$0]++')
  while IFS= read -r db; do
    [[ -n "$db" ]] || continue
    ci::log "postgres: dropping leftover test database ${db}"
    ci::_pg_admin_sql "DROP DATABASE IF EXISTS \"${db}\";" >/dev/null 2>&1 ||
      ci::log "postgres: ${db} is in use (another run?); left alone"
  done < <(printf '%s\n' "$leftovers" | awk 'NF && !seen[$0]++')
  return 0
}

# ---- Go tools ---------------------------------------------------------------
ci::_gobin() {
  local b
  b="$(go env GOBIN)"
  if [[ -z "$b" ]]; then b="$(go env GOPATH)"; b="${b%%:*}/bin"; fi
  printf '%s' "$b"
}

# 0 if BINARY is a Go binary built from module MOD at version VER
ci::_go_bin_is() {
  local bin="$1" mod="$2" ver="$3"
  [[ -x "$bin" ]] || return 1
  go version -m "$bin" 2>/dev/null | awk -v m="$mod" -v v="$ver" \
    '$1=="mod" && $2==m && $3==v {found=1} END {exit !found}'
}

# Puts go and GOBIN on PATH; exports BRAIN_CI_GOBIN.
ci::_go_env() {
  if ! command -v go >/dev/null 2>&1 && [[ -x /usr/local/go/bin/go ]]; then
    ci::path_prepend /usr/local/go/bin
  fi
  command -v go >/dev/null 2>&1 || { ci::die "go not found on PATH"; return 1; }
  local gobin
  gobin="$(ci::_gobin)"
  mkdir -p "$gobin"
  ci::path_prepend "$gobin"
  export BRAIN_CI_GOBIN="$gobin"
}

# ci::_go_install_pinned "name|module|package|version"...  -> go install each one that is not
# already there at that version (in parallel unless BRAIN_CI_GO_JOBS=1); checks each resolves to
# GOBIN. Call ci::_go_env first.
ci::_go_install_pinned() {
  local gobin="$BRAIN_CI_GOBIN"
  local logdir spec name mod pkg ver pids=() names=() logs=() i rc=0
  logdir="$(mktemp -d)"
  for spec in "$@"; do
    IFS='|' read -r name mod pkg ver <<<"$spec"
    if ci::_go_bin_is "${gobin}/${name}" "$mod" "$ver"; then
      ci::log "go tools: ${name} ${ver} already installed (skip)"
      continue
    fi
    ci::log "go tools: go install ${pkg}@${ver}"
    # one retry for transient proxy/network errors
    ( go install "${pkg}@${ver}" || { sleep 3; go install "${pkg}@${ver}"; } ) \
      >"${logdir}/${name}.log" 2>&1 &
    pids+=("$!"); names+=("$name"); logs+=("${logdir}/${name}.log")
    if [[ "${BRAIN_CI_GO_JOBS:-}" == 1 ]]; then
      wait "$!" || true
    fi
  done
  for i in "${!pids[@]}"; do
    if wait "${pids[$i]}"; then
      ci::log "go tools: installed ${names[$i]}"
    else
      rc=1
      ci::log "ERROR: go install of ${names[$i]} failed:"
      sed 's/^/    /' "${logs[$i]}" >&2 || true
    fi
  done
  rm -rf "$logdir"
  ((rc == 0)) || return 1
  hash -r 2>/dev/null || true
  for spec in "$@"; do
    IFS='|' read -r name mod pkg ver <<<"$spec"
    if [[ "$(command -v "$name" || true)" != "${gobin}/${name}" ]]; then
      ci::die "go tools: ${name} resolves to '$(command -v "$name" || echo none)', expected ${gobin}/${name}"
      return 1
    fi
  done
}

ci::ensure_go_tools() {
  ci::_go_env || return 1
  local gobin="$BRAIN_CI_GOBIN"
  ci::log "go tools: GOBIN=${gobin} ($(go version))"

  # name|module|package|version
  ci::_go_install_pinned \
    "grpcurl|github.com/fullstorydev/grpcurl|github.com/fullstorydev/grpcurl/cmd/grpcurl|${CI_GRPCURL_VERSION}" \
    "grpc-health-probe|github.com/grpc-ecosystem/grpc-health-probe|github.com/grpc-ecosystem/grpc-health-probe|${CI_GRPC_HEALTH_PROBE_VERSION}" \
    "ghz|github.com/bojand/ghz|github.com/bojand/ghz/cmd/ghz|${CI_GHZ_VERSION}" || return 1

  ln -sfn grpc-health-probe "${gobin}/grpc_health_probe"
  hash -r 2>/dev/null || true
  if [[ "$(command -v grpc_health_probe || true)" != "${gobin}/grpc_health_probe" ]]; then
    ci::die "go tools: grpc_health_probe resolves to '$(command -v grpc_health_probe || echo none)', expected ${gobin}/grpc_health_probe"
    return 1
  fi
  ci::log "go tools: OK (grpcurl ${CI_GRPCURL_VERSION}, grpc-health-probe/grpc_health_probe ${CI_GRPC_HEALTH_PROBE_VERSION}, ghz ${CI_GHZ_VERSION})"
}

# ---- Kubernetes manifests: kubeconform, kustomize, schemas ---------------------
ci::ensure_k8s_tools() {
  ci::_go_env || return 1
  ci::_go_install_pinned \
    "kubeconform|github.com/yannh/kubeconform|github.com/yannh/kubeconform/cmd/kubeconform|${CI_KUBECONFORM_VERSION}" \
    "kustomize|sigs.k8s.io/kustomize/kustomize/v5|sigs.k8s.io/kustomize/kustomize/v5|${CI_KUSTOMIZE_VERSION}" || return 1
  ci::log "k8s tools: OK (kubeconform ${CI_KUBECONFORM_VERSION}, kustomize ${CI_KUSTOMIZE_VERSION})"
}

# ci::ensure_k8s_schemas VERSION...  (e.g. 1.30.0 1.37.0)
# kubeconform fetches its schemas from GitHub, which this machine cannot reach. The same kind of
# schemas (JSON Schema, generated from Kubernetes' OpenAPI definitions, one file per kind and API
# version) ships in the PyPI wheel of kubernetes-validate: download it (pinned version and sha256),
# and for each VERSION convert its "local-strict" set for kubeconform. The only changes are to
# references: they point at /api/_definitions.json under the schemas' https://kubernetes.io $id,
# which a validator would try to download; the conversion drops the $id and makes them relative
# to the file. Cached in $BRAIN_CI_CACHE/k8s-schemas; exports BRAIN_CI_K8S_SCHEMAS, a directory
# holding v<VERSION>-local-strict/<kind>-<group>-<version>.json for kubeconform's -schema-location.
ci::ensure_k8s_schemas() {
  local pkg="$CI_K8S_SCHEMAS_PACKAGE" sha="$CI_K8S_SCHEMAS_SHA256"
  local dir="${BRAIN_CI_CACHE:-$HOME/.cache/brain-ci}/k8s-schemas/${pkg/==/-}-${sha:0:12}"
  local v missing=()
  for v in "$@"; do
    [[ -f "${dir}/v${v}-local-strict/.complete" ]] || missing+=("$v")
  done
  if ((${#missing[@]} == 0)); then
    ci::log "k8s schemas: ${*} already converted in ${dir} (skip)"
  else
    local tmp wheel got try
    tmp="$(mktemp -d)"
    ci::log "k8s schemas: pip download ${pkg} (the wheel ships Kubernetes JSON schemas)"
    for try in 1 2; do
      if python3 -m pip download --quiet --no-deps --only-binary=:all: --dest "$tmp" "$pkg" >&2; then
        break
      fi
      ((try == 2)) && { rm -rf "$tmp"; ci::die "k8s schemas: pip download ${pkg} failed"; return 1; }
      ci::log "k8s schemas: pip download failed, retrying"; sleep 3
    done
    wheel="$(compgen -G "${tmp}/*.whl" | head -n 1)"
    got="$(sha256sum "$wheel" | cut -d' ' -f1)"
    if [[ "$got" != "$sha" ]]; then
      rm -rf "$tmp"
      ci::die "k8s schemas: $(basename "$wheel") has sha256 ${got}, expected ${sha}"
      return 1
    fi
    mkdir -p "$dir"
    python3 - "$wheel" "$dir" "${missing[@]}" <<'PY' >&2 || { rm -rf "$tmp"; ci::die "k8s schemas: conversion failed"; return 1; }
import json, os, sys, zipfile
wheel, out, versions = sys.argv[1], sys.argv[2], sys.argv[3:]
archive = zipfile.ZipFile(wheel)
def relative_refs(node):
    if isinstance(node, dict):
        node.pop("$id", None)
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("/api/_definitions.json#"):
            node["$ref"] = ref[len("/api/"):]
        for child in node.values():
            relative_refs(child)
    elif isinstance(node, list):
        for child in node:
            relative_refs(child)
for version in versions:
    prefix = f"kubernetes_validate/kubernetes-json-schema/v{version}-local-strict/"
    names = [n for n in archive.namelist() if n.startswith(prefix) and n.endswith(".json")]
    if not names:
        sys.exit(f"{wheel} has no schemas for Kubernetes {version}")
    target = os.path.join(out, f"v{version}-local-strict")
    os.makedirs(target, exist_ok=True)
    for name in names:
        doc = json.loads(archive.read(name))
        relative_refs(doc)
        with open(os.path.join(target, name[len(prefix):]), "w") as f:
            json.dump(doc, f)
    open(os.path.join(target, ".complete"), "w").close()
    print(f"k8s schemas: Kubernetes {version}: {len(names)} schemas")
PY
    rm -rf "$tmp"
  fi
  export BRAIN_CI_K8S_SCHEMAS="$dir"
  ci::log "k8s schemas: OK (${pkg}, Kubernetes ${*}) -> ${dir}"
}

# ---- Prometheus (Debian) --------------------------------------------------------
# prometheus and promtool from Debian's package (its service is not started: there is no init
# system in CI, and policy-rc.d forbids it in containers; CI starts its own on a free port).
ci::ensure_prometheus() {
  if command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1; then
    ci::log "prometheus: already installed (skip)"
  else
    ci::log "prometheus: not installed -> apt-get install prometheus"
    ci::_apt_update_once
    ci::_sudo env DEBIAN_FRONTEND=noninteractive \
      apt-get -o DPkg::Lock::Timeout=120 install -y -q --no-install-recommends prometheus >&2
  fi
  local cmd
  for cmd in jq curl; do
    if ! command -v "$cmd" >/dev/null 2>&1; then
      ci::log "prometheus: ${cmd} missing -> apt-get install ${cmd}"
      ci::_apt_update_once
      ci::_sudo env DEBIAN_FRONTEND=noninteractive \
        apt-get -o DPkg::Lock::Timeout=120 install -y -q --no-install-recommends "$cmd" >&2
    fi
  done
  ci::log "prometheus: OK ($(prometheus --version 2>&1 | head -n 1); $(promtool --version 2>&1 | head -n 1))"
}

# ---- buf (npm) --------------------------------------------------------------
ci::ensure_buf() {
  local prefix="${BRAIN_CI_CACHE:-$HOME/.cache/brain-ci}/npm"
  local bin="${prefix}/bin/buf" have=""
  if [[ -x "$bin" ]]; then have="$("$bin" --version 2>/dev/null || true)"; fi
  if [[ "$have" == "$CI_BUF_VERSION" ]]; then
    ci::log "buf: ${CI_BUF_VERSION} already installed at ${bin} (skip)"
  else
    command -v npm >/dev/null 2>&1 || { ci::die "npm not found on PATH"; return 1; }
    # shellcheck disable=SC2016
    ci::log "buf: npm install @bufbuild/buf@${CI_BUF_VERSION} into ${prefix}${have:+ (found '${have}')}"
    mkdir -p "$prefix"
    local try
    for try in 1 2; do
      if npm install --global --prefix "$prefix" --include=optional \
          --no-audit --no-fund --loglevel=error "@bufbuild/buf@${CI_BUF_VERSION}" >&2; then
        break
      fi
      ((try == 2)) && { ci::die "buf: npm install failed"; return 1; }
      ci::log "buf: npm install failed, retrying"; sleep 3
    done
  fi
  ci::path_prepend "${prefix}/bin"
  hash -r 2>/dev/null || true
  export BRAIN_CI_BUF="$bin"
  have="$(buf --version 2>&1)" || { ci::die "buf --version failed: ${have}"; return 1; }
  [[ "$have" == "$CI_BUF_VERSION" ]] || { ci::die "buf: expected ${CI_BUF_VERSION}, got '${have}' ($(command -v buf))"; return 1; }
  ci::log "buf: OK ($(command -v buf) --version = ${have})"
}
