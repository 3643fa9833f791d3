#pragma once
// CudaBackend: every op of backend.h on one CUDA device and one stream, bf16 compute with
// f32 accumulation. It owns (RAII, destroyed in reverse order): the stream, the cuBLASLt
// runner (handle, workspace, per-shape plan cache), the cuDNN attention (handle, workspace,
// per-(B, T, Hq, Hkv, D) execution-plan cache; created on first use), and a pinned host
// word for reductions read back. Memory is stream-ordered (cudaMallocAsync from the
// device's default pool, whose release threshold is raised so freed blocks are cached).
// Each op checks device, dtypes and shapes first (LLMPI_CHECK), then launches; the op
// groups live in files named after them (embedding.cu, norm.cu, ...). Internal header.
#include <cuda_runtime.h>

#include <memory>

#include "backend/cuda/cuda_backend.h"
#include "backend/op_shapes.h"

namespace llmpi::cuda {

class MatmulRunner;
class CudnnAttention;
class ChunkTable;

// Stream-ordered scratch memory, freed on the backend's stream at scope exit.
class Scratch {
 public:
  Scratch(cudaStream_t s, size_t bytes);
  ~Scratch();
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  template <class T> T* as() const { return static_cast<T*>(p_); }

 private:
  cudaStream_t s_;
  void* p_ = nullptr;
};

// Argument checks shared by the op files (throw InternalError naming op and tensor); the
// shape rules are every backend's (backend/op_shapes.h).
void check_device(const char* op, const char* what, const Tensor& t);
void check_device(const char* op, std::initializer_list<std::pair<const char*, const Tensor*>> ts);
void check_dtype(const char* op, const char* what, const Tensor& t, DType want);
using op_shapes::check_numel;
using op_shapes::last_dim;
using op_shapes::row_count;
// The device pointer of an op's i32 document starts (backend.h) of n = B·T tokens, or nullptr
// when doc_start is empty. Their invariants are the caller's (checked on the host where the
// model sets them, model/transformer.h): reading them back here would synchronize.
const int32_t* checked_doc_start(const char* op, const Tensor& doc_start, int64_t n);

}  // namespace llmpi::cuda

namespace llmpi {

class CudaBackend final : public Backend {
 public:
  explicit CudaBackend(const CudaBackendOptions& options);
  ~CudaBackend() override;
  CudaBackend(const CudaBackend&) = delete;
  CudaBackend& operator=(const CudaBackend&) = delete;

  Device device() const override { return Device::cuda; }
  const char* name() const override { return "cuda"; }
  cudaStream_t stream() const { return stream_; }
  void* native_stream() const override { return stream_; }
  int64_t peak_bytes() const override;
  double peak_flops() const override { return peak_flops_; }
  double free_bytes() const override;
  const CudaBackendOptions& options() const { return options_; }

  void* raw_alloc(size_t bytes) override;
  void raw_free(void* p) override;
  void copy(const Tensor& dst, const Tensor& src) override;
  void fill(const Tensor& t, double value) override;
  void synchronize() override;
  std::unique_ptr<RecordedWork> record(const std::function<void()>& work) override;

  void add(const Tensor& out, const Tensor& a, const Tensor& b) override;
  void scale(const Tensor& t, double s) override;

  void embedding_forward(const Tensor& out, const Tensor& ids, const Tensor& table,
                         int64_t row_offset, bool accumulate) override;
  void embedding_backward(const Tensor& dtable, const Tensor& dout, const Tensor& ids,
                          int64_t row_offset) override;

  void linear_forward(const Tensor& out, const Tensor& in, const Tensor& w,
                      const Tensor& bias) override;
  void linear_backward(const Tensor& din, const Tensor& dw, const Tensor& dbias,
                       const Tensor& dout, const Tensor& in, const Tensor& w) override;
  void linear_forward_add_block(const Tensor& out, int64_t col0, const Tensor& in,
                                const Tensor& w) override;
  void linear_backward_block(const Tensor& din, const Tensor& dw, const Tensor& dout,
                             int64_t col0, const Tensor& in, const Tensor& w) override;

  void norm_forward(NormKind kind, const Tensor& out, const Tensor& mean, const Tensor& rstd,
                    const Tensor& x, const Tensor& gain, const Tensor& bias,
                    double eps) override;
  void norm_backward(NormKind kind, const Tensor& dx, const Tensor& dgain, const Tensor& dbias,
                     const Tensor& dout, const Tensor& x, const Tensor& gain,
                     const Tensor& mean, const Tensor& rstd) override;

  void add_norm_forward(NormKind kind, const Tensor& sum, const Tensor& out, const Tensor& mean,
                        const Tensor& rstd, const Tensor& a, const Tensor& b,
                        const Tensor& gain, const Tensor& bias, double eps) override;
  void norm_backward_add(NormKind kind, const Tensor& dx, const Tensor& dgain,
                         const Tensor& dbias, const Tensor& dout, const Tensor& dres,
                         const Tensor& x, const Tensor& gain, const Tensor& mean,
                         const Tensor& rstd) override;

  void linear_gelu_forward(const Tensor& out, const Tensor& pre, const Tensor& in,
                           const Tensor& w, const Tensor& bias) override;
  void linear_backward_gelu(const Tensor& din, const Tensor& dw, const Tensor& dbias,
                            const Tensor& dout, const Tensor& in, const Tensor& w,
                            const Tensor& pre) override;
  void gelu_forward(const Tensor& out, const Tensor& in) override;
  void gelu_backward(const Tensor& din, const Tensor& dout, const Tensor& in) override;
  void swiglu_forward(const Tensor& out, const Tensor& in) override;
  void swiglu_backward(const Tensor& din, const Tensor& dout, const Tensor& in) override;

  void rope(const Tensor& qkv, int64_t T, int64_t n_rot_heads, int64_t head_dim, double theta,
            int64_t pos_offset, const Tensor& doc_start, bool inverse) override;

  void attention_forward(const Tensor& out, const Tensor& lse, const Tensor& qkv, int64_t B,
                         int64_t T, int64_t Hq, int64_t Hkv, int64_t D,
                         const Tensor& doc_start) override;
  void attention_backward(const Tensor& dqkv, const Tensor& dout, const Tensor& qkv,
                          const Tensor& out, const Tensor& lse, int64_t B, int64_t T,
                          int64_t Hq, int64_t Hkv, int64_t D, const Tensor& doc_start) override;

  void row_logsumexp(const Tensor& lse, const Tensor& logits) override;
  void pick_targets(const Tensor& picked, const Tensor& logits, const Tensor& targets,
                    int64_t col_offset) override;
  void cross_entropy_backward(const Tensor& dlogits, const Tensor& logits, const Tensor& lse,
                              const Tensor& targets, const Tensor& row_scale,
                              int64_t col_offset) override;

  void nf4_dequantize(const Tensor& out, const Tensor& codes, const Tensor& scale_codes,
                      const Tensor& scale_scales, double scale_offset) override;

  double sum_squares(std::span<const Tensor> ts) override;
  void adamw_update(std::span<const AdamWSlice> slices, const AdamWHyper& h) override;

 private:
  // Whether the cuDNN path should be tried for this shape (options + cached refusals).
  cuda::CudnnAttention* cudnn_attention();

  CudaBackendOptions options_;
  int device_ = 0;
  int sm_count_ = 1;  // multiprocessors of the device (sizes resident grids)
  double peak_flops_ = 0.0;  // backend/peak_flops.h of the device's name
  cudaStream_t stream_ = nullptr;
  std::unique_ptr<cuda::MatmulRunner> matmul_;
  std::unique_ptr<cuda::CudnnAttention> cudnn_;  // created on first cuDNN attention
  // The optimizer's chunk tables, kept on the device between steps (chunk_table.h).
  std::unique_ptr<cuda::ChunkTable> squares_table_, adamw_table_;
  double* pinned_ = nullptr;                      // one pinned word for read-backs
};

}  // namespace llmpi
