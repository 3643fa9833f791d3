#!/usr/bin/env bash
# End-to-end through the CLI: prepare a small real-text corpus, train a few steps (and again
# with recompute = "full": the same losses), sample, eval; bad input gives exit code 2 and
# leaves the run directory intact; the h5py example (run by Debian's /usr/bin/python3) reads
# the model file, its layout by name, and verifies every checksum.
#   usage: cli_and_h5py.sh LLMPI_BINARY SOURCE_DIR
set -euo pipefail
llmpi=$1
src=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

source "$src/tests/e2e/common.bash"

# A corpus of real English text that every Debian machine with the demo's packages has.
corpus=/usr/share/games/fortunes/fortunes
[ -f "$corpus" ] || fail "missing $corpus (apt-get install fortunes-min)"
"$llmpi" prepare "$corpus" --delimiter % --out data --vocab-size 300 --quiet
[ -f data/train.bin ] && [ -f data/val.bin ] && [ -f data/tokenizer.bpe ] || fail "prepare outputs missing"

cfg=(--set model.vocab_size=300 --set model.n_layer=1 --set model.d_model=32 --set model.n_head=2
     --set model.max_seq_len=32 --set train.seq_len=32 --set train.batch_size=4 --set train.steps=12
     --set train.warmup_steps=2 --set train.log_every=4 --set train.eval_every=6 --set train.eval_batches=2
     --set data.train=data/train.bin --set data.val=data/val.bin --set data.tokenizer=data/tokenizer.bpe
     --set run.dir=run)
"$llmpi" train "$src/configs/tiny.toml" "${cfg[@]}" > train.txt
grep -q '^step     12/12' train.txt || { cat train.txt; fail "no final step line"; }
grep -q '^unigram baseline' train.txt || fail "no unigram baseline line"
[ -f run/model.h5 ] && [ -f run/config.toml ] || fail "run directory incomplete"
cp run/model.h5 model-before.h5

# Activation recomputation changes memory, not numbers: the same step and validation losses
# and gradient norms as the run above, to the last printed digit.
"$llmpi" train "$src/configs/tiny.toml" "${cfg[@]}" --set run.dir=run-full --set train.recompute=full > train-full.txt
numbers() { grep -E '^(step|val) ' "$1" | cut -d'|' -f1-4; }
[ -n "$(numbers train.txt)" ] && [ "$(numbers train.txt)" = "$(numbers train-full.txt)" ] ||
  { diff <(numbers train.txt) <(numbers train-full.txt) >&2; fail "recompute = full changed the losses"; }

# --no-save: the same training, no checkpoints and no model file.
"$llmpi" train "$src/configs/tiny.toml" "${cfg[@]}" --set run.dir=run-nosave --no-save > train-nosave.txt
[ "$(numbers train.txt)" = "$(numbers train-nosave.txt)" ] || fail "--no-save changed the losses"
[ ! -e run-nosave/model.h5 ] && [ ! -e run-nosave/checkpoints ] || fail "--no-save wrote a model or checkpoints"
expect_code 2 "$llmpi" train "$src/configs/tiny.toml" "${cfg[@]}" --set train.recompute=fulll
grep -q "train.recompute.*\"selective\"" err.txt || fail "bad recompute: message lacks the key or the accepted values"

# Bad input: exit 2 with a message naming the key; the run directory is untouched.
expect_code 2 "$llmpi" train "$src/configs/tiny.toml" "${cfg[@]}" --set train.lr=-1
grep -q "train.lr" err.txt || fail "bad lr: message does not name the key"
expect_code 2 "$llmpi" train does-not-exist.toml
expect_code 2 "$llmpi" train "$src/configs/tiny.toml" "${cfg[@]}" --set data.train=nope.bin
grep -q "nope.bin" err.txt || fail "missing data file not named"
expect_code 2 "$llmpi" sample nope-dir
expect_code 2 "$llmpi" eval run --data nope.bin
expect_code 2 "$llmpi" sample run --top-p 2
cmp -s run/model.h5 model-before.h5 || fail "a failed command changed the run directory"

expect_code 0 "$llmpi" sample run --tokens 10 --prompt "The" --seed 3
grep -q -- '--- sample 1' out.txt || fail "sample printed no sample"
cp out.txt s1.txt
expect_code 0 "$llmpi" sample run --tokens 10 --prompt "The" --seed 3
cmp -s out.txt s1.txt || fail "same seed, different samples"
expect_code 0 "$llmpi" sample run --tokens 10 --greedy
expect_code 0 "$llmpi" eval run
grep -q 'perplexity' out.txt || fail "eval printed no perplexity"
grep -Eq 'loss [0-9]+\.[0-9]{6} nats/token' out.txt || { cat out.txt; fail "eval: loss without 6 decimals"; }
# More batches, or a bigger batch, than the shard has sequences count the same sequences (the
# first ran for hours over rows that count nothing, the second ran out of memory: exit 1).
grep '^tokens' out.txt > eval-all.txt
expect_code 0 timeout 60 "$llmpi" eval run --batches 100000000
grep '^tokens' out.txt | cmp -s - eval-all.txt || { cat out.txt eval-all.txt; fail "eval --batches past the data"; }
expect_code 0 "$llmpi" eval run --batch-size 100000000
grep '^tokens' out.txt | cmp -s - eval-all.txt || { cat out.txt eval-all.txt; fail "eval --batch-size past the data"; }

# The command line: every command has --help; a misspelt command or option exits 2 and
# names the closest valid one.
for c in train prepare sample eval inspect version; do
  expect_code 0 "$llmpi" $c --help
  grep -q "^usage: llmpi $c" out.txt || { cat out.txt; fail "$c --help: no usage line"; }
done
grep -q 'slides a window' <("$llmpi" sample --help) || fail "sample --help does not explain the window"
expect_code 2 "$llmpi" trian
grep -q "did you mean 'train'" err.txt || { cat err.txt; fail "no suggestion for a misspelt command"; }
expect_code 2 "$llmpi" sample run --temprature 1
grep -q "did you mean '--temperature'" err.txt || { cat err.txt; fail "no suggestion for a misspelt option"; }
expect_code 2 "$llmpi" sample run --tokens many
grep -q -- "--tokens: expects an integer, got 'many'" err.txt || { cat err.txt; fail "bad value not explained"; }

# The h5py example, under Debian's python3 (which has python3-h5py).
/usr/bin/python3 "$src/examples/read_model.py" run/model.h5 > h5.txt || { cat h5.txt; fail "h5py example failed"; }
grep -q ' 0 checksum mismatches' h5.txt || { cat h5.txt; fail "h5py checksums"; }
grep -q 'embed.tokens .*(300, 32)' h5.txt || { cat h5.txt; fail "h5py: embed.tokens shape"; }
grep -q '^layout: tp=1 pp=1 dp=1 zero_stage=0 virtual_stages=1 micro_batches=1 sequence_parallel=0 world_size=1$' h5.txt ||
  { cat h5.txt; fail "h5py: the layout read by name"; }
expect_code 0 "$llmpi" inspect run/model.h5 --no-verify
grep -q 'saved layout:  tp=1 pp=1 dp=1 zero_stage=0 world=1 virtual_stages=1 micro_batches=1 sequence_parallel=false' out.txt ||
  { cat out.txt; fail "inspect: the saved layout"; }
# The h5py example also reads a format_version 1 file (layout as five integers).
/usr/bin/python3 "$src/examples/read_model.py" "$src/tests/fixtures/checkpoint-v1/step_00000002.h5" > h5v1.txt ||
  { cat h5v1.txt; fail "h5py example failed on the version-1 fixture"; }
grep -q '^layout: tp=1 pp=1 dp=1 zero_stage=0 world_size=1$' h5v1.txt || { cat h5v1.txt; fail "h5py: version-1 layout"; }
grep -q ' 0 checksum mismatches' h5v1.txt || { cat h5v1.txt; fail "h5py: version-1 checksums"; }
# ... and a checkpoint (params, AdamW moments, data mapping), written at the last step.
ckpt=$(ls run/checkpoints/step_*.h5 | tail -1)
[ -n "$ckpt" ] || fail "no checkpoint in run/checkpoints"
/usr/bin/python3 "$src/examples/read_model.py" "$ckpt" > h5c.txt || { cat h5c.txt; fail "h5py example failed on $ckpt"; }
grep -q ' 0 checksum mismatches' h5c.txt || { cat h5c.txt; fail "h5py checkpoint checksums"; }
grep -q 'optimizer: step_count 12' h5c.txt || { cat h5c.txt; fail "h5py: optimizer state"; }
grep -q 'data: steps .*12, 4 samples each' h5c.txt || { cat h5c.txt; fail "h5py: data mapping"; }
# A run directory without model.h5 (a job that stopped before its end): export-hf reads its
# newest valid checkpoint (docs/interop.md), and lora merge resolves the directory the same
# way; both are serial commands that never initialise MPI.
mkdir run-ckpt-only && cp -r run/checkpoints run/config.toml run-ckpt-only/
expect_code 0 "$llmpi" export-hf run-ckpt-only --out hf-ckpt
grep -q 'exported run-ckpt-only/checkpoints/step_00000012.h5' out.txt ||
  { cat out.txt; fail "export-hf of a run directory without model.h5: not its newest checkpoint"; }
expect_code 2 "$llmpi" lora merge run-ckpt-only --out merged.h5
grep -q 'holds a full model, not LoRA adapters' err.txt || { cat err.txt; fail "lora merge of a run directory without model.h5"; }
echo "cli_and_h5py: 1 passed, 0 failed"
