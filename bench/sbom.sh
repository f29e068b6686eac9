#!/usr/bin/env bash
# What the per-.deb facts cache buys `cairn sbom`: the first run reads every
# package's control file and data tar (for /usr/share/doc/PKG/copyright), later
# runs read one small JSON record per package from layers-v1.
#
# Usage: bench/sbom.sh [CAIRN] [RUNS]
#   CAIRN  the cairn binary (default: cairn on PATH)
#   RUNS   cold/warm pairs to time (default 3)
#
# The environment is `hello` on bookworm (64 packages with the Essential set).
# The .debs are fetched once into $BENCH_DIR/cache; each cold run starts from a
# copy of that cache without layers-v1, so it measures reading the .debs, not
# downloading them. Every run's document must be the same bytes.
#
# Environment: BENCH_DIR (default /tmp/cairn-sbom-bench)
set -euo pipefail

CAIRN=${1:-cairn}
RUNS=${2:-3}
BENCH_DIR=${BENCH_DIR:-/tmp/cairn-sbom-bench}
ENV_DIR=$BENCH_DIR/env
export CAIRN_NO_PROGRESS=true
unset SOURCE_DATE_EPOCH CAIRN_ENV

mkdir -p "$ENV_DIR/.cairn/env"
if [[ ! -f $ENV_DIR/.cairn/env/manifest.toml ]]; then
  printf 'version = 1\nname = "hello"\nrelease = "bookworm"\n\n[install]\nhello.pkg = "hello"\n' \
    >"$ENV_DIR/.cairn/env/manifest.toml"
fi
echo "==> locking and fetching the .debs" >&2
CAIRN_CACHE_DIR=$BENCH_DIR/cache "$CAIRN" -q sbom -d "$ENV_DIR" -o "$BENCH_DIR/reference.json"

seconds() { /usr/bin/time -f %e "$@" 2>&1 >/dev/null | tail -n 1; }

for run in $(seq "$RUNS"); do
  rm -rf "$BENCH_DIR/cold"
  mkdir -p "$BENCH_DIR/cold"
  cp -al "$BENCH_DIR/cache/debs-v1" "$BENCH_DIR/cache/indices-v1" "$BENCH_DIR/cold/"
  export CAIRN_CACHE_DIR=$BENCH_DIR/cold
  cold=$(seconds "$CAIRN" -q sbom -d "$ENV_DIR" -o "$BENCH_DIR/cold.json")
  warm=$(seconds "$CAIRN" -q sbom -d "$ENV_DIR" -o "$BENCH_DIR/warm.json")
  cmp -s "$BENCH_DIR/cold.json" "$BENCH_DIR/reference.json"
  cmp -s "$BENCH_DIR/warm.json" "$BENCH_DIR/reference.json"
  echo "run $run: cold ${cold}s warm ${warm}s (same bytes)"
done
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
