// CudaOpClock (see cuda_op_clock.h): CUDA events on the backend's stream.
#include "backend/cuda/cuda_op_clock.h"

#include "backend/cuda/cuda_check.h"
#include "core/error.h"

namespace llmpi {

CudaOpClock::CudaOpClock(Backend& be) : stream_(be.native_stream()) {
  LLMPI_CHECK(be.device() == Device::cuda, "CudaOpClock needs a CUDA backend, got ", be.name());
}

CudaOpClock::~CudaOpClock() { clear(); }

int64_t CudaOpClock::mark() {
  cudaEvent_t e = nullptr;
  LLMPI_CUDA(cudaEventCreate(&e));
  events_.push_back(e);
  LLMPI_CUDA(cudaEventRecord(e, static_cast<cudaStream_t>(stream_)));
  return static_cast<int64_t>(events_.size()) - 1;
}

double CudaOpClock::ms_between(int64_t a, int64_t b) {
  LLMPI_CHECK(0 <= a && a <= b && b < static_cast<int64_t>(events_.size()), "marks ", a, ", ",
              b, " of ", events_.size());
  auto ea = static_cast<cudaEvent_t>(events_[size_t(a)]);
  auto eb = static_cast<cudaEvent_t>(events_[size_t(b)]);
  LLMPI_CUDA(cudaEventSynchronize(eb));
  float ms = 0;
  LLMPI_CUDA(cudaEventElapsedTime(&ms, ea, eb));
  return static_cast<double>(ms);
}

void CudaOpClock::clear() {
  for (void* e : events_) cudaEventDestroy(static_cast<cudaEvent_t>(e));  // not sticky: ignore
  events_.clear();
}

}  // namespace llmpi
