#pragma once
// `llmpi slurm status RUN_DIR`: what became of a run's Slurm jobs, from what the run directory
// holds — nothing else is needed, Slurm's commands only add the live state:
//   jobs       <run.dir>/slurm/jobs.jsonl (slurm/job_record.h), each with its state from
//              `scontrol show job` (state, restarts, exit code), else `sacct`, else unknown
//   segments   each launch of the training step, read from the jobs' output files
//              (<run.dir>/slurm/<id>.out, appended across requeues): the batch script's lines
//              ("job J on ...: chain job i of n, restart r", "requeueing job ...", the exit
//              it saw) and llmpi's ("resuming from ... at step N", "step N/M", "stopping after
//              step N: ...", watchdog reports)
//   progress   the newest checkpoint in <run.dir>/checkpoints and the last step logged, of
//              train.steps from <run.dir>/config.toml; ETA from the running segment's rate
#include <cstdint>
#include <string>
#include <vector>

#include "slurm/job_record.h"

namespace llmpi {

struct JobState {
  JobRecord record;
  std::string state = "unknown";  // RUNNING, PENDING, COMPLETED, ...; "unknown" without Slurm
  std::string reason;             // why pending, e.g. "Dependency"
  std::string exit_code;          // "0:0" as Slurm writes it; "" unknown
  int64_t restarts = -1;          // -1 unknown
};

struct Segment {
  std::string job_id;
  int64_t restart = 0;
  double start_unix = 0.0, end_unix = 0.0;  // end 0: no end seen (running, or killed)
  int64_t resumed_from = -1;                // -1: a fresh start
  int64_t first_step = -1, last_step = -1;  // the steps it logged
  std::string outcome;                      // "finished", "preempted (exit 75)", ..., "running"
  bool requeued = false;
  std::vector<std::string> notes;           // stop reasons, watchdog reports
};

struct RunStatus {
  std::string run_dir;
  int64_t total_steps = 0;                  // train.steps of config.toml (0: unknown)
  int64_t checkpoint_step = -1;             // the newest checkpoint file's step
  std::string checkpoint_path;
  double checkpoint_unix = 0.0;
  int64_t last_step = -1;                   // the last step logged by any segment
  double eta_s = -1.0;                      // -1: no estimate (nothing running)
  std::vector<JobState> jobs;
  std::vector<Segment> segments;
  int64_t requeues = 0;
};

// Parses one job's output file into its segments (in order).
std::vector<Segment> parse_job_output(const std::string& job_id, const std::string& text);

// UserError when run_dir holds no run. query_slurm = false skips scontrol/sacct.
RunStatus read_run_status(const std::string& run_dir, bool query_slurm, double now_unix);

std::string format_run_status(const RunStatus& s, double now_unix);

}  // namespace llmpi
