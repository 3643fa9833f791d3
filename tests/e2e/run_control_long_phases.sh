#!/usr/bin/env bash
# Stop requests during the long phases besides the steps (run_control.sh has the steps and the
# language-model validation): SIGTERM during DPO's reference pass at start (one rank: cut short,
# nothing cached, no step, exit 75), during DPO's validation (two ranks, the signal sent to rank
# 1 only: cut short, one step, a checkpoint, exit 75) and during the eval prompts (two ranks,
# rank 1 signalled, which does not generate: cut short after the prompt in progress, exit 75).
# One eval-prompt generation of 10^8 tokens (days) is stopped between two tokens: SIGTERM to
# the one rank, and with two ranks to rank 0 (which generates; rank 1 waits in the per-prompt
# agreement): cut short, one step, a checkpoint, exit 75 within 30 s. With two ranks and
# [watchdog] step_timeout = 1 s, the eval prompts of one step last several seconds without a
# hang: rank 0's watchdog times each token, rank 1's does not time its wait for rank 0.
# Each stop must come within a fraction of what the rest of the phase would take: the two DPO
# passes are timed against their own pace, measured on the run itself (its progress lines), so
# a loaded machine does not fail the test; the prompts, which would take a minute or more, must
# stop within 20 s. Every launch runs under `timeout`; the signals go to the llmpi processes.
#   usage: run_control_long_phases.sh LLMPI_BINARY SOURCE_DIR
set -euo pipefail
llmpi=$1
src=$2
work=$(mktemp -d)
pid=
# A launch still running when the script ends (a failed check) is ended first: SIGTERM to its
# `timeout`, which passes it on (mpiexec ends its ranks), then SIGKILL to what is left.
stop_launch() {
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL -- "-$pid" 2>/dev/null || true
}
trap 'stop_launch; rm -rf "$work"' EXIT
cd "$work"
export OPENBLAS_NUM_THREADS=1 OMPI_MCA_btl=self,vader OMPI_MCA_btl_vader_single_copy_mechanism=none
fail() { echo "FAIL: $*" >&2; exit 1; }
mpi2=(timeout 300 mpiexec -n 2 --oversubscribe --bind-to none)
[ "$(id -u)" -eq 0 ] && mpi2+=(--allow-run-as-root)

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
# Waits until file $1 has $3 lines (default 1) matching the regex $2, at most 300 s, or until
# the launch $pid has ended without them; prints the time (ms) it saw them.
wait_lines() {
  for _ in $(seq 3000); do
    local ended=0; kill -0 "$pid" 2>/dev/null || ended=1
    local n; n=$(grep -cE "$2" "$1" 2>/dev/null || true)
    [ "${n:-0}" -ge "${3:-1}" ] && { now_ms; return 0; }
    [ "$ended" = 1 ] && break
    sleep 0.1
  done
  cat "$1" >&2; fail "no line '$2' in $1"
}
# Waits for background job $1 (pid of a `timeout`), at most 60 s; its exit code in $rc, the time
# (ms) in $ended.
end_of() {
  for _ in $(seq 600); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$1" 2>/dev/null && fail "pid $1 did not end"  # stop_launch ends it
  ended=$(now_ms)
  set +e; wait "$1"; rc=$?; set -e
}
# The llmpi process of a single-rank launch `timeout ... llmpi` with pid $1.
llmpi_of() {
  local p; p=$(pgrep -P "$1" -x llmpi || true)
  [ -n "$p" ] && [ "$(echo "$p" | wc -l)" = 1 ] || fail "expected 1 llmpi under pid $1, found: $p"
  echo "$p"
}
# The llmpi process of world rank $2 in the launch `timeout ... mpiexec -n 2` with pid $1; fails
# unless there are exactly 2 ranks.
rank_of() {
  local ranks p; ranks=$(pgrep -P "$(pgrep -P "$1" | head -1)" -x llmpi || true)
  [ "$(echo "$ranks" | grep -c .)" = 2 ] || fail "expected 2 llmpi ranks under mpiexec, found: $ranks"
  for p in $ranks; do
    tr '\0' '\n' < "/proc/$p/environ" | grep -qx "OMPI_COMM_WORLD_RANK=$2" && { echo "$p"; return 0; }
  done
  fail "no llmpi of rank $2 among $ranks"
}

# Preference pairs (5000, 20% for training, 80% held out) in the chat format, tokenized with the
# fortunes' tokenizer; each pair takes one row of 256 tokens.
timeout 120 "$llmpi" prepare /usr/share/games/fortunes/fortunes --delimiter % --out data --vocab-size 300 --quiet
awk 'BEGIN {
  n = split("alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho sigma tau", w, " ")
  for (i = 0; i < 5000; i++) {
    p = ""; c = ""; r = ""
    for (k = 0; k < 4; k++) p = p " " w[1 + (i * 7 + k * 3 + int(i / 19)) % n]
    for (k = 0; k < 5; k++) { c = c " " w[1 + (i * 5 + k * 11) % n]; r = r " " w[1 + (i * 13 + k * 2 + int(i / 7)) % n] }
    printf "{\"prompt\": \"Say%s\", \"chosen\": \"%s\", \"rejected\": \"%s\"}\n", p, substr(c, 2), substr(r, 2)
  } }' > pairs.jsonl
timeout 120 "$llmpi" prepare pairs.jsonl --format sft --tokenizer data/tokenizer.bpe --out dpo --val-fraction 0.8 > prepare.log 2>&1 ||
  { cat prepare.log; fail "prepare of the pairs"; }
dpo=("$src/configs/tiny.toml" --set model.vocab_size=300 --set model.n_layer=2 --set model.d_model=64
     --set model.n_head=2 --set model.max_seq_len=256 --set train.seq_len=256 --set train.batch_size=4
     --set train.steps=400 --set train.warmup_steps=2 --set train.log_every=1 --set train.eval_every=0
     --set train.eval_batches=1 --set train.objective=dpo --set checkpoint.every=100)

echo "--- SIGTERM during DPO's reference pass: cut short, nothing cached, no step, exit 75"
# The held-out split (4000 pairs, 1000 batches) as the training data: a pass of many seconds.
timeout 300 "$llmpi" train "${dpo[@]}" --set data.train=dpo/val.bin --set data.val= --set run.dir=ref > ref.log 2>&1 &
pid=$!
first=$(wait_lines ref.log '^reference log-probs \(train\): [0-9]+/')
second=$(wait_lines ref.log '^reference log-probs \(train\): [0-9]+/' 2)
tenth=$((second - first))  # the time of a tenth of the pass
target=$(llmpi_of $pid)
kill -TERM "$target"
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
target=$(rank_of $pid 1)
kill -TERM "$target"
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
target=$(rank_of $pid 1)
kill -TERM "$target"
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
# One prompt whose greedy generation runs to eval.max_new_tokens (a model this small repeats one
# letter for ever, never the end-of-text token): ~4 ms a token here.
gen=("$src/configs/tiny.toml" --set model.vocab_size=300 --set model.n_layer=2 --set model.d_model=64
     --set model.n_head=2 --set model.max_seq_len=256 --set train.seq_len=256 --set train.batch_size=4
     --set train.warmup_steps=1 --set train.eval_every=0 --set train.eval_batches=1
     --set data.train=data/train.bin --set data.val=data/val.bin --set data.tokenizer=data/tokenizer.bpe
     --set checkpoint.every=100 --set 'eval.prompts=["fortune"]')
# Checks the log $1 and run directory $2 of a run stopped by SIGTERM during the step-0 prompt:
# exit 75 within 30 s of the signal, nothing generated recorded, step 1 trained and saved.
expect_generation_stopped() {
  [ "$rc" = 75 ] || { cat "$1"; fail "SIGTERM during one generation: exit $rc, expected 75"; }
  grep -q '^prompt step 0 | cut short by a stop request (no generation recorded)$' "$1" ||
    { cat "$1"; fail "no 'cut short' line of the prompts"; }
  ! grep -aq '^prompt step 0 | fortune' "$1" || { cat "$1"; fail "a generation printed after the stop"; }
  grep -q '^stopping after step 1: SIGTERM (preemption); saving a checkpoint, then exit 75$' "$1" ||
    { cat "$1"; fail "no 'stopping after step 1' line"; }
  [ -f "$2/checkpoints/step_00000001.h5" ] || { cat "$1"; fail "no checkpoint of step 1 in $2"; }
  grep -q "signal SIGTERM received: stop after step 1, save, exit 75" "$2/LOGBOOK.md" ||
    { cat "$2/LOGBOOK.md"; fail "the stop is not in the journal of $2"; }
  echo "stopped in $((ended - killed)) ms"
  [ $((ended - killed)) -lt 30000 ] || { cat "$1"; fail "one generation took $((ended - killed)) ms to stop"; }
}

echo "--- SIGTERM during one eval-prompt generation of 10^8 tokens (1 rank): cut short, step 1, save, exit 75"
timeout 300 "$llmpi" train "${gen[@]}" --set train.steps=400 --set eval.max_new_tokens=100000000 \
  --set run.dir=gen1 > gen1.log 2>&1 &
pid=$!
wait_lines gen1.log '^val  step      0 \| loss' > /dev/null  # the generation begins
sleep 1
target=$(llmpi_of $pid)
kill -TERM "$target"
killed=$(now_ms)
end_of $pid
expect_generation_stopped gen1.log gen1

echo "--- SIGINT during 'llmpi sample --tokens 100000000': the sample so far printed, exit 130"
timeout 120 "$llmpi" sample gen1/checkpoints/step_00000001.h5 --prompt fortune --prompt never \
  --tokens 100000000 --greedy --keep-going > sample.out 2> sample.err &
pid=$!
sleep 5  # loading (< 1 s), then generating: nothing is printed before the sample ends
target=$(llmpi_of $pid)
kill -INT "$target"
killed=$(now_ms)
end_of $pid
[ "$rc" = 130 ] || { cat sample.out sample.err; fail "SIGINT in llmpi sample: exit $rc, expected 130"; }
grep -q '^--- sample 1 (seed 1, temperature 0)$' sample.out || { cat sample.out; fail "no sample 1 header"; }
[ "$(grep -c '^--- sample' sample.out)" = 1 ] || { cat sample.out; fail "a second sample was started"; }
grep -aqE '^fortune.' sample.out || { cat sample.out; fail "not the generated text so far"; }
grep -qE '^llmpi sample: SIGINT: sample 1 stopped after [1-9][0-9]* generated tokens; exit 130$' sample.err ||
  { cat sample.err; fail "no line of where the sample stopped"; }
echo "stopped in $((ended - killed)) ms"
[ $((ended - killed)) -lt 10000 ] || fail "llmpi sample took $((ended - killed)) ms to stop"

echo "--- SIGTERM to rank 0 (which generates) during one generation of 10^8 tokens (2 ranks): exit 75"
"${mpi2[@]}" "$llmpi" train "${gen[@]}" --set parallel.dp=2 --set train.steps=400 \
  --set eval.max_new_tokens=100000000 --set run.dir=gen2 > gen2.log 2>&1 &
pid=$!
wait_lines gen2.log '^val  step      0 \| loss' > /dev/null
sleep 1
target=$(rank_of $pid 0)
kill -TERM "$target"
killed=$(now_ms)
end_of $pid
expect_generation_stopped gen2.log gen2

echo "--- eval prompts far longer than [watchdog] step_timeout (2 ranks): no hang, exit 0"
# The prompts of step 1 (the first in the watchdog's validation phase; step 0's are start-up's)
# take several seconds: 2000 tokens; the limit is 1 s.
"${mpi2[@]}" "$llmpi" train "${gen[@]}" --set parallel.dp=2 --set train.steps=1 \
  --set eval.max_new_tokens=2000 --set watchdog.step_timeout=1 --set run.dir=dog > dog.log 2>&1 &
pid=$!
begun=$(wait_lines dog.log '^val  step      1 \| loss')
done_at=$(wait_lines dog.log '^prompt step 1 \| fortune -> ')
end_of $pid
[ "$rc" = 0 ] || { cat dog.log; fail "long eval prompts under a 1 s watchdog limit: exit $rc, expected 0"; }
! grep -q 'watchdog' dog.log || { cat dog.log; fail "a watchdog line"; }
[ -z "$(ls -A dog/hangs 2>/dev/null)" ] || { ls dog/hangs; fail "hang reports written"; }
echo "the prompts of step 1 took $((done_at - begun)) ms under a 1000 ms limit"
# Without this the case would not test the watchdog (a machine fast enough to generate 2000
# tokens within the limit): the prompts must outlast it several times.
[ $((done_at - begun)) -gt 3000 ] || fail "the prompts took only $((done_at - begun)) ms; make them longer"
echo "run_control_long_phases: all passed"
