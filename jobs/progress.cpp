#include "jobs/progress.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include "core/error.h"

namespace llmpi {
namespace {

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

const char* phase_name(Phase p) {
  switch (p) {
    case Phase::startup: return "start-up";
    case Phase::step: return "step";
    case Phase::eval: return "validation";
    case Phase::save: return "checkpoint save";
    case Phase::idle: return "idle";
  }
  return "?";
}

Progress::Progress(int rank) : rank_(rank), phase_since_ns_(now_ns()), progress_ns_(now_ns()) {
  if (const char* h = std::getenv("LLMPI_TEST_HANG"); h && *h) {
    long long r = -1, s = -1;
    int used = 0;
    if (std::sscanf(h, "rank=%lld,step=%lld%n", &r, &s, &used) != 2 || h[used] != '\0' || r < 0 || s < 1)
      user_error("LLMPI_TEST_HANG: expected \"rank=R,step=S\" (R >= 0, S >= 1), got '", h, "'");
    hang_rank_ = r;
    hang_step_ = s;
  }
}

void Progress::begin(Phase p, int64_t step) {
  const int64_t now = now_ns();
  const int prev = phase_.load();
  const int64_t took = now - phase_since_ns_.load();
  if (longest_ns_[prev].load() < took) longest_ns_[prev].store(took);
  step_.store(step);
  phase_.store(int(p));
  phase_since_ns_.store(now);
  progress_ns_.store(now);
}

void Progress::advance() { progress_ns_.store(now_ns()); }

void Progress::waiting_for_peer(bool waiting) {
  progress_ns_.store(now_ns());
  waiting_.store(waiting);
}

void Progress::enter(const CollectiveCall& call) {
  const char* op = call.op;
  const char* group = call.group;
  group_.store(group);
  elements_.store(call.elements);
  bytes_.store(call.bytes);
  op_since_ns_.store(now_ns());
  op_.store(op);
  if (rank_ == hang_rank_ && step_.load() == hang_step_ && phase_.load() == int(Phase::step)) {
    std::fprintf(stderr, "llmpi: rank %d: LLMPI_TEST_HANG: stopping for good in %s over %s at step %lld\n",
                 rank_, op, group ? group : "?", (long long)hang_step_);
    std::fflush(stderr);
    for (;;) std::this_thread::sleep_for(std::chrono::seconds(1));
  }
}

void Progress::leave() { op_.store(nullptr); }

void Progress::prune() const {
  while (!in_flight_.empty() && in_flight_.front().done->done()) in_flight_.pop_front();
}

void Progress::enqueued(const CollectiveCall& call, std::shared_ptr<Completion> done) {
  if (!done) return;
  std::lock_guard<std::mutex> lock(mu_);
  prune();
  // Beyond the cap the newest go unrecorded: the oldest, the one a hang names, is kept.
  if (in_flight_.size() >= kMaxInFlight) return;
  in_flight_.push_back(
      {call, call.group ? call.group : "", step_.load(), now_ns(), std::move(done)});
}

Progress::Snapshot Progress::snapshot() const {
  const int64_t now = now_ns();
  Snapshot s;
  s.phase = Phase(phase_.load());
  s.step = step_.load();
  s.phase_s = double(now - phase_since_ns_.load()) * 1e-9;
  s.stalled_s = double(now - progress_ns_.load()) * 1e-9;
  s.waiting = waiting_.load();
  s.op = op_.load();
  if (s.op) {
    s.group = group_.load();
    s.elements = elements_.load();
    s.bytes = bytes_.load();
    s.op_s = double(now - op_since_ns_.load()) * 1e-9;
  }
  std::lock_guard<std::mutex> lock(mu_);
  prune();
  if (!in_flight_.empty()) {
    const Pending& p = in_flight_.front();
    s.device = {p.call.op, p.group, p.call.elements, p.call.bytes, p.step,
                double(now - p.since_ns) * 1e-9};
  }
  return s;
}

double Progress::longest(Phase p) const { return double(longest_ns_[int(p)].load()) * 1e-9; }

}  // namespace llmpi
