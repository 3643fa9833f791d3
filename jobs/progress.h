#pragma once
// Progress: where this rank is — phase, step, the collective it is in, and the oldest device
// collective still in flight — written by the main thread (and by the collectives through
// CollectiveObserver), read by the watchdog thread (jobs/watchdog.h). The host position is
// lock-free (atomics; a snapshot may mix two updates, which only matters for a message); the
// device collectives in flight are a FIFO under a mutex (at most kMaxInFlight recorded; the
// oldest is the one a hang names, and stream order completes them oldest first).
//   phases   startup (from start-up to the end of the first step), step, eval, save, idle
//            (no limit: between runs, after the end). begin() ends the previous phase and
//            records its duration; longest() is the longest one seen per phase.
//   progress the watchdog times the stretch without progress: from begin(), or from the last
//            advance() inside a phase of many small units (rank 0's eval-prompt tokens).
//            While waiting_for_peer(true) — this rank only waits for work another rank does and
//            whose own watchdog times it per unit (the eval prompts: world rank 0 generates,
//            the others wait in the next collective) — this rank is not timed; a hang there
//            ends the job through the working rank's watchdog.
// Test hook (docs/slurm.md): LLMPI_TEST_HANG="rank=R,step=S" makes rank R stop for good in
// the first collective it enters during step S — one rank hung inside a collective while the
// others wait in it, the case the watchdog exists for. Off unless set.
#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
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
  // Progress inside the current phase: the watchdog's clock starts again. The phase's
  // duration (longest()) still counts from begin().
  void advance();
  // true: this rank waits for a peer's timed work and is not timed (see above); false: timed
  // again, from now.
  void waiting_for_peer(bool waiting);
  void enter(const CollectiveCall& call) override;
  void leave() override;
  void enqueued(const CollectiveCall& call, std::shared_ptr<Completion> done) override;

  static constexpr size_t kMaxInFlight = 4096;

  // A device collective enqueued and not finished.
  struct InFlight {
    const char* op = nullptr;  // null: none
    std::string group;
    int64_t elements = 0, bytes = 0;
    int64_t step = 0;          // the step it was enqueued in
    double age_s = 0.0;        // seconds since it was enqueued
  };

  struct Snapshot {
    Phase phase = Phase::startup;
    int64_t step = 0;
    double phase_s = 0.0;        // seconds in the current phase
    double stalled_s = 0.0;      // seconds since begin(), advance() or the end of a wait
    bool waiting = false;        // waiting_for_peer(true): not timed
    const char* op = nullptr;    // the collective it is in, or null
    const char* group = nullptr;
    int64_t elements = 0, bytes = 0;
    double op_s = 0.0;           // seconds in that collective
    InFlight device;             // the oldest device collective in flight (op null: none)
  };
  Snapshot snapshot() const;
  // The longest completed phase p so far, in seconds (0: none yet).
  double longest(Phase p) const;

 private:
  int rank_;
  int64_t hang_rank_ = -1, hang_step_ = -1;
  std::atomic<int> phase_{int(Phase::startup)};
  std::atomic<int64_t> step_{0};
  std::atomic<int64_t> phase_since_ns_, progress_ns_;
  std::atomic<bool> waiting_{false};
  std::atomic<const char*> op_{nullptr}, group_{nullptr};
  std::atomic<int64_t> elements_{0}, bytes_{0}, op_since_ns_{0};
  std::atomic<int64_t> longest_ns_[kPhaseCount] = {};

  struct Pending {
    CollectiveCall call;
    std::string group;  // a copy: the group may be gone before the entry is
    int64_t step = 0, since_ns = 0;
    std::shared_ptr<Completion> done;
  };
  // Drops finished entries from the front; mu_ held.
  void prune() const;
  mutable std::mutex mu_;
  mutable std::deque<Pending> in_flight_;
};

}  // namespace llmpi
