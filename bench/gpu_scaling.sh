#!/usr/bin/env bash
# Data-parallel scaling of `llmpi train` on the GPUs of one machine (issue #6, item 4): the
# TinyLlama-1.1B shape (configs/tinyllama-1.1b.toml: 22 layers, width 2048, GQA 32:4, SwiGLU,
# B = 8 sequences of T = 2048 per GPU and step, one micro-batch), ZeRO-1, on 1, 2, 4, 8 GPUs
# (up to what the machine has), the same batch per GPU (weak scaling: the global batch grows
# with dp). Runs ON the GPU machine from the repository root (data/fortunes carried: token ids
# below 2,048 are valid for the 32,000-token vocabulary; throughput does not depend on them),
# with the bundle's llmpi under the machine's mpirun, one rank per GPU, --no-save.
# Reported per GPU count: tokens/s over steps 9–16 (the trainer's log windows after warm-up),
# tokens/s per GPU, scaling efficiency = tokens/s(n) / (n · tokens/s(1)), the first step's loss
# and the last (finite and falling). JSON lines in $OUT/gpu_scaling.jsonl (or /tmp).
# Env: LLMPI (default bundle/llmpi), SCALING_STEPS (16), SCALING_GPUS (default "1 2 4 8").
# Usage: bundle/gpu-run.sh scaling    (sets the library path), or bench/gpu_scaling.sh
set -uo pipefail
root=$(pwd)
logdir=${OUT:-/tmp}
llmpi=${LLMPI:-$root/bundle/llmpi}
steps=${SCALING_STEPS:-16}
export NCCL_NVLS_ENABLE=0
ngpu=$(nvidia-smi -L 2>/dev/null | wc -l)
mpirun=$(command -v mpirun || command -v mpiexec || true)
[[ -x "$llmpi" ]] || { echo "gpu_scaling: no llmpi at $llmpi" >&2; exit 1; }
[[ -f "$root/data/fortunes/train.bin" ]] || { echo "gpu_scaling: no data/fortunes in $root" >&2; exit 1; }
results=$logdir/gpu_scaling.jsonl
: > "$results"
echo "== gpu_scaling: $(date -u +%FT%TZ), commit $(cat "$(dirname "$llmpi")/COMMIT" 2>/dev/null || echo unknown), $ngpu GPU(s)"
nvidia-smi --query-gpu=name --format=csv,noheader | head -n1
overall=0
base=0
for n in ${SCALING_GPUS:-1 2 4 8}; do
  (( n <= ngpu )) || { echo "  $n GPUs: this machine has $ngpu: not run"; continue; }
  log=$logdir/gpu_scaling_$n.log
  dir=$(mktemp -d)
  start=$(date +%s)
  timeout 400 "$mpirun" -n "$n" --allow-run-as-root --bind-to none -x NCCL_NVLS_ENABLE=0 \
    -x LD_LIBRARY_PATH -x OMPI_MCA_btl "$llmpi" train configs/tinyllama-1.1b.toml \
    --backend cuda --no-save --no-resume \
    --set parallel.dp="$n" --set parallel.zero_stage=1 --set parallel.micro_batches=1 \
    --set train.steps="$steps" --set train.warmup_steps=2 --set train.log_every=4 \
    --set train.eval_every=0 --set data.train=data/fortunes/train.bin --set data.val= \
    --set run.dir="$dir" > "$log" 2>&1
  rc=$?
  wall=$(( $(date +%s) - start ))
  rm -rf "$dir"
  if (( rc != 0 )); then echo "  $n GPUs: llmpi train failed ($rc)"; tail -n 15 "$log" | sed 's/^/  | /'; overall=1; continue; fi
  # Step lines: "step  12/16 | loss 10.1 | lr ... | grad norm ... |  123456 tok/s | ...".
  tps=$(awk -F'|' -v s1=$((steps - 4)) -v s2="$steps" '/^step/ { split($1, a, /[ \/]+/); st = a[2]
          if (st == s1 || st == s2) { split($5, t, " "); sum += t[1]; k++ } }
          END { if (k) printf "%.0f", sum / k }' "$log")
  first=$(awk -F'|' '/^step/ { split($2, a, " "); print a[2]; exit }' "$log")
  last=$(awk -F'|' '/^step/ { split($2, a, " "); l = a[2] } END { print l }' "$log")
  (( n == 1 )) && base=$tps
  eff=$(awk -v t="$tps" -v b="$base" -v n="$n" 'BEGIN { if (b > 0) printf "%.3f", t / (n * b); else print "null" }')
  per=$(awk -v t="$tps" -v n="$n" 'BEGIN { printf "%.0f", t / n }')
  ok=$(awk -v f="$first" -v l="$last" 'BEGIN { print (l == l + 0 && l < f) ? "true" : "false" }')
  [[ "$ok" == true ]] || overall=1
  printf '  %d GPU(s): %8s tok/s, %7s tok/s per GPU, efficiency %s, loss %s -> %s, wall %d s\n' \
    "$n" "$tps" "$per" "$eff" "$first" "$last" "$wall"
  printf '{"bench":"gpu_scaling","config":"tinyllama-1.1b","gpus":%d,"zero_stage":1,"batch_per_gpu":8,"seq_len":2048,"tokens_per_s":%s,"tokens_per_s_per_gpu":%s,"efficiency":%s,"loss_first":%s,"loss_last":%s,"loss_falling":%s}\n' \
    "$n" "$tps" "$per" "$eff" "$first" "$last" "$ok" >> "$results"
done
exit "$overall"
