#pragma once
// BatchSpec: everything a Slurm batch script for one llmpi run says, resolved at submission
// (absolute paths, numbers, the exact train command), so that rendering is a pure function
// (slurm/batch_script.h) and the script needs no change when Slurm requeues it.
// Invariants (checked by validate_batch_spec, one place): nodes, tasks_per_node >= 1;
// gpus/cpus per task >= 0; 0 < signal margin < time limit when a limit is set; the stop
// signal is USR1, USR2 or TERM, and TERM only with srun (mpirun ends the job on TERM
// instead of forwarding it); chain_length >= 1; max_requeues >= 0; paths absolute; no value
// holds a control character (each goes on one line of the script; a line break would start
// a command of its own).
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace llmpi {

enum class Launcher { srun, mpirun };

struct SlurmResources {
  int64_t nodes = 1;
  int64_t tasks_per_node = 0;  // MPI ranks per node (0 before submit derives it)
  int64_t gpus_per_task = 0;   // 0: no GPU request
  int64_t cpus_per_task = 0;   // 0: the site's default
  std::string partition, account, qos, constraint;  // empty: not given
  int64_t time_limit_s = 0;    // 0: the partition's default limit
};

struct BatchSpec {
  std::string job_name;
  SlurmResources res;
  std::string stop_signal = "USR1";  // without "SIG": USR1 | USR2 | TERM
  int64_t signal_margin_s = 180;     // --signal=B:<sig>@<margin>: seconds before the limit
  Launcher launcher = Launcher::srun;
  std::string srun_mpi = "pmix";     // srun --mpi=<...>
  int64_t max_requeues = 5;          // the script requeues itself at most this many times
  int64_t chain_length = 1;          // jobs in the chain (each job learns its index from
                                     // LLMPI_CHAIN_INDEX, set at submission)
  std::string workdir;               // absolute: the job's working directory (--chdir)
  std::string output;                // absolute --output pattern (%j = job id)
  std::string run_dir;               // absolute run.dir: where the watchdog leaves hang reports
  std::string llmpi_bin;             // absolute path of the llmpi binary the job runs
  std::string llmpi_version;         // `llmpi version` of that binary at submission
  std::vector<std::string> train_args;  // after `llmpi`: "train", CONFIG, --set ..., ...
  std::vector<std::pair<std::string, std::string>> env;  // exported to every rank
  std::vector<std::string> sbatch_extra;    // more #SBATCH options, verbatim
  std::vector<std::string> launcher_extra;  // more srun/mpirun options, verbatim
  std::string submitted_with;               // the submitting command line (a comment)
};

// Slurm's time formats: "M", "M:S", "H:M:S", "D-H", "D-H:M", "D-H:M:S" → seconds.
// UserError naming `what` for anything else or zero.
int64_t parse_slurm_time(const std::string& text, const std::string& what);
// Seconds → "D-HH:MM:SS" (or "HH:MM:SS" under a day), the form sbatch echoes back.
std::string format_slurm_time(int64_t seconds);

// UserError with the first problem of the spec (see the invariants above).
void validate_batch_spec(const BatchSpec& spec);

}  // namespace llmpi
