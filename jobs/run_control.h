#pragma once
// RunControl: the decision, shared by every rank, to stop a run early and save.
//   local request  a stop signal (jobs/stop_signals.h) → preemption, or a timeout when it
//                  comes near the Slurm job's end; the deadline rule (jobs/deadline.h) → timeout
//   agreement      once per step, ONE MPI_Allreduce(MAX) of one integer (kind << 8 | signal):
//                  every rank gets the same answer, so all stop after the same step even when
//                  only one rank received the signal or the clocks of two nodes differ
//   after a stop   the caller saves a checkpoint synchronously and exits with exit_code():
//                  75 for a preemption, 76 for a timeout (jobs/exit_codes.h)
// Construction is collective: rank 0 asks Slurm for the job's end time and shares it.
// Journal (through the JobEventSink, rank 0): `signal` {signal, action} for a preemption,
// `timeout` {source, deadline_unix, seconds_left, needed_s[, signal]} for a timeout.
#include <mpi.h>

#include <cstdint>
#include <memory>
#include <string>

#include "config/config.h"
#include "jobs/deadline.h"
#include "jobs/job_events.h"
#include "jobs/stop_signals.h"

namespace llmpi {

enum class StopKind : int { none = 0, preemption = 1, timeout = 2 };

struct StopRequest {
  StopKind kind = StopKind::none;
  int signo = 0;  // the signal behind it; 0 for the deadline rule
  explicit operator bool() const { return kind != StopKind::none; }
  int encode() const { return int(kind) << 8 | signo; }
  static StopRequest decode(int v) { return {StopKind(v >> 8), v & 0xff}; }
};

// Collective: the request every rank agrees on (the largest encoded one).
StopRequest agree_on_stop(MPI_Comm comm, StopRequest mine);

class RunControl {
 public:
  // checkpoint_bytes sizes the save estimate until a save is measured. `log` gets the lines
  // for people (rank 0), `sink` the journal events (rank 0).
  RunControl(const Config& cfg, MPI_Comm comm, int64_t checkpoint_bytes,
             std::function<void(const std::string&)> log, JobEventSink sink);
  ~RunControl();
  RunControl(const RunControl&) = delete;
  RunControl& operator=(const RunControl&) = delete;

  // Collective, after each step: the agreed request (none: go on). On a stop, rank 0 has
  // logged and journaled it.
  StopRequest after_step(int64_t step, double step_seconds);
  // A save took this long (its write, synchronous or in the background).
  void save_measured(double seconds);

  const Deadline& deadline() const { return deadline_; }
  const StopBudget& budget() const { return budget_; }
  static int exit_code(const StopRequest& r);

 private:
  StopRequest local_request(double now) const;
  void report(const StopRequest& r, int64_t step, double now);

  MPI_Comm comm_;
  int rank_ = 0;
  std::unique_ptr<StopSignals> signals_;
  Deadline deadline_;
  StopBudget budget_;
  bool save_measured_ = false;
  double signal_margin_s_ = 180.0;
  std::function<void(const std::string&)> log_;
  JobEventSink sink_;
};

}  // namespace llmpi
