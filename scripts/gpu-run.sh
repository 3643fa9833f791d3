#!/usr/bin/env bash
# Runs ON the GPU machine, from the bundle that scripts/gpu-bundle.sh assembled (it copies
# this script into bundle/): finds the machine's cuDNN, cuBLASLt, NCCL and Open MPI libraries,
# prints the device, its links and the library versions, then runs
#   ops   the CUDA op tests (every op vs the host backend), with a summary;
#   nccl  the multi-GPU tests (cuda_mpi_<name>_<ranks>) under the machine's own mpirun, one
#         GPU per rank — skipped, and said so, when the machine has fewer GPUs than ranks;
#   bench our training benchmark (llmpi_gpu_bench) for each of $GPU_BENCH_CONFIGS (default
#         "gpt2-124m tinyllama-1.1b"), $GPU_BENCH_STEPS timed steps (20) after
#         $GPU_BENCH_WARMUP (5), with the per-op profile (GPU_BENCH_ARGS replaces --profile:
#         "--graph" for CUDA graphs); JSON lines in $OUT/llmpi_bench.jsonl. Not part of `all`.
#   train `llmpi train` itself across backends, from the repository root that holds
#         data/fortunes (carried): tiny.toml for 50 steps on the host and on CUDA, loss curves
#         compared (bf16 tolerance), then a CUDA checkpoint of step 25 resumed on the host
#         and a host checkpoint resumed on CUDA, each continuing the curve; deterministic
#         mode twice, with recompute = full and with cuda_graphs = off, step lines identical;
#         with 2 GPUs also
#         dp2 ZeRO-1 and tp2 + sp under mpirun against the 1-GPU curve, and the dp2 run's
#         checkpoint resumed on one GPU. Not part of `all`.
#   scaling  bench/gpu_scaling.sh (from the repository root, data/fortunes carried): llmpi
#         train on the TinyLlama-1.1B shape, dp with ZeRO-1 on 1, 2, 4, 8 GPUs (as many as the
#         machine has), tokens/s and scaling efficiency. Not part of `all`.
#   layouts  bench/gpu_layouts.sh (repository root, data/fortunes carried): the Llama-7B shape
#         under issue #6's layouts that fit the machine, and the 8 → 2 GPU reshard. Not in `all`.
#   perfmodel  bench/perfmodel_gpu.sh (repository root, data/fortunes carried): NCCL α-β on 2
#         GPUs, op profiles of the TinyLlama, 7B and 70B shapes, llmpi train per layout against
#         llmpi_perfmodel's prediction (docs/scaling.md). Not part of `all`.
#   logbook  the logbook on one GPU (repository root, data/fortunes carried): its cost per step
#         (bench/logbook_overhead.sh gpu, GPT-2 124M), then a 30-step GPT-2 124M run whose
#         logbook's steps.csv (llmpi logbook --csv) shows tokens/s and MFU. Not part of `all`.
#   fusion  bench/gpu_fusion.sh (repository root): issue 16's kernels on one GPU in ~4–6 min —
#         the op table (CudaOps.*, fused ops included) against the host twins, then GPT-2 124M
#         and the TinyLlama shape with LLMPI_FUSED=0 and =1 and the PyTorch reference, and a
#         table for docs/performance.md (GPU_FUSION_EXTRA=1: each fusion off alone, CUDA
#         graphs on tiny.toml's model). Not in `all`.
#   lora  bench/gpu_lora.sh (repository root, data/fortunes carried): the TinyLlama-1.1B shape
#         on one GPU, full fine-tuning vs LoRA vs QLoRA (NF4 base): tokens/s, peak memory and
#         the memory table (issue 15). Not in `all`.
#   hostoverlap  bench/host_overlap.sh with the bundle's llmpi (repository root, data/fortunes
#         carried): the host backend's overlapped gradient reduction on this machine's idle
#         CPU cores, every rank on a core of its own (issue 16 part 2). Not in `all`.
# Logs go to $OUT when set (the device tool's output folder), else /tmp. Exit status: nonzero
# when any test that ran failed.
# LLMPI_MEMCHECK=1 also runs the op tests under compute-sanitizer's memcheck (slow).
# Usage: bundle/gpu-run.sh [ops|nccl|all|bench|train|scaling|layouts|perfmodel|fusion|lora|logbook|hostoverlap] [extra gtest flags for the CUDA tests]  (default all)
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
logdir=${OUT:-/tmp}
export NCCL_NVLS_ENABLE=0  # never NVLink multicast on the shared machines
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_btl=self,vader OMPI_MCA_btl_vader_single_copy_mechanism=none

# The executables and carried libraries travel compressed (scripts/gpu-bundle.sh); unpack
# them once.
if [[ ! -x "$here/llmpi" && -f "$here/payload.tar.xz" ]]; then
  tar -C "$here" -xJf "$here/payload.tar.xz" || { echo "gpu-run: cannot unpack payload.tar.xz" >&2; exit 1; }
fi

# The directory holding the first file named $1 under the usual install roots (or nothing).
lib_dir_of() {
  local f
  f=$(ldconfig -p 2>/dev/null | awk -v n="$1" '$1 == n {print $NF; exit}')
  if [[ -z "$f" ]]; then
    f=$(find /usr/local/cuda/lib64 /usr/local/cuda/lib /usr/lib/x86_64-linux-gnu /usr/local/lib \
             /opt /usr/lib/python3*/ -name "$1" 2>/dev/null | head -n1)
  fi
  [[ -n "$f" ]] && dirname "$(readlink -f "$f")"
}
extra=""
mode=all
case "${1:-}" in ops|nccl|all|bench|train|scaling|layouts|perfmodel|fusion|lora|logbook|hostoverlap) mode=$1; shift ;; esac
for lib in libcudnn.so.9 libcublasLt.so.13 libnccl.so.2 libmpi.so.40; do
  d=$(lib_dir_of "$lib")
  if [[ -z "$d" ]]; then echo "gpu-run: $lib not found on this machine" >&2; else extra+=":$d"; fi
done
export LD_LIBRARY_PATH="$here/lib$extra${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

echo "== device"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1
ngpu=$(nvidia-smi -L 2>/dev/null | wc -l)
if (( ngpu > 1 )); then nvidia-smi topo -m 2>&1 | sed 's/^/  /'; fi
echo "== libraries"
echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
ldd "$here/llmpi_cuda_tests" | grep -E 'cudnn|cublas|nccl|mpi|hdf5|kokkos|not found' | sed 's/^/  /'

overall=0
if [[ "$mode" == ops || "$mode" == all ]]; then
  echo "== CUDA op tests"
  start=$(date +%s)
  "$here/llmpi_cuda_tests" --gtest_color=no "$@" 2>&1 | tee "$logdir/cuda_tests.log"
  status=${PIPESTATUS[0]}
  echo "== summary ($(($(date +%s) - start)) s)"
  ok=$(grep -c ' ok$' "$logdir/cuda_tests.log")
  bad=$(grep -cE ' (FAIL|THREW)$' "$logdir/cuda_tests.log")
  echo "checks passed: $ok, failed: $bad, gtest exit status: $status"
  grep -E ' (FAIL|THREW)$' "$logdir/cuda_tests.log" | sed 's/^/  /'
  if [[ "${LLMPI_MEMCHECK:-0}" == 1 ]]; then
    echo "== compute-sanitizer memcheck"
    timeout 300 compute-sanitizer --tool memcheck --print-limit 20 \
      "$here/llmpi_cuda_tests" --gtest_color=no "$@" > "$logdir/memcheck.log" 2>&1
    echo "memcheck exit status: $?"
    grep -E "ERROR SUMMARY|Invalid|out of bounds" "$logdir/memcheck.log" | head -20
  fi
  overall=$status
fi

if [[ "$mode" == nccl || "$mode" == all ]]; then
  echo "== multi-GPU (NCCL) tests"
  mpirun=$(command -v mpirun || command -v mpiexec || true)
  shopt -s nullglob
  tests=("$here"/cuda_mpi_*)
  if [[ -z "$mpirun" ]]; then
    echo "no mpirun on this machine: multi-GPU tests not run"
  elif (( ${#tests[@]} == 0 )); then
    echo "no cuda_mpi_* binaries in the bundle"
  fi
  [[ -n "$mpirun" ]] && "$mpirun" --version 2>&1 | head -n1 | sed 's/^/  /'
  for t in "${tests[@]}"; do
    [[ -n "$mpirun" ]] || break
    name=$(basename "$t"); ranks=${name##*_}
    if (( ngpu < ranks )); then
      echo "$name: needs $ranks GPUs, this machine has $ngpu: not run"
      continue
    fi
    start=$(date +%s)
    timeout 300 "$mpirun" -n "$ranks" --allow-run-as-root --bind-to none \
      -x NCCL_NVLS_ENABLE=0 -x LD_LIBRARY_PATH -x OMPI_MCA_btl \
      "$t" --gtest_color=no > "$logdir/$name.log" 2>&1
    rc=$?
    grep -E '^\[ *(OK|FAILED|PASSED) *\]|^NCCL |no GPU|FAIL|fatal|rank [0-9]+:' "$logdir/$name.log" | sed 's/^/  /'
    echo "$name: exit status $rc ($(($(date +%s) - start)) s)"
    if (( rc != 0 && rc != 77 )); then tail -n 20 "$logdir/$name.log" | sed 's/^/  | /'; overall=1; fi
  done
fi
if [[ "$mode" == bench ]]; then
  echo "== llmpi_gpu_bench"
  : > "$logdir/llmpi_bench.jsonl"
  for cfg in ${GPU_BENCH_CONFIGS:-gpt2-124m tinyllama-1.1b}; do
    timeout "${GPU_BENCH_TIMEOUT:-420}" "$here/llmpi_gpu_bench" --config "$cfg" \
      --steps "${GPU_BENCH_STEPS:-20}" --warmup "${GPU_BENCH_WARMUP:-5}" ${GPU_BENCH_ARGS---profile} \
      > "$logdir/llmpi_$cfg.log" 2>&1
    rc=$?
    grep '^{"bench"' "$logdir/llmpi_$cfg.log" >> "$logdir/llmpi_bench.jsonl"
    cat "$logdir/llmpi_$cfg.log"
    echo "llmpi_gpu_bench $cfg: exit status $rc"
    (( rc == 0 )) || overall=1
  done
fi
if [[ "$mode" == logbook ]]; then
  echo "== the logbook on the GPU"
  [[ -f data/fortunes/train.bin ]] || { echo "gpu-run: no data/fortunes in $(pwd)" >&2; exit 1; }
  bash bench/logbook_overhead.sh gpu "$here" 2>&1 | tee "$logdir/logbook_overhead.log"
  (( PIPESTATUS[0] == 0 )) || overall=1
  work=$(mktemp -d)
  "$here/llmpi" train configs/gpt2-124m.toml --backend cuda --no-resume --set train.steps=30 \
    --set train.batch_size=8 --set parallel.micro_batches=1 --set train.warmup_steps=5 \
    --set train.eval_every=0 --set train.log_every=5 --set data.train=data/fortunes/train.bin \
    --set data.val=data/fortunes/val.bin --set data.tokenizer=data/fortunes/tokenizer.bpe \
    --set run.dir="$work/run" > "$logdir/logbook_mfu_train.log" 2>&1 || { tail -n 15 "$logdir/logbook_mfu_train.log"; overall=1; }
  grep -E '^step +(10|20|30)/30|tokens/step|logbook:' "$logdir/logbook_mfu_train.log" | sed 's/^/  /'
  if "$here/llmpi" logbook "$work/run" --csv --out "$logdir/logbook_export" > /dev/null; then
    echo "  steps.csv (llmpi logbook --csv), the last 10 steps: step, tokens/s, MFU"
    awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; next }
             NR > 21 { printf "    %s %s %s\n", $c["step"], $c["tokens_per_s"], $c["mfu"] }' "$logdir/logbook_export/steps.csv"
  else
    echo "  llmpi logbook --csv failed"; overall=1
  fi
  rm -rf "$work"
fi
if [[ "$mode" == train ]]; then
  echo "== llmpi train across backends (tiny.toml, 50 steps)"
  root=$(pwd)
  [[ -f "$root/data/fortunes/train.bin" ]] || { echo "gpu-run: no data/fortunes in $root" >&2; exit 1; }
  work=$(mktemp -d)
  common=(--set train.steps=50 --set train.warmup_steps=5 --set train.log_every=1 --set train.eval_every=0
          --set train.eval_batches=2 --set checkpoint.every=25 --set checkpoint.keep_last=4)
  losses() { sed -n 's/^step *\([0-9]*\)\/50 | loss \([0-9.]*\).*/\1 \2/p' "$1"; }
  # compare A B FIRST: every step >= FIRST within 2e-2 relative (bf16 compute vs f32)
  compare() {
    awk -v first="$3" -v name="$4" '
      NR == FNR { ref[$1] = $2; next }
      ($1 in ref) && $1 >= first { n++; d = (ref[$1] > $2 ? ref[$1] - $2 : $2 - ref[$1]) / ref[$1]
                                   if (d > worst) worst = d; if (d > 2e-2) bad++ }
      END { printf "  %-38s %d steps compared, worst relative difference %.2e %s\n", name, n, worst, (bad || n == 0) ? "FAIL" : "ok"; exit (bad || n == 0) }' \
      <(losses "$1") <(losses "$2")
  }
  run_train() {  # log, backend, run dir, extra args
    local log=$1 backend=$2 dir=$3; shift 3
    "$here/llmpi" train configs/tiny.toml --backend "$backend" "${common[@]}" --set run.dir="$dir" "$@" > "$log" 2>&1
    local rc=$?; (( rc == 0 )) || { echo "  llmpi train --backend $backend failed ($rc):"; tail -n 15 "$log" | sed 's/^/  | /'; overall=1; }
  }
  run_train "$logdir/train_host.log" host "$work/host" --no-resume
  run_train "$logdir/train_cuda.log" cuda "$work/cuda" --no-resume
  grep -E '^step +(1|25|50)/50' "$logdir/train_host.log" | sed 's/^/  host: /'
  grep -E '^step +(1|25|50)/50' "$logdir/train_cuda.log" | sed 's/^/  cuda: /'
  # The start-up device memory estimate beside the allocator's measured peak (memory_estimate.h).
  grep -E '^peak device memory' "$logdir/train_cuda.log" | sed 's/^/  cuda: /'
  compare "$logdir/train_host.log" "$logdir/train_cuda.log" 1 "cuda vs host, steps 1-50" || overall=1
  run_train "$logdir/train_cuda_to_host.log" host "$work/c2h" --resume "$work/cuda/checkpoints/step_00000025.h5"
  compare "$logdir/train_host.log" "$logdir/train_cuda_to_host.log" 26 "cuda step-25 checkpoint -> host" || overall=1
  run_train "$logdir/train_host_to_cuda.log" cuda "$work/h2c" --resume "$work/host/checkpoints/step_00000025.h5"
  compare "$logdir/train_host.log" "$logdir/train_host_to_cuda.log" 26 "host step-25 checkpoint -> cuda" || overall=1
  grep -h -E '^resuming|^checkpoints:' "$logdir"/train_*.log | sed 's/^/  /'
  # Deterministic mode, recomputation and CUDA graphs on CUDA: LLMPI_DETERMINISTIC=1 twice
  # (train.cuda_graphs = auto: passes replayed from recordings), once more with
  # train.recompute = full and once op by op (cuda_graphs = off): the same step lines to the
  # last digit.
  det() {  # log, run dir, extra args
    LLMPI_DETERMINISTIC=1 run_train "$1" cuda "$2" --no-save --no-resume "${@:3}"
  }
  steplines() { grep -E '^step' "$1" | cut -d'|' -f1-4; }
  det "$logdir/train_det_a.log" "$work/det_a"
  det "$logdir/train_det_b.log" "$work/det_b"
  det "$logdir/train_det_full.log" "$work/det_full" --set train.recompute=full
  det "$logdir/train_det_eager.log" "$work/det_eager" --set train.cuda_graphs=off
  grep -h -E '^cuda graphs' "$logdir/train_det_a.log" "$logdir/train_det_eager.log" | sed 's/^/  /'
  for pair in "det_b:deterministic mode, run twice" "det_full:recompute = full vs none (deterministic)" \
              "det_eager:cuda graphs vs op by op (deterministic)"; do
    f=${pair%%:*}; what=${pair#*:}
    if [[ -n "$(steplines "$logdir/train_det_a.log")" &&
          "$(steplines "$logdir/train_det_a.log")" == "$(steplines "$logdir/train_$f.log")" ]]; then
      printf '  %-38s 50 step lines identical ok\n' "$what"
    else
      printf '  %-38s step lines differ FAIL\n' "$what"; overall=1
    fi
  done
  # Two GPUs: the same run under the machine's mpirun, dp2 ZeRO-1 and tp2 + sequence
  # parallel (NCCL under the engine), each against the 1-GPU curve; then the dp2 run's
  # step-25 checkpoint resumed on one GPU.
  mpirun=$(command -v mpirun || command -v mpiexec || true)
  if (( ngpu >= 2 )) && [[ -n "$mpirun" ]]; then
    run_train2() {  # log, run dir, extra args
      local log=$1 dir=$2; shift 2
      timeout 300 "$mpirun" -n 2 --allow-run-as-root --bind-to none -x NCCL_NVLS_ENABLE=0 \
        -x LD_LIBRARY_PATH -x OMPI_MCA_btl "$here/llmpi" train configs/tiny.toml --backend cuda \
        "${common[@]}" --set run.dir="$dir" "$@" > "$log" 2>&1
      local rc=$?; (( rc == 0 )) || { echo "  mpirun -n 2 llmpi train failed ($rc):"; tail -n 15 "$log" | sed 's/^/  | /'; overall=1; }
    }
    # The same global batch: half the sequences per dp rank.
    half=$(( $(sed -n "s/^batch_size *= *\([0-9]*\).*/\1/p" configs/tiny.toml) / 2 ))
    run_train2 "$logdir/train_cuda_dp2.log" "$work/dp2" --no-resume --set parallel.dp=2 --set parallel.zero_stage=1 --set train.batch_size=$half
    compare "$logdir/train_cuda.log" "$logdir/train_cuda_dp2.log" 1 "2 GPUs dp2 ZeRO-1 vs 1 GPU" || overall=1
    run_train2 "$logdir/train_cuda_tp2.log" "$work/tp2" --no-resume --set parallel.tp=2 --set parallel.sequence_parallel=true
    compare "$logdir/train_cuda.log" "$logdir/train_cuda_tp2.log" 1 "2 GPUs tp2 + sp vs 1 GPU" || overall=1
    grep -E '^step +(1|50)/50' "$logdir/train_cuda_dp2.log" "$logdir/train_cuda_tp2.log" | sed 's/^/  /'
    run_train "$logdir/train_dp2_to_1gpu.log" cuda "$work/dp2to1" --resume "$work/dp2/checkpoints/step_00000025.h5"
    compare "$logdir/train_cuda.log" "$logdir/train_dp2_to_1gpu.log" 26 "2-GPU dp2 checkpoint -> 1 GPU" || overall=1
  else
    echo "  one GPU (or no mpirun): the 2-GPU llmpi train runs were not run"
  fi
fi
if [[ "$mode" == layouts ]]; then
  echo "== Llama-7B shape layouts (bench/gpu_layouts.sh)"
  LLMPI="$here/llmpi" bash "$(pwd)/bench/gpu_layouts.sh" || overall=1
fi
if [[ "$mode" == perfmodel ]]; then
  echo "== performance model (bench/perfmodel_gpu.sh)"
  LLMPI_BUNDLE="$here" bash "$(pwd)/bench/perfmodel_gpu.sh" || overall=1
fi
if [[ "$mode" == fusion ]]; then
  echo "== issue 16 kernels: op table, fused vs unfused vs PyTorch (bench/gpu_fusion.sh)"
  LLMPI_BUNDLE="$here" bash "$(pwd)/bench/gpu_fusion.sh" || overall=1
fi
if [[ "$mode" == lora ]]; then
  echo "== LoRA and QLoRA vs full fine-tuning, TinyLlama shape, one GPU (bench/gpu_lora.sh)"
  LLMPI="$here/llmpi" bash "$(pwd)/bench/gpu_lora.sh" || overall=1
fi
if [[ "$mode" == hostoverlap ]]; then
  echo "== host overlap on $(nproc) CPU cores (bench/host_overlap.sh)"
  LLMPI="$here/llmpi" bash "$(pwd)/bench/host_overlap.sh" 2>&1 | tee "$logdir/host_overlap.md"
  (( PIPESTATUS[0] == 0 )) || overall=1
fi
if [[ "$mode" == scaling ]]; then
  echo "== data-parallel scaling (bench/gpu_scaling.sh)"
  LLMPI="$here/llmpi" bash "$(pwd)/bench/gpu_scaling.sh" || overall=1
fi
exit "$overall"
