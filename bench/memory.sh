#!/usr/bin/env bash
# Peak memory (RSS) of building one package's layer, cold, for generated
# packages of 10 MB, 100 MB and 1 GB of incompressible data: the figure must
# not grow with the package (issue 10: layers stream in bounded memory).
#
# Usage: bench/memory.sh [SIZES_MB...]      (default: 10 100 1000)
#
# Each package is built with dpkg-deb from a tree of random files (64 MiB
# each at most, plus a file under bin/ that merged-/usr moves under usr/, so
# the data is not in archive order), compressed with gzip -1 to keep
# generation fast. The layer is built by crates/cairn-oci/examples/layer_memory.rs
# (release build) into an empty cache, under `/usr/bin/time -v`; the script
# reports "Maximum resident set size" and the wall time. With
# CAIRN_BENCH_DIR pointing at a bench/containerize.sh work directory
# (default /tmp/cairn-bench), it also measures a cold `cairn containerize`
# of that environment.
#
# Environment:
#   MEMORY_DIR       work directory (default /tmp/cairn-memory): packages, caches
#   COMPRESSION      gzip (default) or zstd, the layer compression
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MEMORY_DIR=${MEMORY_DIR:-/tmp/cairn-memory}
COMPRESSION=${COMPRESSION:-gzip}
CAIRN_BENCH_DIR=${CAIRN_BENCH_DIR:-/tmp/cairn-bench}
SIZES=("$@")
[[ ${#SIZES[@]} -gt 0 ]] || SIZES=(10 100 1000)

log() { printf '==> %s\n' "$*" >&2; }

build_example() {
  log "building the layer_memory example (release)"
  (cd "$REPO" && cargo build --release --quiet -p cairn-oci --example layer_memory)
  local target
  target=$(cd "$REPO" && cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
  EXAMPLE=$target/x86_64-unknown-linux-gnu/release/examples/layer_memory
  [[ -x $EXAMPLE ]] || EXAMPLE=$target/release/examples/layer_memory
  CAIRN=$target/x86_64-unknown-linux-gnu/release/cairn
  [[ -x $CAIRN ]] || CAIRN=$target/release/cairn
}

# A .deb holding SIZE_MB MiB of random bytes; reused if already built.
make_package() {
  local size_mb=$1 deb=$MEMORY_DIR/big-$1mb.deb root=$MEMORY_DIR/root-$1mb
  if [[ -f $deb ]]; then
    echo "$deb"
    return
  fi
  log "generating a ${size_mb} MiB package"
  rm -rf "$root"
  mkdir -p "$root/DEBIAN" "$root/usr/share/big" "$root/bin"
  printf 'Package: big%s\nVersion: 1\nArchitecture: all\nMaintainer: bench <b@e>\nDescription: %s MiB of random data\n' \
    "$size_mb" "$size_mb" >"$root/DEBIAN/control"
  head -c $((1 << 20)) /dev/urandom >"$root/bin/early-tool"
  local left=$((size_mb - 1)) i=0 part
  while ((left > 0)); do
    part=$((left < 64 ? left : 64))
    head -c $((part << 20)) /dev/urandom >"$root/usr/share/big/part-$i"
    left=$((left - part)) i=$((i + 1))
  done
  dpkg-deb --root-owner-group -Zgzip -z1 --build "$root" "$deb.tmp" >/dev/null
  mv "$deb.tmp" "$deb"
  rm -rf "$root"
  echo "$deb"
}

# Peak RSS (MiB) and wall time of a command, from GNU time.
measure() {
  local label=$1 report
  shift
  report=$(mktemp)
  /usr/bin/time -v "$@" >/dev/null 2>"$report" || {
    cat "$report" >&2
    return 1
  }
  awk -v label="$label" -F': ' '
    /Maximum resident set size/ { rss = $2 / 1024 }
    /Elapsed \(wall clock\)/ { wall = $2 }
    END { printf "%-40s peak RSS %7.1f MiB   wall %s\n", label, rss, wall }' "$report" |
    tee -a "$MEMORY_DIR/results.txt"
  rm -f "$report"
}

machine() {
  printf 'machine: %s cores, %s, %s\n' "$(nproc)" \
    "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')" \
    "$(. /etc/os-release && echo "$PRETTY_NAME")"
}

main() {
  mkdir -p "$MEMORY_DIR"
  : >"$MEMORY_DIR/results.txt"
  build_example
  machine | tee -a "$MEMORY_DIR/results.txt"
  local size deb
  for size in "${SIZES[@]}"; do
    deb=$(make_package "$size")
    rm -rf "$MEMORY_DIR/cache"
    measure "layer of a ${size} MiB package ($COMPRESSION)" \
      "$EXAMPLE" "$MEMORY_DIR/cache" "$deb" "$COMPRESSION"
  done
  rm -rf "$MEMORY_DIR/cache"
  local env_dir=$CAIRN_BENCH_DIR/env
  if [[ -x $CAIRN && -f $env_dir/.cairn/env/manifest.lock ]]; then
    (cd "$REPO" && cargo build --release --quiet -p cairn-cli --bins)
    rm -rf "$CAIRN_BENCH_DIR/cache/layers-v1"
    CAIRN_CACHE_DIR=$CAIRN_BENCH_DIR/cache CAIRN_NO_PROGRESS=true \
      measure "cold containerize of $env_dir" \
      "$CAIRN" -q containerize -d "$env_dir" -f "$MEMORY_DIR/out.tar"
    rm -f "$MEMORY_DIR/out.tar"
  fi
  log "results in $MEMORY_DIR/results.txt"
}

main
