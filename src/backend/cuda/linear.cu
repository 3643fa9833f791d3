// Linear layer on the CUDA backend: cuBLASLt products (matmul.h) over row-major tensors.
// Row-major X[N, I] is, to column-major cuBLASLt, the matrix Xᵀ (I × N, ld I). Hence
//   forward  out[N,O] = in·wᵀ + bias:  outᵀ (O×N) = op_T(w: I×O) · in (I×N), bias epilogue
//   din[N,I] = dout·w:                 dinᵀ (I×N) = w (I×O) · doutᵀ (O×N)
//   dw[O,I] += doutᵀ·in:               dwᵀ (I×O) += in (I×N) · op_T(dout: O×N), f32 out, β = 1
//   dbias[O] += Σ_n dout[n, :]:        a deterministic column-sum kernel (column_sum.cuh);
//     cuBLASLt's BGRADB epilogue overwrites its output and would need an extra buffer and add
//     to honour the accumulate (+=) contract, so the kernel is simpler and as fast.
// GELU fused into the products (CudaFusions::gelu): linear_gelu_forward is the forward
// product with the GELU_AUX(_BIAS) epilogue (aux = pre, D = gelu(pre)); linear_backward_gelu
// is din's product with the DGELU epilogue (aux = pre). Where cuBLASLt refuses the shape or
// the fusion is off, each runs as its composition (product, then gelu_forward/backward).
// The block forms (LoRA's branches on a packed map) are the same products with the wide
// matrix's block as a pointer offset by col0, leading dimension C, and β = 1 on every output:
//   out[:, block] += in·wᵀ    (the forward spec, ldd = C)
//   din += dout[:, block]·w   (din's spec, ldb = C);  dw += dout[:, block]ᵀ·in  (ldb = C)
// dtypes: in, w, bias, out, din, dout, pre bf16; dw, dbias f32.
#include "backend/cuda/column_sum.cuh"
#include "backend/cuda/cuda_backend_impl.h"
#include "backend/cuda/matmul.h"

namespace llmpi {
namespace cuda {
namespace {

struct BiasGrad {
  const bf16* dout;
  int64_t O;
  __device__ void operator()(int64_t n, int64_t c, float (&acc)[1]) const {
    acc[0] += to_f32(dout[n * O + c]);
  }
};

// Placement and dtypes of linear_forward's tensors (the shapes: op_shapes).
void check_forward_args(const char* op, const Tensor& out, const Tensor& in, const Tensor& w,
                        const Tensor& bias) {
  check_device(op, "out", out);
  check_device(op, "in", in);
  check_device(op, "w", w);
  check_dtype(op, "out", out, DType::bf16);
  check_dtype(op, "in", in, DType::bf16);
  check_dtype(op, "w", w, DType::bf16);
  if (!bias.empty()) {
    check_device(op, "bias", bias);
    check_dtype(op, "bias", bias, DType::bf16);
  }
}

// out[N,O] = in·wᵀ (+ bias) in cuBLASLt's column-major view: outᵀ = op_T(w)·in.
MatmulSpec forward_spec(const op_shapes::LinearSizes& z, bool bias) {
  MatmulSpec s;
  s.trans_a = true;
  s.m = z.O, s.n = z.N, s.k = z.I;
  s.lda = z.I, s.ldb = z.I, s.ldd = z.O;
  s.bias = bias;
  return s;
}

// din[N,I] = dout·w in the column-major view: dinᵀ (I×N) = w (I×O) · doutᵀ (O×N); dout's
// rows are ld_dout apart (O, or C for a block).
MatmulSpec din_spec(int64_t N, int64_t I, int64_t O, int64_t ld_dout) {
  MatmulSpec s;
  s.m = I, s.n = N, s.k = O;
  s.lda = I, s.ldb = ld_dout, s.ldd = I;
  return s;
}

// dw[O,I] += doutᵀ·in: dwᵀ (I×O) += in (I×N) · op_T(dout: O×N), f32, β = 1.
MatmulSpec dw_spec(int64_t N, int64_t I, int64_t O, int64_t ld_dout) {
  MatmulSpec s;
  s.trans_b = true;
  s.m = I, s.n = O, s.k = N;
  s.lda = I, s.ldb = ld_dout, s.ldd = I;
  s.d_f32 = true;
  s.accumulate = true;
  return s;
}

}  // namespace
}  // namespace cuda

using namespace cuda;

void CudaBackend::linear_forward(const Tensor& out, const Tensor& in, const Tensor& w,
                                 const Tensor& bias) {
  const char* op = "linear_forward";
  check_forward_args(op, out, in, w, bias);
  const MatmulSpec s = forward_spec(op_shapes::linear_forward(op, out, in, w, bias), !bias.empty());
  matmul_->run(s, w.data, in.data, out.data, bias.data);
}

void CudaBackend::linear_gelu_forward(const Tensor& out, const Tensor& pre, const Tensor& in,
                                      const Tensor& w, const Tensor& bias) {
  const char* op = "linear_gelu_forward";
  check_forward_args(op, out, in, w, bias);
  check_device(op, "pre", pre);
  check_dtype(op, "pre", pre, DType::bf16);
  MatmulSpec s =
      forward_spec(op_shapes::linear_gelu_forward(op, out, pre, in, w, bias), !bias.empty());
  s.gelu = MatmulGelu::gelu_aux;
  if (options_.fused.gelu && matmul_->try_run(s, w.data, in.data, out.data, bias.data, pre.data))
    return;
  linear_forward(pre, in, w, bias);
  gelu_forward(out, pre);
}

void CudaBackend::linear_backward_gelu(const Tensor& din, const Tensor& dw, const Tensor& dbias,
                                       const Tensor& dout, const Tensor& in, const Tensor& w,
                                       const Tensor& pre) {
  const char* op = "linear_backward_gelu";
  const op_shapes::LinearSizes z =
      op_shapes::linear_backward_gelu(op, din, dw, dbias, dout, in, w, pre);
  // The fused product reads w, dout, pre and writes din before linear_backward's own checks.
  check_device(op, {{"din", &din}, {"pre", &pre}, {"dout", &dout}, {"w", &w}});
  check_dtype(op, "din", din, DType::bf16);
  check_dtype(op, "pre", pre, DType::bf16);
  check_dtype(op, "dout", dout, DType::bf16);
  check_dtype(op, "w", w, DType::bf16);
  if (options_.fused.gelu) {
    MatmulSpec s = din_spec(z.N, z.I, z.O, z.O);
    s.gelu = MatmulGelu::dgelu;
    if (matmul_->try_run(s, w.data, dout.data, din.data, nullptr, pre.data)) {
      linear_backward(Tensor{}, dw, dbias, dout, in, w);  // the parameter gradients
      return;
    }
  }
  linear_backward(din, dw, dbias, dout, in, w);
  gelu_backward(din, din, pre);
}

void CudaBackend::linear_backward(const Tensor& din, const Tensor& dw, const Tensor& dbias,
                                  const Tensor& dout, const Tensor& in, const Tensor& w) {
  const char* op = "linear_backward";
  check_device(op, "dout", dout);
  check_device(op, "in", in);
  check_device(op, "w", w);
  check_dtype(op, "dout", dout, DType::bf16);
  check_dtype(op, "in", in, DType::bf16);
  check_dtype(op, "w", w, DType::bf16);
  const op_shapes::LinearSizes z = op_shapes::linear_backward(op, din, dw, dbias, dout, in, w);
  const int64_t N = z.N, I = z.I, O = z.O;
  if (!din.empty()) {
    check_device(op, "din", din);
    check_dtype(op, "din", din, DType::bf16);
    matmul_->run(din_spec(N, I, O, O), w.data, dout.data, din.data, nullptr);
  }
  if (!dw.empty()) {
    check_device(op, "dw", dw);
    check_dtype(op, "dw", dw, DType::f32);
    matmul_->run(dw_spec(N, I, O, O), in.data, dout.data, dw.data, nullptr);
  }
  if (!dbias.empty()) {
    check_device(op, "dbias", dbias);
    check_dtype(op, "dbias", dbias, DType::f32);
    column_sums<1>(stream_, dbias.ptr<float>(), nullptr, N, O,
                   BiasGrad{dout.ptr<const bf16>(), O});
  }
}

void CudaBackend::linear_forward_add_block(const Tensor& out, int64_t col0, const Tensor& in,
                                           const Tensor& w) {
  const char* op = "linear_forward_add_block";
  check_forward_args(op, out, in, w, Tensor{});
  const op_shapes::LinearSizes z = op_shapes::linear_block(op, "out", out, col0, in, w, {}, {});
  MatmulSpec s = forward_spec(z, false);
  s.ldd = op_shapes::last_dim(out);
  s.accumulate = true;
  matmul_->run(s, w.data, in.data, out.ptr<bf16>() + col0, nullptr);
}

void CudaBackend::linear_backward_block(const Tensor& din, const Tensor& dw, const Tensor& dout,
                                        int64_t col0, const Tensor& in, const Tensor& w) {
  const char* op = "linear_backward_block";
  check_device(op, {{"dout", &dout}, {"in", &in}, {"w", &w}});
  check_dtype(op, "dout", dout, DType::bf16);
  check_dtype(op, "in", in, DType::bf16);
  check_dtype(op, "w", w, DType::bf16);
  const op_shapes::LinearSizes z =
      op_shapes::linear_block(op, "dout", dout, col0, in, w, din, dw);
  const int64_t C = op_shapes::last_dim(dout);
  const bf16* block = dout.ptr<const bf16>() + col0;
  if (!din.empty()) {
    check_device(op, "din", din);
    check_dtype(op, "din", din, DType::bf16);
    MatmulSpec s = din_spec(z.N, z.I, z.O, C);
    s.accumulate = true;
    matmul_->run(s, w.data, block, din.data, nullptr);
  }
  if (!dw.empty()) {
    check_device(op, "dw", dw);
    check_dtype(op, "dw", dw, DType::f32);
    matmul_->run(dw_spec(z.N, z.I, z.O, C), in.data, block, dw.data, nullptr);
  }
}

}  // namespace llmpi
