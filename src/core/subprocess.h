#pragma once
// Subprocess: runs a program (no shell involved: argv[0] is looked up on PATH) and captures
// its standard output and error, within a time limit. Started with posix_spawn, so it is
// safe to call from an MPI rank (no fork of the rank's address space). Used for Slurm's
// commands (sbatch, squeue, scontrol) and git.
// Invariants: the child is always reaped before run_process returns; on timeout it is
// killed (SIGKILL, by its own pid) and timed_out is set.
#include <string>
#include <vector>

namespace llmpi {

struct ProcessResult {
  bool started = false;    // false: the program could not be started (see `error`)
  bool timed_out = false;  // killed after the time limit
  int exit_code = -1;      // the exit status, or 128 + signal when killed by a signal
  std::string out, err;    // everything it wrote
  std::string error;       // why it did not start, e.g. "sbatch: not found on PATH"

  bool ok() const { return started && !timed_out && exit_code == 0; }
};

ProcessResult run_process(const std::vector<std::string>& argv, double timeout_s = 60.0);

// True when `name` is an executable file on PATH (or a path to one).
bool on_path(const std::string& name);

}  // namespace llmpi
