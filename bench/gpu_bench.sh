#!/usr/bin/env bash
# GPU benchmark, run ON the GPU machine from a copy of the repo (or a bundle beside bench/):
# the PyTorch reference trainer (bench/torch_reference.py) for GPT-2 124M (B=32, T=1024) and
# the TinyLlama-1.1B shape (B=8, T=2048), then — once it trains on CUDA — our trainer on the
# same shapes, and one table of tokens/s, MFU, peak memory and launch-to-first-step.
# Every run prints one JSON line (keys as torch_reference.py's); the table is built from those.
# Each config runs in its own process. With GPU_BENCH_PARALLEL=1 and ≥ 2 GPUs the configs run
# at the same time, one per GPU (they share the host's CPUs, not a GPU); default: one by one
# on GPU 0. Logs and JSON go to $OUT when set (the device tool's output folder), else /tmp.
# Env: GPU_BENCH_CONFIGS ("gpt2-124m tinyllama-1.1b"), GPU_BENCH_STEPS (20), GPU_BENCH_WARMUP
# (5), GPU_BENCH_TIMEOUT (seconds per run, 420), LLMPI_BIN (our binary; default bundle/llmpi).
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
if [[ "${GPU_BENCH_PARALLEL:-0}" == 1 && $ngpu -ge 2 ]]; then
  i=0
  for c in $configs; do run_torch "$c" $((i % ngpu)) & i=$((i + 1)); done
  wait
else
  for c in $configs; do run_torch "$c" 0; done
fi

# >>> OUR TRAINER ON CUDA — fill in once `llmpi train` runs on the cuda backend. <<<
# Contract: for each config, run the same shape (same B, T; ≥ 20 timed steps after warm-up;
# random or real tokens) and append ONE JSON line to $results with at least these keys:
#   {"bench": "llmpi", "config": "<name>", "card": ..., "tokens_per_s": ..., "mfu": ...,
#    "peak_mem_gib": ..., "launch_to_first_step_s": ..., "median_step_ms": ...}
# MFU must use the same FLOPs per token as torch_reference.py (Shape.flops_per_token).
run_llmpi() {
  local cfg=$1
  echo "llmpi $cfg: not run (our trainer does not train on CUDA yet)" >&2
}
llmpi_bin=${LLMPI_BIN:-$root/bundle/llmpi}
echo "== llmpi ($llmpi_bin)"
for c in $configs; do run_llmpi "$c"; done
# <<< OUR TRAINER ON CUDA >>>

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
