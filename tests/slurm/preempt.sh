#!/usr/bin/env bash
# Preemption: a 2-rank tiny training submitted with `llmpi slurm submit` gets its stop signal
# from `scancel --signal=USR1 --batch` (as a preempting scheduler sends it). The batch script
# forwards it; every rank stops after the same step, saves, exits 75; the script requeues the
# job (scontrol requeue), which starts again with SLURM_RESTART_COUNT=1, resumes from that
# checkpoint and finishes with parameters bitwise equal to an uninterrupted run. The journal
# (the run's event lines, and the logbook's journal) shows the signal, the requeue and the
# resume; `llmpi slurm status` counts one requeue over two segments.
source "$(dirname "$0")/common.bash" "$@"
prepare_data
steps=(--set train.steps=30 --set checkpoint.every=10)
reference_run ref "${steps[@]}"

# 0.3 s more per step (LLMPI_TEST_STEP_DELAY): time to preempt it mid-run on any machine.
"$llmpi" slurm submit "${tiny_config[@]}" "${steps[@]}" --set run.dir=run --nodes 1 --time 10 \
  --env LLMPI_TEST_STEP_DELAY=0.3 > submit.txt
id=$(submitted_id submit.txt)
out=run/slurm/$id.out
wait_line "$out" "^step +6/" 300
note "job $id at step 6: scancel --signal=USR1 --batch"
scancel --signal=USR1 --batch "$id"
wait_line "$out" "requeueing job $id \(restart 1 of at most 5\)" 120
wait_line "$out" "restart 1 \(at most 5\)" 120
wait_state "$id" "COMPLETED|FAILED|CANCELLED|TIMEOUT" 300
[ "$(job_state "$id")" = COMPLETED ] || { cat "$out"; fail "job $id ended $(job_state "$id")"; }
[ "$(job_field "$id" Restarts)" = 1 ] || { cat "$out"; fail "Restarts=$(job_field "$id" Restarts), expected 1"; }

step=$(sed -n 's/^stopping after step \([0-9]*\): SIGUSR1 (preemption); saving a checkpoint, then exit 75$/\1/p' "$out")
[ -n "$step" ] || { cat "$out"; fail "no 'stopping after step N: SIGUSR1 (preemption)' line"; }
for line in "SIGUSR1 received: forwarding it to the training step" \
            "preempted: llmpi saved a checkpoint and asked to be requeued \(exit 75\)" \
            "^requeued Slurm job $id: restart 1$" \
            "^resuming from $work/run/checkpoints/step_$(printf %08d "$step").h5 at step $step of 30|^resuming from run/checkpoints/step_$(printf %08d "$step").h5 at step $step of 30" \
            "training finished \(exit 0\)" "^step +30/30"; do
  grep -qE "$line" "$out" || { cat "$out"; fail "missing in the output: $line"; }
done
# In order: signal, then the requeue of the next launch, then its resume.
order=$(grep -nE "SIGUSR1 \(preemption\)|^requeued Slurm job|^resuming from" "$out" | cut -d: -f1 | tr '\n' ' ')
[ "$(echo $order | wc -w)" = 3 ] && [ "$(echo $order | tr ' ' '\n' | sort -n | tr '\n' ' ')" = "$order" ] ||
  { cat "$out"; fail "signal, requeue and resume are not in that order (lines $order)"; }
same_h5 ref/model.h5 run/model.h5
"$llmpi" slurm status run > status.txt
grep -q "^requeues: 1$" status.txt || { cat status.txt; fail "status: requeues"; }
grep -qE "1\. job $id restart 0, .*fresh start, steps 1-$step, preempted \(exit 75\).*, requeued" status.txt ||
  { cat status.txt; fail "status: the first segment"; }
grep -qE "2\. job $id restart 1, .*resumed at step $step, steps $((step + 1))-30, finished" status.txt ||
  { cat status.txt; fail "status: the second segment"; }
# The logbook's journal tells the same story: the signal (segment 0), then the requeue and the
# resume of the next launch (segment 1), in that order.
"$llmpi" logbook run --jsonl --out journal.jsonl > /dev/null
/usr/bin/python3 - journal.jsonl "$id" <<'PY' || { cat journal.jsonl; fail "the logbook's journal: signal, requeue, resume"; }
import json, sys
ev = [r for r in map(json.loads, open(sys.argv[1])) if r["record"] == "event"]
at = [next(i for i, e in enumerate(ev) if (e["type"], e["segment"]) == w)
      for w in [("signal", 0), ("requeue", 1), ("resume", 1)]]
assert at == sorted(at), at
q = ev[at[1]]["details"]
assert str(q["slurm_job"]) == sys.argv[2] and q["restart_count"] == 1, q
PY
note "passed (stopped at step $step)"
