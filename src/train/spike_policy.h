#pragma once
// SpikePolicy: what training does about a step ([logbook] keys, docs/config.md):
//   the step's data was skipped by an earlier rollback      → skip_data (no forward at all)
//   verdict non-finite                                      → nonfinite_action (skip | rollback)
//   verdict spike (finite values)                           → spike_action (log | skip | rollback)
//   otherwise                                               → apply
// A rollback reloads the newest checkpoint c before the spike step s and skips the data of
// steps max(c + 1, s − rollback_skip_steps + 1) .. s (the steps still count: the LR schedule
// and the data order go on; their updates are simply not made). Without a checkpoint before
// s, a rollback becomes a skip. Every skip or rollback counts toward max_consecutive; the
// count restarts when a step beyond the furthest one trained so far completes normally, so a
// rollback that keeps meeting new spikes, or a run of skipped updates, ends the run with a
// UserError instead of looping.
// The whole state (skipped steps, the count, the furthest step, the detector's window) is the
// RunState a checkpoint carries, so a resume makes exactly the decisions of the uninterrupted
// run. Pure: no MPI (the verdict given to decide() is already agreed over the ranks).
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "config/config.h"
#include "io/checkpoint.h"
#include "train/spike_detector.h"

namespace llmpi {

enum class StepAction : uint8_t { apply, log_spike, skip, rollback, skip_data };

struct StepDecision {
  StepAction action = StepAction::apply;
  std::string reason;  // for the journal: "non-finite gradient", "loss spike", ...
};

class SpikePolicy {
 public:
  explicit SpikePolicy(const LogbookSection& cfg);

  // True when a rollback skipped this step's data.
  bool data_skipped(int64_t step) const { return skipped_.count(step) > 0; }
  // The detector's verdict on this step's (already agreed) values.
  SpikeVerdict check(double loss, double grad_norm) const { return detector_.check(loss, grad_norm); }
  // The action for step `step` given its verdict. `checkpoint_before`: the newest valid
  // checkpoint step < step, or -1. Updates the counters; UserError past max_consecutive.
  StepDecision decide(int64_t step, const SpikeVerdict& v, int64_t checkpoint_before);
  // After step `step` ran with decision `d`: an applied step's values enter the window, and a
  // step that trained (apply or log_spike) beyond the furthest one restarts the count.
  void completed(int64_t step, const StepDecision& d, double loss, double grad_norm);
  // After a rollback to `checkpoint_step` for the spike at `spike_step`: the window of steps
  // whose data is now skipped (ascending), added to the skipped set.
  std::vector<int64_t> skip_window(int64_t spike_step, int64_t checkpoint_step);

  // Checkpoint state: save(); restore() on resume — the checkpoint's state, merged with the
  // run directory's rollback record when a rollback happened after that checkpoint was
  // written (its skipped steps are added, its counters win when it got further); and
  // restore_window() after a rollback, which takes only the detector's window from the
  // checkpoint rolled back to (the skipped steps and counters go on).
  RunState save(int64_t segment) const;
  void restore(const RunState& checkpoint, const std::optional<RunState>& record);
  void restore_window(const RunState& checkpoint);
  const std::set<int64_t>& skipped_steps() const { return skipped_; }
  int64_t consecutive() const { return consecutive_; }

 private:
  LogbookSection cfg_;
  SpikeDetector detector_;
  std::set<int64_t> skipped_;
  int64_t consecutive_ = 0;
  int64_t furthest_ = 0;
};

// The rollback record of a run directory, <run_dir>/rollbacks.json: the RunState (without the
// detector's window) as of the latest rollback, written atomically by rank 0 at each
// rollback, so that a run killed before its next checkpoint resumes with the same skipped
// data and counters. Missing → nullopt; a malformed file is a UserError naming it.
std::optional<RunState> read_rollback_record(const std::string& run_dir);
void write_rollback_record(const std::string& run_dir, const RunState& state);
void remove_rollback_record(const std::string& run_dir);

}  // namespace llmpi
