#!/usr/bin/env bash
# Host parallel benchmark: step time and per-rank memory of `llmpi train` for each parallel
# layout of a ~10M-parameter GPT-2 (d_model 320, 8 layers, 4 heads, T 128, global batch 8
# sequences), on the CPU ranks of this machine (oversubscribed when ranks > cores).
# Step time = median over logging windows after warm-up; memory = the start-up table
# (params | grads | optimizer | transient peak, MiB) of rank 0 and of the last rank.
#   usage: bench/host_parallel.sh [STEPS] [LLMPI]   (default 20 steps, build/cpu/llmpi)
set -euo pipefail
cd "$(dirname "$0")/.."
steps="${1:-20}"
llmpi="${2:-build/cpu/llmpi}"
[ -x "$llmpi" ] || { echo "bench: build first (bash scripts/build.sh)" >&2; exit 1; }
[ -f data/fortunes/train.bin ] || { echo "bench: prepare data/fortunes first (scripts/demo.sh)" >&2; exit 1; }
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
mpi=(mpiexec --oversubscribe --bind-to none)
[ "$(id -u)" = 0 ] && mpi+=(--allow-run-as-root)
model=(--set model.d_model=320 --set model.n_head=4 --set model.n_layer=8)

run() {  # name ranks then --set overrides (batch_size · micro_batches · dp = 8)
  local name=$1 ranks=$2; shift 2
  local log; log=$(mktemp)
  "${mpi[@]}" -n "$ranks" "$llmpi" train configs/tiny.toml --no-resume "${model[@]}" --set train.steps="$steps" \
    --set train.warmup_steps=2 --set train.log_every=2 --set train.eval_every=0 \
    --set data.val="" --set checkpoint.every=0 --set run.dir="runs/bench-parallel-$name" "$@" > "$log"
  local tps; tps=$(grep '^step' "$log" | sed 's/.*| *\([0-9]*\) tok\/s.*/\1/' | tail -n +3 | sort -n |
        awk '{a[NR]=$1} END {if (NR==0) print 0; else if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}')
  local ms; ms=$(awk -v t="$tps" 'BEGIN { if (t > 0) printf "%.0f", 1024 * 1000 / t; else print "-" }')
  local r0 rl; r0=$(grep -E '^ +0 \|' "$log" | head -1 | cut -d'|' -f3-); rl=$(grep -E '^ +[0-9]+ \|' "$log" | tail -1 | cut -d'|' -f3-)
  printf '| %-22s | %d | %6s | %6s |%s|%s|\n' "$name" "$ranks" "$tps" "$ms" "$r0" "$rl"
  rm -f "$log"
}

echo "host parallel benchmark: $(nproc) cores, $(date -u +%F), commit $(git rev-parse --short HEAD), $steps steps"
echo "| layout | ranks | tok/s | ms/step | rank 0: params, grads, optim, transient (MiB) | last rank: same |"
echo "|---|---|---|---|---|---|"
run "1 rank" 1 --set train.batch_size=8
run "dp2 ZeRO 0" 2 --set parallel.dp=2 --set train.batch_size=4
run "dp2 ZeRO 1" 2 --set parallel.dp=2 --set parallel.zero_stage=1 --set train.batch_size=4
run "dp2 ZeRO 2" 2 --set parallel.dp=2 --set parallel.zero_stage=2 --set train.batch_size=4
run "dp2 ZeRO 3" 2 --set parallel.dp=2 --set parallel.zero_stage=3 --set train.batch_size=4
run "tp2" 2 --set parallel.tp=2 --set train.batch_size=8
run "tp2 + sp" 2 --set parallel.tp=2 --set parallel.sequence_parallel=true --set train.batch_size=8
run "pp2 1F1B (M=4)" 2 --set parallel.pp=2 --set parallel.micro_batches=4 --set train.batch_size=2
run "dp4 ZeRO 1" 4 --set parallel.dp=4 --set parallel.zero_stage=1 --set train.batch_size=2
