#pragma once
// CudaOpClock: the device clock of TimingBackend (backend/timing_backend.h) for the CUDA
// backend. mark() records a CUDA event on the backend's stream (no host wait, so profiled
// ops keep their device timing); ms_between() waits for the later event and reads the
// elapsed time. Owns its events (destroyed by clear() and the destructor). Include only where
// LLMPI_HAVE_CUDA is defined; it pulls in no CUDA header.
#include <vector>

#include "backend/timing_backend.h"

namespace llmpi {

class CudaOpClock final : public OpClock {
 public:
  // be: a CUDA backend (its native_stream() is the stream the events go on).
  explicit CudaOpClock(Backend& be);
  ~CudaOpClock() override;
  CudaOpClock(const CudaOpClock&) = delete;
  CudaOpClock& operator=(const CudaOpClock&) = delete;

  int64_t mark() override;
  double ms_between(int64_t a, int64_t b) override;
  void clear() override;

 private:
  void* stream_;              // cudaStream_t
  std::vector<void*> events_;  // cudaEvent_t, owned
};

}  // namespace llmpi
