#!/usr/bin/env bash
# bench/gpu_fusion.sh's logic without a GPU: stand-ins for llmpi_gpu_bench, llmpi_cuda_tests
# and the PyTorch reference print what the real ones print (op-table rows, one JSON line per
# run, a profile), and the script must run them in its order with LLMPI_FUSED=0 and 1, pass
# its arguments on, print the op summary and the docs/performance.md table with the targets,
# exit nonzero on a failed op check or a missing result, and skip runs past its deadline.
# Usage: gpu_fusion_script.sh LLMPI_BINARY SOURCE_DIR (the binary is not used).
set -uo pipefail
src=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/bundle" "$work/out"
fail() { echo "FAIL: $*"; exit 1; }

# The stand-in benchmark: 64 ms per step unfused, 56 ms fused (GPT-2), 240 / 200 (TinyLlama).
cat > "$work/bundle/llmpi_gpu_bench" <<'EOF'
#!/usr/bin/env bash
echo "bench LLMPI_FUSED=${LLMPI_FUSED:-unset} $*" >> "$CALLS"
case "$2:${LLMPI_FUSED:-}" in
  gpt2-124m:0) ms=64 b=32 t=1024 mfu=0.40 ;; gpt2-124m:1) ms=56 b=32 t=1024 mfu=0.46 ;;
  tinyllama-1.1b:0) ms=240 b=8 t=2048 mfu=0.47 ;; tinyllama-1.1b:1) ms=200 b=8 t=2048 mfu=0.56 ;;
  *) echo "unexpected $2 with LLMPI_FUSED=${LLMPI_FUSED:-}"; exit 2 ;;
esac
tok=$(( b * t * 1000 / ms ))
echo "{\"bench\": \"llmpi\", \"config\": \"$2\", \"card\": \"H100\", \"batch\": $b, \"seq_len\": $t, \"warmup_steps\": 5, \"timed_steps\": 20, \"median_step_ms\": $ms, \"min_step_ms\": $ms, \"max_step_ms\": $ms, \"tokens_per_s\": $tok, \"mfu\": $mfu, \"peak_mem_gib\": 15, \"peak_reserved_gib\": 15, \"launch_to_first_step_s\": 1.5, \"loss_first\": 10.9, \"loss_last\": 9.5}"
[[ " $* " == *" --profile "* ]] && printf 'per-op time of one step\n| linear_forward | 1.0 |\n'
exit 0
EOF
cat > "$work/bundle/llmpi_cuda_tests" <<'EOF'
#!/usr/bin/env bash
echo "tests $*" >> "$CALLS"
echo "add_layernorm[fused]/N=3001,C=768          out                  1.000e-03 (tol 1e-02) ok"
echo "adamw[clip scale, bf16 compute]            compute              2.000e-03 (tol 1e-02) ok"
echo "linear                                     out                  3.000e-06 (tol 1e-05) ${OP_RESULT:-ok}"
exit ${OP_STATUS:-0}
EOF
# PyTorch at 70 ms (GPT-2) and 230 ms (TinyLlama); other Python runs for real.
cat > "$work/python" <<'EOF'
#!/usr/bin/env bash
if [[ "$1" == */torch_reference.py ]]; then
  echo "torch $*" >> "$CALLS"
  case "$3" in gpt2-124m) ms=70 b=32 t=1024 mfu=0.37 ;; *) ms=230 b=8 t=2048 mfu=0.48 ;; esac
  echo "{\"bench\": \"torch\", \"config\": \"$3\", \"card\": \"H100\", \"batch\": $b, \"seq_len\": $t, \"warmup_steps\": 5, \"timed_steps\": 20, \"median_step_ms\": $ms, \"min_step_ms\": $ms, \"max_step_ms\": $ms, \"tokens_per_s\": $(( b * t * 1000 / ms )), \"mfu\": $mfu, \"peak_mem_gib\": 18, \"peak_reserved_gib\": 20, \"launch_to_first_step_s\": 40, \"loss_first\": 10.9, \"loss_last\": 9.6}"
  exit 0
fi
exec python3 "$@"
EOF
chmod +x "$work/bundle/"* "$work/python"
export CALLS=$work/calls PYTHON=$work/python LLMPI_BUNDLE=$work/bundle OUT=$work/out
export PATH="$work:$PATH"  # no nvidia-smi here: the script must carry on without it

# 1. Everything passes.
(cd "$src" && bash bench/gpu_fusion.sh) > "$work/log1" 2>&1
rc=$?
cat "$work/log1"
(( rc == 0 )) || fail "exit status $rc with every check passing"
expected="tests --gtest_color=no --gtest_filter=CudaOps.*
bench LLMPI_FUSED=0 --config gpt2-124m --steps 20 --warmup 5
bench LLMPI_FUSED=1 --config gpt2-124m --steps 20 --warmup 5 --profile
bench LLMPI_FUSED=0 --config tinyllama-1.1b --steps 20 --warmup 5
bench LLMPI_FUSED=1 --config tinyllama-1.1b --steps 20 --warmup 5 --profile
torch $src/bench/torch_reference.py --config gpt2-124m --steps 20 --warmup 5
torch $src/bench/torch_reference.py --config tinyllama-1.1b --steps 20 --warmup 5"
[[ "$(cat "$CALLS")" == "$expected" ]] || fail "runs, got:"$'\n'"$(cat "$CALLS")"
grep -q '^checks passed: 3 (fused-op rows: 2), failed: 0, gtest exit status: 0$' "$work/log1" ||
  fail "op summary"
grep -q '^| GPT-2 124M, 32 × 1024 | llmpi, LLMPI_FUSED=1 | 585,142 | 1.250 × | 1.143 × | 46.0% | 56.0 (56.0–56.0) |' \
  "$work/log1" || fail "GPT-2 fused row"
grep -q '^|  | PyTorch (torch.compile) | 71,234 | 1 |  | 48.0% |' "$work/log1" || fail "TinyLlama PyTorch row"
grep -q '^target GPT-2 124M ≥ 1.2 × PyTorch: 1.250 × — met$' "$work/log1" || fail "GPT-2 target"
grep -q '^target TinyLlama-1.1B shape ≥ 58% MFU: 56.0% — missed: needs 193.1 ms per step, 6.9 ms less$' \
  "$work/log1" || fail "TinyLlama target"
grep -q '^| linear_forward | 1.0 |$' "$work/log1" || fail "profile"
[[ $(wc -l < "$OUT/gpu_fusion.jsonl") == 6 ]] || fail "6 JSON lines expected"

# 2. A failed op check fails the script and is listed.
: > "$CALLS"
(cd "$src" && OP_RESULT=FAIL OP_STATUS=1 bash bench/gpu_fusion.sh) > "$work/log2" 2>&1 &&
  fail "exit status 0 with a failed op check"
grep -q '^checks passed: 2 (fused-op rows: 2), failed: 1, gtest exit status: 1$' "$work/log2" ||
  fail "failed op summary"
grep -q '^  linear .*FAIL$' "$work/log2" || fail "the failed row is not listed"

# 3. Past the deadline the remaining runs are skipped, said so, and the script fails.
: > "$CALLS"
(cd "$src" && GPU_FUSION_DEADLINE=10 bash bench/gpu_fusion.sh) > "$work/log3" 2>&1 &&
  fail "exit status 0 with skipped runs"
grep -q 'skipped: the deadline is near' "$work/log3" || fail "skips not reported"
grep -q '^gpu_fusion_table: no results in ' "$work/log3" || fail "no results not reported"
[[ ! -s "$CALLS" ]] || fail "ran past the deadline: $(cat "$CALLS")"
echo "gpu_fusion_script: ok"
