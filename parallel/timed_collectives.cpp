// TimedCollectives (see timed_collectives.h): every call forwarded, its time on the CommClock.
#include "parallel/timed_collectives.h"

namespace llmpi {

namespace {

// A Request in flight: its completion, seen by test() or wait(), ends the operation; the
// time wait() and test() take is exposed (MPI progress inside test() is the caller's time).
struct TimedRequest final : Request::Impl {
  Request inner;
  CommClock* clock = nullptr;

  void wait() override {
    if (!inner.pending()) return;
    const auto w0 = CommClock::Clock::now();
    inner.wait();
    clock->exposed(CommClock::since(w0));
    clock->end();
  }
  bool test() override {
    if (!inner.pending()) return true;
    const auto w0 = CommClock::Clock::now();
    const bool done = inner.test();
    clock->exposed(CommClock::since(w0));
    if (done) clock->end();
    return done;
  }
};

}  // namespace

template <class F>
void TimedCollectives::blocking(F&& f) {
  const auto t0 = CommClock::Clock::now();
  clock_.begin();
  f();
  clock_.end();
  clock_.exposed(CommClock::since(t0));
}

template <class F>
Request TimedCollectives::started(F&& f) {
  const auto t0 = CommClock::Clock::now();
  clock_.begin();
  Request r = f();
  clock_.exposed(CommClock::since(t0));  // posting it blocks the caller
  if (!r.pending()) {
    clock_.end();
    return r;
  }
  auto impl = std::make_unique<TimedRequest>();
  impl->inner = std::move(r);
  impl->clock = &clock_;
  return Request(std::move(impl));
}

void TimedCollectives::all_reduce(const Tensor& t, ReduceOp op) {
  blocking([&] { in_.all_reduce(t, op); });
}
void TimedCollectives::reduce_scatter(const Tensor& out, const Tensor& full) {
  blocking([&] { in_.reduce_scatter(out, full); });
}
void TimedCollectives::all_gather(const Tensor& full, const Tensor& in) {
  blocking([&] { in_.all_gather(full, in); });
}
void TimedCollectives::broadcast(const Tensor& t, int root) {
  blocking([&] { in_.broadcast(t, root); });
}
void TimedCollectives::send(const Tensor& t, int dst, int tag) {
  blocking([&] { in_.send(t, dst, tag); });
}
void TimedCollectives::recv(const Tensor& t, int src, int tag) {
  blocking([&] { in_.recv(t, src, tag); });
}
void TimedCollectives::barrier() {
  blocking([&] { in_.barrier(); });
}
Request TimedCollectives::isend(const Tensor& t, int dst, int tag) {
  return started([&] { return in_.isend(t, dst, tag); });
}
Request TimedCollectives::irecv(const Tensor& t, int src, int tag) {
  return started([&] { return in_.irecv(t, src, tag); });
}
Request TimedCollectives::iall_reduce(const Tensor& t) {
  return started([&] { return in_.iall_reduce(t); });
}
Request TimedCollectives::ireduce(const Tensor& t, int root) {
  return started([&] { return in_.ireduce(t, root); });
}
Request TimedCollectives::iall_gather(const Tensor& full, const Tensor& in) {
  return started([&] { return in_.iall_gather(full, in); });
}

}  // namespace llmpi
