#!/usr/bin/env bash
# scripts/finetune-demo.sh reduced (fewer nouns and steps, a smaller model): WordNet glosses →
# pre-training → SFT with LoRA → lora merge → DPO through the CLI. The script itself exits 1 unless the held-out
# masked loss fell and the held-out DPO reward accuracy rose above chance; here its summary
# lines, the evaluation prompts, the reference cache and the chat samples are checked too.
#   usage: finetune_demo.sh LLMPI_BINARY SOURCE_DIR
set -euo pipefail
llmpi=$1
src=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
[ -f /usr/share/wordnet/data.noun ] || fail "missing /usr/share/wordnet/data.noun (apt-get install wordnet-base)"

LLMPI="$llmpi" LLMPI_FT_DEMO_DIR="$work" LLMPI_FT_WORDS=400 LLMPI_FT_PRETRAIN_STEPS=100 \
  LLMPI_FT_SFT_STEPS=60 LLMPI_FT_DPO_STEPS=40 LLMPI_FT_D_MODEL=64 LLMPI_FT_LAYERS=2 \
  LLMPI_FT_VOCAB=384 bash "$src/scripts/finetune-demo.sh" > "$work/demo.txt" 2>&1 \
  || { cat "$work/demo.txt"; fail "finetune-demo.sh exited non-zero"; }
out=$work/demo.txt
grep -q '^held-out masked loss (SFT):' "$out" || { cat "$out"; fail "no SFT summary"; }
grep -q '^held-out reward accuracy (DPO):' "$out" || { cat "$out"; fail "no DPO summary"; }
grep -Eq '^prompt step 0 \| Define [a-z]+ -> ' "$out" || { cat "$out"; fail "no evaluation prompts"; }
grep -Eq '^LoRA rank 16 \(alpha 32, scale 2\) on q, k, v, o, up, down: [0-9]+ trainable of [0-9]+ parameters' "$out" \
  || { cat "$out"; fail "SFT did not train LoRA adapters"; }
[ -f "$work/sft-merged.h5" ] || { cat "$out"; fail "lora merge wrote no sft-merged.h5"; }
grep -q '^reference log-probs: written to dpo-run/reference_logprobs.h5' "$out" || { cat "$out"; fail "no reference pass"; }
/usr/bin/python3 - "$work/dpo-run/reference_logprobs.h5" <<'PY' || fail "reference cache unreadable in h5py"
import sys, h5py
f = h5py.File(sys.argv[1], "r")
assert f["train/logprobs"].shape[1] == 2 and f["train/logprobs"].shape[0] == f["train"].attrs["pairs"]
assert (f["train/logprobs"][:] < 0).all()  # log-probabilities of whole answers
PY
grep -q '== 5/5 samples after DPO' "$out" || fail "no samples"
# sample --chat with the data's template (the run's prepare.json), from the option.
cd "$work"
"$llmpi" sample sft-run --chat --greedy --tokens 12 --prompt "Define dog" > "$work/chat.txt"
grep -q '^user: Define dog$' "$work/chat.txt" || { cat "$work/chat.txt"; fail "sample --chat output"; }
grep -q '^assistant: ' "$work/chat.txt" || { cat "$work/chat.txt"; fail "sample --chat answer"; }
! grep -q '<|endoftext|>' "$work/chat.txt" || fail "the end-of-turn marker was printed"
echo "finetune demo: $(grep -E '^held-out' "$out" | tr '\n' ' ')"
