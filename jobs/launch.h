#pragma once
// Launch: what jobs/ puts around one launch of `llmpi train` — one segment of a run — in the
// order the command needs it:
//   Launch(cfg, rank)   the stop signals are caught from here on (jobs/stop_signals.h), and
//                       the watchdog watches the start-up (jobs/watchdog.h); not collective
//   watch(topo)         collectives report where this rank waits (jobs/progress.h)
//   lock(dir, comm)     collective: rank 0 takes the run directory's lock (jobs/run_lock.h);
//                       UserError on every rank when a live job holds it
//   announce(run_dir)   before resuming: a `requeue` event when this is a requeued Slurm job
//                       (SLURM_RESTART_COUNT > 0, every rank), a `watchdog` event per hang
//                       report an earlier launch left (rank 0)
//   begin(...)          collective, once resumed: the per-step stop control
//                       (jobs/run_control.h)
//   control(), progress()  for the Trainer's RunOptions
//   exit_code(stopped)  0, or 75/76 when the run stopped early (jobs/exit_codes.h)
// The watchdog stops with the Launch (destruction).
#include <mpi.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "config/config.h"
#include "jobs/progress.h"
#include "jobs/run_control.h"
#include "jobs/run_dir.h"
#include "jobs/run_lock.h"
#include "jobs/stop_signals.h"
#include "jobs/watchdog.h"
#include "parallel/topology.h"

namespace llmpi {

class Launch {
 public:
  Launch(const Config& cfg, int world_rank);
  ~Launch();
  Launch(const Launch&) = delete;
  Launch& operator=(const Launch&) = delete;

  void watch(Topology& topo);
  void lock(const std::string& run_dir, MPI_Comm comm);
  void announce(const std::string& dir, RunDirectory& run_dir);
  void begin(const Config& cfg, MPI_Comm comm, int64_t param_count, RunDirectory& run_dir);
  RunControl* control() { return control_.get(); }  // after begin()
  Progress* progress() { return &progress_; }
  // The exit code of `llmpi train` for the way the run ended (stopped: none when it was not).
  static int exit_code(const StopRequest& stopped);

 private:
  int rank_;
  StopSignals signals_;
  Progress progress_;
  Watchdog watchdog_;
  Topology* topo_ = nullptr;
  std::unique_ptr<RunLock> lock_;
  std::unique_ptr<RunControl> control_;
};

}  // namespace llmpi
