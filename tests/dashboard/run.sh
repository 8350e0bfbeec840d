#!/usr/bin/env bash
# Runs the dashboard browser test: installs what it needs (idempotent), builds
# the server, and runs tests/dashboard/dashboard.test.mjs in headless Chromium.
# The screenshot lands in target/dashboard.png (override with SCREENSHOT).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"

# Chromium from Debian (playwright-core never downloads browsers).
if [[ ! -x "${CHROMIUM:-/usr/bin/chromium}" ]]; then
  if [[ $(id -u) -eq 0 ]]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium >/dev/null
  else
    echo "chromium is missing: run 'sudo apt-get install -y chromium' (or set CHROMIUM)" >&2
    exit 1
  fi
fi

# gRPC load tools: ghz and grpcurl (from PATH or ~/go/bin).
export PATH="$PATH:$HOME/go/bin"
for tool in ghz grpcurl; do
  command -v "$tool" >/dev/null || { echo "$tool is missing (go install it; see docs/OBSERVABILITY.md)" >&2; exit 1; }
done

# playwright-core, pinned by package-lock.json; reinstalled only when the lock changes.
stamp="$here/node_modules/.lock-stamp"
if [[ ! -f "$stamp" ]] || ! cmp -s "$here/package-lock.json" "$stamp"; then
  (cd "$here" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)
  cp "$here/package-lock.json" "$stamp"
fi

if [[ -z "${BRAIN_SERVER_BIN:-}" ]]; then
  cargo build -p brain-server --bin brain-server --quiet
  export BRAIN_SERVER_BIN="$root/target/debug/brain-server"
fi

export SCREENSHOT="${SCREENSHOT:-target/dashboard.png}"
cd "$here"
node --test dashboard.test.mjs
