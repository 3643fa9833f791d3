#pragma once
// CapturedGraph: stream work recorded once into a CUDA graph and replayed with launch(), for
// the benchmark's measurement of launch overhead (llmpi_gpu_bench --graph). RAII over the
// graph and its executable instance. The recorded work must not synchronize, read back or
// copy from pageable host memory; its kernel arguments (pointers, scalars) are frozen at
// capture. A failed capture ends the capture, leaves the stream usable and throws
// InternalError naming the CUDA error.
#include <cuda_runtime.h>

#include <string>
#include <utility>

#include "core/error.h"

namespace llmpi {

class CapturedGraph {
 public:
  template <class Record>
  CapturedGraph(cudaStream_t stream, Record&& record) {
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
  ~CapturedGraph() {
    if (exec_) cudaGraphExecDestroy(exec_);
    if (graph_) cudaGraphDestroy(graph_);
  }
  CapturedGraph(const CapturedGraph&) = delete;
  CapturedGraph& operator=(const CapturedGraph&) = delete;

  void launch(cudaStream_t stream) const { check(cudaGraphLaunch(exec_, stream), "launch"); }

 private:
  static void check(cudaError_t e, const char* what) {
    if (e == cudaSuccess) return;
    cudaGetLastError();
    throw InternalError(std::string("CUDA graph ") + what + ": " + cudaGetErrorString(e));
  }
  cudaGraph_t graph_ = nullptr;
  cudaGraphExec_t exec_ = nullptr;
};

}  // namespace llmpi
