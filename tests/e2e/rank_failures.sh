#!/usr/bin/env bash
# Errors that only SOME ranks of a 2-rank job see end the whole job with one clear message and
# exit 2 — in bounded time, never a hang (core/agreement.h):
#   - a run directory locked by a live job (rank 0 alone takes the lock): refused on rank 0,
#     every rank exits 2 at once (it hung: the other rank waited in the setup's next collective);
#   - --resume of a checkpoint one rank sees truncated (its node's copy): refused, "(on rank 1)";
#   - data.train missing on rank 1 only, or another file there: refused on every rank, naming it
#     (the other rank went on into the model's collectives and hung, or trained on other data);
#     likewise train.init_from missing on rank 1 (it ended through the 30 s wait);
#   - the config missing on rank 1 only (before any collective the others would share): that
#     rank ends the job within the agreement wait (30 s), with its message;
#   - the commit of a background save (`latest`) failing on rank 0 alone: agreed at the next
#     save or at the end, exit 2 at once (it waited out the 30 s); likewise rank 0's write of the
#     run's config.toml at the start of training (it was an MPI_Abort from rank 0) and its
#     rename of the finished model.h5 (it waited out the 30 s);
#   - the disk filling up on rank 1 during a save, and an error every rank finds during
#     training: rank 0 prints one message naming the cause (each rank printed its own,
#     through MPI_Abort), exit 2;
#   - a hang report of an earlier launch with a field of the wrong type: reported as unreadable,
#     training goes on (it was an internal error, exit 1).
# Node-local differences are made with mpiexec's per-rank working directories (-wdir).
# Every launch runs under `timeout`: a regression fails here instead of hanging.
#   usage: rank_failures.sh LLMPI_BINARY SOURCE_DIR
set -euo pipefail
llmpi=$1
src=$2
work=$(mktemp -d)
holder=
trap '[ -n "$holder" ] && kill -KILL "$holder" 2>/dev/null; rm -rf "$work"' EXIT
cd "$work"
export OPENBLAS_NUM_THREADS=1 OMPI_MCA_btl=self,vader OMPI_MCA_btl_vader_single_copy_mechanism=none
source "$src/tests/e2e/common.bash"
mpi=(mpiexec --oversubscribe --bind-to none)
[ "$(id -u)" -eq 0 ] && mpi+=(--allow-run-as-root)

# The cases need exactly 2 ranks: a launcher that gives another count fails the test.
n=$(timeout 60 "${mpi[@]}" -n 2 sh -c 'echo rank' | grep -c '^rank$' || true)
[ "$n" = 2 ] || fail "mpiexec -n 2 started $n ranks, expected 2"

"$llmpi" prepare /usr/share/games/fortunes/fortunes --delimiter % --out data --vocab-size 300 --quiet
cfg=("$src/configs/tiny.toml" --set model.vocab_size=300 --set model.n_layer=2 --set model.d_model=32
     --set model.n_head=2 --set model.max_seq_len=32 --set train.seq_len=32 --set train.batch_size=4
     --set train.steps=6 --set train.warmup_steps=2 --set train.log_every=1 --set train.eval_every=0
     --set train.eval_batches=1 --set data.train=data/train.bin --set data.val=data/val.bin
     --set checkpoint.every=3 --set parallel.dp=2)
# Runs the 2-rank job "$@" (mpiexec arguments) at most $1 seconds: exit code in $rc, output in $2.
run2() {
  local limit=$1 log=$2; shift 2
  set +e; timeout "$limit" "${mpi[@]}" "$@" >"$log" 2>&1; rc=$?; set -e
  [ "$rc" != 124 ] || { cat "$log"; fail "$log: the job hung (killed after $limit s)"; }
}
# After run2: the failure "$1" was agreed — exit 2, exactly one line of $2 matching the regex
# $4 (rank 0's message, not one per rank), within 25 s of $3 (not the 30 s agreement wait).
expect_agreed() {
  local what=$1 log=$2 start=$3 pattern=$4
  [ "$rc" = 2 ] || { cat "$log"; fail "$what: exit $rc, expected 2"; }
  [ "$(grep -c "$pattern" "$log")" = 1 ] || { cat "$log"; fail "$what: not one message matching $pattern"; }
  [ $(( $(date +%s) - start )) -lt 25 ] || { cat "$log"; fail "$what: not agreed (took the 30 s wait)"; }
}

echo "--- a good 2-rank run (its checkpoint is resumed below)"
run2 120 good.log -n 2 "$llmpi" train "${cfg[@]}" --set run.dir="$work/good"
[ "$rc" = 0 ] || { cat good.log; fail "the good run exited $rc"; }

echo "--- a run directory locked by a live job: every rank exits 2 at once"
LLMPI_TEST_STEP_DELAY=0.5 "$llmpi" train "${cfg[@]}" --set parallel.dp=1 --set train.steps=400 \
  --set run.dir="$work/locked" > holder.log 2>&1 &
holder=$!
for _ in $(seq 300); do grep -q '^step ' holder.log 2>/dev/null && break; sleep 0.2; done
grep -q '^step ' holder.log || { cat holder.log; fail "the lock holder did not start training"; }
run2 60 lock.log -n 2 "$llmpi" train "${cfg[@]}" --set run.dir="$work/locked"
[ "$rc" = 2 ] || { cat lock.log; fail "locked run.dir: exit $rc, expected 2"; }
[ "$(grep -c '^llmpi train: error: run directory .*locked is in use by pid' lock.log)" = 1 ] ||
  { cat lock.log; fail "locked run.dir: not one 'is in use by pid' message"; }
kill -KILL "$holder"; wait "$holder" 2>/dev/null || true; holder=

echo "--- --resume of a checkpoint that rank 1 sees truncated: exit 2, named, on rank 1"
mkdir -p n0/ck n1/ck
cp good/checkpoints/step_00000003.h5 n0/ck/s.h5
head -c 2000 good/checkpoints/step_00000003.h5 > n1/ck/s.h5
args=(train "${cfg[@]}" --set data.train="$work/data/train.bin" --set data.val="$work/data/val.bin"
      --set run.dir="$work/resumed" --resume ck/s.h5)
run2 60 resume.log -n 1 -wdir "$work/n0" "$llmpi" "${args[@]}" : -n 1 -wdir "$work/n1" "$llmpi" "${args[@]}"
[ "$rc" = 2 ] || { cat resume.log; fail "checkpoint truncated on one rank: exit $rc, expected 2"; }
grep -q '^llmpi train: error: ck/s.h5: is truncated: 2000 bytes, its header says [0-9]* (on rank 1)$' resume.log ||
  { cat resume.log; fail "checkpoint truncated on one rank: no 'is truncated ... (on rank 1)' line"; }

echo "--- data.train missing on rank 1 only: refused on every rank at once, naming it, on rank 1"
mkdir -p m0 m1/data d1/data
cp -r data m0/
args=(train "${cfg[@]}" --set data.val="$work/data/val.bin" --set run.dir="$work/missing")
run2 60 missing.log -n 1 -wdir "$work/m0" "$llmpi" "${args[@]}" : -n 1 -wdir "$work/m1" "$llmpi" "${args[@]}"
[ "$rc" = 2 ] || { cat missing.log; fail "data missing on one rank: exit $rc, expected 2"; }
grep -q '^llmpi train: error: data.train = "data/train.bin": no such file.* (on rank 1)$' missing.log ||
  { cat missing.log; fail "data missing on one rank: no message naming data.train and rank 1"; }

echo "--- data.train another file on rank 1 (same name, other tokens): refused, naming it"
head -c 3000 /usr/share/games/fortunes/fortunes > small.txt
"$llmpi" prepare small.txt --delimiter % --out d1/small --tokenizer data/tokenizer.bpe --quiet >/dev/null
cp d1/small/train.bin d1/data/train.bin
run2 60 differ.log -n 1 -wdir "$work/m0" "$llmpi" "${args[@]}" : -n 1 -wdir "$work/d1" "$llmpi" "${args[@]}"
[ "$rc" = 2 ] || { cat differ.log; fail "other data on one rank: exit $rc, expected 2"; }
grep -q '^llmpi train: error: data.train = "data/train.bin": the ranks of this job read different data (from [0-9]* to [0-9]* tokens)' differ.log ||
  { cat differ.log; fail "other data on one rank: no 'read different data' message"; }

echo "--- train.init_from missing on rank 1 only: refused on every rank at once, naming it, on rank 1"
mkdir -p i0 i1
cp good/model.h5 i0/init.h5
args=(train "${cfg[@]}" --set data.train="$work/data/train.bin" --set data.val="$work/data/val.bin"
      --set run.dir="$work/initfrom" --set train.init_from=init.h5)
start=$(date +%s)
run2 60 initfrom.log -n 1 -wdir "$work/i0" "$llmpi" "${args[@]}" : -n 1 -wdir "$work/i1" "$llmpi" "${args[@]}"
expect_agreed "init_from missing on one rank" initfrom.log "$start" '^llmpi train: error: .*init\.h5.* (on rank 1)$'

echo "--- the config file missing on rank 1 only (found before the layout exists): that rank ends"
echo "    the job within the agreement wait (30 s) with its message"
mkdir -p c0 c1
cp "$src/configs/tiny.toml" c0/c.toml
args=(train c.toml "${cfg[@]:1}" --set data.train="$work/data/train.bin" --set data.val="$work/data/val.bin"
      --set run.dir="$work/noconfig")
start=$(date +%s)
run2 90 noconfig.log -n 1 -wdir "$work/c0" "$llmpi" "${args[@]}" : -n 1 -wdir "$work/c1" "$llmpi" "${args[@]}"
[ "$rc" = 2 ] || { cat noconfig.log; fail "config missing on one rank: exit $rc, expected 2"; }
grep -q '^llmpi: rank 1: fatal: llmpi train: error: c.toml: no such file.*(found on this rank only: the other ranks went on and did not stop within 30 s; ending the job)$' noconfig.log ||
  { cat noconfig.log; fail "config missing on one rank: no 'found on this rank only' message naming c.toml"; }
echo "    ended after $(( $(date +%s) - start )) s"

echo "--- the disk fills up on rank 1 during a save: one message on rank 0 naming the cause, exit 2"
rm -rf full
LLMPI_TEST_DISK_FULL=rank=1,bytes=5000 run2 60 full.log -n 2 "$llmpi" train "${cfg[@]}" \
  --set parallel.zero_stage=1 --set run.dir="$work/full"
[ "$rc" = 2 ] || { cat full.log; fail "disk full on rank 1: exit $rc, expected 2"; }
[ "$(grep -c '^llmpi train: error: saving checkpoint .*step_00000003.h5 failed: .*(disk full or a file-size limit?) (on rank 1)$' full.log)" = 1 ] ||
  { cat full.log; fail "disk full on rank 1: not one message naming the cause and rank 1"; }
! grep -q 'fatal' full.log || { cat full.log; fail "disk full on rank 1: an abort instead of an agreed exit"; }

echo "--- the commit of a background save fails on rank 0 alone (latest.tmp is a directory): exit 2 at once"
for steps in 12 9; do  # the commit fails before a later save, and before the end of the run
  rm -rf commit; cp -r good commit; rm -rf commit/lock commit/hangs; mkdir -p commit/checkpoints/latest.tmp/x
  start=$(date +%s)
  run2 60 commit.log -n 2 "$llmpi" train "${cfg[@]}" --set run.dir="$work/commit" --set train.steps=$steps
  expect_agreed "commit failing on rank 0 ($steps steps)" commit.log "$start" \
    '^llmpi train: error: .*latest.tmp: cannot write the latest-checkpoint pointer$'
done

echo "--- rank 0 cannot write the run's config.toml (a directory there): one message, exit 2 at once"
rm -rf cfgdir; cp -r good cfgdir; rm -rf cfgdir/lock cfgdir/hangs cfgdir/config.toml; mkdir -p cfgdir/config.toml/x
start=$(date +%s)
run2 60 cfgdir.log -n 2 "$llmpi" train "${cfg[@]}" --set run.dir="$work/cfgdir" --set train.steps=9
expect_agreed "config.toml a directory" cfgdir.log "$start" \
  '^llmpi train: error: .*cfgdir/config.toml: cannot rename from .*: Is a directory$'

echo "--- rank 0 cannot rename the finished model.h5 (a directory there): one message, exit 2 at once"
rm -rf modeldir; cp -r good modeldir; rm -rf modeldir/lock modeldir/hangs modeldir/model.h5; mkdir -p modeldir/model.h5/x
start=$(date +%s)
run2 60 modeldir.log -n 2 "$llmpi" train "${cfg[@]}" --set run.dir="$work/modeldir" --set train.steps=9
expect_agreed "model.h5 a directory" modeldir.log "$start" \
  '^llmpi train: error: .*modeldir/model.h5: cannot rename the finished file from .*: Is a directory$'
[ -d modeldir/model.h5/x ] && [ ! -e modeldir/model.h5.tmp ] || fail "model.h5 a directory: the directory was touched or the temporary left"

echo "--- an error every rank finds during training (too many rollbacks): one message, exit 2"
run2 120 spikes.log -n 2 "$llmpi" train "${cfg[@]}" --set run.dir="$work/spikes" --set train.steps=12 \
  --set checkpoint.every=2 --set logbook.test_nan_grad_steps=[5,7,8,9,10,11,12] \
  --set logbook.nonfinite_action=rollback --set logbook.rollback_skip_steps=1 --set logbook.max_consecutive=3
[ "$rc" = 2 ] || { cat spikes.log; fail "too many rollbacks: exit $rc, expected 2"; }
[ "$(grep -c '^llmpi train: error: step [0-9]*: 4 spike skips/rollbacks without progress' spikes.log)" = 1 ] ||
  { cat spikes.log; fail "too many rollbacks: not one message"; }
! grep -q 'fatal' spikes.log || { cat spikes.log; fail "too many rollbacks: an abort instead of an agreed exit"; }

echo "--- a hang report with a field of the wrong type: unreadable, training goes on"
mkdir -p "$work/good/hangs"
echo '{"rank": "zero", "step": 3}' > "$work/good/hangs/rank-0.json"
run2 120 hang.log -n 2 "$llmpi" train "${cfg[@]}" --set run.dir="$work/good" --set train.steps=9
[ "$rc" = 0 ] || { cat hang.log; fail "damaged hang report: exit $rc, expected 0"; }
grep -q "^hang report .*/good/hangs/rank-0.json of an earlier launch is unreadable$" hang.log ||
  { cat hang.log; fail "damaged hang report: no 'is unreadable' line"; }

echo "--- a bad command line (found before MPI starts, alike on every rank): one message, from the"
echo "    launcher's rank 0, and exit 2 within seconds (each rank printed it); --help: one copy"
# "ARGUMENTS|the message's pattern": the arguments are split into words (none: no arguments).
for c in "train --bogus-option|^llmpi train: error: unknown option '--bogus-option'" \
         "train|^llmpi train: error: CONFIG is required" \
         "bogus|^llmpi: error: unknown command 'bogus'" \
         "train c.toml --no-resum|^llmpi train: error: unknown option '--no-resum'; did you mean '--no-resume'" \
         "|^usage: llmpi <command>"; do
  args=${c%%|*} pattern=${c#*|}
  start=$(date +%s)
  run2 30 badline.log -n 2 "$llmpi" $args
  [ "$rc" = 2 ] || { cat badline.log; fail "'llmpi $args': exit $rc, expected 2"; }
  [ "$(grep -c "$pattern" badline.log)" = 1 ] || { cat badline.log; fail "'llmpi $args': not one message"; }
  [ $(( $(date +%s) - start )) -lt 10 ] || { cat badline.log; fail "'llmpi $args': took 10 s or more"; }
done
for args in "--help" "train --help" "help slurm submit"; do
  run2 30 help.log -n 2 "$llmpi" $args
  [ "$rc" = 0 ] || { cat help.log; fail "'llmpi $args': exit $rc, expected 0"; }
  [ "$(grep -c '^usage: llmpi' help.log)" = 1 ] || { cat help.log; fail "'llmpi $args': not one help"; }
done

echo "--- a bad option on rank 1 only, rank 0 in MPI_Init with a good command line: the launcher"
echo "    ends the job (exit 2) within seconds, rank 0 is not left waiting"
start=$(date +%s)
run2 30 mpmd.log -n 1 "$llmpi" train "${cfg[@]}" --set run.dir="$work/mpmd" : -n 1 "$llmpi" train --bogus-option
[ "$rc" = 2 ] || { cat mpmd.log; fail "bad option on rank 1 only: exit $rc, expected 2"; }
[ $(( $(date +%s) - start )) -lt 10 ] || { cat mpmd.log; fail "bad option on rank 1 only: took 10 s or more"; }

echo "rank_failures: all cases passed"
