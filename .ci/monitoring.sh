#!/usr/bin/env bash
# .ci/monitoring.sh — CI's monitoring and deployment sections on their own (.ci/run runs the same
# functions, from .ci/lib/monitoring.sh, after its smoke section):
#
#   .ci/monitoring.sh [SERVER_BIN]        # default: $BRAIN_SERVER_BIN, else target/debug/brain-server
#   .ci/monitoring.sh --only rules|prometheus|kubernetes [SERVER_BIN]
#
# Installs what is missing (Debian prometheus, kubeconform and kustomize with go install, the
# Kubernetes schemas from PyPI), builds nothing. Exit status 0 = every check passed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=.ci/lib/tools.sh
source .ci/lib/tools.sh
# shellcheck source=.ci/lib/monitoring.sh
source .ci/lib/monitoring.sh

only=""
if [[ "${1:-}" == --only ]]; then only="${2:?--only rules|prometheus|kubernetes}"; shift 2; fi
SERVER_BIN="$(realpath "${1:-${BRAIN_SERVER_BIN:-target/debug/brain-server}}")"
STARTED_MS="$(ci::_now_ms)"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/brain-monitoring.XXXXXX")"
on_exit() {
  local rc=$?
  rm -rf "$WORK"
  ci::print_timings
  ci::log "total: $(ci::_fmt_ms $(($(ci::_now_ms) - STARTED_MS))) — $([[ $rc == 0 ]] && echo PASSED || echo "FAILED (exit ${rc})")"
  exit "$rc"
}
trap on_exit EXIT

if [[ -z "$only" || "$only" == rules ]]; then
  ci::section "monitoring: promtool check rules + test rules (deploy/prometheus)"
  mon::rules
  ci::end_section
fi
if [[ -z "$only" || "$only" == prometheus ]]; then
  [[ -x "$SERVER_BIN" ]] || { ci::die "no server binary at ${SERVER_BIN} (pass one, or set BRAIN_SERVER_BIN)"; exit 1; }
  ci::section "monitoring: real Prometheus scrapes brain under a counted load"
  mon::prometheus "$SERVER_BIN" "$WORK/prometheus"
  ci::end_section
fi
if [[ -z "$only" || "$only" == kubernetes ]]; then
  ci::section "deploy: kubeconform on deploy/kubernetes (and its kustomize builds)"
  mon::kubernetes "$WORK/kubernetes"
  ci::end_section
fi
