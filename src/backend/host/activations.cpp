// Pointwise MLP activations, and the f32 exp they share with attention.
//   GELU (tanh approximation, as GPT-2): y = ½x(1 + tanh(u)), u = √(2/π)(x + 0.044715x³);
//     dy/dx = ½(1 + tanh u) + ½x(1 - tanh²u)·√(2/π)(1 + 3·0.044715x²).  in, out: [N, F].
//     In f32 both use ½(1 + tanh u) = σ(2u) = 1/(1 + e^(−2u)) and ½(1 − tanh²u) =
//     2σ(1 − σ): one exp (a branch-free polynomial, vectorized) per element, no tanh. f64 keeps
//     std::tanh: it is the reference the f32 path and the gradient checks are held to.
//   SwiGLU: in[N, 2F] = [gate | up] per row, out[N, F] = silu(gate)·up, silu(g) = g·σ(g);
//     d gate = dout·up·σ(g)(1 + g(1 - σ(g))),  d up = dout·silu(g).
// Input grads are overwritten. Each element is read before the same element is written, so
// din may alias in (and, for GELU, dout).
#include <algorithm>
#include <bit>
#include <cmath>
#include <type_traits>

#include "backend/host/host_backend.h"
#include "backend/host/host_kernels.h"

namespace llmpi {
namespace host {

namespace {
constexpr double kSqrt2OverPi = 0.7978845608028654;
constexpr double kGeluCubic = 0.044715;

// e^x in f32 without branches, so that loops over it vectorize: x = k·ln2 + r with k integer
// (rounded by the 1.5·2²³ shifter) and |r| ≤ ln2/2 (ln2 split in two for an exact k·ln2_hi),
// e^r by its degree-7 Taylor polynomial (truncation < 1e-8 relative), 2^k put in the exponent
// bits. ≤ 2 ulp for x in [−87, 88]; 0 below −87 (true value < 2e−38), e^88 above 88.
inline float exp_f32(float x) {
  constexpr float kLog2e = 1.44269504088896341f, kLn2Hi = 0.693359375f,
                  kLn2Lo = -2.12194440e-4f, kShifter = 12582912.0f;
  const float xc = std::min(std::max(x, -87.0f), 88.0f);
  const float kf = (xc * kLog2e + kShifter) - kShifter;
  const float r = (xc - kf * kLn2Hi) - kf * kLn2Lo;
  float p = 1.f / 5040;
  p = p * r + 1.f / 720;
  p = p * r + 1.f / 120;
  p = p * r + 1.f / 24;
  p = p * r + 1.f / 6;
  p = p * r + 0.5f;
  p = p * r + 1.f;
  p = p * r + 1.f;
  const float two_k = std::bit_cast<float>((static_cast<int32_t>(kf) + 127) << 23);
  return x < -87.0f ? 0.0f : p * two_k;
}

// Elements per Kokkos work item of the f32 GELU loops, and per vector block inside one: each
// block is copied to locals first, so the compiler needs no alias check between in and out
// (which may be the same array) to vectorize it.
constexpr int64_t kChunk = 4096;
constexpr int64_t kLanes = 16;

// With e = e^(−2u): σ(2u) = ½(1 + tanh u) = 1/(1 + e), and 1 − σ is taken as e·σ, which
// avoids the cancellation of 1 − σ where σ rounds to 1 (x ≳ 4).
inline float gelu_u(float x) { return float(kSqrt2OverPi) * (x + float(kGeluCubic) * x * x * x); }
inline float gelu_f32(float x) { return x / (1.f + exp_f32(-2.f * gelu_u(x))); }
inline float gelu_grad_f32(float x, float dy) {
  const float e = exp_f32(-2.f * gelu_u(x));
  const float s = 1.f / (1.f + e);
  const float du = float(kSqrt2OverPi) * (1.f + float(3 * kGeluCubic) * x * x);
  return dy * (s + 2.f * x * (e * s * s) * du);
}

LLMPI_HOST_VECTOR_CLONES
void gelu_forward_f32(float* out, const float* in, int64_t n) {
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    float x[kLanes];
    for (int64_t l = 0; l < kLanes; ++l) x[l] = in[i + l];
    for (int64_t l = 0; l < kLanes; ++l) x[l] = gelu_f32(x[l]);
    for (int64_t l = 0; l < kLanes; ++l) out[i + l] = x[l];
  }
  for (; i < n; ++i) out[i] = gelu_f32(in[i]);
}

LLMPI_HOST_VECTOR_CLONES
void gelu_backward_f32(float* din, const float* dout, const float* in, int64_t n) {
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    float x[kLanes], dy[kLanes];
    for (int64_t l = 0; l < kLanes; ++l) x[l] = in[i + l];
    for (int64_t l = 0; l < kLanes; ++l) dy[l] = dout[i + l];
    for (int64_t l = 0; l < kLanes; ++l) x[l] = gelu_grad_f32(x[l], dy[l]);
    for (int64_t l = 0; l < kLanes; ++l) din[i + l] = x[l];
  }
  for (; i < n; ++i) din[i] = gelu_grad_f32(in[i], dout[i]);
}

}  // namespace

LLMPI_HOST_VECTOR_CLONES
float exp_shifted_sum(float* x, int64_t n, float shift) {
  float acc[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (int64_t l = 0; l < kLanes; ++l) {
      const float y = exp_f32(x[i + l] - shift);
      x[i + l] = y;
      acc[l] += y;
    }
  }
  float sum = 0;
  for (; i < n; ++i) {
    x[i] = exp_f32(x[i] - shift);
    sum += x[i];
  }
  for (int64_t l = 0; l < kLanes; ++l) sum += acc[l];
  return sum;
}

double exp_shifted_sum(double* x, int64_t n, double shift) {
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - shift);
    sum += x[i];
  }
  return sum;
}

template <class T>
void gelu_forward(T* out, const T* in, int64_t n) {
  if constexpr (std::is_same_v<T, float>) {
    Kokkos::parallel_for("llmpi::host::gelu_forward", Range(0, (n + kChunk - 1) / kChunk),
                         KOKKOS_LAMBDA(int64_t c) {
      gelu_forward_f32(out + c * kChunk, in + c * kChunk, std::min(kChunk, n - c * kChunk));
    });
  } else {
    Kokkos::parallel_for("llmpi::host::gelu_forward", Range(0, n), KOKKOS_LAMBDA(int64_t i) {
      const T x = in[i];
      const T u = T(kSqrt2OverPi) * (x + T(kGeluCubic) * x * x * x);
      out[i] = T(0.5) * x * (T(1) + std::tanh(u));
    });
  }
}

template <class T>
void gelu_backward(T* din, const T* dout, const T* in, int64_t n) {
  if constexpr (std::is_same_v<T, float>) {
    Kokkos::parallel_for("llmpi::host::gelu_backward", Range(0, (n + kChunk - 1) / kChunk),
                         KOKKOS_LAMBDA(int64_t c) {
      const int64_t i0 = c * kChunk;
      gelu_backward_f32(din + i0, dout + i0, in + i0, std::min(kChunk, n - i0));
    });
  } else {
    Kokkos::parallel_for("llmpi::host::gelu_backward", Range(0, n), KOKKOS_LAMBDA(int64_t i) {
      const T x = in[i];
      const T u = T(kSqrt2OverPi) * (x + T(kGeluCubic) * x * x * x);
      const T t = std::tanh(u);  // computed once, reused for 1 + t and 1 − t²
      const T du = T(kSqrt2OverPi) * (T(1) + T(3 * kGeluCubic) * x * x);
      din[i] = dout[i] * (T(0.5) * (T(1) + t) + T(0.5) * x * (T(1) - t * t) * du);
    });
  }
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
  op_shapes::same_numel(op, {{"out", &out}, {"in", &in}});
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
  op_shapes::same_numel(op, {{"din", &din}, {"dout", &dout}, {"in", &in}});
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
  const op_shapes::RowSizes s = op_shapes::swiglu(op, out, in, Tensor{});
  dispatch_float(out.dtype, op, [&](auto tag) {
    using T = decltype(tag);
    host::swiglu_forward<T>(out.ptr<T>(), in.ptr<const T>(), s.N, s.C);
  });
}

void HostBackend::swiglu_backward(const Tensor& din, const Tensor& dout, const Tensor& in) {
  const char* op = "swiglu_backward";
  check_host(op, "din", din);
  check_host(op, "dout", dout);
  check_host(op, "in", in);
  check_dtype(op, "dout", dout, din.dtype);
  check_dtype(op, "in", in, din.dtype);
  const op_shapes::RowSizes s = op_shapes::swiglu(op, dout, in, din);
  dispatch_float(din.dtype, op, [&](auto tag) {
    using T = decltype(tag);
    host::swiglu_backward<T>(din.ptr<T>(), dout.ptr<const T>(), in.ptr<const T>(), s.N, s.C);
  });
}

}  // namespace llmpi
