#!/usr/bin/env bash
# Runs every client suite against a live brain-server, and checks that the
# committed stubs match proto/brain/v1.
#
#   client/test-all.sh                      generate --check, then rust, python, typescript, go
#   client/test-all.sh python go            only these suites (no generate check)
#   client/test-all.sh generate             only the generate check
#
# brain-server is built once with `cargo test --workspace --no-run` (the
# README's test build, so dependencies are shared with it) and handed to
# every suite as BRAIN_SERVER_BIN (set it yourself to test another binary).
# Each suite starts its own server on a free port with a throwaway SQLite
# database. A failing suite does not stop the others; the exit code is non-zero
# if any failed. Needs cargo, python3 (with venv), node/npm and go; every
# dependency comes from its registry (PyPI, npm, the Go proxy, crates.io).
set -uo pipefail

CLIENT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(cd "$CLIENT_DIR/.." && pwd)"
ALL=(generate rust python typescript go)

if [[ $# -gt 0 ]]; then
  case "$1" in -h | --help) sed -n '2,15p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;; esac
  SELECTED=("$@")
else
  SELECTED=("${ALL[@]}")
fi
for suite in "${SELECTED[@]}"; do
  [[ " ${ALL[*]} " == *" $suite "* ]] || { echo "unknown suite '$suite' (expected: ${ALL[*]})" >&2; exit 2; }
done

banner() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
now() { date +%s.%N; }
elapsed() { awk -v s="$1" -v e="$(now)" 'BEGIN { printf "%.1f", e - s }'; }

declare -a RESULTS=()
failed=0

run_suite() {
  local name="$1"
  shift
  banner "$name"
  local start
  start="$(now)"
  if "$@"; then
    RESULTS+=("$(printf '%-12s PASS  %6ss' "$name" "$(elapsed "$start")")")
  else
    RESULTS+=("$(printf '%-12s FAIL  %6ss' "$name" "$(elapsed "$start")")")
    failed=1
  fi
}

needs_server() {
  local suite
  for suite in "${SELECTED[@]}"; do
    [[ $suite != generate ]] && return 0
  done
  return 1
}

suite_generate() {
  "$CLIENT_DIR/generate.sh" --check
}

suite_rust() {
  (cd "$REPO_DIR" && cargo test -p brain-client)
}

suite_python() {
  (
    set -e
    cd "$CLIENT_DIR/python"
    if [[ ! -x .venv/bin/python ]]; then
      "${PYTHON:-python3}" -m venv .venv
    fi
    # Reinstall only when the package's metadata changed (the install is editable).
    stamp="$(sha256sum pyproject.toml | cut -d' ' -f1)"
    if [[ "$(cat .venv/.installed-pyproject 2>/dev/null)" != "$stamp" ]]; then
      .venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[test]"
      echo "$stamp" >.venv/.installed-pyproject
    fi
    .venv/bin/python -m mypy
    .venv/bin/python -m pytest -q
  )
}

suite_typescript() {
  (
    set -e
    cd "$CLIENT_DIR/typescript"
    # npm ci wipes node_modules; skip it while the lockfile is what was installed.
    lock_hash="$(sha256sum package-lock.json | cut -d' ' -f1)"
    if [[ "$(cat node_modules/.installed-lock 2>/dev/null)" != "$lock_hash" ]]; then
      npm ci --no-audit --no-fund --loglevel=error
      echo "$lock_hash" >node_modules/.installed-lock
    fi
    npm test
  )
}

suite_go() {
  (
    set -e
    cd "$CLIENT_DIR/go"
    go vet ./...
    unformatted="$(gofmt -l .)"
    if [[ -n $unformatted ]]; then
      echo "gofmt needed: $unformatted" >&2
      exit 1
    fi
    go test -count=1 ./...
  )
}

total_start="$(now)"
if needs_server && [[ -z ${BRAIN_SERVER_BIN:-} ]]; then
  banner "brain-server (cargo test --workspace --no-run)"
  start="$(now)"
  if ! (cd "$REPO_DIR" && cargo test --workspace --no-run); then
    echo "cannot build brain-server" >&2
    exit 1
  fi
  target="${CARGO_TARGET_DIR:-$REPO_DIR/target}"
  export BRAIN_SERVER_BIN="$target/debug/brain-server"
  RESULTS+=("$(printf '%-12s BUILT %6ss' "server" "$(elapsed "$start")")")
fi
[[ -n ${BRAIN_SERVER_BIN:-} ]] && echo "brain-server: $BRAIN_SERVER_BIN"

for suite in "${SELECTED[@]}"; do
  run_suite "$suite" "suite_$suite"
done

banner "client suites: summary ($(elapsed "$total_start")s in total)"
printf '%s\n' "${RESULTS[@]}"
exit "$failed"
