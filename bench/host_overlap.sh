#!/usr/bin/env bash
# Host overlap benchmark (issue 16 part 2): `llmpi train` of a ~10M-parameter GPT-2 (d_model
# 320, 8 layers, T 128, global batch 8 sequences) per data-parallel layout, with
# parallel.overlap_grad_reduce = false and = true, interleaved run by run (off, on, off, on, ...)
# so that both see the same machine. Per run: step ms = 1024 tokens / median tok/s of the
# logging windows after warm-up, and rank 0's time split of its last logged step (compute |
# communication waited for / all of it). Per layout: the medians over REPS runs and the
# ratio off/on (> 1: the overlap is faster). The 1-minute load average is printed per layout:
# on a shared 2-core machine the ranks' scheduling moves these numbers more than overlap does.
# Env: LLMPI (build/cpu/llmpi), REPS (3), STEPS (14), LAYOUTS (a regex over names, default all)
set -euo pipefail
cd "$(dirname "$0")/.."
llmpi=${LLMPI:-build/cpu/llmpi}
reps=${REPS:-3}
steps=${STEPS:-14}
only=${LAYOUTS:-.}
[[ -x $llmpi ]] || { echo "host_overlap: build first (bash scripts/build.sh)" >&2; exit 1; }
[[ -f data/fortunes/train.bin ]] || { echo "host_overlap: prepare data/fortunes first (scripts/demo.sh)" >&2; exit 1; }
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
export OMPI_MCA_btl=self,vader OMPI_MCA_btl_vader_single_copy_mechanism=none
mpi=(mpiexec --oversubscribe --bind-to none)
[[ $(id -u) == 0 ]] && mpi+=(--allow-run-as-root)
model=(--set model.d_model=320 --set model.n_head=4 --set model.n_layer=8)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

once() {  # ranks overlap overrides... -> "step_ms | split"
  local ranks=$1 ov=$2; shift 2
  local log=$out/log
  "${mpi[@]}" -n "$ranks" "$llmpi" train configs/tiny.toml --no-save --no-resume "${model[@]}" \
    --set train.steps="$steps" --set train.warmup_steps=2 --set train.log_every=2 --set train.eval_every=0 \
    --set data.val= --set checkpoint.every=0 --set run.dir="$out/run" \
    --set parallel.overlap_grad_reduce="$ov" "$@" > "$log" 2>&1 ||
    { echo "host_overlap: llmpi train failed:" >&2; tail -n 20 "$log" >&2; return 1; }
  local ms split
  ms=$(grep '^step' "$log" | sed 's/.*| *\([0-9.]*\) tok\/s.*/\1/' | tail -n +3 | sort -g |
       awk '{a[NR]=$1} END { m = NR % 2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2; printf "%.1f", 1024000 / m }')
  split=$(grep '^step' "$log" | tail -n 1 | sed -n 's/.*compute \([0-9.]*\), comm exposed \([0-9.]*\) of \([0-9.]*\).*/\1 \/ \2 \/ \3/p')
  echo "$ms|$split"
}

median() { sort -g | awk '{a[NR]=$1} END { printf "%.1f", NR % 2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2 }'; }

layouts=(
  "dp2 ZeRO 0|2|--set parallel.dp=2 --set train.batch_size=4"
  "dp2 ZeRO 1|2|--set parallel.dp=2 --set parallel.zero_stage=1 --set train.batch_size=4"
  "dp2 ZeRO 0, M=4|2|--set parallel.dp=2 --set parallel.micro_batches=4 --set train.batch_size=1"
  "dp4 ZeRO 0|4|--set parallel.dp=4 --set train.batch_size=2"
  "dp8 ZeRO 1|8|--set parallel.dp=8 --set parallel.zero_stage=1 --set train.batch_size=1"
  "dp2 x tp2|4|--set parallel.dp=2 --set parallel.tp=2 --set train.batch_size=4"
  "dp2 x pp2 M=2|4|--set parallel.dp=2 --set parallel.pp=2 --set parallel.micro_batches=2 --set train.batch_size=2"
)
echo "host overlap benchmark: $(date -u +%FT%TZ), commit $(git rev-parse --short HEAD), $(nproc --all) cores, $reps runs each, $steps steps"
echo "| layout | ranks | off ms | on ms | off/on | split off: compute / exposed / total comm ms | split on | load |"
echo "|---|---|---|---|---|---|---|---|"
for entry in "${layouts[@]}"; do
  IFS='|' read -r name ranks sets <<< "$entry"
  [[ $name =~ $only ]] || continue
  read -ra overrides <<< "$sets"
  l0=$(cut -d' ' -f1 /proc/loadavg)
  offs=() ons=() soff="" son=""
  for ((i = 0; i < reps; ++i)); do
    IFS='|' read -r ms soff <<< "$(once "$ranks" false "${overrides[@]}")"; offs+=("$ms")
    IFS='|' read -r ms son <<< "$(once "$ranks" true "${overrides[@]}")"; ons+=("$ms")
  done
  off=$(printf '%s\n' "${offs[@]}" | median)
  on=$(printf '%s\n' "${ons[@]}" | median)
  ratio=$(awk -v a="$off" -v b="$on" 'BEGIN { printf "%.3f", a / b }')
  printf '| %s | %s | %s | %s | %s | %s | %s | %s–%s |\n' "$name" "$ranks" "$off" "$on" "$ratio" "$soff" "$son" \
    "$l0" "$(cut -d' ' -f1 /proc/loadavg)"
done
