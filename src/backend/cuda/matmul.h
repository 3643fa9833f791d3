#pragma once
// Matrix products through cuBLASLt, with descriptors and the heuristic's algorithm cached per
// shape. Column-major view (cuBLASLt's): D[m, n] = op(A)·op(B) (+ bias[m] broadcast over
// columns) (+ D when accumulating). A and B are bf16; D is bf16 (forward, input gradients)
// or f32 (weight gradients, accumulated with beta = 1). Accumulation is f32
// (CUBLAS_COMPUTE_32F). How the row-major ops of backend.h map onto this: linear.cu.
// The cache key includes the pointers' alignment, because cuBLASLt's heuristic picks
// kernels that assume the alignment it is told (256 bytes by default).
// GELU epilogues (tanh GELU, as gelu_forward): gelu_aux stores aux = op(A)·op(B) (+ bias)
// and D = gelu(aux) (CUBLASLT_EPILOGUE_GELU_AUX[_BIAS]); dgelu reads aux and stores
// D = (op(A)·op(B)) ⊙ gelu′(aux) (CUBLASLT_EPILOGUE_DGELU). aux is bf16 with D's layout
// (leading dimension ldd, a multiple of 8). A shape the heuristic refuses is cached as
// refused: try_run returns false and the caller runs the unfused kernels.
// Algorithm: the heuristic's first by default. With `tune` (LLMPI_GEMM_TUNE), the first run of
// each plan outside stream capture times up to kTuneCandidates of the heuristic's algorithms
// on the call's own operands (D written to scratch, so an accumulating D is untouched; a
// GELU_AUX aux is written and then rewritten by the real run), keeps the fastest and prints
// one line to stderr. A timing-dependent choice: the backend never tunes deterministic runs.
#include <cublasLt.h>
#include <cuda_runtime.h>

#include <array>
#include <cstdint>
#include <map>
#include <memory>

namespace llmpi::cuda {

enum class MatmulGelu : uint8_t { none, gelu_aux, dgelu };

struct MatmulSpec {
  bool trans_a = false, trans_b = false;
  int64_t m = 0, n = 0, k = 0;
  int64_t lda = 0, ldb = 0, ldd = 0;
  bool d_f32 = false;      // D (and C) are f32; else bf16
  bool bias = false;       // bf16 bias[m] epilogue
  bool accumulate = false; // D += op(A)·op(B)
  MatmulGelu gelu = MatmulGelu::none;  // with a bf16 aux matrix (bf16 D, no accumulate)
};

class MatmulRunner {
 public:
  static constexpr int kTuneCandidates = 8;

  MatmulRunner(cudaStream_t stream, size_t workspace_bytes, bool tune = false);
  ~MatmulRunner();
  MatmulRunner(const MatmulRunner&) = delete;
  MatmulRunner& operator=(const MatmulRunner&) = delete;

  void run(const MatmulSpec& s, const void* a, const void* b, void* d, const void* bias,
           const void* aux = nullptr);
  // run, or false (nothing enqueued) when cuBLASLt has no algorithm for the spec.
  bool try_run(const MatmulSpec& s, const void* a, const void* b, void* d, const void* bias,
               const void* aux = nullptr);
  size_t cached_plans() const { return plans_.size(); }
  // Plans whose candidates were timed (tuning on; each plan at most once).
  int timed_plans() const { return timed_plans_; }

 private:
  struct Plan;
  using Key = std::array<int64_t, 16>;
  // The plan for s (built on first use), or null when cuBLASLt has none (cached as well).
  Plan* plan_for(const MatmulSpec& s, const Key& key, const void* bias, const void* aux,
                 int align_a, int align_b, int align_d);
  // Times p's candidates on these operands and keeps the fastest (see the class comment).
  void tune(Plan& p, const MatmulSpec& s, const void* a, const void* b);
  cublasStatus_t launch(const Plan& p, const cublasLtMatmulAlgo_t& algo, const MatmulSpec& s,
                        const void* a, const void* b, void* d);

  cudaStream_t stream_;
  cublasLtHandle_t handle_ = nullptr;
  void* workspace_ = nullptr;
  size_t workspace_bytes_;
  bool tune_;
  int timed_plans_ = 0;
  std::map<Key, std::unique_ptr<Plan>> plans_;
};

}  // namespace llmpi::cuda
