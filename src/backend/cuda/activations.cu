// MLP activations on the CUDA backend, f32 math on bf16 storage.
//   GELU (tanh approximation): y = ½x(1 + tanh u), u = √(2/π)(x + 0.044715x³);
//     dy/dx = ½(1 + tanh u) + ½x(1 − tanh²u)·√(2/π)(1 + 3·0.044715x²).   in, out [N, F].
//   SwiGLU: in[N, 2F] = [gate | up] per row; out[N, F] = silu(gate)·up;
//     d gate = dout·up·σ(g)(1 + g(1 − σ(g))), d up = dout·silu(g).
// Each thread reads an element before writing the same element, so din may alias in (and,
// for GELU, dout). GELU moves eight bf16 per 16-byte access when n % 8 == 0 and aligned.
// SwiGLU (CudaFusions::swiglu, when F % 8 == 0 and aligned): one thread per eight columns of
// a row, 16-byte accesses to gate, up, out (dout, dgate, dup), one pass — the byte floor;
// otherwise one thread per element (scalar).
#include "backend/cuda/cuda_backend_impl.h"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/device_util.cuh"

namespace llmpi {
namespace cuda {
namespace {

constexpr int kThreads = 256;
constexpr float kSqrt2OverPi = 0.7978845608028654f;
constexpr float kGeluCubic = 0.044715f;

__device__ __forceinline__ float gelu(float x) {
  const float u = kSqrt2OverPi * (x + kGeluCubic * x * x * x);
  return 0.5f * x * (1.f + tanhf(u));
}
__device__ __forceinline__ float gelu_grad(float x) {
  const float u = kSqrt2OverPi * (x + kGeluCubic * x * x * x);
  const float t = tanhf(u);
  const float du = kSqrt2OverPi * (1.f + 3.f * kGeluCubic * x * x);
  return 0.5f * (1.f + t) + 0.5f * x * (1.f - t * t) * du;
}

template <bool kVec>
__global__ void gelu_forward_kernel(bf16* out, const bf16* in, int64_t n) {
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  const int64_t i0 = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if constexpr (kVec) {
    for (int64_t i = i0; i < n / 8; i += stride) {
      float v[8];
      load8(in + 8 * i, v);
#pragma unroll
      for (int k = 0; k < 8; ++k) v[k] = gelu(v[k]);
      store8(out + 8 * i, v);
    }
  } else {
    for (int64_t i = i0; i < n; i += stride) out[i] = from_f32<bf16>(gelu(to_f32(in[i])));
  }
}

template <bool kVec>
__global__ void gelu_backward_kernel(bf16* din, const bf16* dout, const bf16* in, int64_t n) {
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  const int64_t i0 = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if constexpr (kVec) {
    for (int64_t i = i0; i < n / 8; i += stride) {
      float x[8], d[8];
      load8(in + 8 * i, x);
      load8(dout + 8 * i, d);
#pragma unroll
      for (int k = 0; k < 8; ++k) x[k] = d[k] * gelu_grad(x[k]);
      store8(din + 8 * i, x);
    }
  } else {
    for (int64_t i = i0; i < n; i += stride)
      din[i] = from_f32<bf16>(to_f32(dout[i]) * gelu_grad(to_f32(in[i])));
  }
}

__device__ __forceinline__ float sigmoid(float g) { return 1.f / (1.f + __expf(-g)); }

// n8 = N·F/8 groups of eight columns; f8 = F/8 groups per row. Index math in 32 bits when
// n8 fits (Index = uint32_t), else 64.
template <class Index>
__global__ void swiglu_forward_x8(bf16* out, const bf16* in, Index n8, Index f8) {
  for (Index i = blockIdx.x * Index(blockDim.x) + threadIdx.x; i < n8;
       i += Index(gridDim.x) * blockDim.x) {
    const Index n = i / f8, f = i - n * f8;
    const bf16* row = in + int64_t(n) * 16 * f8;
    float g[8], u[8];
    load8(row + 8 * int64_t(f), g);
    load8(row + 8 * int64_t(f8 + f), u);
#pragma unroll
    for (int k = 0; k < 8; ++k) g[k] = g[k] * sigmoid(g[k]) * u[k];
    store8(out + 8 * int64_t(i), g);
  }
}

template <class Index>
__global__ void swiglu_backward_x8(bf16* din, const bf16* dout, const bf16* in, Index n8,
                                   Index f8) {
  for (Index i = blockIdx.x * Index(blockDim.x) + threadIdx.x; i < n8;
       i += Index(gridDim.x) * blockDim.x) {
    const Index n = i / f8, f = i - n * f8;
    const int64_t gi = int64_t(n) * 16 * f8 + 8 * int64_t(f), ui = gi + 8 * int64_t(f8);
    float g[8], u[8], dy[8];
    load8(in + gi, g);
    load8(in + ui, u);
    load8(dout + 8 * int64_t(i), dy);
#pragma unroll
    for (int k = 0; k < 8; ++k) {
      const float sig = sigmoid(g[k]);
      const float dg = dy[k] * u[k] * sig * (1.f + g[k] * (1.f - sig));
      u[k] = dy[k] * g[k] * sig;  // d up
      g[k] = dg;
    }
    store8(din + gi, g);
    store8(din + ui, u);
  }
}

__global__ void swiglu_forward_kernel(bf16* out, const bf16* in, int64_t N, int64_t F) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < N * F;
       i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t n = i / F, f = i % F;
    const float g = to_f32(in[n * 2 * F + f]), u = to_f32(in[n * 2 * F + F + f]);
    out[i] = from_f32<bf16>(g / (1.f + __expf(-g)) * u);
  }
}

__global__ void swiglu_backward_kernel(bf16* din, const bf16* dout, const bf16* in, int64_t N,
                                       int64_t F) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < N * F;
       i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t n = i / F, f = i % F;
    const int64_t gi = n * 2 * F + f, ui = gi + F;
    const float g = to_f32(in[gi]), u = to_f32(in[ui]), dy = to_f32(dout[i]);
    const float sig = 1.f / (1.f + __expf(-g));
    din[gi] = from_f32<bf16>(dy * u * sig * (1.f + g * (1.f - sig)));
    din[ui] = from_f32<bf16>(dy * g * sig);
  }
}

}  // namespace
}  // namespace cuda

using namespace cuda;

void CudaBackend::gelu_forward(const Tensor& out, const Tensor& in) {
  const char* op = "gelu_forward";
  check_device(op, "out", out);
  check_device(op, "in", in);
  check_dtype(op, "out", out, DType::bf16);
  check_dtype(op, "in", in, DType::bf16);
  op_shapes::same_numel(op, {{"out", &out}, {"in", &in}});
  const int64_t n = out.numel();
  if (n == 0) return;
  if (n % 8 == 0 && aligned16(out.data) && aligned16(in.data))
    gelu_forward_kernel<true><<<blocks_for(n / 8, kThreads), kThreads, 0, stream_>>>(
        out.ptr<bf16>(), in.ptr<const bf16>(), n);
  else
    gelu_forward_kernel<false><<<blocks_for(n, kThreads), kThreads, 0, stream_>>>(
        out.ptr<bf16>(), in.ptr<const bf16>(), n);
  LLMPI_CUDA_LAUNCH_CHECK();
}

void CudaBackend::gelu_backward(const Tensor& din, const Tensor& dout, const Tensor& in) {
  const char* op = "gelu_backward";
  check_device(op, "din", din);
  check_device(op, "dout", dout);
  check_device(op, "in", in);
  check_dtype(op, "din", din, DType::bf16);
  check_dtype(op, "dout", dout, DType::bf16);
  check_dtype(op, "in", in, DType::bf16);
  op_shapes::same_numel(op, {{"din", &din}, {"dout", &dout}, {"in", &in}});
  const int64_t n = din.numel();
  if (n == 0) return;
  if (n % 8 == 0 && aligned16(din.data) && aligned16(dout.data) && aligned16(in.data))
    gelu_backward_kernel<true><<<blocks_for(n / 8, kThreads), kThreads, 0, stream_>>>(
        din.ptr<bf16>(), dout.ptr<const bf16>(), in.ptr<const bf16>(), n);
  else
    gelu_backward_kernel<false><<<blocks_for(n, kThreads), kThreads, 0, stream_>>>(
        din.ptr<bf16>(), dout.ptr<const bf16>(), in.ptr<const bf16>(), n);
  LLMPI_CUDA_LAUNCH_CHECK();
}

void CudaBackend::swiglu_forward(const Tensor& out, const Tensor& in) {
  const char* op = "swiglu_forward";
  check_device(op, "out", out);
  check_device(op, "in", in);
  check_dtype(op, "out", out, DType::bf16);
  check_dtype(op, "in", in, DType::bf16);
  const op_shapes::RowSizes s = op_shapes::swiglu(op, out, in, Tensor{});
  const int64_t N = s.N, F = s.C;
  if (N * F == 0) return;
  if (options_.fused.swiglu && F % 8 == 0 && aligned16(out.data) && aligned16(in.data)) {
    const int64_t n8 = N * F / 8;
    if (n8 <= 0xFFFFFFFFll / 2)
      swiglu_forward_x8<uint32_t><<<blocks_for(n8, kThreads), kThreads, 0, stream_>>>(
          out.ptr<bf16>(), in.ptr<const bf16>(), static_cast<uint32_t>(n8),
          static_cast<uint32_t>(F / 8));
    else
      swiglu_forward_x8<int64_t><<<blocks_for(n8, kThreads), kThreads, 0, stream_>>>(
          out.ptr<bf16>(), in.ptr<const bf16>(), n8, F / 8);
  } else {
    swiglu_forward_kernel<<<blocks_for(N * F, kThreads), kThreads, 0, stream_>>>(
        out.ptr<bf16>(), in.ptr<const bf16>(), N, F);
  }
  LLMPI_CUDA_LAUNCH_CHECK();
}

void CudaBackend::swiglu_backward(const Tensor& din, const Tensor& dout, const Tensor& in) {
  const char* op = "swiglu_backward";
  check_device(op, "din", din);
  check_device(op, "dout", dout);
  check_device(op, "in", in);
  check_dtype(op, "din", din, DType::bf16);
  check_dtype(op, "dout", dout, DType::bf16);
  check_dtype(op, "in", in, DType::bf16);
  const op_shapes::RowSizes s = op_shapes::swiglu(op, dout, in, din);
  const int64_t N = s.N, F = s.C;
  if (N * F == 0) return;
  if (options_.fused.swiglu && F % 8 == 0 && aligned16(din.data) && aligned16(dout.data) &&
      aligned16(in.data)) {
    const int64_t n8 = N * F / 8;
    if (n8 <= 0xFFFFFFFFll / 2)
      swiglu_backward_x8<uint32_t><<<blocks_for(n8, kThreads), kThreads, 0, stream_>>>(
          din.ptr<bf16>(), dout.ptr<const bf16>(), in.ptr<const bf16>(),
          static_cast<uint32_t>(n8), static_cast<uint32_t>(F / 8));
    else
      swiglu_backward_x8<int64_t><<<blocks_for(n8, kThreads), kThreads, 0, stream_>>>(
          din.ptr<bf16>(), dout.ptr<const bf16>(), in.ptr<const bf16>(), n8, F / 8);
  } else {
    swiglu_backward_kernel<<<blocks_for(N * F, kThreads), kThreads, 0, stream_>>>(
        din.ptr<bf16>(), dout.ptr<const bf16>(), in.ptr<const bf16>(), N, F);
  }
  LLMPI_CUDA_LAUNCH_CHECK();
}

}  // namespace llmpi
