#!/usr/bin/env bash
# What digest verification on the way out adds to a warm containerize of the
# flask example (issue 13: must stay < 0.1 s).
#
# Usage: bench/verify-overhead.sh BEFORE_CAIRN AFTER_CAIRN [RUNS]
#   BEFORE_CAIRN  a release cairn without verification (e.g. built from main
#                 before the h6-cache merge)
#   AFTER_CAIRN   a release cairn with it
#   RUNS          pairs to time (default 7)
#
# Both binaries share one cache, so every layer comes from layers-v1 (the warm
# case (b) of bench/containerize.sh) and the only difference is that AFTER
# re-hashes each layer blob as it streams into the archive. Runs alternate
# (before, after) so drift on a shared VM hits both alike; it prints both
# medians and the median of the per-pair differences.
#
# Environment: BENCH_DIR (default /tmp/cairn-verify-bench): env/, cache/, out.tar
set -euo pipefail

BEFORE=${1:?usage: $0 BEFORE_CAIRN AFTER_CAIRN [RUNS]}
AFTER=${2:?usage: $0 BEFORE_CAIRN AFTER_CAIRN [RUNS]}
RUNS=${3:-7}
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH_DIR=${BENCH_DIR:-/tmp/cairn-verify-bench}
ENV_DIR=$BENCH_DIR/env
OUT=$BENCH_DIR/out.tar
export CAIRN_CACHE_DIR=$BENCH_DIR/cache
export CAIRN_NO_PROGRESS=true
unset SOURCE_DATE_EPOCH CAIRN_ENV

mkdir -p "$ENV_DIR/.cairn/env"
if [[ ! -f $ENV_DIR/.cairn/env/manifest.toml ]]; then
  cp "$REPO/examples/flask/.cairn/env/manifest.toml" "$ENV_DIR/.cairn/env/"
fi
if [[ ! -f $ENV_DIR/.cairn/env/manifest.lock ]]; then
  echo "==> locking $ENV_DIR against Debian" >&2
  "$AFTER" upgrade -d "$ENV_DIR" >/dev/null
fi
echo "==> warming the .deb and layer caches" >&2
"$AFTER" -q containerize -d "$ENV_DIR" -f "$OUT"

time_one() {
  local start end
  start=$(date +%s%N)
  "$1" -q containerize -d "$ENV_DIR" -f "$OUT"
  end=$(date +%s%N)
  awk -v ns=$((end - start)) 'BEGIN { printf "%.3f\n", ns / 1e9 }'
}
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

before=() after=() diffs=()
for _ in $(seq "$RUNS"); do
  b=$(time_one "$BEFORE")
  a=$(time_one "$AFTER")
  before+=("$b") after+=("$a")
  diffs+=("$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.3f\n", a - b }')")
done
blobs=$(tar -tvf "$OUT" | awk '$6 ~ /^blobs\/sha256\/./ { s += $3 } END { printf "%.1f MiB", s / 1048576 }')
echo "# $(date -u +%FT%TZ) $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), $RUNS pairs, blobs in archive: $blobs"
printf 'warm, before  median %.3f s   runs: %s\n' "$(printf '%s\n' "${before[@]}" | median)" "${before[*]}"
printf 'warm, after   median %.3f s   runs: %s\n' "$(printf '%s\n' "${after[@]}" | median)" "${after[*]}"
printf 'after-before  median %.3f s   runs: %s   (target < 0.1)\n' "$(printf '%s\n' "${diffs[@]}" | median)" "${diffs[*]}"
