#pragma once
// Progress: where this rank is — phase, step, and the collective it is in — written by the
// main thread (and by the collectives through CollectiveObserver), read by the watchdog thread
// (jobs/watchdog.h). Lock-free: every field is an atomic; a snapshot may mix two updates, which
// only matters for a message.
//   phases   startup (from start-up to the end of the first step), step, eval, save, idle
//            (no limit: between runs, after the end). begin() ends the previous phase and
//            records its duration; longest() is the longest one seen per phase.
// Test hook (docs/slurm.md): LLMPI_TEST_HANG="rank=R,step=S" makes rank R stop for good in
// the first collective it enters during step S — one rank hung inside a collective while the
// others wait in it, the case the watchdog exists for. Off unless set.
#include <atomic>
#include <cstdint>
#include <string>

#include "parallel/collective_observer.h"

namespace llmpi {

enum class Phase : int { startup = 0, step, eval, save, idle };
inline constexpr int kPhaseCount = 5;
const char* phase_name(Phase p);

class Progress final : public CollectiveObserver {
 public:
  // rank: this process's world rank (for the test hook). Reads LLMPI_TEST_HANG; UserError for
  // a value that is not "rank=R,step=S".
  explicit Progress(int rank);

  void begin(Phase p, int64_t step);
  void enter(const char* op, const char* group, int64_t elements) override;
  void leave() override;

  struct Snapshot {
    Phase phase = Phase::startup;
    int64_t step = 0;
    double phase_s = 0.0;        // seconds in the current phase
    const char* op = nullptr;    // the collective it is in, or null
    const char* group = nullptr;
    int64_t elements = 0;
    double op_s = 0.0;           // seconds in that collective
  };
  Snapshot snapshot() const;
  // The longest completed phase p so far, in seconds (0: none yet).
  double longest(Phase p) const;

 private:
  int rank_;
  int64_t hang_rank_ = -1, hang_step_ = -1;
  std::atomic<int> phase_{int(Phase::startup)};
  std::atomic<int64_t> step_{0};
  std::atomic<int64_t> phase_since_ns_;
  std::atomic<const char*> op_{nullptr}, group_{nullptr};
  std::atomic<int64_t> elements_{0}, op_since_ns_{0};
  std::atomic<int64_t> longest_ns_[kPhaseCount] = {};
};

}  // namespace llmpi
