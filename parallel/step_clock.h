#pragma once
// StepClock: the one time split of a training step on this rank (StepTimes), lapped by the
// engine and its ZeRO path at the boundaries of the step's phases. A lap synchronizes the
// device, then charges the wall time since the previous lap to its phase, less the
// communication the rank waited for meanwhile (GroupCollectives' CommClock), which goes to
// comm_exposed_s. So, over the engine's compute() and apply():
//   step_s = forward_s + backward_s + optimizer_s + comm_exposed_s      (pp = 1)
//   forward_s   forward passes and losses of the micro-batches (ZeRO 3: unit gathers' compute)
//   backward_s  backward passes, tp / tied-embedding gradient syncs, the dp gradient
//               reduction's compute (overlapped with the backward, parallel/grad_reducer.h)
//   optimizer_s the global norm and clip, AdamW, the refreshed parameter copies
//   comm_total_s all communication in progress, overlapped included (>= exposed)
// pp > 1: the schedule interleaves forward and backward passes (StepPhase::schedule): all of
// it is forward_s and backward_s is NaN. Only host groups are clocked: on a device
// comm_measured is false, the comm times are 0 and each phase holds its communication.
#include <chrono>
#include <cmath>

#include "backend/backend.h"
#include "parallel/group_collectives.h"

namespace llmpi {

struct StepTimes {
  double step_s = 0.0;
  double forward_s = 0.0, backward_s = 0.0, optimizer_s = 0.0;
  double comm_exposed_s = 0.0, comm_total_s = 0.0;
  bool comm_measured = false;  // host collectives: comm_* are measured (else 0)
};

enum class StepPhase : uint8_t { forward, backward, schedule, optimizer };

class StepClock {
 public:
  StepClock(Backend& be, GroupCollectives& groups) : be_(be), groups_(groups) {}

  // A new step: the split cleared; communication since the last lap (evaluation,
  // checkpoints between steps) is not the step's.
  void start() {
    t_ = StepTimes{};
    t_.comm_measured = groups_.timed();
    resume();
  }
  // The step goes on after a pause that is not its own (the caller's decision between the
  // engine's compute() and apply()): laps count from now.
  void resume() {
    be_.synchronize();
    groups_.take_comm_times();
    last_ = Clock::now();
  }
  // The phase that ends now (see above).
  void lap(StepPhase phase) {
    be_.synchronize();
    const auto now = Clock::now();
    const double wall = std::chrono::duration<double>(now - last_).count();
    last_ = now;
    const CommTimes c = groups_.take_comm_times();
    t_.step_s += wall;
    t_.comm_exposed_s += c.exposed_s;
    t_.comm_total_s += c.total_s;
    const double compute = wall - c.exposed_s;
    switch (phase) {
      case StepPhase::forward: t_.forward_s += compute; break;
      case StepPhase::backward: t_.backward_s += compute; break;
      case StepPhase::schedule:
        t_.forward_s += compute;
        t_.backward_s = std::nan("");
        break;
      case StepPhase::optimizer: t_.optimizer_s += compute; break;
    }
  }
  const StepTimes& times() const { return t_; }

 private:
  using Clock = std::chrono::steady_clock;
  Backend& be_;
  GroupCollectives& groups_;
  StepTimes t_;
  Clock::time_point last_;
};

}  // namespace llmpi
