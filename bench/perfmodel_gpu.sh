#!/usr/bin/env bash
# The performance model against measurements on the GPUs of one machine (docs/scaling.md),
# run ON the GPU machine from the repository root with the bundle (scripts/gpu-bundle.sh)
# through `bundle/gpu-run.sh perfmodel` (which sets the library path); data/fortunes carried
# (token ids below 2,048 are valid for the 32,000-token vocabularies; speed does not depend
# on them).
#   1. llmpi_collective_bench --device cuda on 2 GPUs: α-β of NCCL's collectives and of the
#      pipeline's host-staged point-to-point (StagedP2p) → comm_nccl2.json (2+ GPUs only)
#   2. llmpi_op_profile --backend cuda (one GPU): the TinyLlama shape at B = 8, 4, 2, the
#      Llama-7B shape (2 layers, B = 1, T = 4096) and the Llama-2-70B shape (1 layer, B = 1)
#      → prof_*.json: the measured compute the 7B/70B projections can use instead of the
#      reference profile (llmpi_perfmodel project --profile ...)
#   3. the real `llmpi train` (--no-save) in each layout the machine has GPUs for, tokens/s of
#      the log windows after warm-up (median), and `llmpi_perfmodel predict` for the same
#      layout with the measured profile and NCCL table; the error per layout.
# Layouts: TinyLlama shape — 1 GPU (B 8); dp2 ZeRO 1 (B 8 per GPU); dp2 ZeRO 3 (B 4, M 2);
# tp2 + sp (B 8); pp2 1F1B (B 2, M 4) — and the Llama-7B shape with $LAYERS layers (default 8)
# and full recomputation: tp2 + sp (B 1, M 8), dp2 ZeRO 3 (B 1, M 4).
# Env: LLMPI_BUNDLE (bundle/), STEPS (12), LAYERS (8), OUT (/tmp). Time: about 5 minutes on
# 2 × H100 (each run has a 300 s limit).
# Usage: bundle/gpu-run.sh perfmodel
set -uo pipefail
root=$(pwd)
logdir=${OUT:-/tmp}
bundle=${LLMPI_BUNDLE:-$root/bundle}
steps=${STEPS:-12}
layers=${LAYERS:-8}
export NCCL_NVLS_ENABLE=0
ngpu=$(nvidia-smi -L 2>/dev/null | wc -l)
mpirun=$(command -v mpirun || command -v mpiexec || true)
for t in llmpi llmpi_op_profile llmpi_collective_bench llmpi_perfmodel; do
  [[ -x $bundle/$t ]] || { echo "perfmodel_gpu: $bundle/$t missing (scripts/gpu-bundle.sh)" >&2; exit 1; }
done
[[ -f data/fortunes/train.bin ]] || { echo "perfmodel_gpu: no data/fortunes in $root" >&2; exit 1; }
results=$logdir/perfmodel_gpu.jsonl
: > "$results"
overall=0
echo "== perfmodel_gpu: $(date -u +%FT%TZ), commit $(cat "$bundle/COMMIT" 2>/dev/null || echo unknown), $ngpu GPU(s)"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | head -n1
launch() {  # ranks, command... (one rank per GPU)
  local n=$1; shift
  if (( n == 1 )); then timeout 300 "$@"; else
    timeout 300 "$mpirun" -n "$n" --allow-run-as-root --bind-to none -x NCCL_NVLS_ENABLE=0 \
      -x LD_LIBRARY_PATH -x OMPI_MCA_btl "$@"
  fi
}

comm=()
if (( ngpu >= 2 )) && [[ -n $mpirun ]]; then
  echo "== NCCL collectives, 2 GPUs -> $logdir/comm_nccl2.json"
  if launch 2 "$bundle/llmpi_collective_bench" --device cuda --max-bytes $((1 << 30)) --reps 5 \
       --json "$logdir/comm_nccl2.json" > "$logdir/comm_nccl2.log" 2>&1; then
    sed -n '/α-β fit/,$p' "$logdir/comm_nccl2.log"
    comm=(--comm "$logdir/comm_nccl2.json")
  else
    echo "  collective benchmark failed:"; tail -n 15 "$logdir/comm_nccl2.log" | sed 's/^/  | /'; overall=1
  fi
else
  echo "== one GPU (or no mpirun): no NCCL table; 1-GPU layouts only"
fi

profile() {  # name config overrides...
  local name=$1 cfg=$2; shift 2
  if launch 1 "$bundle/llmpi_op_profile" "$cfg" --backend cuda --steps 5 --warmup 2 "$@" \
       --json "$logdir/prof_$name.json" > "$logdir/prof_$name.log" 2>&1; then
    sed -n '2,3p' "$logdir/prof_$name.log" | sed "s/^/  $name: /"
  else
    echo "  profile $name failed:"; tail -n 12 "$logdir/prof_$name.log" | sed 's/^/  | /'; overall=1
  fi
}
echo "== op profiles (one GPU)"
profile tinyllama_B8 configs/tinyllama-1.1b.toml --set train.batch_size=8
profile tinyllama_B4 configs/tinyllama-1.1b.toml --set train.batch_size=4
profile tinyllama_B2 configs/tinyllama-1.1b.toml --set train.batch_size=2
profile llama7b_L2 configs/llama-7b.toml --set model.n_layer=2 --set train.batch_size=1
profile llama70b_L1 configs/llama-70b.toml --set model.n_layer=1 --set train.batch_size=1
profiles=()
for f in "$logdir"/prof_tinyllama_B*.json "$logdir"/prof_llama7b_L2.json; do [[ -f $f ]] && profiles+=(--profile "$f"); done

# name gpus config tokens-per-step overrides...
run() {
  local name=$1 n=$2 cfg=$3; shift 3
  if (( n > ngpu )); then echo "| $name | $n | needs $n GPUs: not run | | |"; return; fi
  if (( n > 1 )) && (( ${#comm[@]} == 0 )); then echo "| $name | $n | no NCCL table: not run | | |"; return; fi
  local log=$logdir/perfmodel_gpu_${name// /_}.log dir
  dir=$(mktemp -d)
  launch "$n" "$bundle/llmpi" train "$cfg" --backend cuda --no-save --no-resume \
    --set train.steps="$steps" --set train.warmup_steps=2 --set train.log_every=2 --set train.eval_every=0 \
    --set train.lr=3e-5 --set train.min_lr=3e-6 --set data.train=data/fortunes/train.bin --set data.val= \
    --set run.dir="$dir" "$@" > "$log" 2>&1
  local rc=$?
  rm -rf "$dir"
  if (( rc != 0 )); then echo "| $name | $n | llmpi train failed ($rc) | | |"; tail -n 8 "$log" | sed 's/^/  | /'; overall=1; return; fi
  local tps tokens ms pred
  tps=$(grep '^step' "$log" | sed 's/.*| *\([0-9.]*\) tok\/s.*/\1/' | tail -n +3 | sort -g |
        awk '{a[NR]=$1} END { print NR % 2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2 }')
  tokens=$(sed -n 's/.*batch [0-9]* x [0-9]* = \([0-9]*\) tokens.*/\1/p' "$log" | head -n1)
  ms=$(awk -v t="$tps" -v k="$tokens" 'BEGIN { printf "%.2f", 1000 * k / t }')
  pred=$("$bundle/llmpi_perfmodel" predict "$cfg" --device cuda "${profiles[@]}" \
           "${comm[@]:-"--cluster"}" "$@" 2>/dev/null | tail -n 1 | sed 's/.*"predicted_ms": \([0-9.]*\).*/\1/')
  local err
  err=$(awk -v p="$pred" -v m="$ms" 'BEGIN { if (p > 0) printf "%+.1f %%", 100 * (p / m - 1); else print "-" }')
  echo "| $name | $n | $ms | ${pred:-?} | $err |"
  printf '{"layout":"%s","gpus":%d,"tokens_per_step":%s,"tokens_per_s":%s,"measured_ms":%s,"predicted_ms":%s}\n' \
    "$name" "$n" "${tokens:-null}" "${tps:-null}" "$ms" "${pred:-null}" >> "$results"
}
echo "== layouts: measured (llmpi train, median of the windows after warm-up) vs predicted"
echo "| layout | GPUs | measured ms | predicted ms | error |"
echo "|---|---|---|---|---|"
tl=configs/tinyllama-1.1b.toml
run "TinyLlama 1 GPU" 1 $tl --set parallel.micro_batches=1 --set train.batch_size=8
run "TinyLlama dp2 ZeRO 1" 2 $tl --set parallel.dp=2 --set parallel.zero_stage=1 --set parallel.micro_batches=1 --set train.batch_size=8
run "TinyLlama dp2 ZeRO 3" 2 $tl --set parallel.dp=2 --set parallel.zero_stage=3 --set parallel.micro_batches=2 --set train.batch_size=4
run "TinyLlama tp2 + sp" 2 $tl --set parallel.tp=2 --set parallel.sequence_parallel=true --set parallel.micro_batches=1 --set train.batch_size=8
run "TinyLlama pp2 1F1B M=4" 2 $tl --set parallel.pp=2 --set parallel.micro_batches=4 --set train.batch_size=2
l7=(configs/llama-7b.toml --set model.n_layer="$layers" --set train.recompute=full --set train.batch_size=1)
run "7B shape ($layers layers) tp2 + sp" 2 "${l7[@]}" --set parallel.tp=2 --set parallel.sequence_parallel=true --set parallel.micro_batches=8
run "7B shape ($layers layers) dp2 ZeRO 3" 2 "${l7[@]}" --set parallel.tp=1 --set parallel.dp=2 --set parallel.zero_stage=3 --set parallel.sequence_parallel=false --set parallel.micro_batches=4
echo "== results: $results; profiles: $logdir/prof_*.json (for llmpi_perfmodel project --profile)"
exit "$overall"
