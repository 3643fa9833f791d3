#!/usr/bin/env bash
# Stop requests during the long phases besides the steps (run_control.sh has the steps and the
# language-model validation): SIGTERM during DPO's reference pass at start (one rank: cut short,
# nothing cached, no step, exit 75), during DPO's validation (two ranks, the signal sent to rank
# 1 only: cut short, one step, a checkpoint, exit 75) and during the eval prompts (two ranks,
# rank 1 signalled, which does not generate: cut short, exit 75). Each stop must come within a
# fraction of what the rest of the phase would take: the two DPO passes are timed against their
# own pace, measured on the run itself (its progress lines), so a loaded machine does not fail
# the test; the prompts, which would take a minute or more, must stop within 20 s.
#   usage: run_control_long_phases.sh LLMPI_BINARY SOURCE_DIR
set -euo pipefail
llmpi=$1
src=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
export OPENBLAS_NUM_THREADS=1 OMPI_MCA_btl=self,vader OMPI_MCA_btl_vader_single_copy_mechanism=none
fail() { echo "FAIL: $*" >&2; exit 1; }
mpi2=(mpiexec -n 2 --oversubscribe --bind-to none)
[ "$(id -u)" -eq 0 ] && mpi2+=(--allow-run-as-root)

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
# Waits until file $1 has $3 lines (default 1) matching the regex $2, at most 300 s; prints the
# time (ms) it saw them.
wait_lines() {
  for _ in $(seq 3000); do
    local n; n=$(grep -cE "$2" "$1" 2>/dev/null || true)
    [ "${n:-0}" -ge "${3:-1}" ] && { now_ms; return 0; }
    sleep 0.1
  done
  cat "$1" >&2; fail "no line '$2' in $1"
}
# Waits for background job $1 (pid), at most 120 s; its exit code in $rc, the time (ms) in $ended.
end_of() {
  for _ in $(seq 600); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$1" 2>/dev/null && { kill -KILL "$1"; fail "pid $1 did not end"; }
  ended=$(now_ms)
  set +e; wait "$1"; rc=$?; set -e
}
# The llmpi rank 1 of the mpiexec with pid $1.
rank1_of() {
  local ranks; ranks=$(pgrep -P "$1" -x llmpi | sort -n || true)
  [ "$(echo "$ranks" | wc -l)" = 2 ] || fail "expected 2 llmpi ranks under mpiexec, found: $ranks"
  echo "$ranks" | tail -1
}

# Preference pairs (5000, 20% for training, 80% held out) in the chat format, tokenized with the
# fortunes' tokenizer; each pair takes one row of 256 tokens.
"$llmpi" prepare /usr/share/games/fortunes/fortunes --delimiter % --out data --vocab-size 300 --quiet
awk 'BEGIN {
  n = split("alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho sigma tau", w, " ")
  for (i = 0; i < 5000; i++) {
    p = ""; c = ""; r = ""
    for (k = 0; k < 4; k++) p = p " " w[1 + (i * 7 + k * 3 + int(i / 19)) % n]
    for (k = 0; k < 5; k++) { c = c " " w[1 + (i * 5 + k * 11) % n]; r = r " " w[1 + (i * 13 + k * 2 + int(i / 7)) % n] }
    printf "{\"prompt\": \"Say%s\", \"chosen\": \"%s\", \"rejected\": \"%s\"}\n", p, substr(c, 2), substr(r, 2)
  } }' > pairs.jsonl
"$llmpi" prepare pairs.jsonl --format sft --tokenizer data/tokenizer.bpe --out dpo --val-fraction 0.8 > prepare.log 2>&1 ||
  { cat prepare.log; fail "prepare of the pairs"; }
dpo=("$src/configs/tiny.toml" --set model.vocab_size=300 --set model.n_layer=2 --set model.d_model=64
     --set model.n_head=2 --set model.max_seq_len=256 --set train.seq_len=256 --set train.batch_size=4
     --set train.steps=400 --set train.warmup_steps=2 --set train.log_every=1 --set train.eval_every=0
     --set train.eval_batches=1 --set train.objective=dpo --set checkpoint.every=100)

echo "--- SIGTERM during DPO's reference pass: cut short, nothing cached, no step, exit 75"
# The held-out split (4000 pairs, 1000 batches) as the training data: a pass of many seconds.
"$llmpi" train "${dpo[@]}" --set data.train=dpo/val.bin --set data.val= --set run.dir=ref > ref.log 2>&1 &
pid=$!
first=$(wait_lines ref.log '^reference log-probs \(train\): [0-9]+/')
second=$(wait_lines ref.log '^reference log-probs \(train\): [0-9]+/' 2)
tenth=$((second - first))  # the time of a tenth of the pass
kill -TERM $pid
killed=$(now_ms)
end_of $pid
[ "$rc" = 75 ] || { cat ref.log; fail "SIGTERM in the reference pass: exit $rc, expected 75"; }
grep -q '^reference log-probs (train): cut short by a stop request (nothing cached)$' ref.log ||
  { cat ref.log; fail "no 'cut short' line of the reference pass"; }
grep -q "^stopping after step 0 (before this launch's first step, during the DPO reference pass): SIGTERM (preemption); nothing new to save, exit 75$" ref.log ||
  { cat ref.log; fail "no 'stopping after step 0' line"; }
! grep -qE '^(step |reference log-probs: written)' ref.log || { cat ref.log; fail "a step or a cache after the stop"; }
[ ! -e ref/reference_logprobs.h5 ] || fail "a reference cache was written by a cut pass"
grep -q "signal SIGTERM received: stop after step 0 (before this launch's first step, during the DPO reference pass), nothing saved, exit 75" ref/LOGBOOK.md ||
  { cat ref/LOGBOOK.md; fail "the stop is not in the journal"; }
echo "stopped in $((ended - killed)) ms; a tenth of the pass takes $tenth ms"
[ $((ended - killed)) -lt $((3 * tenth + 1000)) ] ||
  { cat ref.log; fail "the reference pass took $((ended - killed)) ms to stop (a tenth of it: $tenth ms)"; }

echo "--- SIGTERM to rank 1 during DPO's validation (2 ranks): cut short, step 1, save, exit 75"
"${mpi2[@]}" "$llmpi" train "${dpo[@]}" --set parallel.dp=2 --set data.train=dpo/train.bin \
  --set data.val=dpo/val.bin --set run.dir=val > val.log 2>&1 &
pid=$!
val_start=$(wait_lines val.log '^reference log-probs \(val\): [0-9]+/')
val_end=$(wait_lines val.log '^reference log-probs: written to')
pass=$((val_end - val_start))  # nine tenths of a pass over the held-out pairs: what validation does
wait_lines val.log '^val  step      0 \| loss' > /dev/null  # the DPO validation begins
kill -TERM "$(rank1_of $pid)"
killed=$(now_ms)
end_of $pid
[ "$rc" = 75 ] || { cat val.log; fail "SIGTERM in the DPO validation: exit $rc, expected 75"; }
grep -q '^val  step      0 | dpo: cut short by a stop request (no metrics recorded)$' val.log ||
  { cat val.log; fail "no 'cut short' line of the DPO validation"; }
! grep -q '^val  step      0 | dpo loss' val.log || { cat val.log; fail "the DPO validation completed"; }
grep -q '^stopping after step 1: SIGTERM (preemption); saving a checkpoint, then exit 75$' val.log ||
  { cat val.log; fail "no 'stopping after step 1' line"; }
[ -f val/checkpoints/step_00000001.h5 ] || { cat val.log; fail "no checkpoint of step 1"; }
echo "stopped in $((ended - killed)) ms; nine tenths of a pass over the held-out pairs took $pass ms"
[ $((ended - killed)) -lt $((pass / 2)) ] ||
  { cat val.log; fail "the DPO validation took $((ended - killed)) ms to stop (a whole pass: ~$pass ms)"; }

echo "--- SIGTERM to rank 1 (which does not generate) during the eval prompts (2 ranks): exit 75"
# 3000 prompts of up to 200 new tokens: a minute or more of generation on rank 0.
prompts=$(seq 0 2999 | sed 's/.*/"fortune &"/' | paste -sd, -)
"${mpi2[@]}" "$llmpi" train "$src/configs/tiny.toml" --set model.vocab_size=300 --set model.n_layer=1 \
  --set model.d_model=32 --set model.n_head=2 --set model.max_seq_len=32 --set train.seq_len=32 \
  --set train.batch_size=4 --set train.steps=400 --set train.warmup_steps=2 --set train.eval_every=0 \
  --set train.eval_batches=1 --set parallel.dp=2 --set data.train=data/train.bin --set data.val=data/val.bin \
  --set data.tokenizer=data/tokenizer.bpe --set checkpoint.every=100 --set run.dir=prompts \
  --set "eval.prompts=[$prompts]" --set eval.max_new_tokens=200 > prompts.log 2>&1 &
pid=$!
wait_lines prompts.log '^val  step      0 \| loss' > /dev/null  # the prompts begin
sleep 0.5
kill -TERM "$(rank1_of $pid)"
killed=$(now_ms)
end_of $pid
[ "$rc" = 75 ] || { cat prompts.log; fail "SIGTERM in the eval prompts: exit $rc, expected 75"; }
grep -q '^prompt step 0 | cut short by a stop request (no generation recorded)$' prompts.log ||
  { cat prompts.log; fail "no 'cut short' line of the prompts"; }
! grep -q '^prompt step 0 | fortune' prompts.log || { cat prompts.log; fail "generations printed after the stop"; }
grep -q '^stopping after step 1: SIGTERM (preemption); saving a checkpoint, then exit 75$' prompts.log ||
  { cat prompts.log; fail "no 'stopping after step 1' line"; }
# A prompt takes tens of milliseconds; all of them, a minute or more.
echo "stopped in $((ended - killed)) ms"
[ $((ended - killed)) -lt 20000 ] || { cat prompts.log; fail "the prompts took $((ended - killed)) ms to stop"; }
echo "run_control_long_phases: all passed"
