#!/usr/bin/env bash
# Host-backend training throughput: tokens/s of `llmpi train` for the tiny preset and a
# ~10M-parameter GPT-2, median over logging windows after warm-up. Needs the demo's data
# (data/fortunes; run scripts/demo.sh or the prepare step first).
#   usage: bench/host_throughput.sh [STEPS]        (default 60 steps per config)
set -euo pipefail
cd "$(dirname "$0")/.."
steps="${1:-60}"
llmpi=build/cpu/llmpi
[ -f data/fortunes/train.bin ] || { echo "bench: prepare data/fortunes first (scripts/demo.sh)" >&2; exit 1; }
export OPENBLAS_NUM_THREADS="${OPENBLAS_NUM_THREADS:-$(nproc)}"

run() {  # name, then --set overrides
  local name=$1; shift
  local log; log=$(mktemp)
  "$llmpi" train configs/tiny.toml --no-resume --set train.steps="$steps" --set train.warmup_steps=5 \
    --set train.log_every=5 --set train.eval_every=0 --set train.eval_batches=1 \
    --set run.dir="runs/bench-$name" "$@" > "$log"
  local params; params=$(sed -n 's/^model: [a-z0-9]*, \([0-9]*\) parameters.*/\1/p' "$log")
  # tok/s of every logging window except the first two (warm-up), median.
  local med; med=$(grep '^step' "$log" | sed 's/.*| *\([0-9]*\) tok\/s.*/\1/' | tail -n +3 | sort -n |
        awk '{a[NR]=$1} END {if (NR==0) print 0; else if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}')
  printf '%-10s %12s params  %10s tok/s (median of windows after warm-up, %s steps)\n' "$name" "$params" "$med" "$steps"
  rm -f "$log"
}

echo "host throughput on $(nproc) cores, OPENBLAS_NUM_THREADS=$OPENBLAS_NUM_THREADS, $(date -u +%F), commit $(git rev-parse --short HEAD)"
run tiny
run gpt2-10m --set model.d_model=320 --set model.n_head=5 --set model.n_layer=8
