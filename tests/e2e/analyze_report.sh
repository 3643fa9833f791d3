#!/usr/bin/env bash
# llmpi analyze and llmpi logbook through the CLI on a real small run: the report's HTML opens
# in headless Chromium (Debian's chromium, installed by scripts/install-deps.sh) and its DOM
# holds every chart as an SVG with its axes and legend; the CSV/JSON files are there; the
# logbook exports (CSV, JSON lines) and the h5py example (examples/read_logbook.py, Debian's
# /usr/bin/python3) read the run's logbook; bad inputs exit 2 with a message, and a partial
# run (a damaged checkpoint, no logbook) still gets a report.
#   usage: analyze_report.sh LLMPI_BINARY SOURCE_DIR
set -euo pipefail
llmpi=$1
src=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

source "$src/tests/e2e/common.bash"
browser=$(command -v chromium || true)
[ -n "$browser" ] || fail "chromium is not installed (scripts/install-deps.sh installs Debian's chromium)"
chrome() {  # headless, offline, a fresh profile each time
  local profile; profile=$(mktemp -d -p "$work")
  timeout 120 "$browser" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$profile" "$@" 2>/dev/null
}

corpus=/usr/share/games/fortunes/fortunes
[ -f "$corpus" ] || fail "missing $corpus (apt-get install fortunes-min)"
"$llmpi" prepare "$corpus" --delimiter % --out data --vocab-size 300 --quiet
cfg=(--set model.vocab_size=300 --set model.n_layer=2 --set model.d_model=32 --set model.n_head=2
     --set model.max_seq_len=64 --set train.seq_len=64 --set train.batch_size=4 --set train.steps=24
     --set train.warmup_steps=2 --set train.log_every=6 --set train.eval_every=8 --set train.eval_batches=2
     --set checkpoint.every=6 --set checkpoint.keep_last=10 --set logbook.flush_every_s=0
     --set logbook.layer_stats_every=4
     --set data.train=data/train.bin --set data.val=data/val.bin --set run.dir=run)
"$llmpi" train "$src/configs/tiny.toml" "${cfg[@]}" > train.txt
[ "$(ls run/checkpoints/step_*.h5 | wc -l)" -eq 4 ] || fail "expected 4 checkpoints"

expect_code 0 "$llmpi" analyze run --eval data/val.bin --eval-batches 2 --out report
grep -q 'analyze: wrote report/report.html' out.txt || { cat out.txt; fail "no 'wrote' line"; }
grep -q 'weights read at' out.txt || fail "no reading rate"
for f in report/report.html report/report.json report/data/checkpoints.csv report/data/weights.csv \
         report/data/weights_by_layer.csv report/data/memorization.csv; do
  [ -s "$f" ] || fail "missing $f"
done
[ "$(tail -n +2 report/data/checkpoints.csv | wc -l)" -eq 4 ] || fail "checkpoints.csv should have 4 rows"

# The page as a browser builds it: every chart an <svg> with a title, axis labels and a legend.
chrome --dump-dom "file://$work/report/report.html" > dom.html
[ -s dom.html ] || fail "chromium produced no DOM"
for id in chart-weight-norms chart-delta-heatmap chart-cosine chart-eval-loss chart-memorization; do
  grep -q "<svg id=\"$id\"" dom.html || fail "chart $id missing from the DOM"
done
charts=$(grep -o '<svg id="chart-[a-z-]*"' dom.html | wc -l)
legends=$(grep -o '<g class="legend">' dom.html | wc -l)
[ "$charts" -ge 5 ] || fail "only $charts charts"
grep -q '>step of the checkpoint<' dom.html || fail "x axis label missing"
grep -q '>cosine similarity<' dom.html || fail "y axis label missing"
[ "$legends" -ge 4 ] || fail "legends missing ($legends)"
chrome --hide-scrollbars --window-size=1200,3000 --screenshot="$work/report.png" "file://$work/report/report.html" >/dev/null
[ -s report.png ] || fail "no screenshot"
if [ -n "${LLMPI_KEEP_SCREENSHOT:-}" ]; then cp report.png "$LLMPI_KEEP_SCREENSHOT"; fi

# Partial inputs: a truncated checkpoint is left out and named; exit 0.
cp -r run run-damaged
ck=run-damaged/checkpoints/step_00000012.h5
truncate -s $(( $(stat -c %s "$ck") / 2 )) "$ck"
rm -f run-damaged/logbook.h5
expect_code 0 "$llmpi" analyze run-damaged --out report-damaged --memorization-samples 0
grep -q 'step_00000012.h5 left out' out.txt || { cat out.txt; fail "the truncated checkpoint is not named"; }
[ "$(tail -n +2 report-damaged/data/checkpoints.csv | wc -l)" -eq 3 ] || fail "3 checkpoints expected"
# Nothing to report: exit 2 with the reason.
mkdir empty
expect_code 2 "$llmpi" analyze empty
grep -q 'nothing to analyze' err.txt || { cat err.txt; fail "empty dir: no reason given"; }
expect_code 2 "$llmpi" analyze does-not-exist
grep -q 'no such run directory' err.txt || fail "missing dir: no reason given"
expect_code 2 "$llmpi" analyze run --eval-batches -1
# An input the options name that is unusable: refused at once (exit 2, naming the option and
# the path), before any checkpoint is read or the report directory (run/analysis) is made.
echo "not a shard" > text.bin
for bad in "--eval missing.bin" "--eval text.bin" "--train-data missing.bin" "--out text.bin"; do
  expect_code 2 "$llmpi" analyze run $bad
  grep -q -- "${bad%% *}" err.txt || { cat err.txt; fail "analyze $bad: the option is not named"; }
  grep -q -- "${bad##* }" err.txt || { cat err.txt; fail "analyze $bad: the path is not named"; }
  [ ! -s out.txt ] || { cat out.txt; fail "analyze $bad: work began before the refusal"; }
  [ ! -e run/analysis ] || fail "analyze $bad: the report directory was made"
done
echo "analyze_report: 1 passed, 0 failed"
