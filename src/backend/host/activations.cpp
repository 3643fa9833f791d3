// Pointwise MLP activations.
//   GELU (tanh approximation, as GPT-2): y = ½x(1 + tanh(u)), u = √(2/π)(x + 0.044715x³);
//     dy/dx = ½(1 + tanh u) + ½x(1 - tanh²u)·√(2/π)(1 + 3·0.044715x²).  in, out: [N, F].
//   SwiGLU: in[N, 2F] = [gate | up] per row, out[N, F] = silu(gate)·up, silu(g) = g·σ(g);
//     d gate = dout·up·σ(g)(1 + g(1 - σ(g))),  d up = dout·silu(g).
// Input grads are overwritten. Each element is read before the same element is written, so
// din may alias in (and, for GELU, dout).
#include <cmath>

#include "backend/host/host_backend.h"
#include "backend/host/host_kernels.h"

namespace llmpi {
namespace host {

namespace {
constexpr double kSqrt2OverPi = 0.7978845608028654;
constexpr double kGeluCubic = 0.044715;
}  // namespace

template <class T>
void gelu_forward(T* out, const T* in, int64_t n) {
  Kokkos::parallel_for("llmpi::host::gelu_forward", Range(0, n), KOKKOS_LAMBDA(int64_t i) {
    const T x = in[i];
    const T u = T(kSqrt2OverPi) * (x + T(kGeluCubic) * x * x * x);
    out[i] = T(0.5) * x * (T(1) + std::tanh(u));
  });
}

template <class T>
void gelu_backward(T* din, const T* dout, const T* in, int64_t n) {
  Kokkos::parallel_for("llmpi::host::gelu_backward", Range(0, n), KOKKOS_LAMBDA(int64_t i) {
    const T x = in[i];
    const T u = T(kSqrt2OverPi) * (x + T(kGeluCubic) * x * x * x);
    const T t = std::tanh(u);
    const T du = T(kSqrt2OverPi) * (T(1) + T(3 * kGeluCubic) * x * x);
    din[i] = dout[i] * (T(0.5) * (T(1) + t) + T(0.5) * x * (T(1) - t * t) * du);
  });
}

template <class T>
void swiglu_forward(T* out, const T* in, int64_t N, int64_t F) {
  Kokkos::parallel_for("llmpi::host::swiglu_forward", Range(0, N), KOKKOS_LAMBDA(int64_t n) {
    const T* gate = in + n * 2 * F;
    const T* up = gate + F;
    T* o = out + n * F;
    for (int64_t f = 0; f < F; ++f) {
      const T g = gate[f];
      o[f] = g / (T(1) + std::exp(-g)) * up[f];
    }
  });
}

template <class T>
void swiglu_backward(T* din, const T* dout, const T* in, int64_t N, int64_t F) {
  Kokkos::parallel_for("llmpi::host::swiglu_backward", Range(0, N), KOKKOS_LAMBDA(int64_t n) {
    const T* gate = in + n * 2 * F;
    const T* up = gate + F;
    const T* d = dout + n * F;
    T* dgate = din + n * 2 * F;
    T* dup = dgate + F;
    for (int64_t f = 0; f < F; ++f) {
      const T g = gate[f], u = up[f], dy = d[f];
      const T sig = T(1) / (T(1) + std::exp(-g));
      dgate[f] = dy * u * sig * (T(1) + g * (T(1) - sig));
      dup[f] = dy * g * sig;
    }
  });
}

#define LLMPI_INSTANTIATE(T)                                                 \
  template void gelu_forward<T>(T*, const T*, int64_t);                      \
  template void gelu_backward<T>(T*, const T*, const T*, int64_t);           \
  template void swiglu_forward<T>(T*, const T*, int64_t, int64_t);           \
  template void swiglu_backward<T>(T*, const T*, const T*, int64_t, int64_t);
LLMPI_INSTANTIATE(float)
LLMPI_INSTANTIATE(double)
#undef LLMPI_INSTANTIATE

}  // namespace host

using namespace host;

void HostBackend::gelu_forward(const Tensor& out, const Tensor& in) {
  const char* op = "gelu_forward";
  check_host(op, "out", out);
  check_host(op, "in", in);
  check_dtype(op, "in", in, out.dtype);
  check_numel(op, "in", in, out.numel());
  dispatch_float(out.dtype, op, [&](auto tag) {
    using T = decltype(tag);
    host::gelu_forward<T>(out.ptr<T>(), in.ptr<const T>(), out.numel());
  });
}

void HostBackend::gelu_backward(const Tensor& din, const Tensor& dout, const Tensor& in) {
  const char* op = "gelu_backward";
  check_host(op, "din", din);
  check_host(op, "dout", dout);
  check_host(op, "in", in);
  check_dtype(op, "dout", dout, din.dtype);
  check_dtype(op, "in", in, din.dtype);
  check_numel(op, "dout", dout, din.numel());
  check_numel(op, "in", in, din.numel());
  dispatch_float(din.dtype, op, [&](auto tag) {
    using T = decltype(tag);
    host::gelu_backward<T>(din.ptr<T>(), dout.ptr<const T>(), in.ptr<const T>(), din.numel());
  });
}

void HostBackend::swiglu_forward(const Tensor& out, const Tensor& in) {
  const char* op = "swiglu_forward";
  check_host(op, "out", out);
  check_host(op, "in", in);
  check_dtype(op, "in", in, out.dtype);
  const int64_t F = last_dim(out), N = row_count(out);
  LLMPI_CHECK(last_dim(in) == 2 * F, op, ": in ", in.shape.str(), " is not [N, 2·", F, "]");
  check_numel(op, "in", in, N * 2 * F);
  dispatch_float(out.dtype, op, [&](auto tag) {
    using T = decltype(tag);
    host::swiglu_forward<T>(out.ptr<T>(), in.ptr<const T>(), N, F);
  });
}

void HostBackend::swiglu_backward(const Tensor& din, const Tensor& dout, const Tensor& in) {
  const char* op = "swiglu_backward";
  check_host(op, "din", din);
  check_host(op, "dout", dout);
  check_host(op, "in", in);
  check_dtype(op, "dout", dout, din.dtype);
  check_dtype(op, "in", in, din.dtype);
  const int64_t F = last_dim(dout), N = row_count(dout);
  LLMPI_CHECK(last_dim(in) == 2 * F, op, ": in ", in.shape.str(), " is not [N, 2·", F, "]");
  check_numel(op, "in", in, N * 2 * F);
  check_numel(op, "din", din, N * 2 * F);
  dispatch_float(din.dtype, op, [&](auto tag) {
    using T = decltype(tag);
    host::swiglu_backward<T>(din.ptr<T>(), dout.ptr<const T>(), in.ptr<const T>(), N, F);
  });
}

}  // namespace llmpi
