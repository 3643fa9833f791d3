#pragma once
// StepGuard: the logbook's side of each training step, between the engine's compute() and
// apply(): it takes the step's (global) loss and gradient norm, agrees the spike verdict over
// every rank (an OR of the ranks' flags, so that all ranks skip or roll back together), asks
// the SpikePolicy what to do, and emits the decision's events (nonfinite, loss_spike,
// step_skipped) as RunEvents; it owns the LogbookRecorder that the trainer's rows go to. It also holds the documented test hooks of [logbook] (test_nan_grad_steps,
// test_loss_spike_steps on the last rank only; test_kill_after_steps on world rank 0).
// Collective calls (agree, the constructor) are made by every rank in the same order.
#include <mpi.h>

#include <cstdint>
#include <ostream>
#include <string>

#include "config/config.h"
#include "io/logbook_schema.h"
#include "jobs/run_dir.h"
#include "train/logbook_recorder.h"
#include "train/spike_policy.h"

namespace llmpi {

// The verdict on one step, agreed over the world.
struct AgreedVerdict {
  SpikeVerdict verdict;      // spike / nonfinite: any rank's; z-scores: the largest
  int ranks_flagged = 0;     // how many ranks flagged the step
  double loss_seen = 0.0;    // the largest loss a rank saw (test hook: ×10 on one rank)
  double peak_bytes = kNotMeasured;  // device memory peak, max over ranks
};

class StepGuard {
 public:
  // Collective over comm (opens the logbook on rank 0). min_segment: see LogbookRecorder.
  StepGuard(const Config& cfg, const LogbookSchema& schema, int64_t min_segment, MPI_Comm comm,
            std::ostream& out);

  SpikePolicy& policy() { return policy_; }
  LogbookRecorder& recorder() { return recorder_; }
  int64_t segment() const { return recorder_.segment(); }

  bool layer_stats_due(int64_t step) const;
  // Test hooks (off by default): this rank poisons its gradient / sees a spiked loss.
  bool poison_gradient(int64_t step) const;
  double loss_seen(int64_t step, double loss) const;
  // World rank 0 kills itself (SIGKILL) when `trained` reaches logbook.test_kill_after_steps;
  // the logbook is flushed first, as a periodic flush would have.
  void maybe_kill(int64_t trained);

  // Collective: the verdict on (loss, grad_norm) as this rank saw them, agreed over the world.
  AgreedVerdict agree(int64_t step, double loss, double grad_norm, double peak_bytes);
  // The events of a decision (nonfinite or loss_spike, step_skipped), emitted on every rank
  // through the run directory (the logbook's journal observes it: train/logbook_observer.h).
  void journal(RunDirectory& dir, int64_t step, const AgreedVerdict& a, const StepDecision& d,
               double grad_norm);

 private:
  LogbookSection cfg_;
  MPI_Comm comm_;
  int rank_ = 0, world_ = 1;
  SpikePolicy policy_;
  LogbookRecorder recorder_;
};

std::string action_name(StepAction a);

}  // namespace llmpi
