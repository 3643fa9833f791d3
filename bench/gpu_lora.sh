#!/usr/bin/env bash
# LoRA and QLoRA against full fine-tuning on one GPU (issue 15): the TinyLlama-1.1B shape
# (configs/tinyllama-1.1b.toml), one GPU, the same batch in every mode (B = $LORA_BATCH
# sequences of T = 2048, one micro-batch), $LORA_STEPS steps from the seeded init, --no-save:
#   full   every weight trains (f32 master + bf16 compute copy, AdamW moments)
#   lora   [lora] rank 16, alpha 32, adapters on q k v o gate up down; the base frozen in bf16
#   qlora  the same adapters; the blocks' linear weights frozen in NF4 (base_dtype = "nf4")
# Reported per mode: tokens/s over the last log windows (the trainer's step lines after
# warm-up), the device's peak memory (the trainer's "peak device memory per rank" line), the
# start-up memory table's rows (params | grads | optimizer | transient | frozen base, MiB) and
# the first and last loss (finite, falling). JSON lines in $OUT/gpu_lora.jsonl (or /tmp).
# Runs ON the GPU machine from the repository root (data/fortunes carried: its token ids are
# valid for the 32,000-token vocabulary; throughput does not depend on them).
# Env: LLMPI (default bundle/llmpi), LORA_STEPS (12), LORA_BATCH (4), LORA_MODES ("full lora qlora").
# LORA_BACKEND=host runs the same comparison on the CPU (one BLAS thread per process) with a
# small Llama shape instead: configs/tiny-llama.toml widened to d_model 512, d_ff 1408, 8 query
# and 2 kv heads, B = 8 sequences of T = 128 (LORA_BATCH defaults to 8 there).
# Usage: bundle/gpu-run.sh lora    (sets the library path), or bench/gpu_lora.sh
#        LLMPI=build/cpu/llmpi LORA_BACKEND=host bash bench/gpu_lora.sh
set -uo pipefail
root=$(pwd)
logdir=${OUT:-/tmp}
llmpi=${LLMPI:-$root/bundle/llmpi}
steps=${LORA_STEPS:-12}
backend=${LORA_BACKEND:-cuda}
case "$backend" in
  cuda) name=tinyllama-1.1b; config=configs/tinyllama-1.1b.toml; seq=2048
        batch=${LORA_BATCH:-4}; shape=() ;;
  host) name=tiny-llama-512; config=configs/tiny-llama.toml; seq=128
        batch=${LORA_BATCH:-8}; export OPENBLAS_NUM_THREADS=1
        shape=(--set model.d_model=512 --set model.d_ff=1408 --set model.n_head=8
               --set model.n_kv_head=2 --set train.seq_len=128) ;;
  *) echo "gpu_lora: LORA_BACKEND must be cuda or host, not '$backend'" >&2; exit 2 ;;
esac
[[ -x "$llmpi" ]] || { echo "gpu_lora: no llmpi at $llmpi" >&2; exit 1; }
[[ -f "$root/data/fortunes/train.bin" ]] || { echo "gpu_lora: no data/fortunes in $root" >&2; exit 1; }
results=$logdir/gpu_lora.jsonl
: > "$results"
echo "== gpu_lora: $(date -u +%FT%TZ), commit $(cat "$(dirname "$llmpi")/COMMIT" 2>/dev/null || echo unknown)"
if [[ "$backend" == cuda ]]; then nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | head -n1; else echo "host: $(nproc) cores"; fi
overall=0
for mode in ${LORA_MODES:-full lora qlora}; do
  lora=()
  case "$mode" in
    full) ;;
    lora|qlora)
      lora=(--set lora.rank=16 --set lora.alpha=32
            --set 'lora.target_modules=["q", "k", "v", "o", "gate", "up", "down"]')
      [[ "$mode" == qlora ]] && lora+=(--set 'lora.base_dtype="nf4"') ;;
    *) echo "gpu_lora: unknown mode $mode" >&2; overall=1; continue ;;
  esac
  log=$logdir/gpu_lora_$mode.log
  dir=$(mktemp -d)
  start=$(date +%s)
  timeout 500 "$llmpi" train "$config" --backend "$backend" --no-save --no-resume "${shape[@]}" \
    --set train.batch_size="$batch" --set parallel.micro_batches=1 \
    --set train.steps="$steps" --set train.warmup_steps=2 --set train.log_every=4 \
    --set train.eval_every=0 --set data.train=data/fortunes/train.bin --set data.val= \
    --set run.dir="$dir" "${lora[@]}" > "$log" 2>&1
  rc=$?
  wall=$(( $(date +%s) - start ))
  rm -rf "$dir"
  if (( rc != 0 )); then echo "  $mode: llmpi train failed ($rc)"; tail -n 15 "$log" | sed 's/^/  | /'; overall=1; continue; fi
  # Step lines: "step  12/12 | loss 10.1 | lr ... | grad norm ... |  123456 tok/s | ...".
  tps=$(awk -F'|' -v s1=$((steps - 4)) -v s2="$steps" '/^step/ { split($1, a, /[ \/]+/); st = a[2]
          if (st == s1 || st == s2) { split($5, t, " "); sum += t[1]; k++ } }
          END { if (k) printf "%.0f", sum / k; else print "null" }' "$log")
  first=$(awk -F'|' '/^step/ { split($2, a, " "); print a[2]; exit }' "$log")
  last=$(awk -F'|' '/^step/ { split($2, a, " "); l = a[2] } END { print l }' "$log")
  peak=$(awk '/peak device memory per rank/ { print $6; exit }' "$log")
  # The memory table's row of rank 0: "     0 |  0  0  0 |  params | grads | optimizer | transient [| frozen]".
  row=$(awk -F'|' '/^memory per rank/ { getline; for (i = 3; i <= NF; i++) { gsub(/ /, "", $i); printf "%s%s", (i > 3 ? "," : ""), $i } exit }' "$log")
  IFS=, read -r m_params m_grads m_opt m_trans m_frozen <<< "$row"
  ok=$(awk -v f="$first" -v l="$last" 'BEGIN { print (l == l + 0 && l < f) ? "true" : "false" }')
  [[ "$ok" == true ]] || overall=1
  grep -E '^LoRA rank' "$log" | sed 's/^/  /'
  printf '  %-5s %8s tok/s | peak %s GiB | MiB params %s grads %s optimizer %s frozen %s | loss %s -> %s | wall %d s\n' \
    "$mode" "$tps" "${peak:-n/a}" "$m_params" "$m_grads" "$m_opt" "${m_frozen:-0}" "$first" "$last" "$wall"
  printf '{"bench":"gpu_lora","backend":"%s","config":"%s","mode":"%s","batch":%d,"seq_len":%d,"tokens_per_s":%s,"peak_gib":%s,"params_mib":%s,"grads_mib":%s,"optimizer_mib":%s,"frozen_mib":%s,"loss_first":%s,"loss_last":%s,"loss_falling":%s}\n' \
    "$backend" "$name" "$mode" "$batch" "$seq" "$tps" "${peak:-null}" "${m_params:-null}" "${m_grads:-null}" "${m_opt:-null}" "${m_frozen:-0}" "$first" "$last" "$ok" >> "$results"
done
exit "$overall"
