#pragma once
// HostBackend: the reference backend. Every op of backend.h, in f32 (training) and f64
// (gradient checks), with Kokkos kernels on the default execution space (which must access
// host memory; see host_kernels.h) and GEMMs through CBLAS. Statistics tensors (norm
// mean/rstd, attention and loss log-sum-exp, loss row_scale) have the data's dtype here.
// Each op method checks device, dtypes and shapes with LLMPI_CHECK, then dispatches to the
// templated kernel in the file of its op group (embedding.cpp, linear.cpp, ...).
// Memory: raw_alloc is 64-byte aligned host memory; copy converts f32/f64/bf16.
#include "backend/backend.h"
#include "backend/op_shapes.h"

namespace llmpi {

class HostBackend final : public Backend {
 public:
  Device device() const override { return Device::host; }
  const char* name() const override { return "host"; }

  void* raw_alloc(size_t bytes) override;
  void raw_free(void* p) override;
  void copy(const Tensor& dst, const Tensor& src) override;
  void fill(const Tensor& t, double value) override;
  void synchronize() override;

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
};

namespace host {
// Argument checks of the host ops (throw InternalError naming the op and the tensor); the
// shapes are backend/op_shapes.h's.
void check_host(const char* op, const char* what, const Tensor& t);
void check_host(const char* op, std::initializer_list<std::pair<const char*, const Tensor*>> ts);
void check_dtype(const char* op, const char* what, const Tensor& t, DType want);
using op_shapes::check_numel;
// The i32 [B·T] document starts of an op (backend.h), checked, or nullptr when empty.
const int32_t* checked_doc_start(const char* op, const Tensor& doc_start, int64_t B, int64_t T);
}  // namespace host

}  // namespace llmpi
