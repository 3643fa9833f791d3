#pragma once
// Error handling for the CUDA backend's host code. Every CUDA runtime, cuBLASLt and cuDNN
// call is wrapped; the wrapper names the call, file and line.
//  - Sticky CUDA errors (illegal address, launch failure, ECC, ...) leave the context unusable:
//    the job is aborted on every rank (llmpi::abort_job), as DESIGN.md §9 requires.
//  - Every other failure (out of memory, unsupported configuration, cuDNN refusing a graph)
//    throws InternalError, which callers may catch (the attention fallback does).
// LLMPI_CUDA_LAUNCH_CHECK() after each kernel launch reports launch-configuration errors
// without synchronizing.
#include <cublasLt.h>
#include <cuda_runtime.h>
#include <cudnn.h>

namespace llmpi::cuda {

[[noreturn]] void fail_cuda(cudaError_t e, const char* call, const char* file, int line);
[[noreturn]] void fail_cublas(cublasStatus_t s, const char* call, const char* file, int line);
[[noreturn]] void fail_cudnn(cudnnStatus_t s, const char* call, const char* file, int line);

// True for the errors after which the CUDA context cannot be used any more.
bool is_sticky(cudaError_t e);

}  // namespace llmpi::cuda

#define LLMPI_CUDA(call)                                                           \
  do {                                                                             \
    const cudaError_t llmpi_e_ = (call);                                           \
    if (llmpi_e_ != cudaSuccess) ::llmpi::cuda::fail_cuda(llmpi_e_, #call, __FILE__, __LINE__); \
  } while (0)

#define LLMPI_CUBLAS(call)                                                         \
  do {                                                                             \
    const cublasStatus_t llmpi_s_ = (call);                                        \
    if (llmpi_s_ != CUBLAS_STATUS_SUCCESS)                                         \
      ::llmpi::cuda::fail_cublas(llmpi_s_, #call, __FILE__, __LINE__);             \
  } while (0)

#define LLMPI_CUDNN(call)                                                          \
  do {                                                                             \
    const cudnnStatus_t llmpi_s_ = (call);                                         \
    if (llmpi_s_ != CUDNN_STATUS_SUCCESS)                                          \
      ::llmpi::cuda::fail_cudnn(llmpi_s_, #call, __FILE__, __LINE__);              \
  } while (0)

#define LLMPI_CUDA_LAUNCH_CHECK() LLMPI_CUDA(cudaGetLastError())
