#!/usr/bin/env bash
# Benchmark of `cairn install` into a new environment, against real Debian
# bookworm (http://deb.debian.org/debian, the default sources).
#
# Usage: bench/install.sh [RUNS]        (default RUNS=5; run from anywhere)
#
# What it measures, each as the wall time of `cairn install $PACKAGES` in an
# environment just made by `cairn init` (untimed), with a RELEASE build of cairn
# (the median of RUNS):
#   (a) cold   $CAIRN_CACHE_DIR empty: InRelease, Packages indices and .debs
#              are downloaded, verified and parsed
#   (b) warm   cache populated by an earlier install: what remains is the
#              InRelease fetch and signature check, loading the parsed indices,
#              resolving, re-hashing the cached .debs and writing the lock
# Target: (b) <= 0.15 s; (a) no slower than before the parsed-index cache.
#
# Environment:
#   BENCH_DIR   work directory (default /tmp/cairn-bench): envs/, cache-install/
#   PACKAGES    what to install (default "hello"; e.g. "python3 python3-flask")
#   CAIRN_BIN   a cairn binary to measure instead of building this checkout
#               (e.g. a build of an older commit, to compare before and after)
#
# Each cold run downloads the bookworm, bookworm-updates and bookworm-security
# indices (about 10 MB) and the packages. Results are appended to
# $BENCH_DIR/results-install.txt.
set -euo pipefail

RUNS=${1:-5}
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH_DIR=${BENCH_DIR:-/tmp/cairn-bench}
PACKAGES=${PACKAGES:-hello}
CACHE=$BENCH_DIR/cache-install
RESULTS=$BENCH_DIR/results-install.txt
export CAIRN_CACHE_DIR=$CACHE
export CAIRN_NO_PROGRESS=true
unset CAIRN_ENV

log() { printf '==> %s\n' "$*" >&2; }

build_release() {
  if [[ -n ${CAIRN_BIN:-} ]]; then
    CAIRN=$CAIRN_BIN
    return
  fi
  log "building cairn (release)"
  (cd "$REPO" && cargo build --release --quiet -p cairn-cli --bins)
  local target
  target=$(cd "$REPO" && cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
  CAIRN=$target/x86_64-unknown-linux-gnu/release/cairn
  [[ -x $CAIRN ]] || CAIRN=$target/release/cairn
}

# A fresh environment directory, initialised (untimed).
new_env() {
  local dir
  dir=$(mktemp -d "$BENCH_DIR/envs/env.XXXXXX")
  "$CAIRN" -q init -d "$dir" >/dev/null
  echo "$dir"
}

install() {
  # shellcheck disable=SC2086 # one argument per package
  "$CAIRN" -q install -d "$1" $PACKAGES >/dev/null
}

# Wall time of one install into a new environment, after running "$1" (untimed).
time_one() {
  local before=$1 dir start end
  $before
  dir=$(new_env)
  start=$(date +%s%N)
  install "$dir"
  end=$(date +%s%N)
  rm -rf "$dir"
  awk -v ns=$((end - start)) 'BEGIN { printf "%.3f\n", ns / 1e9 }'
}

median() {
  sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'
}

measure() {
  local label=$1 before=$2 times=() t
  for _ in $(seq "$RUNS"); do
    t=$(time_one "$before")
    times+=("$t")
  done
  printf '%-30s median %6.3f s   runs: %s\n' "$label" \
    "$(printf '%s\n' "${times[@]}" | median)" "${times[*]}" | tee -a "$RESULTS"
}

nothing() { :; }
empty_cache() { rm -rf "$CACHE"; }

machine() {
  printf 'machine: %s cores, %s, %s, load %s\n' "$(nproc)" \
    "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')" \
    "$(uname -sr)" "$(cut -d' ' -f1-3 /proc/loadavg)"
}

main() {
  mkdir -p "$BENCH_DIR/envs"
  build_release
  {
    echo "--- $(date -u +%FT%TZ) $CAIRN"
    machine
    echo "install: $PACKAGES, $RUNS runs each, a new environment per run"
  } | tee -a "$RESULTS"
  measure "(a) cold (empty cache)" empty_cache
  log "warming the cache"
  time_one nothing >/dev/null
  measure "(b) warm (cache populated)" nothing
  log "results in $RESULTS"
}

main "$@"
