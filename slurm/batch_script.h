#pragma once
// The sbatch script of one llmpi run, rendered from a BatchSpec (a pure function: the same
// spec gives the same text, so tests compare it line by line). What the script does:
//   #SBATCH lines: resources, --signal=B:<sig>@<margin>, --requeue, --open-mode=append
//   logs the job, its restart count, the binary and its git revision (warns when the binary
//   changed since submission); builds nothing, names no path that the spec did not give
//   starts the training step in the background (srun --mpi=pmix --kill-on-bad-exit=1, or
//   mpirun), traps the stop signal, forwards it to the step and waits again until it ends
//   acts on the exit code (jobs/exit_codes.h): 75 → scontrol requeue of itself (array
//   tasks as <array job>_<task>) while SLURM_RESTART_COUNT < max_requeues; 76 → the next
//   job of the chain continues, or a requeue when the job is the chain's last
#include <string>

#include "slurm/batch_spec.h"

namespace llmpi {

// POSIX shell single-quoting: the word survives any shell unchanged.
std::string shell_quote(const std::string& word);

// validate_batch_spec, then the script text.
std::string render_batch_script(const BatchSpec& spec);

}  // namespace llmpi
