#!/usr/bin/env bash
# What `cairn provides` (and the command-not-found hint) costs: cold, the
# first lookup downloads bookworm's main Contents-amd64.gz and Contents-all.gz
# (45 MB, 670 MB of text) and reduces them to a ~0.9 MB command table; warm,
# later lookups read only that table (no network).
#
# Usage: bench/provides.sh [CAIRN] [RUNS]
#   CAIRN  the cairn binary (default: cairn on PATH)
#   RUNS   cold/warm pairs to time (default 2)
#
# Needs deb.debian.org. Each cold run starts from an empty cache, so it
# measures the download too; the machine's load is printed with the figures.
#
# Environment: BENCH_DIR (default /tmp/cairn-provides-bench)
set -euo pipefail

CAIRN=${1:-cairn}
[[ $CAIRN == */* ]] && CAIRN=$(realpath "$CAIRN") # the runs cd elsewhere
RUNS=${2:-2}
BENCH_DIR=${BENCH_DIR:-/tmp/cairn-provides-bench}
export CAIRN_NO_PROGRESS=true
unset CAIRN_ENV

measure() { /usr/bin/time -f '%e s, %M KB peak' "$@" 2>&1 >/dev/null | tail -n 1; }

mkdir -p "$BENCH_DIR"
cd "$BENCH_DIR" # outside any environment: the default (bookworm) sources
for run in $(seq "$RUNS"); do
  rm -rf "$BENCH_DIR/cache"
  export CAIRN_CACHE_DIR=$BENCH_DIR/cache
  cold=$(measure "$CAIRN" -q provides cowsay)
  warm=$(measure "$CAIRN" -q provides cowsay)
  size=$(du -cb "$BENCH_DIR"/cache/indices-v1/*.commands-v1 | tail -n 1 | cut -f1)
  echo "run $run: cold $cold; warm $warm; tables $size bytes; load $(cut -d' ' -f1-3 /proc/loadavg)"
done
[[ $("$CAIRN" -q provides cowsay) == cowsay ]] || { echo "wrong answer for cowsay" >&2; exit 1; }
