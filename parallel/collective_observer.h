#pragma once
// CollectiveObserver: told where this process communicates, so that a hang can be reported as
// "rank 3 waits in all_reduce over the dp group" (jobs/progress.h implements it for the
// watchdog). ObservedCollectives (parallel/observed_collectives.h) is the one place that calls
// it, around every operation of every group, MPI and NCCL alike:
//   enter/leave  around each call, and around Request::wait: the host is inside it (an MPI
//                collective blocks; an NCCL one only enqueues, unless it stages a host value);
//   enqueued     after a call that left work on a device (NCCL): `done` says, from any
//                thread, whether that work has finished; until then the collective is in
//                flight — the host may be blocked elsewhere (a stream synchronization)
//                while this collective waits for a peer.
// `op` and `group` are string literals or names that outlive the observer's use of them.
// enter() may block (a test hook stops a rank there); leave() and enqueued() must not.
#include <atomic>
#include <cstdint>
#include <memory>

namespace llmpi {

struct CollectiveCall {
  const char* op = nullptr;     // "all_reduce", "wait (irecv)", ...
  const char* group = nullptr;  // "dp", "tp", ...
  int64_t elements = 0;
  int64_t bytes = 0;
};

// Device work of one collective (and everything enqueued before it on the same stream).
class Completion {
 public:
  virtual ~Completion() = default;
  virtual bool done() = 0;  // thread-safe; never blocks
};

class CollectiveObserver {
 public:
  virtual ~CollectiveObserver() = default;
  virtual void enter(const CollectiveCall& call) = 0;
  virtual void leave() = 0;
  virtual void enqueued(const CollectiveCall& call, std::shared_ptr<Completion> done) = 0;
};

// Where a group's collectives find the observer: one per Topology, shared by every group built
// on it (host and device), so attaching the watchdog once reaches all of them. Null: nobody.
using ObserverSlot = std::atomic<CollectiveObserver*>;

// RAII: enter on construction, leave on destruction; nothing when observer is null.
class ObservedCollective {
 public:
  ObservedCollective(CollectiveObserver* o, const CollectiveCall& call) : o_(o) {
    if (o_) o_->enter(call);
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
