#!/usr/bin/env bash
# What published environments cost: `cairn publish`, `generations list`,
# `cairn pull` and `activate -r REF -- true` against a local docker-registry,
# next to `activate -d DIR -- true` of the same environment on disk.
#
# Usage: bench/generations.sh [RUNS]        (default RUNS=5; run from anywhere)
#
# Each figure is the median wall time of RUNS runs, with the package cache
# warm (the environment is Debian `hello`; its first lock and activation
# download about 25 MB from Debian). `activate -r` re-reads the record and the
# generation (three small GETs plus two blobs) every time and reuses the cached
# rootfs, so its difference from `activate -d` is what the registry adds.
#
# Environment:
#   BENCH_DIR   work directory (default /tmp/cairn-bench-generations)
#   CAIRN_BIN   the cairn to measure (default: a release build of this tree)
set -euo pipefail

RUNS=${1:-5}
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH_DIR=${BENCH_DIR:-/tmp/cairn-bench-generations}
export CAIRN_CACHE_DIR=$BENCH_DIR/cache
export CAIRN_NO_PROGRESS=true
unset CAIRN_ENV
ARGS=--remote-args=--tls-verify=false

log() { printf '==> %s\n' "$*" >&2; }

if [[ -z ${CAIRN_BIN:-} ]]; then
  log "building cairn (release)"
  (cd "$REPO" && cargo build --release --quiet -p cairn-cli --bins </dev/null)
  target=$(cd "$REPO" && cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
  CAIRN_BIN=$target/x86_64-unknown-linux-gnu/release/cairn
  [[ -x $CAIRN_BIN ]] || CAIRN_BIN=$target/release/cairn
fi
command -v docker-registry >/dev/null || { echo "docker-registry is not installed" >&2; exit 1; }

mkdir -p "$BENCH_DIR/registry"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$BENCH_DIR/registry/config.yml" <<EOF
version: 0.1
storage:
  filesystem:
    rootdirectory: $BENCH_DIR/registry/storage
http:
  addr: 127.0.0.1:$PORT
EOF
docker-registry serve "$BENCH_DIR/registry/config.yml" >"$BENCH_DIR/registry/log" 2>&1 &
REGISTRY_PID=$!
trap 'kill $REGISTRY_PID 2>/dev/null || true' EXIT
for _ in $(seq 50); do
  (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
  sleep 0.1
done
REF=127.0.0.1:$PORT/bench/hello

ENV_DIR=$BENCH_DIR/env
if [[ ! -f $ENV_DIR/.cairn/env/manifest.toml ]]; then
  "$CAIRN_BIN" init -d "$ENV_DIR" --release bookworm >/dev/null 2>&1
  "$CAIRN_BIN" install -d "$ENV_DIR" hello >/dev/null 2>&1
fi
rm -f "$ENV_DIR/.cairn/published.json"
"$CAIRN_BIN" publish -d "$ENV_DIR" "$REF" "$ARGS" >/dev/null 2>&1
"$CAIRN_BIN" activate -d "$ENV_DIR" -- true
"$CAIRN_BIN" activate -r "$REF" "$ARGS" -- true 2>/dev/null

# median_of NAME CMD...: runs CMD RUNS times, prints the median in seconds.
median_of() {
  local name=$1
  shift
  local times=()
  for _ in $(seq "$RUNS"); do
    local start end
    start=$(date +%s.%N)
    "$@" >/dev/null 2>&1
    end=$(date +%s.%N)
    times+=("$(echo "$end - $start" | bc)")
  done
  local median
  median=$(printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
  printf '%-28s %6.3f s\n' "$name" "$median"
}

pull_fresh() {
  rm -rf "$BENCH_DIR/pulled"
  "$CAIRN_BIN" pull "$REF" -d "$BENCH_DIR/pulled" "$ARGS"
}

log "cairn: $CAIRN_BIN; load: $(cut -d' ' -f1-3 /proc/loadavg); $RUNS runs each"
median_of "publish" "$CAIRN_BIN" publish -d "$ENV_DIR" "$ARGS"
median_of "generations list" "$CAIRN_BIN" generations list -r "$REF" "$ARGS"
median_of "pull (new directory)" pull_fresh
median_of "activate -d DIR -- true" "$CAIRN_BIN" activate -d "$ENV_DIR" -- true
median_of "activate -r REF -- true" "$CAIRN_BIN" activate -r "$REF" "$ARGS" -- true
