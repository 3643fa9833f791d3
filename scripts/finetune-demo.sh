#!/usr/bin/env bash
# Fine-tuning demo on the CPU, on a dictionary no one here wrote: WordNet's noun glosses
# (Debian package wordnet-base, /usr/share/wordnet/data.noun).
#   1. data: N nouns with a one-word lemma and a short gloss. Pre-training text "X: gloss"
#      for all of them; SFT records "Define X" -> gloss (chat, a compact Q:/A: template);
#      preference pairs "Define X" -> chosen = X's gloss, rejected = the gloss of another word:
#      a verb or an adjective (LLMPI_FT_REJECT=verb-adj, the default), or another noun
#      (LLMPI_FT_REJECT=noun: a model this size cannot recall which of two noun glosses is X's,
#      and its held-out accuracy stays at chance). `llmpi prepare`
#      holds out ~10 % of the records (by content hash) for validation; three nouns are kept
#      out of SFT and DPO altogether for the prompts and samples.
#   2. pre-train a tiny GPT-2 (configs/tiny.toml's shape, smaller) on the gloss text;
#   3. SFT from it with LoRA adapters (rank 16 on q, k, v, o, up, down; the pre-trained model
#      frozen), with [eval] prompts on held-out nouns: the held-out masked loss falls; then
#      `llmpi lora merge` writes the SFT model (base + adapters) as a plain model file;
#   4. DPO from the merged SFT model: the reward accuracy on held-out pairs rises;
#   5. `llmpi sample --chat` on held-out nouns before SFT and after DPO.
# Everything it makes stays under $LLMPI_FT_DEMO_DIR (default runs/finetune-demo). The sizes
# are environment variables so that tests/e2e/finetune_demo.sh runs a reduced version:
#   LLMPI_FT_WORDS (2400) LLMPI_FT_PRETRAIN_STEPS (400) LLMPI_FT_SFT_STEPS (200)
#   LLMPI_FT_DPO_STEPS (100) LLMPI_FT_D_MODEL (96) LLMPI_FT_LAYERS (3) LLMPI_FT_VOCAB (1024)
#   LLMPI_FT_REJECT (verb-adj | noun) LLMPI_FT_DPO_LR (2e-4) LLMPI_FT_DPO_BETA (0.5)
#   LLMPI_FT_SFT_LR (3e-3, the adapters' learning rate) LLMPI_FT_LORA_RANK (16)
# Exits 1 when the held-out loss did not fall or the held-out accuracy did not rise.
set -euo pipefail
src="$(cd "$(dirname "$0")/.." && pwd)"
llmpi="${LLMPI:-$src/build/cpu/llmpi}"
[ -x "$llmpi" ] || { echo "finetune-demo: build first (bash scripts/build.sh)" >&2; exit 1; }
wordnet=/usr/share/wordnet/data.noun
[ -f "$wordnet" ] || { echo "finetune-demo: missing $wordnet (apt-get install wordnet-base)" >&2; exit 1; }
out="${LLMPI_FT_DEMO_DIR:-$src/runs/finetune-demo}"
words="${LLMPI_FT_WORDS:-2400}"
pre_steps="${LLMPI_FT_PRETRAIN_STEPS:-400}"
sft_steps="${LLMPI_FT_SFT_STEPS:-200}"
dpo_steps="${LLMPI_FT_DPO_STEPS:-100}"
d_model="${LLMPI_FT_D_MODEL:-96}"
layers="${LLMPI_FT_LAYERS:-3}"
vocab="${LLMPI_FT_VOCAB:-1024}"
reject="${LLMPI_FT_REJECT:-verb-adj}"
export OPENBLAS_NUM_THREADS="${OPENBLAS_NUM_THREADS:-$(nproc)}"
mkdir -p "$out"
cd "$out"
rm -rf pre sft dpo pretrain sft-run sft-merged.h5 dpo-run

echo "== 1/5 data: $words WordNet nouns from $wordnet"
python3 - "$wordnet" "$words" "$reject" <<'PY'
import json, random, re, sys
path, n, reject = sys.argv[1], int(sys.argv[2]), sys.argv[3]

def glosses(path):
    """(first lemma, definition) of each synset with a one-word lemma and a short gloss."""
    out, seen = [], set()
    for line in open(path, encoding="utf-8", errors="replace"):
        if line.startswith("  ") or "|" not in line:
            continue  # the license header
        fields, gloss = line.split("|", 1)
        word = fields.split()[4]  # offset lex_filenum ss_type w_cnt word lex_id ...
        gloss = gloss.split(";")[0].strip()  # the definition, without the quoted examples
        if re.fullmatch(r"[a-z]{3,12}", word) and 15 <= len(gloss) <= 70 and '"' not in gloss \
                and word not in seen:  # one sense per word: its first (most frequent) synset
            seen.add(word)
            out.append((word, gloss))
    return out

rng = random.Random(1234)
unique = glosses(path)
rng.shuffle(unique)
unique = unique[:n]
# Rejected answers: another noun's gloss, or (default) the gloss of a verb or an adjective.
others = [g for _, g in glosses(path.replace("data.noun", "data.verb")) +
          glosses(path.replace("data.noun", "data.adj"))] if reject == "verb-adj" else None
with open("glosses.txt", "w") as f:
    f.write("\n%\n".join(f"{w}: {g}" for w, g in unique) + "\n")
heldout, unique_ft = unique[:3], unique[3:]
with open("heldout.txt", "w") as f:
    f.write("".join(w + "\n" for w, _ in heldout))
with open("sft.jsonl", "w") as f:
    for w, g in unique_ft:
        f.write(json.dumps({"messages": [{"role": "user", "content": f"Define {w}"},
                                         {"role": "assistant", "content": g}]}) + "\n")
with open("pairs.jsonl", "w") as f:
    for i, (w, g) in enumerate(unique_ft):
        if others:
            other = others[rng.randrange(len(others))]
        else:
            other = unique_ft[(i + 1 + rng.randrange(len(unique_ft) - 1)) % len(unique_ft)][1]
        f.write(json.dumps({"prompt": f"Define {w}", "chosen": g, "rejected": other}) + "\n")
print(f"{len(unique)} nouns, e.g. " + "; ".join(f"{w}: {g}" for w, g in unique[:3]))
PY

"$llmpi" prepare glosses.txt --delimiter % --out pre --vocab-size "$vocab" --val-fraction 0.02 --quiet
# A compact chat template (a tiny tokenizer spells ChatML's markers in many tokens).
cat > template.json <<'JSON'
{"user": "Q: {content}\n", "assistant": "A: {content}<|endoftext|>", "end_of_turn": "<|endoftext|>"}
JSON
"$llmpi" prepare sft.jsonl --format sft --tokenizer pre/tokenizer.bpe --out sft \
  --template-file template.json --max-tokens 64 --val-fraction 0.1 2>&1 | grep -v 'bad record'
"$llmpi" prepare pairs.jsonl --format sft --tokenizer pre/tokenizer.bpe --out dpo \
  --template-file template.json --max-tokens 64 --val-fraction 0.1 2>&1 | grep -v 'bad record'
# Three nouns kept out of SFT and DPO altogether (their glosses are in the pre-training text
# only): the prompts of [eval] and of the samples.
mapfile -t prompts < <(sed 's/^/Define /' heldout.txt)
eval_prompts=$(printf '"%s", ' "${prompts[@]}")
eval_prompts="[${eval_prompts%, }]"

model=(--set model.vocab_size="$vocab" --set model.n_layer="$layers" --set model.d_model="$d_model"
       --set model.n_head=4 --set model.max_seq_len=128 --set train.seq_len=64
       --set train.batch_size=16 --set checkpoint.every=0 --set data.tokenizer=pre/tokenizer.bpe)

echo
echo "== 2/5 pre-train on the gloss text ($pre_steps steps)"
"$llmpi" train "$src/configs/tiny.toml" --no-resume "${model[@]}" --set train.steps="$pre_steps" \
  --set train.lr=3e-3 --set train.warmup_steps=20 --set train.log_every=100 \
  --set train.eval_every=0 --set data.train=pre/train.bin --set data.val=pre/val.bin \
  --set run.dir=pretrain | tee pretrain.log | grep -E '^(step|val)'

echo
echo "== samples before fine-tuning (pre-trained model, chat template applied)"
for p in "${prompts[@]}"; do
  printf '%s\n' "$p"
done | "$llmpi" sample pretrain --chat --template-file template.json --greedy --tokens 24 | sed 's/^/  /'

echo
rank="${LLMPI_FT_LORA_RANK:-16}"
echo "== 3/5 SFT from the pre-trained model ($sft_steps steps, LoRA rank $rank, the base frozen)"
"$llmpi" train "$src/configs/tiny.toml" --no-resume "${model[@]}" --set train.steps="$sft_steps" \
  --set train.objective=sft --set train.init_from=pretrain --set lora.rank="$rank" \
  --set lora.alpha=$(( 2 * rank )) --set 'lora.target_modules=["q", "k", "v", "o", "up", "down"]' \
  --set train.lr="${LLMPI_FT_SFT_LR:-3e-3}" --set train.min_lr=3e-4 \
  --set train.warmup_steps=10 --set train.log_every=50 --set train.eval_every=$(( sft_steps / 4 )) \
  --set data.train=sft/train.bin --set data.val=sft/val.bin --set run.dir=sft-run \
  --set "eval.prompts=$eval_prompts" --set eval.max_new_tokens=20 \
  | tee sft.log | grep -E '^(LoRA|step|val|prompt)'
echo "merging the adapters into the base: llmpi lora merge sft-run --out sft-merged.h5"
"$llmpi" lora merge sft-run --out sft-merged.h5 | sed 's/^/  /'

echo
echo "== 4/5 DPO from the merged SFT model ($dpo_steps steps; rejected = the gloss of another word ($reject))"
"$llmpi" train "$src/configs/tiny.toml" --no-resume "${model[@]}" --set train.steps="$dpo_steps" \
  --set train.objective=dpo --set train.init_from=sft-merged.h5 --set train.lr="${LLMPI_FT_DPO_LR:-2e-4}" --set train.min_lr=0 \
  --set train.warmup_steps=5 --set train.log_every=25 --set train.eval_every=$(( dpo_steps / 4 )) \
  --set train.batch_size=8 --set train.seq_len=128 --set dpo.beta="${LLMPI_FT_DPO_BETA:-0.5}" \
  --set data.train=dpo/train.bin --set data.val=dpo/val.bin --set run.dir=dpo-run \
  | tee dpo.log | grep -E '^(step|val|reference)'

echo
echo "== 5/5 samples after DPO"
for p in "${prompts[@]}"; do
  printf '%s\n' "$p"
done | "$llmpi" sample dpo-run --chat --greedy --tokens 24 | sed 's/^/  /'

sft_first=$(grep '^val  step .* | loss' sft.log | head -1 | sed -E 's/.*loss ([0-9.]+).*/\1/')
sft_last=$(grep '^val  step .* | loss' sft.log | tail -1 | sed -E 's/.*loss ([0-9.]+).*/\1/')
acc_first=$(grep '^val  step .*accuracy' dpo.log | head -1 | sed -E 's/.*accuracy ([0-9.]+).*/\1/')
acc_last=$(grep '^val  step .*accuracy' dpo.log | tail -1 | sed -E 's/.*accuracy ([0-9.]+).*/\1/')
echo
echo "held-out masked loss (SFT):          $sft_first -> $sft_last nats/token"
echo "held-out reward accuracy (DPO):      $acc_first -> $acc_last   (step 0: every margin is 0; chance: 0.5)"
awk -v a="$sft_first" -v b="$sft_last" -v c="$acc_first" -v d="$acc_last" 'BEGIN {
  if (!(b < a)) { print "finetune-demo: the held-out SFT loss did not fall" > "/dev/stderr"; exit 1 }
  if (!(d > c && d > 0.5)) { print "finetune-demo: the held-out DPO accuracy did not rise above chance" > "/dev/stderr"; exit 1 } }'
echo "finetune-demo: done ($out)"
