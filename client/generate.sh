#!/usr/bin/env bash
# Regenerates every client's stubs from proto/brain/v1 with pinned tools.
#
#   client/generate.sh          regenerate in place
#   client/generate.sh --check  regenerate into a temporary directory and fail,
#                               printing the diff, if any committed file differs
#
# Generated code is committed so that installing a client never needs codegen.
# The Rust client needs nothing here: it uses the `brain-proto` crate, which
# generates its code at build time from the same files.
#
# Tools (all pinned; fetched once into client/.tools, which is gitignored):
#   protoc           the vendored binary of the `protoc-bin-vendored` crate at the
#                    version Cargo.lock pins (fetched with `cargo fetch` if needed)
#   Go               protoc-gen-go and protoc-gen-go-grpc, `go install`ed at the versions below
#   Python           grpcio-tools (its own bundled protoc), in a venv, at the version below;
#                    also writes .pyi type stubs
#   TypeScript       @bufbuild/protoc-gen-es from client/typescript/package-lock.json
set -euo pipefail

PROTOC_GEN_GO_VERSION="v1.36.11"
PROTOC_GEN_GO_GRPC_VERSION="v1.6.1"
GRPCIO_TOOLS_VERSION="1.76.0"

GO_MODULE="example.invalid/brain/client/go"
GO_PACKAGE_DIR="gen/brain/v1"

CLIENT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(cd "$CLIENT_DIR/.." && pwd)"
PROTO_DIR="$REPO_DIR/proto"
THIRD_PARTY_DIR="$CLIENT_DIR/third_party/proto"
TOOLS_DIR="${BRAIN_CLIENT_TOOLS:-$CLIENT_DIR/.tools}"

log() { printf '[generate] %s\n' "$*" >&2; }
die() { printf '[generate] ERROR: %s\n' "$*" >&2; exit 1; }

check=false
case "${1:-}" in
  "") ;;
  --check) check=true ;;
  -h | --help) sed -n '2,19p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) die "unknown argument '$1' (expected --check)" ;;
esac

# The brain.v1 files, as paths relative to proto/ (the import root).
mapfile -t BRAIN_PROTOS < <(cd "$PROTO_DIR" && find brain/v1 -name '*.proto' | LC_ALL=C sort)
[[ ${#BRAIN_PROTOS[@]} -gt 0 ]] || die "no .proto files under $PROTO_DIR/brain/v1"

# ---- tools ------------------------------------------------------------------

# The protoc of protoc-bin-vendored, at the version Cargo.lock pins.
find_protoc() {
  local platform
  case "$(uname -s)-$(uname -m)" in
    Linux-x86_64) platform="linux-x86_64" ;;
    Linux-aarch64 | Linux-arm64) platform="linux-aarch_64" ;;
    Darwin-arm64) platform="macos-aarch_64" ;;
    Darwin-x86_64) platform="macos-x86_64" ;;
    *) die "no vendored protoc for $(uname -s)-$(uname -m)" ;;
  esac
  local crate="protoc-bin-vendored-$platform"
  local version
  version="$(awk -v name="$crate" '$0 == "name = \"" name "\"" { getline; gsub(/version = |"/, ""); print; exit }' "$REPO_DIR/Cargo.lock")"
  [[ -n "$version" ]] || die "$crate is not in Cargo.lock"
  local registry="${CARGO_HOME:-$HOME/.cargo}/registry/src"
  local found
  found="$(compgen -G "$registry/*/$crate-$version/bin/protoc" | head -n1 || true)"
  if [[ -z "$found" ]]; then
    log "fetching $crate $version with cargo"
    (cd "$REPO_DIR" && cargo fetch --locked >&2)
    found="$(compgen -G "$registry/*/$crate-$version/bin/protoc" | head -n1 || true)"
  fi
  [[ -n "$found" ]] || die "cannot find $crate-$version/bin/protoc under $registry"
  chmod +x "$found" 2>/dev/null || true
  PROTOC="$found"
  PROTOC_INCLUDE="$(dirname "$(dirname "$found")")/include"
  [[ -f "$PROTOC_INCLUDE/google/protobuf/timestamp.proto" ]] || die "no well-known types under $PROTOC_INCLUDE"
}

ensure_go_plugins() {
  command -v go >/dev/null || die "go is not installed"
  GO_BIN="$TOOLS_DIR/go/protoc-gen-go-$PROTOC_GEN_GO_VERSION+grpc-$PROTOC_GEN_GO_GRPC_VERSION"
  if [[ ! -x "$GO_BIN/protoc-gen-go" || ! -x "$GO_BIN/protoc-gen-go-grpc" ]]; then
    log "installing protoc-gen-go $PROTOC_GEN_GO_VERSION and protoc-gen-go-grpc $PROTOC_GEN_GO_GRPC_VERSION"
    mkdir -p "$GO_BIN"
    GOBIN="$GO_BIN" go install "google.golang.org/protobuf/cmd/protoc-gen-go@$PROTOC_GEN_GO_VERSION"
    GOBIN="$GO_BIN" go install "google.golang.org/grpc/cmd/protoc-gen-go-grpc@$PROTOC_GEN_GO_GRPC_VERSION"
  fi
}

ensure_grpcio_tools() {
  local venv="$TOOLS_DIR/python-grpcio-tools-$GRPCIO_TOOLS_VERSION"
  PYTHON_TOOLS="$venv/bin/python"
  if [[ ! -x "$PYTHON_TOOLS" ]] || ! "$PYTHON_TOOLS" -c 'import grpc_tools' 2>/dev/null; then
    log "installing grpcio-tools $GRPCIO_TOOLS_VERSION into $venv"
    local python="${PYTHON:-python3}"
    "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "grpcio-tools==$GRPCIO_TOOLS_VERSION"
  fi
}

ensure_protoc_gen_es() {
  local package="$CLIENT_DIR/typescript"
  PROTOC_GEN_ES="$package/node_modules/.bin/protoc-gen-es"
  # node_modules/.installed-lock records which package-lock.json was installed
  # (test-all.sh reads it too), so a changed lockfile reinstalls.
  local lock_hash
  lock_hash="$(sha256sum "$package/package-lock.json" | cut -d' ' -f1)"
  if [[ ! -x "$PROTOC_GEN_ES" || "$(cat "$package/node_modules/.installed-lock" 2>/dev/null)" != "$lock_hash" ]]; then
    command -v npm >/dev/null || die "npm is not installed"
    log "installing the TypeScript package's pinned dependencies (npm ci)"
    (cd "$package" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >&2)
    echo "$lock_hash" >"$package/node_modules/.installed-lock"
  fi
}

# ---- generators (each writes a complete tree under its output dir) ----------

generate_go() {
  local out="$1"
  local opts=()
  local proto
  for proto in "${BRAIN_PROTOS[@]}"; do
    opts+=("--go_opt=M$proto=$GO_MODULE/$GO_PACKAGE_DIR;brainv1")
    opts+=("--go-grpc_opt=M$proto=$GO_MODULE/$GO_PACKAGE_DIR;brainv1")
  done
  mkdir -p "$out"
  "$PROTOC" -I "$PROTO_DIR" -I "$PROTOC_INCLUDE" \
    --plugin="protoc-gen-go=$GO_BIN/protoc-gen-go" \
    --plugin="protoc-gen-go-grpc=$GO_BIN/protoc-gen-go-grpc" \
    --go_out="$out" --go_opt="module=$GO_MODULE" \
    --go-grpc_out="$out" --go-grpc_opt="module=$GO_MODULE" \
    "${opts[@]}" "${BRAIN_PROTOS[@]}"
}

generate_python() {
  local out="$1"
  local raw
  raw="$(mktemp -d)"
  "$PYTHON_TOOLS" -m grpc_tools.protoc -I "$PROTO_DIR" \
    --python_out="$raw" --pyi_out="$raw" --grpc_python_out="$raw" \
    "${BRAIN_PROTOS[@]}"
  # grpc_tools writes `from brain.v1 import x_pb2`, which would need a top-level
  # `brain` package; the stubs live in brain_client.v1, so imports between them
  # become relative.
  mkdir -p "$out"
  local file
  for file in "$raw"/brain/v1/*; do
    sed -E 's/^from brain\.v1 import /from . import /' "$file" >"$out/$(basename "$file")"
  done
  printf '"""Generated brain.v1 messages and gRPC stubs (client/generate.sh). Do not edit."""\n' >"$out/__init__.py"
  rm -rf "$raw"
}

generate_typescript() {
  local out="$1"
  mkdir -p "$out"
  "$PROTOC" -I "$PROTO_DIR" -I "$THIRD_PARTY_DIR" -I "$PROTOC_INCLUDE" \
    --plugin="protoc-gen-es=$PROTOC_GEN_ES" \
    --es_out="$out" --es_opt=target=ts,import_extension=js \
    "${BRAIN_PROTOS[@]}" google/rpc/error_details.proto grpc/health/v1/health.proto
}

# ---- main -------------------------------------------------------------------

find_protoc
ensure_go_plugins
ensure_grpcio_tools
ensure_protoc_gen_es
log "protoc: $("$PROTOC" --version) ($PROTOC)"
log "grpcio-tools $GRPCIO_TOOLS_VERSION, protoc-gen-go $PROTOC_GEN_GO_VERSION, protoc-gen-go-grpc $PROTOC_GEN_GO_GRPC_VERSION, protoc-gen-es $("$PROTOC_GEN_ES" --version | awk '{print $NF}')"

# Committed output directories, relative to client/. Each is wholly generated.
TARGETS=(go/gen/brain/v1 python/src/brain_client/v1 typescript/src/gen)

generate_all() {
  local root="$1"
  generate_go "$root/go.tmp"
  # protoc-gen-go writes <module-relative package dir>/<file>.pb.go under the out dir.
  mkdir -p "$(dirname "$root/go/gen/brain/v1")"
  mv "$root/go.tmp/$GO_PACKAGE_DIR" "$root/go/gen/brain/v1"
  rm -rf "$root/go.tmp"
  generate_python "$root/python/src/brain_client/v1"
  generate_typescript "$root/typescript/src/gen"
}

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
generate_all "$scratch"

if $check; then
  status=0
  for target in "${TARGETS[@]}"; do
    if ! diff -ru "$CLIENT_DIR/$target" "$scratch/$target"; then
      status=1
    fi
  done
  if [[ $status -ne 0 ]]; then
    die "generated code is stale: run client/generate.sh and commit the result"
  fi
  log "generated code is up to date (${#TARGETS[@]} trees checked)"
else
  for target in "${TARGETS[@]}"; do
    rm -rf "${CLIENT_DIR:?}/$target"
    mkdir -p "$(dirname "$CLIENT_DIR/$target")"
    cp -R "$scratch/$target" "$CLIENT_DIR/$target"
    log "wrote client/$target ($(find "$CLIENT_DIR/$target" -type f | wc -l) files)"
  done
fi
