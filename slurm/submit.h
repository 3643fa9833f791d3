#pragma once
// `llmpi slurm submit`: from a config and Slurm options, the batch script (slurm/
// batch_script.h) is rendered, written to <run.dir>/slurm/submit-<time>.sbatch and submitted
// with sbatch — K times for a chain (job i+1 waits for job i: --dependency=afterany) — and
// every job is recorded in <run.dir>/slurm/jobs.jsonl (slurm/job_record.h).
// The rank count comes from the config's layout (tp × pp × dp): --tasks-per-node defaults to
// it divided by --nodes, and a request that does not give exactly that many ranks is refused
// with both numbers. A --signal other than the config's [run] stop_signal is passed on as
// --set run.stop_signal=..., so the script and the program agree.
#include <cstdint>
#include <string>
#include <vector>

#include "slurm/batch_spec.h"
#include "slurm/job_record.h"

namespace llmpi {

struct SubmitOptions {
  std::string config_path;
  std::vector<std::string> overrides;  // --set section.key=value
  SlurmResources res;                  // tasks_per_node 0: derived from the layout
  std::string signal;                  // "" = the config's [run] stop_signal
  int64_t signal_margin_s = 180;
  Launcher launcher = Launcher::srun;
  int64_t max_requeues = 5;
  int64_t chain = 1;
  std::vector<std::string> env;             // KEY=VALUE exported to every rank
  std::vector<std::string> sbatch_extra;    // verbatim #SBATCH options
  std::vector<std::string> launcher_extra;  // verbatim srun/mpirun options
  std::string backend;                      // "" = host, or cuda when GPUs are requested
  std::string job_name;                     // "" = llmpi-<run dir name>
  bool dry_run = false;
};

// What the submitting process knows about its surroundings (tests give their own).
struct SubmitContext {
  std::string cwd;                 // absolute: the job's working directory
  std::string llmpi_bin;           // absolute path of this llmpi
  std::string llmpi_version;       // "llmpi 0.1.0 (git abc)"
  std::vector<std::string> environ;  // KEY=VALUE of the submitting shell
  std::string command_line;        // for the script's header comment
  double now_unix = 0.0;
};

// The context of this process (cwd, /proc/self/exe, version, environment, clock).
SubmitContext current_submit_context(const std::vector<std::string>& argv);

// Reads the config (UserError for bad input) and resolves the spec. The run directory is
// made absolute against ctx.cwd and returned in run_dir.
BatchSpec make_batch_spec(const SubmitOptions& opt, const SubmitContext& ctx, std::string& run_dir);

struct SubmitResult {
  std::string run_dir;           // absolute
  std::string script_text;
  std::string script_path;       // empty for a dry run
  std::vector<JobRecord> jobs;   // empty for a dry run
};

// Renders; unless dry_run, writes the script, runs sbatch per chain job and records each.
// UserError when sbatch fails (its message included; jobs submitted before are recorded).
SubmitResult submit(const SubmitOptions& opt, const SubmitContext& ctx);

// The job id in `sbatch --parsable` output ("123" or "123;cluster"); UserError otherwise.
std::string parse_sbatch_job_id(const std::string& out);

}  // namespace llmpi
