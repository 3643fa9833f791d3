#!/usr/bin/env bash
# LoRA adapters exported for PEFT, checked without llmpi's code: a tiny base trained on the
# fortunes corpus (GPT-2 and Llama shapes), LoRA runs from it (GPT-2: q, k, v, o, up, down —
# q|k|v become one c_attn adapter of rank 3r; Llama: q, v, gate, down and the head, rsLoRA),
# `export-hf` of the base and of each LoRA run; tests/hf/peft_apply.py applies adapter/ to the
# base's export by PEFT's merge rule (numpy) and must get the run's merged export.
#   usage: lora_peft.sh LLMPI_BINARY SOURCE_DIR
set -euo pipefail
llmpi=$1
src=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
source "$src/tests/e2e/common.bash"

"$llmpi" prepare /usr/share/games/fortunes/fortunes --delimiter % --out data --vocab-size 300 --quiet
common=(--set model.vocab_size=300 --set model.n_layer=2 --set model.d_model=32 --set model.n_head=4
        --set model.max_seq_len=32 --set train.seq_len=32 --set train.batch_size=4 --set train.warmup_steps=2
        --set train.log_every=100 --set train.eval_every=0 --set checkpoint.every=0
        --set data.train=data/train.bin --set data.val=data/val.bin --set data.tokenizer=data/tokenizer.bpe)
for arch in gpt2 llama; do
  shape=("${common[@]}" --set model.arch=$arch)
  [ $arch = llama ] && shape+=(--set model.n_kv_head=2 --set model.d_ff=96)
  "$llmpi" train "$src/configs/tiny.toml" --no-resume "${shape[@]}" --set train.steps=20 --set train.lr=3e-3 \
    --set run.dir=base-$arch > base-$arch.txt || { cat base-$arch.txt; fail "$arch base training"; }
  if [ $arch = gpt2 ]; then
    lora=(--set lora.rank=4 --set lora.alpha=8 --set 'lora.target_modules=["q", "k", "v", "o", "up", "down"]')
  else
    lora=(--set lora.rank=4 --set lora.alpha=8 --set lora.rslora=true
          --set 'lora.target_modules=["q", "v", "gate", "down", "head"]')
  fi
  "$llmpi" train "$src/configs/tiny.toml" --no-resume "${shape[@]}" "${lora[@]}" --set train.steps=10 \
    --set train.lr=1e-2 --set train.init_from=base-$arch --set run.dir=lora-$arch > lora-$arch.txt \
    || { cat lora-$arch.txt; fail "$arch LoRA training"; }
  grep -q '^LoRA rank 4' lora-$arch.txt || { cat lora-$arch.txt; fail "$arch: no LoRA start-up line"; }
  expect_code 0 "$llmpi" export-hf base-$arch --out hf-base-$arch
  expect_code 0 "$llmpi" export-hf lora-$arch --out hf-lora-$arch
  [ -f hf-lora-$arch/adapter/adapter_config.json ] && [ -f hf-lora-$arch/adapter/adapter_model.safetensors ] \
    || fail "$arch: export-hf wrote no PEFT adapter"
  /usr/bin/python3 "$src/tests/hf/peft_apply.py" hf-base-$arch hf-lora-$arch > peft-$arch.txt 2>&1 \
    || { cat peft-$arch.txt; fail "$arch: the PEFT adapter applied to the base is not the merged model"; }
  cat peft-$arch.txt
done
echo "lora_peft: ok"
