#!/usr/bin/env bash
# llmpi analyze's reading rate: a run of a 26M-parameter GPT-2 shape (d_model 512, 8 layers)
# with a checkpoint at each of 8 steps (≈ 310 MB each: params, m, v), then
# `llmpi analyze` on 1 and 2 ranks without the model probes (the weight pass reads the
# parameters of every checkpoint once; verification reads each whole file once). Prints
# analyze's own line: checkpoint bytes, weights read at GB/s, wall time. The files were just
# written, so the page cache holds them: the numbers are warm-cache rates.
#   usage: bench/analyze_rate.sh [BUILD_DIR=build/cpu] [DIR=/tmp/llmpi-bench-analyze]
set -euo pipefail
cd "$(dirname "$0")/.."
build="${1:-build/cpu}"
dir="${2:-/tmp/llmpi-bench-analyze}"
llmpi="$build/llmpi"
cmake --build "$build" --target llmpi -j2 > /dev/null
flags=(--oversubscribe --bind-to none)
[ "$(id -u)" -eq 0 ] && flags+=(--allow-run-as-root)
export OMPI_MCA_btl=self,vader OMPI_MCA_btl_vader_single_copy_mechanism=none OPENBLAS_NUM_THREADS=1
rm -rf "$dir" && mkdir -p "$dir"
echo "analyze reading rate on $(nproc) cores, $(df -h "$dir" | tail -1 | awk '{print $1}'), $(date -u +%F), commit $(git rev-parse --short HEAD)"
corpus=/usr/share/games/fortunes/fortunes
"$llmpi" prepare "$corpus" --delimiter % --out "$dir/data" --vocab-size 2048 --quiet
"$llmpi" train configs/tiny.toml --set model.d_model=512 --set model.n_layer=8 --set model.n_head=8 \
  --set train.steps=8 --set train.batch_size=1 --set train.seq_len=64 --set train.warmup_steps=1 \
  --set train.eval_every=0 --set train.log_every=4 --set checkpoint.every=1 --set checkpoint.keep_last=8 \
  --set data.train="$dir/data/train.bin" --set data.val="$dir/data/val.bin" --set run.dir="$dir/run" \
  > "$dir/train.txt"
du -sh "$dir/run/checkpoints"
for n in 1 2; do
  echo "== $n rank(s)"
  mpiexec -n "$n" "${flags[@]}" "$llmpi" analyze "$dir/run" --out "$dir/report-$n" --memorization-samples 0 |
    grep -E '^analyze: [0-9]+ checkpoint'
done
rm -rf "$dir"
