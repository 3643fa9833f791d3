#!/usr/bin/env bash
# The output rule (src/core/output_rule.h) through the CLI, for every command it covers:
# prepare, import-hf (and the MODEL.tokenizer.json beside it), export-hf, logbook --csv and
# logbook --jsonl. A foreign file at an output path is left byte for byte with exit 2 and a
# message naming it; re-running into the command's own output works; --force replaces.
#   usage: output_rule.sh LLMPI_BINARY SOURCE_DIR
set -euo pipefail
llmpi=$1
src=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
source "$src/tests/e2e/common.bash"

corpus=/usr/share/games/fortunes/fortunes
[ -f "$corpus" ] || fail "missing $corpus (apt-get install fortunes-min)"
printf 'my own notes, not llmpi output\n' > foreign.txt

# refused PATH CMD...: exits 2, names PATH and --force, leaves PATH as foreign.txt.
refused() {
  local path=$1; shift
  expect_code 2 "$@"
  grep -qF "$path: exists and is not" err.txt && grep -q -- "--force" err.txt \
    || { cat err.txt; fail "'$*': no refusal naming $path"; }
  cmp -s foreign.txt "$path" || fail "'$*' changed $path"
}

# prepare: a foreign file in DIR is refused; prepare's own DIR is re-prepared; --force.
prep=("$llmpi" prepare "$corpus" --delimiter % --vocab-size 300 --quiet)
mkdir data-foreign && cp foreign.txt data-foreign/train.bin
refused data-foreign/train.bin "${prep[@]}" --out data-foreign
[ ! -e data-foreign/val.bin ] && [ ! -e data-foreign/prepare.json ] || fail "prepare wrote beside a refusal"
expect_code 0 "${prep[@]}" --out data
expect_code 0 "${prep[@]}" --out data           # re-run into its own output
expect_code 0 "${prep[@]}" --out data-foreign --force
cmp -s foreign.txt data-foreign/train.bin && fail "prepare --force did not replace train.bin"
printf 'a file, not a directory\n' > data-file
expect_code 2 "${prep[@]}" --out data-file
grep -q "data-file: exists and is not a directory" err.txt || { cat err.txt; fail "prepare --out FILE"; }

cfg=(--set model.vocab_size=300 --set model.n_layer=1 --set model.d_model=32 --set model.n_head=2
     --set model.max_seq_len=32 --set train.seq_len=32 --set train.batch_size=2 --set train.steps=4
     --set train.warmup_steps=1 --set train.log_every=2 --set train.eval_every=0
     --set checkpoint.every=0 --set logbook.flush_every_s=0
     --set data.train=data/train.bin --set data.val=data/val.bin --set run.dir=run)
"$llmpi" train "$src/configs/tiny.toml" "${cfg[@]}" > train.txt

# export-hf: a directory holding a foreign file of an export's name is refused.
mkdir hf-foreign && cp foreign.txt hf-foreign/config.json && cp foreign.txt hf-foreign/README.md
refused hf-foreign/config.json "$llmpi" export-hf run --out hf-foreign
[ ! -e hf-foreign/model.safetensors ] || fail "export-hf wrote beside a refusal"
expect_code 0 "$llmpi" export-hf run --out hf --tokenizer data/tokenizer.bpe
expect_code 0 "$llmpi" export-hf run --out hf --max-shard-mb 1   # re-run, the other layout
expect_code 0 "$llmpi" export-hf run --out hf-foreign --force
cmp -s foreign.txt hf-foreign/config.json && fail "export-hf --force did not replace config.json"
cmp -s foreign.txt hf-foreign/README.md || fail "export-hf --force touched a file it does not write"

# import-hf: the model file and the tokenizer beside it (a path never named).
cp foreign.txt model.h5
refused model.h5 "$llmpi" import-hf hf --out model.h5
cp foreign.txt other.tokenizer.json
refused other.tokenizer.json "$llmpi" import-hf hf --out other.h5
[ ! -e other.h5 ] || fail "import-hf wrote the model beside a refused tokenizer"
expect_code 0 "$llmpi" import-hf hf --out imported.h5
expect_code 0 "$llmpi" import-hf hf --out imported.h5              # re-run into its own output
expect_code 0 "$llmpi" import-hf hf --out model.h5 --force
expect_code 0 "$llmpi" inspect model.h5
expect_code 0 "$llmpi" import-hf hf --out other.h5 --force
cmp -s foreign.txt other.tokenizer.json && fail "import-hf --force did not replace the tokenizer"
mkdir dir.h5
expect_code 2 "$llmpi" import-hf hf --out dir.h5
grep -q "dir.h5: is a directory" err.txt || { cat err.txt; fail "import-hf --out DIR"; }

# logbook --csv / --jsonl: an earlier export is recognised by its first line.
mkdir csv-foreign && cp foreign.txt csv-foreign/events.csv
refused csv-foreign/events.csv "$llmpi" logbook run --csv --out csv-foreign
[ ! -e csv-foreign/steps.csv ] || fail "logbook --csv wrote beside a refusal"
expect_code 0 "$llmpi" logbook run --csv --out csv
expect_code 0 "$llmpi" logbook run --csv --out csv
expect_code 0 "$llmpi" logbook run --csv --out csv-foreign --force
cp foreign.txt log.jsonl
refused log.jsonl "$llmpi" logbook run --jsonl --out log.jsonl
expect_code 0 "$llmpi" logbook run --jsonl --out own.jsonl
expect_code 0 "$llmpi" logbook run --jsonl --out own.jsonl
expect_code 0 "$llmpi" logbook run --jsonl --out log.jsonl --force
head -1 log.jsonl | grep -q '"record":"schema"' || fail "logbook --jsonl --force did not replace"
echo "output_rule: OK"
