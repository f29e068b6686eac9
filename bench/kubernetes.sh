#!/usr/bin/env bash
# Pod start under containerd's CRI for python3 + python3-flask (issue 14):
# the time from CreateContainer to the command's first output
# (`python3 -c 'import flask; print("ready")'`), four ways:
#   handler-cold  the cairn runtime, empty node store: the environment is read
#                 from a local registry, its .debs fetched from Debian's mirror,
#                 verified, unpacked and assembled
#   handler-warm  the same environment again: nothing is fetched or unpacked
#   image-cold    the same content as an image (cairn containerize, pushed to a
#                 local registry) that the CRI pulls (PullImage) and starts
#   image-warm    that image again, already pulled
# and the ratios. Run as root on a machine with containerd, runc and
# docker-registry (.ci/setup installs them).
#
# The measurement itself is the ignored test `bench_pod_start` in
# tests/kubernetes.rs, which drives a private containerd over CRI gRPC exactly
# as the kubelet does (tests/support/cri.rs); this script runs it RUNS times and
# prints the medians. Results go to $BENCH_DIR/results.txt.
#
# Usage: bench/kubernetes.sh [RUNS]   (default 3)
set -euo pipefail

RUNS=${1:-3}
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH_DIR=${BENCH_DIR:-/tmp/cairn-k8s-bench}
mkdir -p "$BENCH_DIR"
RAW=$BENCH_DIR/raw.txt
: >"$RAW"

cd "$REPO"
for run in $(seq 1 "$RUNS"); do
  echo "==> run $run/$RUNS" >&2
  cargo test -q -p cairn-tests --test kubernetes -- --ignored --exact bench_pod_start --nocapture \
    </dev/null 2>&1 | tee -a "$BENCH_DIR/log.txt" | grep '^BENCH ' >>"$RAW"
done

median() { sort -n | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
{
  echo "pod start (CreateContainer -> first output), python3 + python3-flask, $RUNS runs, load: $(cut -d' ' -f1-3 /proc/loadavg)"
  for label in handler-cold handler-warm image-cold image-warm; do
    printf '%-13s median %ss\n' "$label" "$(grep "^BENCH $label " "$RAW" | cut -d' ' -f3 | median)"
  done
  hc=$(grep '^BENCH handler-cold ' "$RAW" | cut -d' ' -f3 | median)
  hw=$(grep '^BENCH handler-warm ' "$RAW" | cut -d' ' -f3 | median)
  ic=$(grep '^BENCH image-cold ' "$RAW" | cut -d' ' -f3 | median)
  iw=$(grep '^BENCH image-warm ' "$RAW" | cut -d' ' -f3 | median)
  awk -v hc="$hc" -v hw="$hw" -v ic="$ic" -v iw="$iw" 'BEGIN {
    printf "ratio handler/image: cold %.2f, warm %.2f\n", hc / ic, hw / iw }'
} | tee "$BENCH_DIR/results.txt"
