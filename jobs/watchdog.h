#pragma once
// Watchdog: a thread per rank that ends the job when this rank makes no progress — stays in
// one phase (jobs/progress.h), or in one unit of a phase that advances per unit (rank 0's
// eval-prompt tokens), longer than that phase's limit; a rank waiting for a peer's timed work
// (the other ranks during the eval prompts) is not timed:
//   limit(startup) = [watchdog] startup_timeout
//   limit(step), limit(eval) = max(step_timeout, factor × longest step / validation seen)
//   limit(save) = max(save_timeout, factor × longest save seen);   idle: no limit
// On a hang it (1) prints the rank's position on stderr — step, phase, time in it, the
// collective it waits in (op, group, size) and, on a GPU, the oldest device (NCCL)
// collective still in flight with the step that enqueued it; (2) writes the same as a hang report,
// <run.dir>/hangs/rank-<R>.json (plain POSIX I/O: the main thread may hold HDF5 or MPI, so
// neither is touched), which the next launch journals as `watchdog` events
// (take_hang_reports); (3) after a grace period that lets the other ranks report as well,
// ends the process with exit code 79 (jobs/exit_codes.h); srun --kill-on-bad-exit / mpiexec
// then end the other ranks. So a hang never lasts until the wall-clock limit.
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "config/config.h"
#include "jobs/run_events.h"
#include "jobs/progress.h"

namespace llmpi {

// The limit of phase p given the longest completed one (0 = none yet); 0 = no limit.
double watchdog_limit(const WatchdogSection& w, Phase p, double longest_s);

struct HangReport {
  int rank = 0;
  std::string host;
  long pid = 0;
  int64_t step = 0;
  Phase phase = Phase::startup;
  double stalled_s = 0.0, limit_s = 0.0;
  std::string op, group;  // empty when not inside a collective
  int64_t elements = 0, bytes = 0;
  double op_s = 0.0;
  // The oldest device collective enqueued and not finished (device_op empty: none).
  std::string device_op, device_group;
  int64_t device_elements = 0, device_bytes = 0, device_step = 0;
  double device_s = 0.0;
  double time_unix = 0.0;
  std::string slurm_job;  // SLURM_JOB_ID, if any

  std::string message() const;  // the stderr line
  nlohmann::json to_json() const;
};

class Watchdog {
 public:
  // Called on the watchdog thread with the report; the default writes it (stderr, hang
  // report file) and ends the process after `grace_s`. Tests pass their own.
  using OnHang = std::function<void(const HangReport&)>;

  // Starts the thread unless w.enabled is false. `run_dir` receives hang reports.
  Watchdog(const WatchdogSection& w, const Progress& progress, int rank, std::string run_dir,
           OnHang on_hang = {}, double grace_s = 2.0);
  ~Watchdog();  // stops and joins the thread
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

 private:
  void loop();
  void fire(const HangReport& r);

  WatchdogSection w_;
  const Progress& progress_;
  int rank_;
  std::string run_dir_, host_;
  OnHang on_hang_;
  double grace_s_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

// <run.dir>/hangs/rank-<R>.json files left by the watchdog of an earlier launch, as
// `watchdog` events (ascending rank); the files are removed once read. An unreadable file
// becomes an event that says so. Serial (rank 0).
std::vector<RunEvent> take_hang_reports(const std::string& run_dir);

}  // namespace llmpi
