#pragma once
// The exit codes of `llmpi train` that a batch script acts on (docs/slurm.md, "Exit codes").
// One table, read by the trainer's stop logic, the watchdog and the sbatch renderer, so the
// script and the program cannot disagree.
//   0    the run finished (train.steps reached), or nothing was left to train
//   1    internal error (a bug or a failed system call); the job is aborted on every rank
//   2    bad input: config, data, checkpoint, command line, a locked run directory
//   75   preempted: a stop signal arrived; every rank stopped after the same step and a
//        checkpoint was saved. "Requeue me": the batch script requeues the job.
//   76   deadline: stopped before [run] deadline or the Slurm job's end time, checkpoint
//        saved. The next job of a chain continues; without one the script requeues.
//   79   watchdog: no progress within the limit of the current phase (a hang); positions
//        were printed and journaled, the job was aborted. Not requeued automatically.
//   128+N  a second stop signal N: exited at once, without saving.

namespace llmpi {

inline constexpr int kExitOk = 0;
inline constexpr int kExitInternal = 1;
inline constexpr int kExitUser = 2;
inline constexpr int kExitPreempted = 75;
inline constexpr int kExitDeadline = 76;
inline constexpr int kExitWatchdog = 79;
inline constexpr int kExitSignalBase = 128;  // + the signal number: a second signal

}  // namespace llmpi
