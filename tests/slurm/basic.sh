#!/usr/bin/env bash
# The cluster works for MPI and llmpi: a trivial 2-rank MPI program under srun --mpi=pmix, then
# a 2-rank tiny training submitted with `llmpi slurm submit` (srun) and one with
# --launcher mpirun; both finish (COMPLETED, exit 0) with parameters bitwise equal to the same
# run under mpiexec; `llmpi slurm status` reports the job and the finished run.
source "$(dirname "$0")/common.bash" "$@"

note "srun --mpi=pmix, 2 ranks"
cat > hello.c <<'C'
#include <mpi.h>
#include <stdio.h>
int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank, size, sum = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  MPI_Allreduce(&rank, &sum, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
  printf("rank %d of %d: sum %d\n", rank, size, sum);
  MPI_Finalize();
  return 0;
}
C
mpicc -o hello hello.c
srun -n 2 --mpi=pmix --kill-on-bad-exit=1 ./hello | sort > hello.out
[ "$(cat hello.out)" = "rank 0 of 2: sum 1
rank 1 of 2: sum 1" ] || { cat hello.out; fail "srun --mpi=pmix: unexpected output"; }

prepare_data
steps=(--set train.steps=8 --set checkpoint.every=4)
reference_run ref "${steps[@]}"

for launcher in srun mpirun; do
  note "llmpi slurm submit --launcher $launcher"
  extra=()
  [ $launcher = mpirun ] && extra=(--env OMPI_ALLOW_RUN_AS_ROOT=1 --env OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1)
  "$llmpi" slurm submit "${tiny_config[@]}" "${steps[@]}" --set run.dir=run-$launcher \
    --nodes 1 --time 10 --launcher $launcher "${extra[@]}" > submit-$launcher.txt
  id=$(submitted_id submit-$launcher.txt)
  [ -n "$id" ] || { cat submit-$launcher.txt; fail "no job id"; }
  wait_state "$id" "COMPLETED|FAILED|CANCELLED|TIMEOUT|OUT_OF_MEMORY|NODE_FAIL" 300
  out=run-$launcher/slurm/$id.out
  [ "$(job_state "$id")" = COMPLETED ] || { cat "$out"; fail "job $id: $(job_state "$id")"; }
  grep -q "training finished (exit 0)" "$out" || { cat "$out"; fail "no 'training finished' line"; }
  grep -q "binary $llmpi: llmpi " "$out" || fail "the script did not log the binary and its version"
  grep -q "^step      8/8" "$out" || { cat "$out"; fail "no final step line"; }
  same_h5 ref/model.h5 run-$launcher/model.h5
  "$llmpi" slurm status run-$launcher > status.txt
  grep -qE "^  $id +1/1 +COMPLETED" status.txt || { cat status.txt; fail "status: the job"; }
  grep -q "progress: step 8 of 8 (100%), done" status.txt || { cat status.txt; fail "status: progress"; }
  grep -qE "1\. job $id restart 0, .*fresh start, steps 1-8, finished" status.txt ||
    { cat status.txt; fail "status: the segment"; }
done
note "passed"
