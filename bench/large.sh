#!/usr/bin/env bash
# Peak memory (RSS) and wall time of cold and warm `cairn containerize` for
# two environments (issue 10's figures):
#   flask   python3 + python3-flask (49 packages)
#   large   gcc, openjdk-17-jre-headless, python3-numpy, ca-certificates,
#           mawk (about 128 packages, 200 MB)
# Both are locked against real Debian bookworm once, with the .deb cache
# warm; "cold" empties the layer cache before the build, "warm" does not.
# Each figure is the median of RUNS runs (default 5), measured with
# /usr/bin/time -v (release build). Results go to $BENCH_DIR/results-large.txt.
#
# Usage: bench/large.sh [RUNS]
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RUNS=${1:-5}
BENCH_DIR=${BENCH_DIR:-/tmp/cairn-bench}
CAIRN=${CAIRN_BIN:-$REPO/target/x86_64-unknown-linux-gnu/release/cairn}
CACHE=$BENCH_DIR/cache-large
RESULTS=$BENCH_DIR/results-large.txt
export CAIRN_CACHE_DIR=$CACHE CAIRN_NO_PROGRESS=1

log() { printf '==> %s\n' "$*" >&2; }

if [[ -z ${CAIRN_BIN:-} ]]; then
  log "building cairn (release)"
  (cd "$REPO" && cargo build --release --quiet -p cairn-cli --bins)
fi
mkdir -p "$BENCH_DIR"

# prepare NAME PACKAGES...: a locked environment in $BENCH_DIR/NAME.
prepare() {
  local name=$1 dir=$BENCH_DIR/$1
  shift
  if [[ ! -f $dir/.cairn/env/manifest.lock ]]; then
    rm -rf "$dir" && mkdir -p "$dir"
    "$CAIRN" -q init -d "$dir" --release bookworm --name "bench-$name"
    "$CAIRN" -q install -d "$dir" "$@" >/dev/null
  fi
}

# measure DIR: prints "seconds max_rss_kib" of one containerize.
measure() {
  local out
  out=$( { /usr/bin/time -f '%e %M' "$CAIRN" -q containerize -d "$1" -f "$BENCH_DIR/image.tar" >/dev/null; } 2>&1 | tail -n 1)
  echo "$out"
}

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

run_env() {
  local name=$1 dir=$BENCH_DIR/$1 cold_t=() cold_m=() warm_t=() warm_m=() i t m
  for ((i = 0; i < RUNS; i++)); do
    rm -rf "$CACHE/layers-v1"
    read -r t m < <(measure "$dir")
    cold_t+=("$t") cold_m+=("$m")
    read -r t m < <(measure "$dir")
    warm_t+=("$t") warm_m+=("$m")
  done
  local packages
  packages=$(grep -c '^\[\[packages\]\]' "$dir/.cairn/env/manifest.lock" || true)
  printf '%-6s %3s packages  cold %6ss %6s MiB   warm %6ss %6s MiB\n' "$name" "$packages" \
    "$(printf '%s\n' "${cold_t[@]}" | median)" \
    "$(( $(printf '%s\n' "${cold_m[@]}" | median) / 1024 ))" \
    "$(printf '%s\n' "${warm_t[@]}" | median)" \
    "$(( $(printf '%s\n' "${warm_m[@]}" | median) / 1024 ))"
}

prepare flask python3 python3-flask
prepare large gcc openjdk-17-jre-headless python3-numpy ca-certificates mawk
{
  echo "# $(date -u +%FT%TZ) $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), median of $RUNS"
  run_env flask
  run_env large
} | tee -a "$RESULTS"
