#!/usr/bin/env bash
# The logbook's cost per training step, two ways:
#  1. measured inside llmpi train: everything the logbook adds (metrics, the spike check and its
#     agreement over the ranks, per-layer statistics every logbook.layer_stats_every steps,
#     buffering and the writes of logbook.h5 and LOGBOOK.md) is timed and printed at the end of
#     the run as "logbook: X ms per step (Y% of the mean step time ...)";
#  2. A/B: the same run with [logbook] enabled = false, alternating, median step time of each
#     (noisy on a shared machine: an upper bound, not the measurement).
#   usage: bench/logbook_overhead.sh [host|gpu] [BUILD_DIR]
#     host  configs/tiny.toml on 1 rank of the host backend, 300 steps (CI machine)
#     gpu   the GPT-2 124M shape (configs/gpt2-124m.toml) on one GPU with --backend cuda,
#           8 × 1024 tokens per step, 60 steps, on data/fortunes (build the cuda preset first;
#           run from the repository root on the GPU machine)
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:-host}"
build="${2:-build/cpu}"
llmpi="$build/llmpi"
export OPENBLAS_NUM_THREADS=1
[ -f data/fortunes/train.bin ] || "$llmpi" prepare /usr/share/games/fortunes/fortunes --delimiter % \
  --out data/fortunes --vocab-size 2048 --quiet
dir=$(mktemp -d /tmp/llmpi-bench-logbook.XXXXXX)
trap 'rm -rf "$dir"' EXIT
case "$mode" in
  host) cfg=(configs/tiny.toml --set train.steps=300 --set train.eval_every=0 --set train.log_every=50) ;;
  gpu) cfg=(configs/gpt2-124m.toml --backend cuda --set train.steps=60 --set train.batch_size=8
            --set parallel.micro_batches=1 --set train.warmup_steps=10 --set train.eval_every=0
            --set train.log_every=10 --set data.train=data/fortunes/train.bin
            --set data.val=data/fortunes/val.bin --set data.tokenizer=data/fortunes/tokenizer.bpe) ;;
  *) echo "usage: bench/logbook_overhead.sh [host|gpu] [BUILD_DIR]" >&2; exit 2 ;;
esac
echo "logbook overhead ($mode) on $(nproc) cores, $(date -u +%F), commit $(git rev-parse --short HEAD)"
# Median step time of a run, from its step lines' tokens/s (tokens per step / tokens per second).
median_step_ms() {
  grep -E '^step ' "$1" | tail -n +2 | sed -E 's/.*\| +([0-9]+) tok\/s.*/\1/' |
    awk -v tps="$2" '{ print tps / $1 * 1e3 }' | sort -g |
    awk '{ v[NR] = $1 } END { print (NR % 2 ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2) }'
}
tokens_per_step() { grep -oE '= [0-9]+ tokens/step' "$1" | grep -oE '[0-9]+' | head -1; }
for round in 1 2; do
  for lb in true false; do
    out="$dir/train-$lb-$round.txt"
    "$llmpi" train "${cfg[@]}" --no-resume --set run.dir="$dir/run-$lb" --set logbook.enabled=$lb \
      --set checkpoint.every=0 --no-save > "$out"
    echo "round $round, logbook.enabled = $lb: median step $(median_step_ms "$out" "$(tokens_per_step "$out")") ms"
    if [ "$lb" = true ]; then grep -E '^logbook: ' "$out"; fi
  done
done
