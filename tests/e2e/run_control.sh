#!/usr/bin/env bash
# Stopping a run outside Slurm (docs/slurm.md): Ctrl-C saves and exits 75, a second Ctrl-C
# exits at once (130); a stop signal sent to ONE rank of two stops both after the same step;
# [run] deadline saves and exits 76; SIGTERM cuts an endless validation short (exit 75); the
# watchdog ends a run whose rank hangs inside a collective (LLMPI_TEST_HANG) with exit 79, both
# ranks' positions printed, and the next launch journals the hang reports; a second job on a
# locked run directory is refused (exit 2).
#   usage: run_control.sh LLMPI_BINARY SOURCE_DIR
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

"$llmpi" prepare /usr/share/games/fortunes/fortunes --delimiter % --out data --vocab-size 300 --quiet
cfg=("$src/configs/tiny.toml" --set model.vocab_size=300 --set model.n_layer=1 --set model.d_model=32
     --set model.n_head=2 --set model.max_seq_len=32 --set train.seq_len=32 --set train.batch_size=4
     --set train.steps=400 --set train.warmup_steps=2 --set train.log_every=1 --set train.eval_every=0 --set train.eval_batches=1
     --set data.train=data/train.bin --set data.val=data/val.bin --set checkpoint.every=100)
# Waits until file $1 shows a step line (training runs), at most 60 s.
wait_training() {
  for _ in $(seq 300); do grep -q '^step ' "$1" 2>/dev/null && return 0; sleep 0.2; done
  cat "$1"; fail "no step line in $1"
}
# Waits for background job $1 (pid), at most 60 s; its exit code in $rc.
end_of() {
  for _ in $(seq 300); do kill -0 "$1" 2>/dev/null || break; sleep 0.2; done
  kill -0 "$1" 2>/dev/null && { kill -KILL "$1"; fail "pid $1 did not end"; }
  set +e; wait "$1"; rc=$?; set -e
}

echo "--- Ctrl-C: stop after the step, save, exit 75"
LLMPI_TEST_STEP_DELAY=0.05 "$llmpi" train "${cfg[@]}" --set run.dir=int > int.log 2>&1 &
pid=$!
wait_training int.log
kill -INT $pid
end_of $pid
[ "$rc" = 75 ] || { cat int.log; fail "Ctrl-C: exit $rc, expected 75"; }
step=$(sed -n 's/^stopping after step \([0-9]*\): SIGINT (preemption); saving a checkpoint, then exit 75$/\1/p' int.log)
[ -n "$step" ] || { cat int.log; fail "no 'stopping after step N: SIGINT' line"; }
[ -f "int/checkpoints/step_$(printf %08d "$step").h5" ] || fail "no checkpoint of step $step"
[ ! -e int/lock ] || fail "the lock was left behind"

echo "--- SIGTERM during an endless validation (huge train.eval_batches): cut short, save, exit 75"
"$llmpi" train "${cfg[@]}" --set train.eval_batches=100000000 --set run.dir=val > val.log 2>&1 &
pid=$!
for _ in $(seq 300); do grep -q '^memory per rank' val.log 2>/dev/null && break; sleep 0.2; done
sleep 1  # inside the step-0 validation, which would run for hours
kill -TERM $pid
end_of $pid
[ "$rc" = 75 ] || { cat val.log; fail "SIGTERM in validation: exit $rc, expected 75"; }
grep -q '^val  step      0 | cut short by a stop request (no loss recorded)$' val.log || { cat val.log; fail "no 'cut short' line"; }
grep -q '^stopping after step 1: SIGTERM (preemption); saving a checkpoint, then exit 75$' val.log || { cat val.log; fail "no 'stopping after step 1' line"; }

echo "--- Ctrl-C twice: exit at once (130), nothing saved"
# A 2 s pause after each step (before the stop check): both presses land in it.
LLMPI_TEST_STEP_DELAY=2 "$llmpi" train "${cfg[@]}" --set run.dir=int2 > int2.log 2>&1 &
pid=$!
wait_training int2.log
sleep 0.3; kill -INT $pid; sleep 0.3; kill -INT $pid  # two presses (signals sent at once merge)
end_of $pid
[ "$rc" = 130 ] || { cat int2.log; fail "Ctrl-C twice: exit $rc, expected 130"; }
grep -q "second stop signal: exiting at once without saving" int2.log || { cat int2.log; fail "no second-signal line"; }

echo "--- USR1 to rank 1 only: both ranks stop after the same step, exit 75; relaunch resumes"
LLMPI_TEST_STEP_DELAY=0.05 "${mpi2[@]}" "$llmpi" train "${cfg[@]}" --set parallel.dp=2 --set run.dir=usr1 > usr1.log 2>&1 &
pid=$!
wait_training usr1.log
ranks=$(pgrep -P $pid -x llmpi | sort -n || true)
[ "$(echo "$ranks" | wc -l)" = 2 ] || fail "expected 2 llmpi ranks under mpiexec, found: $ranks"
kill -USR1 "$(echo "$ranks" | tail -1)"
end_of $pid
[ "$rc" = 75 ] || { cat usr1.log; fail "USR1: mpiexec exit $rc, expected 75"; }
step=$(sed -n 's/^stopping after step \([0-9]*\): SIGUSR1 (preemption).*/\1/p' usr1.log)
[ -n "$step" ] && [ -f "usr1/checkpoints/step_$(printf %08d "$step").h5" ] || { cat usr1.log; fail "USR1: no checkpoint of the stop step"; }
"${mpi2[@]}" "$llmpi" train "${cfg[@]}" --set parallel.dp=2 --set run.dir=usr1 --set train.steps=$((step + 2)) > usr1b.log 2>&1 ||
  { cat usr1b.log; fail "the relaunch failed"; }
grep -q "^resuming from usr1/checkpoints/step_$(printf %08d "$step").h5 at step $step" usr1b.log || { cat usr1b.log; fail "no resume from step $step"; }
grep -q "^config changed since .*: train.steps 400 → $((step + 2))" usr1b.log || { cat usr1b.log; fail "no config_change line"; }

echo "--- [run] deadline already past: refused at start (exit 2), no step trained"
"$llmpi" train "${cfg[@]}" --set run.dir=past --set run.deadline=2000-01-01T00:00 > past.log 2>&1 && rc=0 || rc=$?
[ "$rc" = 2 ] || { cat past.log; fail "past deadline: exit $rc, expected 2"; }
grep -q "\[run\] deadline = '2000-01-01T00:00' has already passed (.* s ago; it is now 20" past.log || { cat past.log; fail "no 'already passed' message"; }
! grep -q '^step ' past.log || { cat past.log; fail "a step was trained before a past deadline"; }

echo "--- [run] deadline: save before it, exit 76"
LLMPI_TEST_STEP_DELAY=0.05 "$llmpi" train "${cfg[@]}" --set run.dir=dl --set run.deadline=6s --set run.deadline_margin=1 > dl.log 2>&1 && rc=0 || rc=$?
[ "$rc" = 76 ] || { cat dl.log; fail "deadline: exit $rc, expected 76"; }
grep -q "^deadline: \[run\] deadline in 6 s" dl.log || { cat dl.log; fail "no deadline line"; }
step=$(sed -n 's/^stopping after step \([0-9]*\): time limit (\[run\] deadline in .*then exit 76$/\1/p' dl.log)
[ -n "$step" ] && [ -f "dl/checkpoints/step_$(printf %08d "$step").h5" ] || { cat dl.log; fail "deadline: no checkpoint of the stop step"; }

echo "--- a rank stopped inside a collective: the watchdog ends the job (79)"
start=$SECONDS
LLMPI_TEST_HANG=rank=1,step=3 "${mpi2[@]}" "$llmpi" train "${cfg[@]}" --set parallel.dp=2 --set run.dir=hang \
  --set watchdog.step_timeout=3 --set watchdog.factor=1 > hang.log 2>&1 && rc=0 || rc=$?
[ "$rc" = 79 ] || { cat hang.log; fail "hang: exit $rc, expected 79"; }
[ $((SECONDS - start)) -lt 120 ] || fail "the watchdog took $((SECONDS - start)) s"
grep -q "LLMPI_TEST_HANG: stopping for good in all_reduce over" hang.log || { cat hang.log; fail "the hook did not fire"; }
grep -qE "^llmpi: watchdog: rank 1 on .*no progress for [0-9.]+ s at step 3, phase step .*waiting in all_reduce over the" hang.log ||
  { cat hang.log; fail "no position of rank 1"; }
ls hang/hangs/rank-00001.json > /dev/null || fail "no hang report of rank 1"
"$llmpi" train "${cfg[@]}" --set parallel.dp=1 --set train.batch_size=8 --set run.dir=hang --set train.steps=4 > hang2.log 2>&1 ||
  { cat hang2.log; fail "the launch after the hang failed"; }
grep -q "^the watchdog ended an earlier launch: rank 1 on .* at step 3, phase step, waiting in all_reduce" hang2.log ||
  { cat hang2.log; fail "the hang reports were not journaled"; }
[ -z "$(ls hang/hangs 2>/dev/null)" ] || fail "hang reports left after they were journaled"

echo "--- one job per run directory"
LLMPI_TEST_STEP_DELAY=0.05 "$llmpi" train "${cfg[@]}" --set run.dir=locked > first.log 2>&1 &
pid=$!
wait_training first.log
"$llmpi" train "${cfg[@]}" --set run.dir=locked > second.log 2>&1 && rc=0 || rc=$?
[ "$rc" = 2 ] || { cat second.log; fail "second job: exit $rc, expected 2"; }
grep -q "run directory locked is in use by pid $pid on " second.log || { cat second.log; fail "the refusal does not name the holder"; }
kill -KILL $pid
end_of $pid
LLMPI_TEST_STEP_DELAY=0.05 "$llmpi" train "${cfg[@]}" --set run.dir=locked --set train.steps=2 > third.log 2>&1 ||
  { cat third.log; fail "the stale lock of a killed job was obeyed"; }
grep -q "run directory lock: took over a stale lock of pid $pid" third.log || { cat third.log; fail "no stale-lock line"; }
echo "run_control: all passed"
