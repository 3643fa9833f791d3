#!/usr/bin/env bash
# Time limits, two ways, submitted side by side (the 1 s step pause of LLMPI_TEST_STEP_DELAY
# makes 50 steps outlast what llmpi uses of a one-minute job on any machine, and leaves the
# CPUs to the other job):
#  - a job of one minute (--time 1): knowing the job's end (squeue), llmpi stops after the
#    step that leaves a step + 2 saves + [run] deadline_margin before it, saves, exits 76 and
#    journals a timeout (not a preemption); the script, the last of its chain, requeues the
#    job, which resumes and finishes;
#  - a chain of two such jobs (--chain 2: the second waits for the first, afterany): the first
#    stops the same way and leaves the run to the second (no requeue), which resumes and
#    finishes.
# Both end bitwise equal to an uninterrupted run. On a busy machine a job gets through fewer
# steps and may need more requeues: --max-requeues 10 leaves room for that.
source "$(dirname "$0")/common.bash" "$@"
prepare_data
steps=(--set train.steps=50 --set checkpoint.every=10)
reference_run ref "${steps[@]}"
limits=(--set run.deadline_margin=20 --nodes 1 --time 1 --signal-margin 5 --max-requeues 10
  --env LLMPI_TEST_STEP_DELAY=1)

"$llmpi" slurm submit "${tiny_config[@]}" "${steps[@]}" --set run.dir=run "${limits[@]}" > submit.txt
id=$(submitted_id submit.txt)
"$llmpi" slurm submit "${tiny_config[@]}" "${steps[@]}" --set run.dir=chain "${limits[@]}" --chain 2 > chain.txt
first=$(submitted_id chain.txt)
second=$(sed -n 's/^submitted job \([0-9]*\) (chain job 2 of 2, after job '"$first"').*/\1/p' chain.txt)
[ -n "$first" ] && [ -n "$second" ] || { cat chain.txt; fail "two chained jobs expected"; }
[ "$(job_field "$second" Dependency)" = "afterany:${first}(unfulfilled)" ] ||
  fail "job $second depends on '$(job_field "$second" Dependency)'"

# The stop for the time limit, in job $1's output $2: its step on stdout. llmpi's own rule
# (no signal named) usually comes first; Slurm's signal, which may come up to a minute before
# its margin, counts as the time limit too (", SIGUSR1" in the line).
timeout_step() {
  grep -qE "^deadline: Slurm job $1 end time in [0-9]+ s" "$2" || { cat "$2" >&2; fail "job $1: llmpi did not learn the job's end time"; }
  local line
  line=$(grep -m1 -E "^stopping after step [0-9]+: time limit \(Slurm job $1 end time in [0-9]+ s(, SIGUSR1)?\); saving a checkpoint, then exit 76$" "$2") ||
    { cat "$2" >&2; fail "job $1 did not stop for its time limit"; }
  grep -q "time limit: llmpi saved a checkpoint before the job's end (exit 76)" "$2" || { cat "$2" >&2; fail "job $1: the script did not see exit 76"; }
  grep -q "(preemption)" "$2" && { cat "$2" >&2; fail "job $1: a time limit was journaled as a preemption"; }
  echo "$line" | sed 's/^stopping after step \([0-9]*\):.*/\1/'
}

note "one job, requeued at its time limit"
wait_state "$id" "COMPLETED|FAILED|CANCELLED|TIMEOUT" 500
out=run/slurm/$id.out
[ "$(job_state "$id")" = COMPLETED ] || { cat "$out"; fail "job $id ended $(job_state "$id")"; }
step=$(timeout_step "$id" "$out")
grep -q "requeueing job $id (restart 1 of at most 10)" "$out" || { cat "$out"; fail "not requeued"; }
grep -qE "^resuming from .*step_$(printf %08d "$step").h5 at step $step of 50" "$out" || { cat "$out"; fail "no resume from step $step"; }
grep -q "training finished (exit 0)" "$out" || { cat "$out"; fail "the run did not finish"; }
same_h5 ref/model.h5 run/model.h5
note "job $id: stopped at step $step, finished after $(job_field "$id" Restarts) requeue(s)"

note "a chain of two jobs"
wait_state "$first" "COMPLETED|FAILED|CANCELLED|TIMEOUT" 300
out1=chain/slurm/$first.out
[ "$(job_state "$first")" = COMPLETED ] || { cat "$out1"; fail "job $first ended $(job_state "$first")"; }
step=$(timeout_step "$first" "$out1")
grep -q "the next job of the chain continues the run" "$out1" || { cat "$out1"; fail "job $first did not hand over"; }
grep -q "requeueing" "$out1" && { cat "$out1"; fail "job $first requeued itself although a chain job follows"; }
wait_state "$second" "COMPLETED|FAILED|CANCELLED|TIMEOUT" 400
out2=chain/slurm/$second.out
[ "$(job_state "$second")" = COMPLETED ] || { cat "$out2"; fail "job $second ended $(job_state "$second")"; }
grep -q "chain job 2 of 2, restart 0" "$out2" || { cat "$out2"; fail "job $second does not know its place in the chain"; }
grep -qE "^resuming from .*step_$(printf %08d "$step").h5 at step $step of 50" "$out2" || { cat "$out2"; fail "job $second did not resume from step $step"; }
grep -q "training finished (exit 0)" "$out2" || { cat "$out2"; fail "job $second did not finish the run"; }
same_h5 ref/model.h5 chain/model.h5
"$llmpi" slurm status chain > status.txt
grep -qE "^  $first +1/2 +COMPLETED" status.txt && grep -qE "^  $second +2/2 +COMPLETED" status.txt ||
  { cat status.txt; fail "status: the chain"; }
note "passed (chain: job $first stopped at step $step, job $second finished)"
