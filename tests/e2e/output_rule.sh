#!/usr/bin/env bash
# The output rule (src/core/output_rule.h) through the CLI, for every command it covers:
# prepare, import-hf (and the MODEL.tokenizer.json beside it), export-hf, logbook --csv and
# logbook --jsonl, analyze --out (lora merge's: tests/unit/test_lora_train.cpp). A foreign file at an output path is left byte for byte with exit 2 and a
# message naming it; re-running into the command's own output works; --force replaces, but
# never deletes (export-hf's other weight layout only from its own earlier export); a file at
# an output's temporary OUTPUT.tmp is replaced only with --force, a link there never.
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

# refused_tmp OUTPUT CMD...: exits 2, names OUTPUT.tmp as the temporary llmpi writes OUTPUT
# through and --force, leaves OUTPUT.tmp as foreign.txt.
refused_tmp() {
  local path=$1; shift
  expect_code 2 "$@"
  grep -qF "$path.tmp: exists; it is the temporary llmpi writes $path through" err.txt &&
    grep -q -- "--force" err.txt || { cat err.txt; fail "'$*': no refusal naming $path.tmp"; }
  cmp -s foreign.txt "$path.tmp" || fail "'$*' changed $path.tmp"
}

# weights DIR: the safetensors set files in DIR, on one line.
weights() {
  LC_ALL=C ls "$1" | grep -E '^model(\.safetensors(\.index\.json)?|-[0-9]+-of-[0-9]+\.safetensors)$' | tr '\n' ' '
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
cp foreign.txt data/train.bin.tmp                # an interrupted run's, or someone's
refused_tmp data/train.bin "${prep[@]}" --out data
expect_code 0 "${prep[@]}" --out data --force
[ ! -e data/train.bin.tmp ] || fail "prepare --force left data/train.bin.tmp"
printf 'a file, not a directory\n' > data-file
expect_code 2 "${prep[@]}" --out data-file
grep -q "data-file: exists and is not a directory" err.txt || { cat err.txt; fail "prepare --out FILE"; }

# d_model 192: 1.8 MB of f32 weights, so that export-hf --max-shard-mb 1 writes shards.
cfg=(--set model.vocab_size=300 --set model.n_layer=1 --set model.d_model=192 --set model.n_head=2
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
[ "$(weights hf)" = "model.safetensors " ] || fail "export-hf: $(weights hf)"
expect_code 0 "$llmpi" export-hf run --out hf --tokenizer data/tokenizer.bpe --max-shard-mb 1   # re-run, the other layout
w=$(weights hf)
[[ $w == "model-00001-of-0000"[2-9]".safetensors "*"model.safetensors.index.json " &&
   $w != *"model.safetensors "* ]] || fail "export-hf single -> sharded left: $w"
cp -r hf hf-back
expect_code 0 "$llmpi" export-hf run --out hf-back               # and back
[ "$(weights hf-back)" = "model.safetensors " ] || fail "export-hf sharded -> single left: $(weights hf-back)"
# ... without a tokenizer (the run's data.tokenizer is not here): the earlier export's is removed
[ ! -e hf-back/tokenizer.json ] && [ ! -e hf-back/tokenizer_config.json ] ||
  fail "export-hf without a tokenizer left the earlier export's tokenizer files"
expect_code 0 "$llmpi" export-hf run --out hf-foreign --force
cmp -s foreign.txt hf-foreign/config.json && fail "export-hf --force did not replace config.json"
cmp -s foreign.txt hf-foreign/README.md || fail "export-hf --force touched a file it does not write"

# export-hf --force never deletes: in a directory that is not an earlier export, the files of
# the weight layout it would not rewrite (their shard and index, where it writes a single
# model.safetensors; their model.safetensors, where it writes shards) are refused even with
# --force, and the directory is left as it was.
# refused_stale DIR FILE ARGS...: export-hf --force ARGS into DIR exits 2 naming DIR/FILE as
# one that would be left stale, and every file in DIR is still foreign.txt.
refused_stale() {
  local out=$1 stale=$2; shift 2
  expect_code 2 "$llmpi" export-hf run --out "$out" --force "$@"
  grep -qF "$out/$stale: exists and is not" err.txt && grep -q "would be left stale" err.txt &&
    grep -q "never deletes" err.txt || { cat err.txt; fail "export-hf --force: no refusal naming $out/$stale"; }
  for f in "$out"/*; do cmp -s foreign.txt "$f" || fail "export-hf --force changed $f"; done
}
mkdir hf-theirs hf-theirs1
cp foreign.txt hf-theirs/model-00001-of-00003.safetensors
cp foreign.txt hf-theirs/model.safetensors.index.json
refused_stale hf-theirs model-00001-of-00003.safetensors
[ "$(weights hf-theirs)" = "model-00001-of-00003.safetensors model.safetensors.index.json " ] ||
  fail "export-hf --force wrote into hf-theirs: $(ls hf-theirs)"
cp foreign.txt hf-theirs1/model.safetensors
refused_stale hf-theirs1 model.safetensors --max-shard-mb 1
[ "$(ls hf-theirs1)" = model.safetensors ] || fail "export-hf --force wrote into hf-theirs1"

# export-hf's temporaries: replaced only with --force; a symbolic link there not even then.
cp foreign.txt hf/config.json.tmp
refused_tmp hf/config.json "$llmpi" export-hf run --out hf --tokenizer data/tokenizer.bpe --max-shard-mb 1
cp foreign.txt hf/model.safetensors.index.json.tmp
expect_code 0 "$llmpi" export-hf run --out hf --tokenizer data/tokenizer.bpe --max-shard-mb 1 --force
[ ! -e hf/config.json.tmp ] && [ ! -e hf/model.safetensors.index.json.tmp ] || fail "export-hf --force left a .tmp"
cp foreign.txt target.txt
ln -s "$PWD/target.txt" hf/config.json.tmp
expect_code 2 "$llmpi" export-hf run --out hf --tokenizer data/tokenizer.bpe --max-shard-mb 1 --force
grep -qF "hf/config.json.tmp: is a symbolic link" err.txt || { cat err.txt; fail "export-hf: a link at config.json.tmp"; }
cmp -s foreign.txt target.txt || fail "export-hf wrote through hf/config.json.tmp"
rm hf/config.json.tmp

# import-hf: the model file and the tokenizer beside it (a path never named).
cp foreign.txt model.h5
refused model.h5 "$llmpi" import-hf hf --out model.h5
cp foreign.txt other.tokenizer.json
refused other.tokenizer.json "$llmpi" import-hf hf --out other.h5
[ ! -e other.h5 ] || fail "import-hf wrote the model beside a refused tokenizer"
expect_code 0 "$llmpi" import-hf hf --out imported.h5
expect_code 0 "$llmpi" import-hf hf --out imported.h5              # re-run into its own output
cp foreign.txt imported.h5.tmp
refused_tmp imported.h5 "$llmpi" import-hf hf --out imported.h5
expect_code 0 "$llmpi" import-hf hf --out imported.h5 --force
[ ! -e imported.h5.tmp ] || fail "import-hf --force left imported.h5.tmp"
expect_code 0 "$llmpi" import-hf hf --out model.h5 --force
expect_code 0 "$llmpi" inspect model.h5
expect_code 0 "$llmpi" import-hf hf --out other.h5 --force
cmp -s foreign.txt other.tokenizer.json && fail "import-hf --force did not replace the tokenizer"
mkdir dir.h5
expect_code 2 "$llmpi" import-hf hf --out dir.h5
grep -q "dir.h5: is a directory" err.txt || { cat err.txt; fail "import-hf --out DIR"; }
# A run's model.h5 is an llmpi model file but not import-hf's (no writer mark): left as it was.
cp run/model.h5 run-model.h5
expect_code 2 "$llmpi" import-hf hf --out run/model.h5
grep -qF "run/model.h5: exists and is not the output of an earlier llmpi import-hf" err.txt ||
  { cat err.txt; fail "import-hf over a run's model.h5"; }
cmp -s run-model.h5 run/model.h5 || fail "import-hf changed the run's model.h5"

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

# analyze --out: report.html, report.json and data/*.csv are replaced only in a report that
# analyze wrote (its report.json); they were overwritten in any directory.
mkdir -p report-foreign/data && cp foreign.txt report-foreign/report.html
refused report-foreign/report.html "$llmpi" analyze run --out report-foreign
rm report-foreign/report.html && cp foreign.txt report-foreign/data/steps.csv
refused report-foreign/data/steps.csv "$llmpi" analyze run --out report-foreign
[ ! -e report-foreign/report.json ] || fail "analyze wrote beside a refusal"
expect_code 0 "$llmpi" analyze run --out report
expect_code 0 "$llmpi" analyze run --out report              # re-run into its own report
cp foreign.txt report/report.json.tmp
refused_tmp report/report.json "$llmpi" analyze run --out report
expect_code 0 "$llmpi" analyze run --out report-foreign --force
cmp -s foreign.txt report-foreign/data/steps.csv && fail "analyze --force did not replace data/steps.csv"
echo "output_rule: OK"
