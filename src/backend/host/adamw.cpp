// Optimizer kernels.
//   sum_squares: Σ x² over a list of tensors (f32, f64 or bf16), accumulated in double —
//     the squared global gradient norm used for clipping.
//   adamw_update: AdamW (Loshchilov & Hutter) with decoupled weight decay, per element:
//     g = grad_scale·grad; m = β1 m + (1−β1) g; v = β2 v + (1−β2) g²
//     p −= lr·( (m/(1−β1^t)) / (sqrt(v/(1−β2^t)) + eps) + wd·p )
//   p, grad, m, v of a slice share one float dtype; arithmetic is in that dtype, with the
//   bias corrections computed once in double. A slice's optional `compute` copy receives
//   the updated param through copy() (converting, e.g. to bf16) after the update.
#include <cmath>

#include "backend/host/host_backend.h"
#include "backend/host/host_kernels.h"

namespace llmpi {
namespace host {

template <class T>
double sum_squares(const T* x, int64_t n) {
  double total = 0;
  Kokkos::parallel_reduce("llmpi::host::sum_squares", Range(0, n),
                          KOKKOS_LAMBDA(int64_t i, double& acc) {
    const double v = x[i];
    acc += v * v;
  }, total);
  return total;
}

double sum_squares_bf16(const uint16_t* x, int64_t n) {
  double total = 0;
  Kokkos::parallel_reduce("llmpi::host::sum_squares_bf16", Range(0, n),
                          KOKKOS_LAMBDA(int64_t i, double& acc) {
    const double v = bf16_to_f32(x[i]);
    acc += v * v;
  }, total);
  return total;
}

template <class T>
void adamw_update(T* p, const T* g, T* m, T* v, int64_t n, double lr, double beta1,
                  double beta2, double eps, double weight_decay, double grad_scale,
                  double bias_correction1, double bias_correction2) {
  const T b1 = static_cast<T>(beta1), b2 = static_cast<T>(beta2);
  const T lr_t = static_cast<T>(lr), eps_t = static_cast<T>(eps);
  const T wd = static_cast<T>(weight_decay), gs = static_cast<T>(grad_scale);
  const T inv_bc1 = static_cast<T>(1.0 / bias_correction1);
  const T inv_bc2 = static_cast<T>(1.0 / bias_correction2);
  Kokkos::parallel_for("llmpi::host::adamw_update", Range(0, n), KOKKOS_LAMBDA(int64_t i) {
    const T gi = gs * g[i];
    const T mi = b1 * m[i] + (T(1) - b1) * gi;
    const T vi = b2 * v[i] + (T(1) - b2) * gi * gi;
    m[i] = mi;
    v[i] = vi;
    const T mhat = mi * inv_bc1, vhat = vi * inv_bc2;
    p[i] -= lr_t * (mhat / (std::sqrt(vhat) + eps_t) + wd * p[i]);
  });
}

#define LLMPI_INSTANTIATE(T)                                                                 \
  template double sum_squares<T>(const T*, int64_t);                                         \
  template void adamw_update<T>(T*, const T*, T*, T*, int64_t, double, double, double,       \
                                double, double, double, double, double);
LLMPI_INSTANTIATE(float)
LLMPI_INSTANTIATE(double)
#undef LLMPI_INSTANTIATE

}  // namespace host

using namespace host;

double HostBackend::sum_squares(std::span<const Tensor> ts) {
  double total = 0;
  for (const Tensor& t : ts) {
    check_host("sum_squares", "tensor", t);
    const int64_t n = t.numel();
    if (n == 0) continue;
    switch (t.dtype) {
      case DType::f32: total += host::sum_squares(t.ptr<const float>(), n); break;
      case DType::f64: total += host::sum_squares(t.ptr<const double>(), n); break;
      case DType::bf16: total += sum_squares_bf16(t.ptr<const uint16_t>(), n); break;
      case DType::i32:
      case DType::u8: LLMPI_CHECK(false, "sum_squares: ", dtype_name(t.dtype), " tensor");
    }
  }
  return total;
}

void HostBackend::adamw_update(std::span<const AdamWSlice> slices, const AdamWHyper& h) {
  const char* op = "adamw_update";
  LLMPI_CHECK(h.step >= 1, op, ": step ", h.step, " is not 1-based");
  const double bc1 = 1.0 - std::pow(static_cast<double>(h.beta1), static_cast<double>(h.step));
  const double bc2 = 1.0 - std::pow(static_cast<double>(h.beta2), static_cast<double>(h.step));
  LLMPI_CHECK(bc1 > 0 && bc2 > 0, op, ": betas must be < 1 (beta1=", h.beta1, ", beta2=",
              h.beta2, ")");
  for (const AdamWSlice& s : slices) {
    check_host(op, "param", s.param);
    check_host(op, "grad", s.grad);
    check_host(op, "m", s.m);
    check_host(op, "v", s.v);
    op_shapes::adamw_slice(op, s);
    const int64_t n = s.param.numel();
    check_dtype(op, "grad", s.grad, s.param.dtype);
    check_dtype(op, "m", s.m, s.param.dtype);
    check_dtype(op, "v", s.v, s.param.dtype);
    if (n == 0) continue;
    dispatch_float(s.param.dtype, op, [&](auto tag) {
      using T = decltype(tag);
      host::adamw_update<T>(s.param.ptr<T>(), s.grad.ptr<const T>(), s.m.ptr<T>(), s.v.ptr<T>(),
                            n, h.lr, h.beta1, h.beta2, h.eps, s.weight_decay, h.grad_scale, bc1,
                            bc2);
    });
    if (s.compute.data != nullptr) {
      check_host(op, "compute", s.compute);
      copy(s.compute, s.param);
    }
  }
}

}  // namespace llmpi
