#!/usr/bin/env bash
# Runs the dashboard browser test from a fresh Debian machine: installs what it
# needs (idempotent: Debian chromium and Node.js from apt, ghz and grpcurl with
# `go install` through .ci/lib/tools.sh, playwright-core pinned by
# package-lock.json), builds the server unless BRAIN_SERVER_BIN names one, and
# runs tests/dashboard/dashboard.test.mjs in headless Chromium.
#
#   tests/dashboard/run.sh
#
# The screenshot lands in target/dashboard.png (override with SCREENSHOT);
# LOAD_SECONDS (default 24) sets how long the load runs.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"
# shellcheck source=../../.ci/lib/tools.sh
source .ci/lib/tools.sh

apt_install() { # apt_install PACKAGE... (as root, or with passwordless sudo)
  ci::_apt_update_once
  ci::_sudo env DEBIAN_FRONTEND=noninteractive \
    apt-get -o DPkg::Lock::Timeout=120 install -y -q --no-install-recommends "$@" >&2
}

# Chromium from Debian: playwright-core drives it and never downloads a browser.
if [[ ! -x "${CHROMIUM:-/usr/bin/chromium}" ]]; then
  ci::log "dashboard: installing chromium (apt)"
  apt_install chromium
fi
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  ci::log "dashboard: installing nodejs and npm (apt)"
  apt_install nodejs npm
fi
# node --test with subtests and t.after needs Node 18 or later (Debian 12 ships 18).
node_major="$(node -p 'process.versions.node.split(".")[0]')"
((node_major >= 18)) || { ci::die "Node.js ${node_major} is too old: 18 or later is needed"; exit 1; }

# ghz (load) and grpcurl (setup calls), pinned in .ci/lib/tools.sh.
if ! command -v ghz >/dev/null || ! command -v grpcurl >/dev/null; then
  ci::ensure_go_tools
fi

# playwright-core, pinned by package-lock.json; reinstalled only when the lock changes.
stamp="$here/node_modules/.lock-stamp"
if [[ ! -f "$stamp" ]] || ! cmp -s "$here/package-lock.json" "$stamp"; then
  ci::log "dashboard: npm ci (playwright-core)"
  (cd "$here" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)
  cp "$here/package-lock.json" "$stamp"
fi

if [[ -z "${BRAIN_SERVER_BIN:-}" ]]; then
  cargo build -p brain-server --bin brain-server --quiet
  export BRAIN_SERVER_BIN="$root/target/debug/brain-server"
fi
# The test runs from tests/dashboard: a path relative to the repository root must still work.
BRAIN_SERVER_BIN="$(realpath "$BRAIN_SERVER_BIN")"
export BRAIN_SERVER_BIN

export SCREENSHOT="${SCREENSHOT:-target/dashboard.png}"
cd "$here"
node --test dashboard.test.mjs
