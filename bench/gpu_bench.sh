#!/usr/bin/env bash
# GPU benchmark, run ON the GPU machine from a copy of the repo (or a bundle beside bench/):
# the PyTorch reference trainer (bench/torch_reference.py) for GPT-2 124M (B=32, T=1024) and
# the TinyLlama-1.1B shape (B=8, T=2048), then our trainer on the same shapes
# (bundle/llmpi_gpu_bench), and one table of tokens/s, MFU, peak memory and launch-to-first-step.
# Every run prints one JSON line (keys as torch_reference.py's); the table is built from those.
# Each config runs in its own process. With GPU_BENCH_PARALLEL=1 and ≥ 2 GPUs the configs run
# at the same time, one per GPU (they share the host's CPUs, not a GPU); default: one by one
# on GPU 0. Logs and JSON go to $OUT when set (the device tool's output folder), else /tmp.
# Env: GPU_BENCH_CONFIGS ("gpt2-124m tinyllama-1.1b"), GPU_BENCH_STEPS (20), GPU_BENCH_WARMUP
# (5), GPU_BENCH_TIMEOUT (seconds per run, 420), LLMPI_BUNDLE (default bundle/), GPU_BENCH_SKIP_TORCH=1.
# Usage: bench/gpu_bench.sh
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
logdir=${OUT:-/tmp}
configs=${GPU_BENCH_CONFIGS:-"gpt2-124m tinyllama-1.1b"}
steps=${GPU_BENCH_STEPS:-20}
warmup=${GPU_BENCH_WARMUP:-5}
limit=${GPU_BENCH_TIMEOUT:-420}
# Never NVLink multicast on the shared machines (NCCL, PyTorch symmetric memory, NVSHMEM).
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
export PYTHONUNBUFFERED=1
python=${PYTHON:-python3}
results=$logdir/gpu_bench.jsonl
: > "$results"

ngpu=$(nvidia-smi -L 2>/dev/null | wc -l)
commit=$(git -C "$root" describe --always --dirty --abbrev=12 2>/dev/null ||
         cat "$root/bundle/COMMIT" 2>/dev/null || echo unknown)
echo "== gpu_bench: $(date -u +%FT%TZ), commit $commit, $ngpu GPU(s)"
nvidia-smi --query-gpu=index,name,driver_version,memory.total --format=csv,noheader 2>&1 | sed 's/^/  /'

# torch_reference for one config on one GPU; its JSON line is appended to $results.
run_torch() {
  local cfg=$1 gpu=$2 log=$logdir/torch_$1.log
  CUDA_VISIBLE_DEVICES=$gpu timeout "$limit" "$python" "$root/bench/torch_reference.py" \
    --config "$cfg" --steps "$steps" --warmup "$warmup" > "$log" 2>&1
  local rc=$?
  if grep -q '^{"bench"' "$log"; then
    grep '^{"bench"' "$log" >> "$results"
  else
    echo "torch_reference $cfg: failed (exit $rc), last lines of $log:" >&2
    tail -n 15 "$log" | sed 's/^/    /' >&2
  fi
}

echo "== PyTorch reference"
if [[ "${GPU_BENCH_SKIP_TORCH:-0}" == 1 ]]; then
  echo "skipped (GPU_BENCH_SKIP_TORCH=1)"
elif [[ "${GPU_BENCH_PARALLEL:-0}" == 1 && $ngpu -ge 2 ]]; then
  i=0
  for c in $configs; do run_torch "$c" $((i % ngpu)) & i=$((i + 1)); done
  wait
else
  for c in $configs; do run_torch "$c" 0; done
fi

# Our trainer on CUDA: bench/llmpi_gpu_bench.cpp (the model and bf16/f32 mixed-precision
# store of `llmpi train`, one minimal loop with the fused AdamW that writes the bf16 weights), via
# the bundle's gpu-run.sh (which sets up the libraries). Same shapes, warm-up and step counts; one JSON line
# per config (keys as torch_reference.py's) and a per-op profile in $logdir/llmpi_<config>.log.
bundle_dir=${LLMPI_BUNDLE:-$root/bundle}
run_llmpi() {
  local cfg=$1
  if [[ ! -x "$bundle_dir/llmpi_gpu_bench" ]]; then
    echo "llmpi $cfg: not run ($bundle_dir/llmpi_gpu_bench missing: scripts/gpu-bundle.sh)" >&2
    return
  fi
  CUDA_VISIBLE_DEVICES=0 GPU_BENCH_CONFIGS=$cfg GPU_BENCH_STEPS=$steps GPU_BENCH_WARMUP=$warmup \
    GPU_BENCH_TIMEOUT=$limit OUT=$logdir "$bundle_dir/gpu-run.sh" bench > "$logdir/llmpi_run_$cfg.log" 2>&1
  if grep -q '^{"bench"' "$logdir/llmpi_$cfg.log" 2>/dev/null; then
    grep '^{"bench"' "$logdir/llmpi_$cfg.log" >> "$results"
  else
    echo "llmpi $cfg: failed, last lines:" >&2
    tail -n 15 "$logdir/llmpi_run_$cfg.log" | sed 's/^/    /' >&2
  fi
}
echo "== llmpi ($bundle_dir/llmpi_gpu_bench)"
for c in $configs; do run_llmpi "$c"; done

echo "== results ($results)"
"$python" - "$results" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
if not rows:
    print("no results"); sys.exit(1)
cols = [("config", "config", "{}"), ("bench", "trainer", "{}"), ("tokens_per_s", "tokens/s", "{:,.0f}"),
        ("mfu", "MFU", "{:.1%}"), ("median_step_ms", "step ms", "{:.1f}"),
        ("peak_mem_gib", "peak GiB", "{:.2f}"), ("launch_to_first_step_s", "launch→1st step s", "{:.1f}"),
        ("loss_first", "loss first", "{:.3f}"), ("loss_last", "loss last", "{:.3f}")]
print("| " + " | ".join(h for _, h, _ in cols) + " |")
print("|" + "---|" * len(cols))
for r in sorted(rows, key=lambda r: (r.get("config", ""), r.get("bench", ""))):
    print("| " + " | ".join(f.format(r[k]) if k in r else "" for k, _, f in cols) + " |")
print(f"card: {rows[0].get('card')}, torch {rows[0].get('torch')}, CUDA {rows[0].get('cuda')}")
EOF
