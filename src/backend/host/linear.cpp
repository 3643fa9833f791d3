// Linear layer through CBLAS (row-major). Y = X·Wᵀ + b with X: [N, I], W: [O, I] (the
// PyTorch layout: one row per output feature), b: [O].
//   forward:  out = in · wᵀ              gemm(NoTrans, Trans), beta = 1 after broadcasting b
//   backward: din = dout · w             gemm(NoTrans, NoTrans), beta = 0 (overwrite)
//             dw += doutᵀ · in           gemm(Trans, NoTrans),   beta = 1 (accumulate)
//             dbias += Σ_n dout[n, :]    Kokkos loop over output features
// The block forms (LoRA's branches) pass the wide matrix's block as a pointer offset by col0
// with leading dimension C, and beta = 1 for every output.
// Leading dimensions are clamped to ≥ 1 so that degenerate (zero-width) shapes stay legal.
#include <cblas.h>

#include <algorithm>

#include "backend/host/host_backend.h"
#include "backend/host/host_kernels.h"

namespace llmpi {
namespace host {
namespace {

// C[M, Nc] = alpha · op(A) · op(B) + beta · C, row-major.
void gemm(bool ta, bool tb, int64_t M, int64_t Nc, int64_t K, float alpha, const float* A,
          int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
              static_cast<blasint>(M), static_cast<blasint>(Nc), static_cast<blasint>(K), alpha,
              A, static_cast<blasint>(std::max<int64_t>(lda, 1)), B,
              static_cast<blasint>(std::max<int64_t>(ldb, 1)), beta, C,
              static_cast<blasint>(std::max<int64_t>(ldc, 1)));
}
void gemm(bool ta, bool tb, int64_t M, int64_t Nc, int64_t K, double alpha, const double* A,
          int64_t lda, const double* B, int64_t ldb, double beta, double* C, int64_t ldc) {
  cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
              static_cast<blasint>(M), static_cast<blasint>(Nc), static_cast<blasint>(K), alpha,
              A, static_cast<blasint>(std::max<int64_t>(lda, 1)), B,
              static_cast<blasint>(std::max<int64_t>(ldb, 1)), beta, C,
              static_cast<blasint>(std::max<int64_t>(ldc, 1)));
}

}  // namespace

template <class T>
void linear_forward(T* out, const T* in, const T* w, const T* bias, int64_t N, int64_t I,
                    int64_t O) {
  if (N == 0 || O == 0) return;
  if (bias) {
    Kokkos::parallel_for("llmpi::host::linear_bias", Range(0, N), KOKKOS_LAMBDA(int64_t n) {
      for (int64_t o = 0; o < O; ++o) out[n * O + o] = bias[o];
    });
  }
  Kokkos::fence();  // BLAS runs outside Kokkos: order it after the kernels before it
  if (I == 0) {
    if (!bias) std::fill(out, out + N * O, T(0));
    return;
  }
  gemm(false, true, N, O, I, T(1), in, I, w, I, bias ? T(1) : T(0), out, O);
}

template <class T>
void linear_backward(T* din, T* dw, T* dbias, const T* dout, const T* in, const T* w,
                     int64_t N, int64_t I, int64_t O) {
  Kokkos::fence();
  if (din && N > 0 && I > 0) {
    if (O == 0) std::fill(din, din + N * I, T(0));
    else gemm(false, false, N, I, O, T(1), dout, O, w, I, T(0), din, I);
  }
  if (dw && N > 0 && O > 0 && I > 0) gemm(true, false, O, I, N, T(1), dout, O, in, I, T(1), dw, I);
  if (dbias && N > 0) {
    Kokkos::parallel_for("llmpi::host::linear_dbias", Range(0, O), KOKKOS_LAMBDA(int64_t o) {
      T acc = 0;
      for (int64_t n = 0; n < N; ++n) acc += dout[n * O + o];
      dbias[o] += acc;
    });
  }
}

template <class T>
void linear_forward_add_block(T* out, int64_t C, int64_t col0, const T* in, const T* w,
                              int64_t N, int64_t I, int64_t O) {
  if (N == 0 || O == 0 || I == 0) return;  // an empty sum adds nothing
  Kokkos::fence();
  gemm(false, true, N, O, I, T(1), in, I, w, I, T(1), out + col0, C);
}

template <class T>
void linear_backward_block(T* din, T* dw, const T* dout, int64_t C, int64_t col0, const T* in,
                           const T* w, int64_t N, int64_t I, int64_t O) {
  if (N == 0 || O == 0 || I == 0) return;
  Kokkos::fence();
  if (din) gemm(false, false, N, I, O, T(1), dout + col0, C, w, I, T(1), din, I);
  if (dw) gemm(true, false, O, I, N, T(1), dout + col0, C, in, I, T(1), dw, I);
}

#define LLMPI_INSTANTIATE(T)                                                                   \
  template void linear_forward<T>(T*, const T*, const T*, const T*, int64_t, int64_t, int64_t); \
  template void linear_backward<T>(T*, T*, T*, const T*, const T*, const T*, int64_t, int64_t,  \
                                   int64_t);                                                    \
  template void linear_forward_add_block<T>(T*, int64_t, int64_t, const T*, const T*, int64_t,  \
                                            int64_t, int64_t);                                  \
  template void linear_backward_block<T>(T*, T*, const T*, int64_t, int64_t, const T*,          \
                                         const T*, int64_t, int64_t, int64_t);
LLMPI_INSTANTIATE(float)
LLMPI_INSTANTIATE(double)
#undef LLMPI_INSTANTIATE

}  // namespace host

using namespace host;

void HostBackend::linear_forward(const Tensor& out, const Tensor& in, const Tensor& w,
                                 const Tensor& bias) {
  const char* op = "linear_forward";
  check_host(op, "out", out);
  check_host(op, "in", in);
  check_host(op, "w", w);
  check_dtype(op, "in", in, out.dtype);
  check_dtype(op, "w", w, out.dtype);
  if (!bias.empty()) {
    check_host(op, "bias", bias);
    check_dtype(op, "bias", bias, out.dtype);
  }
  const op_shapes::LinearSizes z = op_shapes::linear_forward(op, out, in, w, bias);
  const int64_t N = z.N, I = z.I, O = z.O;
  dispatch_float(out.dtype, op, [&](auto tag) {
    using T = decltype(tag);
    host::linear_forward<T>(out.ptr<T>(), in.ptr<const T>(), w.ptr<const T>(),
                            bias.empty() ? nullptr : bias.ptr<const T>(), N, I, O);
  });
}

void HostBackend::linear_backward(const Tensor& din, const Tensor& dw, const Tensor& dbias,
                                  const Tensor& dout, const Tensor& in, const Tensor& w) {
  const char* op = "linear_backward";
  check_host(op, "dout", dout);
  check_host(op, "in", in);
  check_host(op, "w", w);
  check_dtype(op, "in", in, dout.dtype);
  check_dtype(op, "w", w, dout.dtype);
  for (const auto& [name, t] : {std::pair{"din", &din}, {"dw", &dw}, {"dbias", &dbias}})
    if (!t->empty()) {
      check_host(op, name, *t);
      check_dtype(op, name, *t, dout.dtype);
    }
  const op_shapes::LinearSizes z = op_shapes::linear_backward(op, din, dw, dbias, dout, in, w);
  const int64_t N = z.N, I = z.I, O = z.O;
  dispatch_float(dout.dtype, op, [&](auto tag) {
    using T = decltype(tag);
    host::linear_backward<T>(din.empty() ? nullptr : din.ptr<T>(),
                             dw.empty() ? nullptr : dw.ptr<T>(),
                             dbias.empty() ? nullptr : dbias.ptr<T>(), dout.ptr<const T>(),
                             in.ptr<const T>(), w.ptr<const T>(), N, I, O);
  });
}

void HostBackend::linear_forward_add_block(const Tensor& out, int64_t col0, const Tensor& in,
                                           const Tensor& w) {
  const char* op = "linear_forward_add_block";
  for (const auto& [name, t] : {std::pair{"out", &out}, {"in", &in}, {"w", &w}}) {
    check_host(op, name, *t);
    check_dtype(op, name, *t, out.dtype);
  }
  const op_shapes::LinearSizes z = op_shapes::linear_block(op, "out", out, col0, in, w, {}, {});
  dispatch_float(out.dtype, op, [&](auto tag) {
    using T = decltype(tag);
    host::linear_forward_add_block<T>(out.ptr<T>(), op_shapes::last_dim(out), col0,
                                      in.ptr<const T>(), w.ptr<const T>(), z.N, z.I, z.O);
  });
}

void HostBackend::linear_backward_block(const Tensor& din, const Tensor& dw, const Tensor& dout,
                                        int64_t col0, const Tensor& in, const Tensor& w) {
  const char* op = "linear_backward_block";
  check_host(op, "dout", dout);
  check_host(op, "in", in);
  check_host(op, "w", w);
  check_dtype(op, "in", in, dout.dtype);
  check_dtype(op, "w", w, dout.dtype);
  for (const auto& [name, t] : {std::pair{"din", &din}, {"dw", &dw}})
    if (!t->empty()) {
      check_host(op, name, *t);
      check_dtype(op, name, *t, dout.dtype);
    }
  const op_shapes::LinearSizes z =
      op_shapes::linear_block(op, "dout", dout, col0, in, w, din, dw);
  dispatch_float(dout.dtype, op, [&](auto tag) {
    using T = decltype(tag);
    host::linear_backward_block<T>(din.empty() ? nullptr : din.ptr<T>(),
                                   dw.empty() ? nullptr : dw.ptr<T>(), dout.ptr<const T>(),
                                   op_shapes::last_dim(dout), col0, in.ptr<const T>(),
                                   w.ptr<const T>(), z.N, z.I, z.O);
  });
}

// The GELU-fused forms are, on the host, the compositions that define them (the CUDA backend
// fuses them into cuBLASLt epilogues).
void HostBackend::linear_gelu_forward(const Tensor& out, const Tensor& pre, const Tensor& in,
                                      const Tensor& w, const Tensor& bias) {
  op_shapes::linear_gelu_forward("linear_gelu_forward", out, pre, in, w, bias);
  linear_forward(pre, in, w, bias);
  gelu_forward(out, pre);
}

void HostBackend::linear_backward_gelu(const Tensor& din, const Tensor& dw, const Tensor& dbias,
                                       const Tensor& dout, const Tensor& in, const Tensor& w,
                                       const Tensor& pre) {
  op_shapes::linear_backward_gelu("linear_backward_gelu", din, dw, dbias, dout, in, w, pre);
  linear_backward(din, dw, dbias, dout, in, w);
  gelu_backward(din, din, pre);
}

}  // namespace llmpi
