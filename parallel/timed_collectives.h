#pragma once
// TimedCollectives: a Collectives decorator that clocks the communication of a step on the
// host (steady clock), for the step's time split (StepStats):
//   exposed  the wall time a caller was blocked in communication: every blocking call, the
//            posting of a non-blocking one, and the wait() (or the test()s) of its Request
//   total    the wall time in which any operation was in progress: blocking calls, and
//            non-blocking ones from their posting to the moment a test() or wait() saw them
//            complete (overlapping operations count once)
// compute = step wall time − exposed. Several decorators (one per group) share one CommClock.
// Device collectives (NCCL) are asynchronous to the host, so GroupCollectives wraps only host
// groups: on CUDA the split is not measured.
#include <chrono>
#include <memory>

#include "parallel/collectives.h"

namespace llmpi {

struct CommTimes {
  double exposed_s = 0;
  double total_s = 0;
};

// The accumulated times of the collectives that share it. Outlives their Requests.
// total: the union of the intervals in which some operation was in progress (operations of
// several buckets and groups run at once; they count once).
class CommClock {
 public:
  using Clock = std::chrono::steady_clock;
  static double since(Clock::time_point t0) {
    return std::chrono::duration<double>(Clock::now() - t0).count();
  }
  // An operation starts / ends (blocking calls: around the call; non-blocking: from its
  // posting to its observed completion).
  void begin() {
    if (active_++ == 0) busy_since_ = Clock::now();
  }
  void end() {
    if (--active_ == 0) t_.total_s += since(busy_since_);
  }
  void exposed(double s) { t_.exposed_s += s; }
  // The times since the last take(), and a fresh start (an interval still open is cut here).
  CommTimes take() {
    if (active_ > 0) {
      t_.total_s += since(busy_since_);
      busy_since_ = Clock::now();
    }
    const CommTimes t = t_;
    t_ = {};
    return t;
  }

 private:
  CommTimes t_;
  int active_ = 0;
  Clock::time_point busy_since_;
};

class TimedCollectives final : public Collectives {
 public:
  // inner and clock must outlive this object and its Requests.
  TimedCollectives(Collectives& inner, CommClock& clock) : in_(inner), clock_(clock) {}

  int rank() const override { return in_.rank(); }
  int size() const override { return in_.size(); }
  Device device() const override { return in_.device(); }

  void all_reduce(const Tensor& t, ReduceOp op = ReduceOp::sum) override;
  void reduce_scatter(const Tensor& out, const Tensor& full) override;
  void all_gather(const Tensor& full, const Tensor& in) override;
  void broadcast(const Tensor& t, int root) override;
  void send(const Tensor& t, int dst, int tag = 0) override;
  void recv(const Tensor& t, int src, int tag = 0) override;
  [[nodiscard]] Request isend(const Tensor& t, int dst, int tag = 0) override;
  [[nodiscard]] Request irecv(const Tensor& t, int src, int tag = 0) override;
  void barrier() override;
  [[nodiscard]] Request iall_reduce(const Tensor& t) override;
  [[nodiscard]] Request ireduce(const Tensor& t, int root) override;
  [[nodiscard]] Request iall_gather(const Tensor& full, const Tensor& in) override;

 private:
  template <class F>
  void blocking(F&& f);
  template <class F>
  Request started(F&& f);

  Collectives& in_;
  CommClock& clock_;
};

}  // namespace llmpi
