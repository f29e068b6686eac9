#!/usr/bin/env bash
# What running a health check inside cairn's activation costs per check:
# `docker exec CID /opt/cairn/bin/cairn activate -- CMD` (what the image's
# Healthcheck runs) against `docker exec CID CMD`, in a running service
# container of the flask example, with CMD a trivial `true` and then a real
# probe (python3 fetching the page). Runs alternate (plain, activated) so a
# noisy machine hits both alike; it prints both medians and the median of
# the per-pair differences.
#
# Usage: bench/healthcheck.sh [CAIRN] [RUNS]
#   CAIRN  the cairn to build with (default: target/release/cairn)
#   RUNS   pairs to time per command (default 15)
#
# Environment: BENCH_DIR (default /tmp/cairn-healthcheck-bench): env/, cache/
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CAIRN=${1:-$REPO/target/release/cairn}
RUNS=${2:-15}
BENCH_DIR=${BENCH_DIR:-/tmp/cairn-healthcheck-bench}
ENV_DIR=$BENCH_DIR/env
export CAIRN_CACHE_DIR=$BENCH_DIR/cache
export CAIRN_NO_PROGRESS=true
unset SOURCE_DATE_EPOCH CAIRN_ENV

mkdir -p "$ENV_DIR/.cairn/env"
if [[ ! -f $ENV_DIR/.cairn/env/manifest.toml ]]; then
  cp -r "$REPO/examples/flask/." "$ENV_DIR/"
fi
if [[ ! -f $ENV_DIR/.cairn/env/manifest.lock ]]; then
  echo "==> locking $ENV_DIR against Debian" >&2
  "$CAIRN" upgrade -d "$ENV_DIR" >/dev/null
fi
echo "==> building and loading the image" >&2
IMAGE=$("$CAIRN" -q containerize -d "$ENV_DIR" --runtime docker)
CID=$(docker run -d --rm -v "$ENV_DIR:/app" "$IMAGE")
trap 'docker rm -f "$CID" >/dev/null 2>&1 || true' EXIT
sleep 3

# Seconds (with ms) one `docker exec CID ARGS...` takes.
timed() {
  local start end
  start=$(date +%s.%N)
  docker exec "$CID" "$@" >/dev/null 2>&1 || true
  end=$(date +%s.%N)
  echo "$end - $start" | bc
}

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

measure() {
  local label=$1
  shift
  local plain=() activated=() diffs=() p a
  for _ in $(seq "$RUNS"); do
    p=$(timed "$@")
    a=$(timed /opt/cairn/bin/cairn activate -- "$@")
    plain+=("$p")
    activated+=("$a")
    diffs+=("$(echo "$a - $p" | bc)")
  done
  printf '%-8s plain %.3fs  activated %.3fs  added (median of pairs) %+.3fs\n' "$label" \
    "$(printf '%s\n' "${plain[@]}" | median)" \
    "$(printf '%s\n' "${activated[@]}" | median)" \
    "$(printf '%s\n' "${diffs[@]}" | median)"
}

echo "==> $RUNS pairs each; load: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
measure true true
measure probe python3 -c "import urllib.request as u; u.urlopen('http://127.0.0.1:5000/', timeout=5)"
