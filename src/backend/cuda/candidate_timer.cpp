// CandidateTimer (candidate_timer.h).
#include "backend/cuda/candidate_timer.h"

#include "backend/cuda/cuda_check.h"
#include "core/error.h"

namespace llmpi::cuda {

CandidateTimer::CandidateTimer(cudaStream_t stream) : stream_(stream) {
  LLMPI_CUDA(cudaEventCreate(&start_));
  const cudaError_t e = cudaEventCreate(&stop_);
  if (e != cudaSuccess) {
    cudaEventDestroy(start_);
    LLMPI_CUDA(e);
  }
}

CandidateTimer::~CandidateTimer() {
  cudaEventDestroy(start_);
  cudaEventDestroy(stop_);
}

float CandidateTimer::best_ms(int reps, const std::function<bool()>& run,
                              const std::function<void()>& reset) {
  reset();
  if (!run()) return -1.f;  // warm-up
  float best = -1.f;
  for (int r = 0; r < reps; ++r) {
    reset();
    LLMPI_CUDA(cudaEventRecord(start_, stream_));
    const bool ok = run();
    LLMPI_CUDA(cudaEventRecord(stop_, stream_));
    LLMPI_CUDA(cudaEventSynchronize(stop_));
    if (!ok) return -1.f;
    float t = 0.f;
    LLMPI_CUDA(cudaEventElapsedTime(&t, start_, stop_));
    if (best < 0.f || t < best) best = t;
  }
  return best;
}

size_t fastest(const std::vector<float>& ms) {
  size_t chosen = ms.size();
  for (size_t i = 0; i < ms.size(); ++i)
    if (ms[i] >= 0.f && (chosen == ms.size() || ms[i] < ms[chosen])) chosen = i;
  return chosen;
}

std::string timing_report(const std::vector<float>& ms, size_t chosen,
                          const std::function<std::string(size_t)>& label) {
  std::string report;
  for (size_t i = 0; i < ms.size(); ++i) {
    if (!report.empty()) report += ", ";
    report += label(i) + ": ";
    report += ms[i] < 0.f ? std::string("failed") : detail::concat(ms[i], " ms");
    if (i == chosen) report += " (chosen)";
  }
  return report;
}

}  // namespace llmpi::cuda
