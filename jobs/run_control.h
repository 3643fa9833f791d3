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
// Events (RunDirectory, on every rank): `signal` {signal, action} for a preemption, `timeout`
// {source, deadline_unix, seconds_left, needed_s[, signal]} for a time limit.
// Test hook (docs/slurm.md): LLMPI_TEST_STEP_DELAY=S makes every step S seconds longer, so that
// tests of deadlines and chains know how many steps fit in a job. Off unless set.
#include <mpi.h>

#include <cstdint>
#include <string>

#include "config/config.h"
#include "jobs/deadline.h"
#include "jobs/run_dir.h"
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
  // `signals` (installed by the caller as early as it can) and `run_dir` are not owned.
  // checkpoint_bytes sizes the save estimate until a save is measured.
  RunControl(const Config& cfg, MPI_Comm comm, int64_t checkpoint_bytes,
             const StopSignals& signals, RunDirectory& run_dir);
  RunControl(const RunControl&) = delete;
  RunControl& operator=(const RunControl&) = delete;

  // Collective, after each step: the agreed request (none: go on). On a stop, its event has
  // been emitted.
  StopRequest after_step(int64_t step, double step_seconds);
  // Collective, between the batches of a long phase (validation, DPO's reference pass, the eval
  // prompts): whether any rank has a stop request (a signal, the deadline rule). Every rank must
  // call it the same number of times (it is one MPI_Allreduce), so a phase asks once per unit of
  // work that every rank counts alike. Nothing is reported or decided here: the caller cuts the
  // phase short, and the next after_step() (or stop_before_steps()) stops the run as usual.
  bool stop_requested() const;
  // Not collective: whether this rank has a stop request of its own (a signal, the deadline
  // rule) — what it brings to the next agreement. For work between two agreements that one
  // rank does alone (world rank 0 generating an eval prompt while the others wait in the next
  // stop_requested()): the rank cuts it short, and that next stop_requested() answers true on
  // every rank, since a request once seen stays (signals are recorded, deadlines only come
  // closer). Nothing is reported.
  bool stop_pending() const;
  // Collective, when a phase before this launch's first step (DPO's reference pass) was cut
  // short by stop_requested(): the agreed request (a request once seen stays: signals are
  // recorded, deadlines only come closer), its event emitted ("stopping after step N (before
  // this launch's first step, during <phase>): ...; nothing new to save, exit 75"). No step was
  // trained, so nothing is saved; the exit code is exit_code() as after a step.
  StopRequest stop_before_steps(int64_t step, const std::string& phase);
  // A save took this long (stall + write): the budget keeps the longest.
  void save_measured(double seconds);

  const Deadline& deadline() const { return deadline_; }
  // For people, printed once by the caller: the deadline and the margin kept before it, and
  // why Slurm's end time is unknown ("" when there is nothing to say).
  const std::string& summary() const { return summary_; }
  const StopBudget& budget() const { return budget_; }
  static int exit_code(const StopRequest& r);

 private:
  StopRequest local_request(double now) const;
  // The event of a stop at `step`: `when` ("after step 7"), `then` ("saving a checkpoint, then
  // exit 75") for the line, `action` ("stop after step 7, save, exit 75") for the details.
  void report(const StopRequest& r, int64_t step, double now, const std::string& when,
              const std::string& then, const std::string& action);

  MPI_Comm comm_;
  int rank_ = 0;
  const StopSignals& signals_;
  RunDirectory& run_dir_;
  Deadline deadline_;
  StopBudget budget_;
  bool save_measured_ = false;
  double signal_margin_s_ = 180.0;
  double step_delay_s_ = 0.0;  // LLMPI_TEST_STEP_DELAY
  std::string summary_;
};

}  // namespace llmpi
