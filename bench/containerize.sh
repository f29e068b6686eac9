#!/usr/bin/env bash
# Benchmark of `cairn containerize` on a python3 + python3-flask environment
# (139 packages on trixie with the Essential set and Recommends), against the limit for a cold build.
#
# Usage: bench/containerize.sh [RUNS]        (default RUNS=5; run from anywhere)
#
# What it measures, each as the wall time of `cairn containerize -f OUT.tar`
# with a RELEASE build of cairn and the .deb cache warm (the median of RUNS):
#   (a) cold     every layer compressed again ($CAIRN_CACHE_DIR/layers-v1 and
#                facts-v1 moved aside, deleted at the end: see drop_layer_cache)
#   (b) warm     lock unchanged: every layer from the cache
#   (b') warm to a pipe: `-f - | cat >/dev/null`, as into `docker load`
#   (c) one pkg  the layer holding one package evicted from the cache
#                (python3-flask, the package a developer bumps; small packages
#                share a layer, so its whole group is rebuilt), as after
#                upgrading that one package
#   limit        decompress every package's data.tar and gzip it once at level 6,
#                in parallel over all cores, with the crates cairn uses
#                (crates/cairn-oci/examples/baseline.rs), run alternately with (a);
#                (a) should be within 1.15x (issue 10; it was 1.17-1.35x).
#                Also reported: the limit without xz's own CRC64, which cairn
#                skips where it checks a .deb's sha256 (the stricter reading)
# Targets: (b) < 0.1 s; (a) <= 1.15 x limit. The machine must be otherwise
# idle: on a loaded VM the pairs scatter (0.8-1.6x) and the median says little.
#
# Environment:
#   BENCH_DIR        work directory (default /tmp/cairn-bench): env/, cache/, out.tar
#   CAIRN_BENCH_ENV  an environment directory to benchmark instead of the flask
#                    example (it is locked with `cairn upgrade` if it has no lock)
#   CHANGED_PKG      the package evicted for (c) (default python3-flask)
#   CAIRN_BIN        a cairn binary to measure instead of building this checkout
#                    (with cairn-entrypoint beside it), e.g. an older commit's
#   BASELINE_BIN     the baseline example to use instead of building it
#
# The first run downloads the packages from Debian (about 20 MB); later runs
# reuse BENCH_DIR. The lock is kept between runs so results stay comparable;
# delete BENCH_DIR/env/.cairn/env/manifest.lock to re-resolve.
set -euo pipefail

RUNS=${1:-5}
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH_DIR=${BENCH_DIR:-/tmp/cairn-bench}
CHANGED_PKG=${CHANGED_PKG:-python3-flask}
OUT=$BENCH_DIR/out.tar
export CAIRN_CACHE_DIR=$BENCH_DIR/cache
export CAIRN_NO_PROGRESS=true
unset SOURCE_DATE_EPOCH CAIRN_ENV

log() { printf '==> %s\n' "$*" >&2; }

build_release() {
  if [[ -n ${CAIRN_BIN:-} && -n ${BASELINE_BIN:-} ]]; then
    CAIRN=$CAIRN_BIN BASELINE=$BASELINE_BIN
    return
  fi
  log "building cairn and the baseline (release)"
  (cd "$REPO" && cargo build --release --quiet -p cairn-cli --bins &&
    cargo build --release --quiet -p cairn-oci --example baseline)
  local target
  target=$(cd "$REPO" && cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
  local triple=x86_64-unknown-linux-gnu
  CAIRN=$target/$triple/release/cairn
  BASELINE=$target/$triple/release/examples/baseline
  [[ -x $CAIRN ]] || CAIRN=$target/release/cairn
  [[ -x $BASELINE ]] || BASELINE=$target/release/examples/baseline
  CAIRN=${CAIRN_BIN:-$CAIRN} BASELINE=${BASELINE_BIN:-$BASELINE}
}

prepare_env() {
  ENV_DIR=${CAIRN_BENCH_ENV:-$BENCH_DIR/env}
  mkdir -p "$ENV_DIR/.cairn/env"
  if [[ -z ${CAIRN_BENCH_ENV:-} && ! -f $ENV_DIR/.cairn/env/manifest.toml ]]; then
    cp "$REPO/examples/flask/.cairn/env/manifest.toml" "$ENV_DIR/.cairn/env/"
  fi
  if [[ ! -f $ENV_DIR/.cairn/env/manifest.lock ]]; then
    log "locking $ENV_DIR against Debian"
    "$CAIRN" upgrade -d "$ENV_DIR" >/dev/null
  fi
  log "warming the .deb cache"
  containerize >/dev/null
}

containerize() {
  if [[ ${TO_PIPE:-} ]]; then
    "$CAIRN" -q containerize -d "$ENV_DIR" -f - | cat >/dev/null
  else
    "$CAIRN" -q containerize -d "$ENV_DIR" -f "$OUT"
  fi
}

# Wall time of one containerize in seconds, after running "$1" (untimed).
time_one() {
  local before=$1 start end
  $before
  start=$(date +%s%N)
  containerize
  end=$(date +%s%N)
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
  printf '%-34s median %6.3f s   runs: %s\n' "$label" \
    "$(printf '%s\n' "${times[@]}" | median)" "${times[*]}" | tee -a "$BENCH_DIR/results.txt"
}

# One limit run per cold run, alternating, so machine drift (a shared VM)
# hits both alike; reports both medians and the median of the per-pair ratios.
# A second limit run per pair skips xz's CRC64 as cairn does (it checks each
# .deb's sha256 instead): the ratio against that stricter limit is printed too.
measure_cold_against_limit() {
  local cold=() limit=() strict=() ratios=() strict_ratios=() c l s
  for _ in $(seq "$RUNS"); do
    c=$(time_one drop_layer_cache)
    # shellcheck disable=SC2046 # one argument per .deb path (no spaces in them)
    l=$("$BASELINE" --runs 1 $(locked_debs) | awk '/^median:/ { print $2 }')
    # shellcheck disable=SC2046
    s=$("$BASELINE" --runs 1 --ignore-check $(locked_debs) | awk '/^median:/ { print $2 }')
    cold+=("$c") limit+=("$l") strict+=("$s")
    ratios+=("$(awk -v c="$c" -v l="$l" 'BEGIN { printf "%.3f\n", c / l }')")
    strict_ratios+=("$(awk -v c="$c" -v l="$s" 'BEGIN { printf "%.3f\n", c / l }')")
  done
  printf '%-34s median %6.3f s   runs: %s\n' "(a) cold (layers-v1 removed)" \
    "$(printf '%s\n' "${cold[@]}" | median)" "${cold[*]}" | tee -a "$BENCH_DIR/results.txt"
  printf '%-34s median %6.3f s   runs: %s\n' "limit (decompress + gzip -6)" \
    "$(printf '%s\n' "${limit[@]}" | median)" "${limit[*]}" | tee -a "$BENCH_DIR/results.txt"
  printf '%-34s median %6.3f x   runs: %s   (target <= 1.15)\n' "(a) / limit, per pair" \
    "$(printf '%s\n' "${ratios[@]}" | median)" "${ratios[*]}" | tee -a "$BENCH_DIR/results.txt"
  printf '%-34s median %6.3f s   runs: %s\n' "limit without xz's CRC64" \
    "$(printf '%s\n' "${strict[@]}" | median)" "${strict[*]}" | tee -a "$BENCH_DIR/results.txt"
  printf '%-34s median %6.3f x   runs: %s\n' "(a) / that limit, per pair" \
    "$(printf '%s\n' "${strict_ratios[@]}" | median)" "${strict_ratios[*]}" | tee -a "$BENCH_DIR/results.txt"
}

nothing() { :; }
# Per-package facts (facts-v1) are collected by the layer pass; a cold build has none.
# The dropped buckets are moved aside and deleted only after the last run
# (about 80 MB per cold run):
# ext4 without a journal (this VM's disk) skips inodes freed in the last
# 1-6 minutes one by one when it allocates a new one, so deleting the ~600
# files of the last build right before a run made each of the next build's
# few hundred new files cost 0.5 ms of CPU instead of 0.05 ms, a penalty a
# first build on a fresh cache never pays, and one that grew over a session.
drop_layer_cache() {
  local trash
  trash=$(mktemp -d "$BENCH_DIR/trash/dropped.XXXXXX")
  for bucket in layers-v1 facts-v1; do
    [[ -e $CAIRN_CACHE_DIR/$bucket ]] && mv "$CAIRN_CACHE_DIR/$bucket" "$trash/"
  done
  return 0
}
empty_trash() { rm -rf "$BENCH_DIR/trash"; mkdir -p "$BENCH_DIR/trash"; }

# The blob digest of $CHANGED_PKG's layer, read from the image config's history.
changed_layer_digest() {
  python3 - "$OUT" "$CHANGED_PKG" <<'EOF'
import json, sys, tarfile
archive, package = sys.argv[1], sys.argv[2]
with tarfile.open(archive) as tar:
    blob = lambda digest: json.load(tar.extractfile("blobs/sha256/" + digest.split(":")[1]))
    index = json.load(tar.extractfile("index.json"))
    manifest = blob(index["manifests"][0]["digest"])
    config = blob(manifest["config"]["digest"])
history = [h for h in config["history"] if not h.get("empty_layer")]
# A layer's history says "cairn: PKG VERSION[, PKG VERSION...]": small
# packages share a layer, so the one holding the package is rebuilt.
for layer, h in zip(manifest["layers"], history):
    listed = h.get("created_by", "").removeprefix("cairn: ").split(", ")
    if any(item.startswith(f"{package} ") for item in listed):
        print(layer["digest"])
        break
else:
    sys.exit(f"no layer holds {package}")
EOF
}

evict_changed_layer() {
  local digest records
  digest=$(changed_layer_digest)
  records=$(grep -l "\"$digest\"" "$CAIRN_CACHE_DIR"/layers-v1/*.json)
  rm -f $records "$CAIRN_CACHE_DIR/layers-v1/blobs/sha256/${digest#sha256:}"
}

locked_debs() {
  python3 - "$ENV_DIR/.cairn/env/manifest.lock" "$CAIRN_CACHE_DIR/debs-v1" <<'EOF'
import sys, tomllib
lock = tomllib.load(open(sys.argv[1], "rb"))
for p in lock["packages"]:
    print(f"{sys.argv[2]}/{p['sha256']}.deb")
EOF
}

machine() {
  printf 'machine: %s cores, %s, %s, load %s\n' "$(nproc)" \
    "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')" \
    "$(uname -sr)" "$(cut -d' ' -f1-3 /proc/loadavg)"
}

main() {
  mkdir -p "$BENCH_DIR"
  : >"$BENCH_DIR/results.txt"
  empty_trash
  build_release
  prepare_env
  local packages
  packages=$(locked_debs | wc -l)
  machine | tee -a "$BENCH_DIR/results.txt"
  echo "environment: $ENV_DIR ($packages packages), $RUNS runs each" | tee -a "$BENCH_DIR/results.txt"
  measure_cold_against_limit
  measure "(b) warm (lock unchanged)" nothing
  TO_PIPE=1 measure "(b') warm, to a pipe" nothing
  measure "(c) one package ($CHANGED_PKG)" evict_changed_layer
  # Only now, so no run follows a mass deletion (see drop_layer_cache).
  empty_trash
  echo "load at the end: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$BENCH_DIR/results.txt"
  log "results in $BENCH_DIR/results.txt"
}

main "$@"
