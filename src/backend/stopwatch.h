#pragma once
// Stopwatch: wall-clock laps of work queued on a backend. lap() waits for the backend
// (synchronize: a device's queued kernels count toward the lap that queued them) and returns
// the seconds since construction or the previous lap.
#include <chrono>

#include "backend/backend.h"

namespace llmpi {

class Stopwatch {
 public:
  explicit Stopwatch(Backend& be) : be_(be), last_(Clock::now()) {}
  double lap() {
    be_.synchronize();
    const auto now = Clock::now();
    const double s = std::chrono::duration<double>(now - last_).count();
    last_ = now;
    return s;
  }

 private:
  using Clock = std::chrono::steady_clock;
  Backend& be_;
  Clock::time_point last_;
};

}  // namespace llmpi
