// Linear layer on the CUDA backend: cuBLASLt products (matmul.h) over row-major tensors.
// Row-major X[N, I] is, to column-major cuBLASLt, the matrix Xᵀ (I × N, ld I). Hence
//   forward  out[N,O] = in·wᵀ + bias:  outᵀ (O×N) = op_T(w: I×O) · in (I×N), bias epilogue
//   din[N,I] = dout·w:                 dinᵀ (I×N) = w (I×O) · doutᵀ (O×N)
//   dw[O,I] += doutᵀ·in:               dwᵀ (I×O) += in (I×N) · op_T(dout: O×N), f32 out, β = 1
//   dbias[O] += Σ_n dout[n, :]:        a deterministic column-sum kernel (column_sum.cuh);
//     cuBLASLt's BGRADB epilogue overwrites its output and would need an extra buffer and add
//     to honour the accumulate (+=) contract, so the kernel is simpler and as fast.
// dtypes: in, w, bias, out, din, dout bf16; dw, dbias f32.
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

}  // namespace
}  // namespace cuda

using namespace cuda;

void CudaBackend::linear_forward(const Tensor& out, const Tensor& in, const Tensor& w,
                                 const Tensor& bias) {
  const char* op = "linear_forward";
  check_device(op, "out", out);
  check_device(op, "in", in);
  check_device(op, "w", w);
  check_dtype(op, "out", out, DType::bf16);
  check_dtype(op, "in", in, DType::bf16);
  check_dtype(op, "w", w, DType::bf16);
  const op_shapes::LinearSizes z = op_shapes::linear_forward(op, out, in, w, bias);
  const int64_t N = z.N, I = z.I, O = z.O;
  if (!bias.empty()) {
    check_device(op, "bias", bias);
    check_dtype(op, "bias", bias, DType::bf16);
  }
  MatmulSpec s;
  s.trans_a = true;
  s.m = O, s.n = N, s.k = I;
  s.lda = I, s.ldb = I, s.ldd = O;
  s.bias = !bias.empty();
  matmul_->run(s, w.data, in.data, out.data, bias.data);
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
    MatmulSpec s;
    s.m = I, s.n = N, s.k = O;
    s.lda = I, s.ldb = O, s.ldd = I;
    matmul_->run(s, w.data, dout.data, din.data, nullptr);
  }
  if (!dw.empty()) {
    check_device(op, "dw", dw);
    check_dtype(op, "dw", dw, DType::f32);
    MatmulSpec s;
    s.trans_b = true;
    s.m = I, s.n = O, s.k = N;
    s.lda = I, s.ldb = O, s.ldd = I;
    s.d_f32 = true;
    s.accumulate = true;
    matmul_->run(s, in.data, dout.data, dw.data, nullptr);
  }
  if (!dbias.empty()) {
    check_device(op, "dbias", dbias);
    check_dtype(op, "dbias", dbias, DType::f32);
    column_sums<1>(stream_, dbias.ptr<float>(), nullptr, N, O,
                   BiasGrad{dout.ptr<const bf16>(), O});
  }
}

}  // namespace llmpi
