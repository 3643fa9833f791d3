#!/usr/bin/env bash
# The performance model against measurements on this machine's CPU ranks (docs/scaling.md):
#   1. llmpi_collective_bench on 2 ranks: α-β of every collective kind (MPI) → comm.json
#   2. per layout of each config, right before its measurement (so that both see the same
#      machine): llmpi_op_profile of the config at the layout's micro-batch size → prof_*.json
#   3. the layout measured with the real `llmpi train` (--no-save), REPS times: step time =
#      the trainer's tokens per step / median tok/s over its logging windows after warm-up;
#      the layout's time = the median over the repetitions
#   4. llmpi_perfmodel predict for the same layout, and the error (predicted / measured - 1)
# Layouts: 1 rank (and with full recomputation), dp2 ZeRO 0/1/3, tp2, tp2 + sp, pp2 1F1B and
# interleaved (v = 2), and on 4 ranks dp2 × tp2, dp2 ZeRO 1 × pp2, tp2 + sp × pp2 (every group
# of 2 ranks, so that the 2-rank α-β table applies; 4 ranks share the 2 cores, which the
# model's --cores accounts for), each with the same global batch (8 × 128 tokens). Configs: tiny (tiny.toml,
# 1.1M parameters) and gpt2-10m (tiny.toml with d_model 320, 8 layers, 4 heads: 10.6M).
# The load average is recorded with every measurement: on a shared machine the measured and
# profiled times move with it, so compare rows measured at similar load.
# Needs a cpu build (bash scripts/build.sh) and data/fortunes (scripts/demo.sh prepares it).
# Env: BUILD (build/cpu), OUT (/tmp/perfmodel_host), REPS (3), CONFIGS ("tiny gpt2-10m"),
#      LAYOUTS (a regex over layout names, default all), MAX_LOAD (wait before each layout
#      until the 1-minute load average is below it, polling every 30 s, at most WAIT_S = 3600
#      seconds; default: no wait), CORES (the cores the ranks share, default nproc).
# Usage: bench/perfmodel_host.sh
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD:-build/cpu}
out=${OUT:-/tmp/perfmodel_host}
reps=${REPS:-3}
configs=${CONFIGS:-"tiny gpt2-10m"}
only=${LAYOUTS:-.}
for t in llmpi bench/llmpi_collective_bench bench/llmpi_op_profile bench/llmpi_perfmodel; do
  [[ -x $build/$t ]] || { echo "perfmodel_host: $build/$t missing (bash scripts/build.sh)" >&2; exit 1; }
done
[[ -f data/fortunes/train.bin ]] || { echo "perfmodel_host: prepare data/fortunes first (scripts/demo.sh)" >&2; exit 1; }
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
export OMPI_MCA_btl=self,vader OMPI_MCA_btl_vader_single_copy_mechanism=none
mpi=(mpiexec --oversubscribe --bind-to none)
[[ $(id -u) == 0 ]] && mpi+=(--allow-run-as-root)
mkdir -p "$out"
results=$out/results.jsonl
: > "$results"
load() { cut -d' ' -f1 /proc/loadavg; }
wait_quiet() {
  [[ -n ${MAX_LOAD:-} ]] || return 0
  local waited=0
  while awk -v l="$(load)" -v m="$MAX_LOAD" 'BEGIN { exit !(l >= m) }'; do
    if (( waited >= ${WAIT_S:-3600} )); then echo "  (load $(load) after ${waited} s of waiting: measuring anyway)" >&2; return 0; fi
    sleep 30
    waited=$((waited + 30))
  done
}
cores=${CORES:-$(nproc --all)}
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
echo "== perfmodel_host: $(date -u +%FT%TZ), commit $commit, $(nproc --all) cores, load $(load), $reps repetitions"

wait_quiet
echo "== collectives (2 ranks, MPI) -> $out/comm.json (load $(load))"
"${mpi[@]}" -n 2 "$build/bench/llmpi_collective_bench" --json "$out/comm.json" > "$out/comm.log"
sed -n '/α-β fit/,$p' "$out/comm.log"

model_args() {  # config name -> --set overrides of tiny.toml
  case $1 in
    tiny) ;;
    gpt2-10m) echo "--set model.d_model=320 --set model.n_head=4 --set model.n_layer=8" ;;
    *) echo "perfmodel_host: unknown config $1" >&2; exit 1 ;;
  esac
}
steps_of() { case $1 in tiny) echo 24 ;; *) echo 12 ;; esac; }
# The unoverlapped engine (the model without --overlap); bench/host_overlap.sh compares both.
common=(--no-save --no-resume --set parallel.overlap_grad_reduce=false --set train.warmup_steps=2 --set train.log_every=2 --set train.eval_every=0
        --set data.val= --set checkpoint.every=0)

# name | ranks | overrides (global batch 8 sequences in every layout)
layouts=(
  "1 rank|1|--set train.batch_size=8"
  "1 rank, recompute full|1|--set train.batch_size=8 --set train.recompute=full"
  "dp2 ZeRO 0|2|--set parallel.dp=2 --set train.batch_size=4"
  "dp2 ZeRO 1|2|--set parallel.dp=2 --set parallel.zero_stage=1 --set train.batch_size=4"
  "dp2 ZeRO 3|2|--set parallel.dp=2 --set parallel.zero_stage=3 --set train.batch_size=4"
  "tp2|2|--set parallel.tp=2 --set train.batch_size=8"
  "tp2 + sp|2|--set parallel.tp=2 --set parallel.sequence_parallel=true --set train.batch_size=8"
  "pp2 1F1B M=4|2|--set parallel.pp=2 --set parallel.micro_batches=4 --set train.batch_size=2"
  "pp2 interleaved v=2 M=4|2|--set parallel.pp=2 --set parallel.virtual_stages=2 --set parallel.micro_batches=4 --set train.batch_size=2"
  "dp2 x tp2|4|--set parallel.dp=2 --set parallel.tp=2 --set train.batch_size=4"
  "dp2 ZeRO 1 x pp2 M=2|4|--set parallel.dp=2 --set parallel.zero_stage=1 --set parallel.pp=2 --set parallel.micro_batches=2 --set train.batch_size=2"
  "tp2 + sp x pp2 M=4|4|--set parallel.tp=2 --set parallel.sequence_parallel=true --set parallel.pp=2 --set parallel.micro_batches=4 --set train.batch_size=2"
)

# Step ms of one `llmpi train` run: 1024 tokens / median tok/s of the windows after the first two.
measure_once() {  # cfg ranks overrides...
  local cfg=$1 ranks=$2; shift 2
  local log; log=$(mktemp)
  local launch=()
  (( ranks > 1 )) && launch=("${mpi[@]}" -n "$ranks")
  # shellcheck disable=SC2046
  "${launch[@]}" "$build/llmpi" train configs/tiny.toml $(model_args "$cfg") "${common[@]}" \
    --set train.steps="$(steps_of "$cfg")" --set run.dir="$out/run-$cfg" "$@" > "$log" 2>&1 ||
    { echo "perfmodel_host: llmpi train failed:" >&2; tail -n 20 "$log" >&2; rm -f "$log"; return 1; }
  grep '^step' "$log" | sed 's/.*| *\([0-9.]*\) tok\/s.*/\1/' | tail -n +3 | sort -g |
    awk '{a[NR]=$1} END { m = NR % 2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2; printf "%.3f\n", 1024000 / m }'
  rm -f "$log"
}

median() { sort -g | awk '{a[NR]=$1} END { printf "%.3f", NR % 2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2 }'; }

for cfg in $configs; do
  echo "== $cfg"
  echo "| config | layout | ranks | measured ms (median; min–max of $reps) | predicted ms | error | profile step ms | load |"
  echo "|---|---|---|---|---|---|---|---|"
  n=0
  for entry in "${layouts[@]}"; do
    IFS='|' read -r name ranks sets <<< "$entry"
    [[ $name =~ $only ]] || continue
    read -ra overrides <<< "$sets"
    n=$((n + 1))
    B=$(sed -n 's/.*train.batch_size=\([0-9]*\).*/\1/p' <<< "$sets")
    prof=$out/prof_${cfg}_$n.json
    wait_quiet
    l0=$(load)
    # shellcheck disable=SC2046
    "$build/bench/llmpi_op_profile" configs/tiny.toml $(model_args "$cfg") --set train.batch_size="$B" \
      --steps 5 --json "$prof" > "${prof%.json}.log" 2>&1
    pstep=$(sed -n 's/.* step \([0-9.]*\) ms (median).*/\1/p' "${prof%.json}.log")
    times=()
    for ((i = 0; i < reps; ++i)); do times+=("$(measure_once "$cfg" "$ranks" "${overrides[@]}")"); done
    l1=$(load)
    med=$(printf '%s\n' "${times[@]}" | median)
    lo=$(printf '%s\n' "${times[@]}" | sort -g | head -1)
    hi=$(printf '%s\n' "${times[@]}" | sort -g | tail -1)
    # shellcheck disable=SC2046
    pred=$("$build/bench/llmpi_perfmodel" predict configs/tiny.toml $(model_args "$cfg") "${overrides[@]}" \
             --profile "$prof" --comm "$out/comm.json" --cores "$cores" | tail -n 1 | sed 's/.*"predicted_ms": \([0-9.]*\).*/\1/')
    err=$(awk -v p="$pred" -v m="$med" 'BEGIN { printf "%+.1f %%", 100 * (p / m - 1) }')
    printf '| %s | %s | %s | %.1f (%.1f–%.1f) | %.1f | %s | %.1f (B=%s) | %s–%s |\n' "$cfg" "$name" "$ranks" "$med" "$lo" "$hi" \
      "$pred" "$err" "$pstep" "$B" "$l0" "$l1"
    printf '{"config":"%s","layout":"%s","ranks":%s,"measured_ms":%s,"min_ms":%s,"max_ms":%s,"predicted_ms":%s,"profile_step_ms":%s,"load_before":%s,"load_after":%s}\n' \
      "$cfg" "$name" "$ranks" "$med" "$lo" "$hi" "$pred" "$pstep" "$l0" "$l1" >> "$results"
  done
done
echo "== results: $results"
