#pragma once
// The CUDA backend's public face: options and the factory. The backend itself (CudaBackend,
// cuda_backend_impl.h) implements every op of backend.h with bf16 activations and forward
// weights, f32 parameter gradients, statistics, master weights and optimizer state; the dtype
// of each argument is tabulated in docs/cuda.md. Include this header only where
// LLMPI_HAVE_CUDA is defined (the cuda build); it pulls in no CUDA header.
#include <memory>

#include "backend/backend.h"

namespace llmpi {

// Which fused causal attention runs.
enum class CudaAttention : uint8_t {
  automatic,  // cuDNN's fused flash attention; the own kernel where cuDNN refuses the shape
  cudnn,      // cuDNN only: an op throws InternalError when cuDNN refuses the shape
  own,        // the own flash-attention kernels (attention_own.cu)
};

// Which attention backward runs (where the forward's CudaAttention allows cuDNN).
enum class CudaAttentionBackward : uint8_t {
  automatic,  // cuDNN's fused backward where it applies and the run is not deterministic,
              // else the tensor-core kernel, else the SIMT kernel
  tc,         // the own kernels: tensor cores where D allows, else SIMT
  simt,       // the own SIMT kernels only
};

// The fused and one-pass kernels of issue 16, each switchable at run time (default on). Off,
// an op runs as before: the composition of the unfused kernels (docs/cuda.md, "Fusions").
struct CudaFusions {
  bool norm = true;    // one-pass norms; residual add fused into them (add_norm_forward,
                       // norm_backward_add); dgain/dbias from per-block partials
  bool gelu = true;    // GELU in cuBLASLt epilogues (linear_gelu_forward: GELU_AUX_BIAS,
                       // linear_backward_gelu: DGELU)
  bool swiglu = true;  // one-pass SwiGLU forward/backward on eight bf16 per access
};

struct CudaBackendOptions {
  int device = -1;                        // CUDA device ordinal; -1 keeps the current one
  CudaAttention attention = CudaAttention::automatic;
  CudaAttentionBackward attention_backward = CudaAttentionBackward::automatic;
  size_t matmul_workspace_bytes = size_t{32} << 20;  // cuBLASLt workspace (32 MiB on Hopper)
  // Bitwise reproducible runs: every op that would add in a run-dependent order (today the
  // embedding backward's atomics) takes an ordered path instead. docs/cuda.md lists the ops.
  bool deterministic = false;
  // cuDNN attention: time every engine config the heuristic offers on the first call of a
  // shape and keep the fastest (stderr names them), instead of the heuristic's first. A
  // timing-dependent choice, so never under `deterministic`.
  bool cudnn_tune = false;
  // cuBLASLt: time up to eight of the heuristic's algorithms on the first call of each matrix
  // product shape and keep the fastest (matmul.h). Timing-dependent, so never `deterministic`.
  bool gemm_tune = false;
  CudaFusions fused;

  // Defaults overridden by the environment: LLMPI_ATTENTION = auto | cudnn | own;
  // LLMPI_ATTENTION_BACKWARD = auto | tc | simt; LLMPI_DETERMINISTIC = 0 | 1;
  // LLMPI_FUSED = all (1) | none (0) | a comma-separated subset of norm, gelu, swiglu (the ones on);
  // LLMPI_CUDNN_TUNE = 0 | 1; LLMPI_GEMM_TUNE = 0 | 1.
  // A bad value is a UserError naming the variable and the accepted values.
  static CudaBackendOptions from_env();
};

// Number of CUDA devices this process can use; 0 when there is no GPU or no driver (never
// throws), so callers can decide before touching CUDA.
int cuda_device_count();

// The CUDA backend on options.device. Throws InternalError when no device is usable.
std::unique_ptr<Backend> make_cuda_backend(const CudaBackendOptions& options =
                                               CudaBackendOptions::from_env());

}  // namespace llmpi
