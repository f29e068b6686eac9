#!/usr/bin/env bash
# What dev mode (the host's world bound in, a host-spawn server started) costs
# over run mode for a warm `cairn activate -- true`, and what a command the
# environment lacks costs when it runs on the host through host-spawn
# (`cairn activate -- bash -c 'tmux -V'`) against bash's own lookup of one
# it has (`… bash -c 'hello'`).
#
# Usage: bench/activate-modes.sh CAIRN [RUNS]
#   CAIRN  the cairn binary to time
#   RUNS   runs of each case, alternating modes (default 15)
#
# Environment: BENCH_DIR (default /tmp/cairn-activate-bench): env/, cache/.
# Needs Debian's archive once (hello is locked and fetched), and tmux on the host.
set -euo pipefail

CAIRN=${1:?usage: $0 CAIRN [RUNS]}
RUNS=${2:-15}
BENCH_DIR=${BENCH_DIR:-/tmp/cairn-activate-bench}
ENV_DIR=$BENCH_DIR/env
export CAIRN_CACHE_DIR=$BENCH_DIR/cache
export CAIRN_NO_PROGRESS=true
unset CAIRN_ENV

if [[ ! -f $ENV_DIR/.cairn/env/manifest.lock ]]; then
  mkdir -p "$ENV_DIR"
  (cd "$ENV_DIR" && "$CAIRN" init --release bookworm >/dev/null && "$CAIRN" install hello >/dev/null)
fi
# Warm: the rootfs is assembled once.
"$CAIRN" activate -d "$ENV_DIR" -- true

now_ms() { date +%s%3N; }

# median of the numbers on stdin
median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

time_case() { # NAME ARGS...
  local name=$1 file=$BENCH_DIR/$1.ms
  shift
  : >"$file"
  for _ in $(seq "$RUNS"); do
    local start end
    start=$(now_ms)
    "$CAIRN" activate -d "$ENV_DIR" "$@" >/dev/null 2>&1
    end=$(now_ms)
    echo $((end - start)) >>"$file"
  done
  printf '%-34s median %6s ms (%s runs)\n' "$name" "$(median <"$file")" "$RUNS"
}

time_case "run mode: true" --mode run -- true
time_case "dev mode: true" --mode dev -- true
time_case "dev mode: bash -c hello (env)" --mode dev -- bash -c hello
time_case "dev mode: bash -c 'tmux -V' (host)" --mode dev -- bash -c 'tmux -V'
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
