#!/usr/bin/env bash
# A hung rank: LLMPI_TEST_HANG stops rank 1 for good inside the first collective of step 3;
# rank 0 waits in it. The watchdog (step limit 3 s) prints where each rank stands and ends the
# job with exit 79 (srun ends the other rank; the script tells it by the hang reports); the
# job is not requeued, nothing hangs until the time limit, and the next launch journals the
# reports.
source "$(dirname "$0")/common.bash" "$@"
prepare_data
"$llmpi" slurm submit "${tiny_config[@]}" --set train.steps=20 --set run.dir=run \
  --set watchdog.step_timeout=3 --set watchdog.factor=1 --nodes 1 --time 5 \
  --env LLMPI_TEST_HANG=rank=1,step=3 > submit.txt
id=$(submitted_id submit.txt)
out=run/slurm/$id.out
start=$SECONDS
wait_state "$id" "COMPLETED|FAILED|CANCELLED|TIMEOUT" 240
took=$((SECONDS - start))
[ "$(job_state "$id")" = FAILED ] || { cat "$out"; fail "job $id ended $(job_state "$id"), expected FAILED"; }
[ "$(job_field "$id" ExitCode)" = "79:0" ] || { cat "$out"; fail "ExitCode=$(job_field "$id" ExitCode), expected 79:0"; }
[ "$(job_field "$id" Restarts)" = 0 ] || fail "a hung run was requeued"
grep -q "LLMPI_TEST_HANG: stopping for good in all_reduce" "$out" || { cat "$out"; fail "the hook did not fire"; }
grep -qE "^llmpi: watchdog: rank 1 on .*at step 3, phase step \(limit 3.0 s\); waiting in all_reduce over the dp group" "$out" ||
  { cat "$out"; fail "no position of the hung rank"; }
grep -q "the watchdog ended a hung run (exit 79)" "$out" || { cat "$out"; fail "the script did not report the watchdog"; }
grep -q "requeueing" "$out" && fail "requeued after a hang"
ls run/hangs/rank-00001.json > /dev/null || fail "no hang report of rank 1"
"$llmpi" slurm status run > status.txt
grep -qE "1\. job $id restart 0, .*hang, ended by the watchdog \(exit 79\)" status.txt || { cat status.txt; fail "status: the hang"; }
grep -q "llmpi: watchdog: rank 1" status.txt || { cat status.txt; fail "status: the position"; }
note "passed (the job ended $took s after submission)"
