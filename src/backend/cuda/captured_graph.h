#pragma once
// CapturedGraph: the ops a callable enqueues on one stream, captured into a CUDA graph
// (without running them) and replayed with replay() — CudaBackend::record (backend.h). RAII
// over the graph and its executable instance. The captured work must not synchronize, read
// back or copy from pageable host memory; its kernel arguments (pointers, scalars) are frozen
// at capture; cudaMallocAsync/cudaFreeAsync inside it become the graph's own allocation
// nodes. A failed capture ends the capture, leaves the stream usable and throws
// InternalError naming the CUDA error.
#include <cuda_runtime.h>

#include <functional>
#include <string>

#include "backend/backend.h"
#include "core/error.h"

namespace llmpi::cuda {

class CapturedGraph final : public RecordedWork {
 public:
  CapturedGraph(cudaStream_t stream, const std::function<void()>& record) : stream_(stream) {
    check(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal), "begin capture");
    try {
      record();
    } catch (...) {
      cudaGraph_t partial = nullptr;
      cudaStreamEndCapture(stream, &partial);  // leave capture mode whatever happened
      if (partial) cudaGraphDestroy(partial);
      cudaGetLastError();
      throw;
    }
    check(cudaStreamEndCapture(stream, &graph_), "end capture");
    check(cudaGraphInstantiate(&exec_, graph_, 0), "instantiate");
  }
  ~CapturedGraph() override {
    if (exec_) cudaGraphExecDestroy(exec_);
    if (graph_) cudaGraphDestroy(graph_);
  }
  CapturedGraph(const CapturedGraph&) = delete;
  CapturedGraph& operator=(const CapturedGraph&) = delete;

  void replay() override { check(cudaGraphLaunch(exec_, stream_), "launch"); }

 private:
  static void check(cudaError_t e, const char* what) {
    if (e == cudaSuccess) return;
    cudaGetLastError();
    throw InternalError(std::string("CUDA graph ") + what + ": " + cudaGetErrorString(e));
  }
  cudaStream_t stream_;
  cudaGraph_t graph_ = nullptr;
  cudaGraphExec_t exec_ = nullptr;
};

}  // namespace llmpi::cuda
