#!/usr/bin/env bash
# Issue 16, part 1 (single-GPU kernels), checked and measured in ONE device call on one card,
# in about 4–6 minutes (a deadline keeps it under GPU_FUSION_DEADLINE seconds, default 540):
#   1. the CUDA op table (llmpi_cuda_tests --gtest_filter='CudaOps.*'): every backend op, the
#      fused ones (add_norm_forward, norm_backward_add, linear_gelu_forward,
#      linear_backward_gelu, SwiGLU, AdamW with the clip scale and the bf16 compute copy) on a
#      backend with the fusions on and on one with them off, all against the host twins;
#   2. llmpi_gpu_bench on GPT-2 124M (B32 T1024) and the TinyLlama-1.1B shape (B8 T2048) with
#      LLMPI_FUSED=0 (the kernels before issue 16) and LLMPI_FUSED=1 (with the per-op --profile);
#   3. the PyTorch reference (bench/torch_reference.py, torch.compile) on the same shapes, last:
#      its compile takes most of the call.
# Every run is its own process; median step of GPU_BENCH_STEPS (20) after GPU_BENCH_WARMUP (5),
# timed with CUDA events. One JSON line per run in $OUT/gpu_fusion.jsonl, logs beside it, and
# at the end the op-table summary and a table in the format of docs/performance.md.
# GPU_FUSION_EXTRA=1 adds each fusion off alone and tiny.toml's model with and without CUDA
# graphs (--graph). Other env: GPU_BENCH_TIMEOUT (seconds per llmpi run, 150),
# GPU_TORCH_TIMEOUT (per PyTorch run, 240), GPU_BENCH_SKIP_TORCH=1, LLMPI_BUNDLE (bundle/),
# PYTHON (python3). Exit status: nonzero when an op check failed or a run gave no result.
# Runs ON the GPU machine from the repository root: `bundle/gpu-run.sh fusion` (which unpacks
# the bundle and sets the library path).
set -uo pipefail
root=$(pwd)
logdir=${OUT:-/tmp}
bundle=${LLMPI_BUNDLE:-$root/bundle}
bench=$bundle/llmpi_gpu_bench
tests=$bundle/llmpi_cuda_tests
steps=${GPU_BENCH_STEPS:-20}
warmup=${GPU_BENCH_WARMUP:-5}
limit=${GPU_BENCH_TIMEOUT:-150}
torch_limit=${GPU_TORCH_TIMEOUT:-240}
deadline=$(( $(date +%s) + ${GPU_FUSION_DEADLINE:-540} ))
python=${PYTHON:-python3}
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
export PYTHONUNBUFFERED=1 CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES:-0}
results=$logdir/gpu_fusion.jsonl
: > "$results"
for b in "$bench" "$tests"; do
  [[ -x "$b" ]] || { echo "gpu_fusion: no $b (bundle/gpu-run.sh unpacks the bundle)" >&2; exit 1; }
done
echo "== gpu_fusion: $(date -u +%FT%TZ), bundle commit $(cat "$bundle/COMMIT" 2>/dev/null || echo unknown)"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>&1 | head -n1
overall=0

# Seconds a run may take: its own limit $1, cut to what is left before the deadline.
budget() {
  local left=$(( deadline - $(date +%s) ))
  (( left < $1 )) && echo "$left" || echo "$1"
}

# One JSON line from log $2, tagged with variant $1, into $results.
keep() {
  local line
  line=$(grep '^{"bench"' "$2" | tail -n1)
  if [[ -z "$line" ]]; then
    echo "  $1: no result, last lines of $2:"; tail -n 12 "$2" | sed 's/^/  | /'; overall=1; return
  fi
  echo "${line%\}}, \"variant\": \"$1\"}" >> "$results"
}

# timed LOG LIMIT COMMAND...: runs COMMAND under its budget, output to LOG; 124 when skipped.
timed() {
  local log=$1 t; t=$(budget "$2"); shift 2
  if (( t < 20 )); then echo "  skipped: the deadline is near" > "$log"; return 124; fi
  local start rc; start=$(date +%s)
  timeout "$t" "$@" > "$log" 2>&1
  rc=$?
  echo "  $(( $(date +%s) - start )) s, exit status $rc$( (( rc == 124 )) && echo " (timed out after $t s)")"
  return "$rc"
}

echo "== CUDA op table (CudaOps.*), against the host twins"
ops_log=$logdir/fusion_ops.log
timed "$ops_log" 240 "$tests" --gtest_color=no --gtest_filter='CudaOps.*'
ops_status=$?
(( ops_status == 0 )) || overall=1

# run CONFIG VARIANT LLMPI_FUSED [extra llmpi_gpu_bench arguments]
run() {
  local cfg=$1 variant=$2 fused=$3; shift 3
  local log=$logdir/fusion_${cfg}_$variant.log
  echo "== llmpi $cfg, $variant (LLMPI_FUSED=$fused $*)"
  LLMPI_FUSED=$fused timed "$log" "$limit" "$bench" --config "$cfg" --steps "$steps" \
    --warmup "$warmup" "$@" || overall=1
  keep "$variant" "$log"
}
for cfg in gpt2-124m tinyllama-1.1b; do
  run "$cfg" unfused 0
  run "$cfg" fused 1 --profile
done
if [[ "${GPU_FUSION_EXTRA:-0}" == 1 ]]; then
  run gpt2-124m no-norm gelu,swiglu
  run gpt2-124m no-gelu norm,swiglu
  run tinyllama-1.1b no-norm gelu,swiglu
  run tinyllama-1.1b no-swiglu norm,gelu
  steps=200 warmup=20
  run tiny fused 1
  run tiny fused+graph 1 --graph
  run tiny unfused+graph 0 --graph
  steps=${GPU_BENCH_STEPS:-20} warmup=${GPU_BENCH_WARMUP:-5}
fi

if [[ "${GPU_BENCH_SKIP_TORCH:-0}" != 1 ]]; then
  for cfg in gpt2-124m tinyllama-1.1b; do
    echo "== PyTorch reference (torch.compile), $cfg"
    log=$logdir/fusion_torch_$cfg.log
    timed "$log" "$torch_limit" "$python" "$root/bench/torch_reference.py" --config "$cfg" \
      --steps "$steps" --warmup "$warmup"
    keep torch "$log"
  done
fi

for cfg in gpt2-124m tinyllama-1.1b; do
  echo "== per-op profile, $cfg, fused ($logdir/fusion_${cfg}_fused.log)"
  sed -n '/^per-op time/,$p' "$logdir/fusion_${cfg}_fused.log" | head -n 30
done

echo "== CUDA op table: $ops_log"
ok=$(grep -c ' ok$' "$ops_log")
bad=$(grep -cE ' (FAIL|THREW)$' "$ops_log")
fused_ok=$(grep -E '\[(fused|unfused)\]|^adamw' "$ops_log" | grep -c ' ok$')
echo "checks passed: $ok (fused-op rows: $fused_ok), failed: $bad, gtest exit status: $ops_status"
grep -E ' (FAIL|THREW)$' "$ops_log" | sed 's/^/  /'
grep -E '^\[ *(PASSED|FAILED) *\]' "$ops_log" | sed 's/^/  /'
(( ok > 0 )) || { echo "  no op check ran; last lines:"; tail -n 12 "$ops_log" | sed 's/^/  | /'; overall=1; }

echo "== results ($results)"
"$python" "$root/bench/gpu_fusion_table.py" "$results" || overall=1
exit "$overall"
