#!/usr/bin/env bash
# Issue 16, part 1 (single-GPU kernels), measured in ONE device call on one card: the PyTorch
# reference (bench/torch_reference.py, torch.compile) and llmpi_gpu_bench with the fused
# kernels on (LLMPI_FUSED=all, with the per-op --profile), all off (none: the kernels before
# issue 16), and each relevant fusion off alone, for GPT-2 124M (B32 T1024) and the
# TinyLlama-1.1B shape (B8 T2048); then tiny.toml's model (launch-bound) with and without
# CUDA graphs (--graph). One JSON line per run in $OUT/gpu_fusion.jsonl, a table at the end
# (tokens/s, step ms, MFU, ratio to PyTorch and to the unfused run of the same config).
# Runs ON the GPU machine from the repository root, through `bundle/gpu-run.sh fusion` (which
# sets the library path). Env: GPU_BENCH_STEPS (20), GPU_BENCH_WARMUP (5), GPU_BENCH_TIMEOUT
# (seconds per run, 300), GPU_BENCH_SKIP_TORCH=1, LLMPI_BUNDLE (bundle/), PYTHON (python3).
# Usage: bundle/gpu-run.sh fusion
set -uo pipefail
root=$(pwd)
logdir=${OUT:-/tmp}
bundle=${LLMPI_BUNDLE:-$root/bundle}
bench=$bundle/llmpi_gpu_bench
steps=${GPU_BENCH_STEPS:-20}
warmup=${GPU_BENCH_WARMUP:-5}
limit=${GPU_BENCH_TIMEOUT:-300}
python=${PYTHON:-python3}
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
export PYTHONUNBUFFERED=1 CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES:-0}
results=$logdir/gpu_fusion.jsonl
: > "$results"
[[ -x "$bench" ]] || { echo "gpu_fusion: no llmpi_gpu_bench at $bench" >&2; exit 1; }
echo "== gpu_fusion: $(date -u +%FT%TZ), bundle commit $(cat "$bundle/COMMIT" 2>/dev/null || echo unknown)"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | head -n1
overall=0

# One JSON line from $2 (a log), tagged with variant $1, into $results.
keep() {
  local line
  line=$(grep '^{"bench"' "$2" | tail -n1)
  if [[ -z "$line" ]]; then
    echo "  $1: no result, last lines of $2:"; tail -n 12 "$2" | sed 's/^/  | /'; overall=1; return
  fi
  echo "${line%\}}, \"variant\": \"$1\"}" >> "$results"
}

if [[ "${GPU_BENCH_SKIP_TORCH:-0}" != 1 ]]; then
  for cfg in gpt2-124m tinyllama-1.1b; do
    echo "== PyTorch reference, $cfg"
    timeout "$limit" "$python" "$root/bench/torch_reference.py" --config "$cfg" --steps "$steps" \
      --warmup "$warmup" > "$logdir/fusion_torch_$cfg.log" 2>&1
    keep torch "$logdir/fusion_torch_$cfg.log"
  done
fi

# run CONFIG VARIANT LLMPI_FUSED [extra llmpi_gpu_bench arguments]
run() {
  local cfg=$1 variant=$2 fused=$3; shift 3
  local log=$logdir/fusion_${cfg}_$variant.log
  echo "== llmpi $cfg, $variant (LLMPI_FUSED=$fused $*)"
  LLMPI_FUSED=$fused timeout "$limit" "$bench" --config "$cfg" --steps "$steps" --warmup "$warmup" \
    "$@" > "$log" 2>&1
  local rc=$?
  (( rc == 0 )) || { echo "  exit status $rc"; overall=1; }
  keep "$variant" "$log"
  if [[ " $* " == *" --profile "* ]]; then sed -n '/^per-op time/,$p' "$log" | head -n 40; fi
}
run gpt2-124m fused all --profile
run gpt2-124m unfused none
run gpt2-124m no-norm gelu,swiglu
run gpt2-124m no-gelu norm,swiglu
run tinyllama-1.1b fused all --profile
run tinyllama-1.1b unfused none
run tinyllama-1.1b no-norm gelu,swiglu
run tinyllama-1.1b no-swiglu norm,gelu
steps=200 warmup=20
run tiny fused all
run tiny fused+graph all --graph
run tiny unfused+graph none --graph

echo "== results ($results)"
"$python" - "$results" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
by = {(r["config"], r["variant"]): r for r in rows}
print("| config | variant | tokens/s | step ms | MFU | vs PyTorch | vs unfused | loss first → last |")
print("|---|---|---|---|---|---|---|---|")
for r in rows:
    cfg, v = r["config"], r["variant"]
    torch = by.get((cfg, "torch"))
    base = by.get((cfg, "unfused")) or by.get((cfg, "fused"))
    ratio = lambda b: f"{r['tokens_per_s'] / b['tokens_per_s']:.3f} ×" if b else ""
    print(f"| {cfg} | {v} | {r['tokens_per_s']:,.0f} | {r['median_step_ms']:.2f} | "
          f"{r.get('mfu', 0):.1%} | {ratio(torch) if v != 'torch' else '1'} | "
          f"{ratio(base) if v != 'torch' else ''} | "
          f"{r.get('loss_first', 0):.3f} → {r.get('loss_last', 0):.3f} |")
print(f"card: {rows[0].get('card') if rows else '?'}")
EOF
exit "$overall"
