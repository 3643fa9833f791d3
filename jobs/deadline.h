#pragma once
// Deadlines: when a run must have stopped and saved, and whether it must stop now.
//   deadline   the earlier of [run] deadline and the Slurm job's end time
//   must stop  after a step when  now + need >= deadline,  with
//              need = longest step + 2 × save time + [run] deadline_margin
//              (the save time is the longest measured save; before the first one, an
//              estimate from the checkpoint's size at 500 MB/s, at least 1 s)
// A stop signal that arrives when the Slurm job has at most its signal margin (the script's
// --signal=B:SIG@margin, exported as LLMPI_SIGNAL_MARGIN) plus Slurm's 60 s signal resolution
// left is the job's time limit, not a preemption: both are journaled and exit differently.
#include <cstdint>
#include <optional>
#include <string>

#include "config/config.h"

namespace llmpi {

// "YYYY-MM-DDTHH:MM" or "YYYY-MM-DDTHH:MM:SS", local time → seconds since the epoch.
std::optional<double> parse_local_time(const std::string& text);

// [run] deadline → seconds since the epoch; "" → nullopt. Durations count from start_unix:
// "45s", "90m", "2h", "1d", "1:30:00" (H:M:S). UserError naming run.deadline otherwise.
std::optional<double> parse_deadline(const std::string& text, double start_unix);

// The Slurm job's end time: SLURM_JOB_END_TIME (Slurm >= 23.02) or, from older Slurm (22.05
// has no such variable), `squeue -h -j $SLURM_JOB_ID -o %e`. nullopt outside a job, for a job
// without a limit, or when squeue does not answer (then *note says why).
std::optional<double> slurm_job_end_time(std::string* note = nullptr);

struct Deadline {
  double at_unix = 0.0;  // 0: none
  std::string source;    // "[run] deadline" or "Slurm job <id> end time"
  bool slurm = false;    // the Slurm job's end time (it decides whether a signal is a timeout)
  explicit operator bool() const { return at_unix > 0.0; }
};

// The earlier of the two (either may be absent).
Deadline earliest_deadline(std::optional<double> configured, std::optional<double> slurm_end,
                           const std::string& slurm_job_id);

struct StopBudget {
  double longest_step_s = 0.0;
  double save_s = 1.0;      // the longest measured save, or the estimate
  double margin_s = 30.0;   // [run] deadline_margin
  double need() const { return longest_step_s + 2.0 * save_s + margin_s; }
};

// The save-time estimate before any save was measured.
double estimated_save_s(int64_t checkpoint_bytes);

bool must_stop_for(const Deadline& d, double now_unix, const StopBudget& b);

// A stop signal received at signal_unix means the job's time is up (not a preemption) when the
// Slurm end time is at most `signal_margin_s` + 65 s away.
bool signal_is_timeout(const Deadline& d, double signal_unix, double signal_margin_s);
// LLMPI_SIGNAL_MARGIN (set by llmpi's batch scripts), else 180 s.
double slurm_signal_margin_s();

}  // namespace llmpi
