#pragma once
// CollectiveObserver: told when this process enters and leaves a collective or a blocking
// point-to-point operation, so that a hang can be reported as "rank 3 waits in all_reduce over
// the dp group" (jobs/progress.h implements it for the watchdog). Collectives implementations
// call it around each operation when one is attached (Collectives::set_observer); `op` and
// `group` are string literals or names that outlive the call. enter() may block (a test hook
// stops a rank there); leave() must not.
#include <cstdint>

namespace llmpi {

class CollectiveObserver {
 public:
  virtual ~CollectiveObserver() = default;
  virtual void enter(const char* op, const char* group, int64_t elements) = 0;
  virtual void leave() = 0;
};

// RAII: enter on construction, leave on destruction; nothing when observer is null.
class ObservedCollective {
 public:
  ObservedCollective(CollectiveObserver* o, const char* op, const char* group, int64_t elements)
      : o_(o) {
    if (o_) o_->enter(op, group, elements);
  }
  ~ObservedCollective() {
    if (o_) o_->leave();
  }
  ObservedCollective(const ObservedCollective&) = delete;
  ObservedCollective& operator=(const ObservedCollective&) = delete;

 private:
  CollectiveObserver* o_;
};

}  // namespace llmpi
