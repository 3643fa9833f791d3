#!/usr/bin/env bash
# Supervised fine-tuning end to end through the CLI, on text no one here wrote (the fortunes
# corpus): a tokenizer from `prepare`; SFT records built from the fortunes (Alpaca shape:
# "Continue: <first half>" -> the second half) with bad records among them, which `prepare --format
# sft` counts and names by file:line; `train` with objective = "sft" (packed rows) whose
# masked validation loss falls; `eval` on the SFT shards reports the masked (answer) loss;
# fine-tuning on pre-training shards and a bad objective exit 2.
#   usage: finetune_sft.sh LLMPI_BINARY SOURCE_DIR
set -euo pipefail
llmpi=$1
src=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

source "$src/tests/e2e/common.bash"

corpus=/usr/share/games/fortunes/fortunes
[ -f "$corpus" ] || fail "missing $corpus (apt-get install fortunes-min)"
"$llmpi" prepare "$corpus" --delimiter % --out pre --vocab-size 300 --quiet

# Records: one per fortune of at least four words ("Continue: <first half>" -> the second
# half); three bad ones at known lines.
/usr/bin/python3 - "$corpus" > sft.jsonl <<'PY'
import json, sys
text = open(sys.argv[1], encoding="utf-8", errors="replace").read()
out = []
for f in text.split("\n%\n"):
    words = f.split()
    if len(words) >= 4:
        half = len(words) // 2
        out.append(json.dumps({"instruction": "Continue: " + " ".join(words[:half]),
                               "output": " ".join(words[half:])}))
out.insert(2, '{"instruction": "no output"}')
out.insert(5, 'not json')
out.insert(7, json.dumps({"messages": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]}))
print("\n".join(out))
PY
expect_code 0 "$llmpi" prepare sft.jsonl --format sft --tokenizer pre/tokenizer.bpe --out sft \
  --template chatml --max-tokens 128 --val-fraction 0.1
grep -q 'sft.jsonl:3: bad record: missing field "output"' err.txt || { cat err.txt; fail "bad record 3 not named"; }
grep -q 'sft.jsonl:6: bad record: not valid JSON' err.txt || { cat err.txt; fail "bad record 6 not named"; }
grep -q 'sft.jsonl:8: bad record: message 2 is a user turn' err.txt || { cat err.txt; fail "bad record 8 not named"; }
grep -Eq 'prepared sft \(conversations, template chatml\): 1 files, [0-9]+ records read \([0-9]+ alpaca\), [0-9]+ bad' out.txt \
  || { cat out.txt; fail "no sft summary"; }
[ -f sft/train.bin ] && [ -f sft/val.bin ] && [ -f sft/prepare.json ] || fail "prepare --format sft outputs missing"

cfg=(--set model.vocab_size=300 --set model.n_layer=1 --set model.d_model=32 --set model.n_head=2
     --set model.max_seq_len=128 --set train.seq_len=128 --set train.batch_size=4 --set train.steps=30
     --set train.lr=3e-3 --set train.warmup_steps=2 --set train.log_every=10 --set train.eval_batches=4
     --set train.objective=sft --set data.train=sft/train.bin --set data.val=sft/val.bin
     --set data.tokenizer=pre/tokenizer.bpe --set checkpoint.every=0 --set run.dir=run)
"$llmpi" train "$src/configs/tiny.toml" "${cfg[@]}" > train.txt
grep -Eq 'rows of 128 \([0-9]+ documents, packed\)' train.txt || { cat train.txt; fail "no packed rows line"; }
first=$(grep '^val  step      0 ' train.txt | sed -E 's/.*loss ([0-9.]+).*/\1/')
last=$(grep '^val  step     30 ' train.txt | sed -E 's/.*loss ([0-9.]+).*/\1/')
[ -n "$first" ] && [ -n "$last" ] || { cat train.txt; fail "no validation lines"; }
awk -v a="$first" -v b="$last" 'BEGIN { exit !(b < a - 0.5) }' || { cat train.txt; fail "masked val loss did not fall: $first -> $last"; }

expect_code 0 "$llmpi" eval run --data sft/val.bin
grep -Eq '^masked \(answer\) tokens [0-9]+ \| loss [0-9]+\.[0-9]{6}' out.txt || { cat out.txt; fail "eval: no masked loss"; }

expect_code 2 "$llmpi" train "$src/configs/tiny.toml" "${cfg[@]}" --set data.train=pre/train.bin --set run.dir=run2
grep -q 'not fine-tuning data' err.txt || { cat err.txt; fail "sft on pre-training shards not explained"; }
expect_code 2 "$llmpi" train "$src/configs/tiny.toml" "${cfg[@]}" --set train.objective=rlhf --set run.dir=run3
grep -q 'train.objective' err.txt || { cat err.txt; fail "bad objective not named"; }
echo "finetune_sft: ok (masked validation loss $first -> $last)"
