#pragma once
// Times interchangeable implementations of one operation (cuDNN engine configs, cuBLASLt
// algorithms) on the backend's stream, for the opt-in tuners (LLMPI_CUDNN_TUNE,
// LLMPI_GEMM_TUNE): one untimed warm-up run, then `reps` runs, each between two CUDA events
// with reset() before it, outside the timed window. The result is the best of the reps.
// Synchronizes the stream after each timed run, so it must not run under stream capture.
#include <cuda_runtime.h>

#include <functional>
#include <string>
#include <vector>

namespace llmpi::cuda {

class CandidateTimer {
 public:
  explicit CandidateTimer(cudaStream_t stream);
  ~CandidateTimer();
  CandidateTimer(const CandidateTimer&) = delete;
  CandidateTimer& operator=(const CandidateTimer&) = delete;

  // Best-of-`reps` milliseconds of run(), or -1 when run() returns false (the candidate
  // refused these operands) on any call.
  float best_ms(int reps, const std::function<bool()>& run, const std::function<void()>& reset);

 private:
  cudaStream_t stream_;
  cudaEvent_t start_ = nullptr, stop_ = nullptr;
};

// Index of the smallest non-negative entry of ms, or ms.size() when there is none.
size_t fastest(const std::vector<float>& ms);

// "<label(0)>: 1.234 ms, <label(1)>: failed, … (chosen)" — the tuners' one-line report.
std::string timing_report(const std::vector<float>& ms, size_t chosen,
                          const std::function<std::string(size_t)>& label);

}  // namespace llmpi::cuda
