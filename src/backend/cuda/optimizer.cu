// Optimizer kernels of the CUDA backend, each ONE launch over any number of tensors: the
// host cuts every tensor into chunks of at most kChunk elements and uploads a chunk table;
// block b works on chunk b.
//   sum_squares: Σ x² over tensors of f32, bf16 or f64; each block writes an f64 partial,
//     a single-block pass adds the partials in order (deterministic), the host reads one f64.
//   adamw_update: AdamW with decoupled weight decay on f32 master weights, gradients and
//     moments (backend.h gives the formula); bias corrections computed once in f64 on the host.
//     A slice's optional bf16 `compute` copy is written in the same pass (round to nearest
//     even), so refreshing the weights read by forward costs no extra read of the master.
#include <cmath>
#include <vector>

#include "backend/cuda/cuda_backend_impl.h"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/device_util.cuh"

namespace llmpi {
namespace cuda {
namespace {

constexpr int64_t kChunk = 32768;
constexpr int kThreads = 256;

struct SquaresChunk {
  const void* p;
  int64_t n;
  int32_t dtype;  // DType
};

struct AdamChunk {
  float* p;
  const float* g;
  float* m;
  float* v;
  bf16* c;  // compute copy of p, or nullptr
  int64_t n;
  float weight_decay;
};

__global__ void sum_squares_partial(double* partial, const SquaresChunk* chunks) {
  __shared__ double shared[32];
  const SquaresChunk c = chunks[blockIdx.x];
  double acc = 0.0;
  for (int64_t i = threadIdx.x; i < c.n; i += blockDim.x) {
    double x;
    switch (static_cast<DType>(c.dtype)) {
      case DType::f32: x = static_cast<const float*>(c.p)[i]; break;
      case DType::f64: x = static_cast<const double*>(c.p)[i]; break;
      default: x = __bfloat162float(static_cast<const bf16*>(c.p)[i]); break;
    }
    acc += x * x;
  }
  acc = block_sum(acc, shared);
  if (threadIdx.x == 0) partial[blockIdx.x] = acc;
}

__global__ void sum_partials(double* out, const double* partial, int64_t n) {
  __shared__ double shared[32];
  // Each thread sums a contiguous range in order; the block sum fixes the combination order.
  const int64_t per = (n + blockDim.x - 1) / blockDim.x;
  const int64_t i0 = threadIdx.x * per, i1 = i0 + per < n ? i0 + per : n;
  double acc = 0.0;
  for (int64_t i = i0; i < i1; ++i) acc += partial[i];
  acc = block_sum(acc, shared);
  if (threadIdx.x == 0) *out = acc;
}

__global__ void adamw_kernel(const AdamChunk* chunks, float lr, float beta1, float beta2,
                             float eps, float grad_scale, float inv_bc1, float inv_bc2) {
  const AdamChunk c = chunks[blockIdx.x];
  for (int64_t i = threadIdx.x; i < c.n; i += blockDim.x) {
    const float g = grad_scale * c.g[i];
    const float m = beta1 * c.m[i] + (1.f - beta1) * g;
    const float v = beta2 * c.v[i] + (1.f - beta2) * g * g;
    c.m[i] = m;
    c.v[i] = v;
    const float p = c.p[i];
    const float p_new = p - lr * ((m * inv_bc1) / (sqrtf(v * inv_bc2) + eps) + c.weight_decay * p);
    c.p[i] = p_new;
    if (c.c != nullptr) c.c[i] = __float2bfloat16_rn(p_new);
  }
}

}  // namespace
}  // namespace cuda

using namespace cuda;

double CudaBackend::sum_squares(std::span<const Tensor> ts) {
  const char* op = "sum_squares";
  std::vector<SquaresChunk> chunks;
  for (const Tensor& t : ts) {
    check_device(op, "tensor", t);
    LLMPI_CHECK(t.dtype != DType::i32, op, ": tensor ", t.shape.str(), " is i32");
    for (int64_t off = 0; off < t.numel(); off += kChunk) {
      const int64_t n = std::min<int64_t>(kChunk, t.numel() - off);
      const char* base = static_cast<const char*>(t.data) + off * dtype_size(t.dtype);
      chunks.push_back({base, n, static_cast<int32_t>(t.dtype)});
    }
  }
  if (chunks.empty()) return 0.0;
  const int64_t nc = static_cast<int64_t>(chunks.size());
  LLMPI_CHECK(nc <= 2147483647, op, ": too many chunks");
  Scratch table(stream_, sizeof(SquaresChunk) * chunks.size());
  Scratch partial(stream_, sizeof(double) * (chunks.size() + 1));
  LLMPI_CUDA(cudaMemcpyAsync(table.as<void>(), chunks.data(), sizeof(SquaresChunk) * chunks.size(),
                             cudaMemcpyHostToDevice, stream_));
  sum_squares_partial<<<static_cast<unsigned>(nc), kThreads, 0, stream_>>>(
      partial.as<double>() + 1, table.as<const SquaresChunk>());
  LLMPI_CUDA_LAUNCH_CHECK();
  sum_partials<<<1, 1024, 0, stream_>>>(partial.as<double>(), partial.as<double>() + 1, nc);
  LLMPI_CUDA_LAUNCH_CHECK();
  LLMPI_CUDA(cudaMemcpyAsync(pinned_, partial.as<double>(), sizeof(double),
                             cudaMemcpyDeviceToHost, stream_));
  synchronize();
  return *pinned_;
}

void CudaBackend::adamw_update(std::span<const AdamWSlice> slices, const AdamWHyper& h) {
  const char* op = "adamw_update";
  LLMPI_CHECK(h.step >= 1, op, ": step ", h.step, " < 1");
  std::vector<AdamChunk> chunks;
  for (const AdamWSlice& s : slices) {
    check_device(op, "param", s.param);
    check_device(op, "grad", s.grad);
    check_device(op, "m", s.m);
    check_device(op, "v", s.v);
    check_dtype(op, "param", s.param, DType::f32);
    check_dtype(op, "grad", s.grad, DType::f32);
    check_dtype(op, "m", s.m, DType::f32);
    check_dtype(op, "v", s.v, DType::f32);
    op_shapes::adamw_slice(op, s);
    const int64_t n = s.param.numel();
    const bool with_copy = s.compute.data != nullptr;
    if (with_copy) {
      check_device(op, "compute", s.compute);
      check_dtype(op, "compute", s.compute, DType::bf16);
    }
    for (int64_t off = 0; off < n; off += kChunk) {
      const int64_t len = std::min<int64_t>(kChunk, n - off);
      chunks.push_back({s.param.ptr<float>() + off, s.grad.ptr<const float>() + off,
                        s.m.ptr<float>() + off, s.v.ptr<float>() + off,
                        with_copy ? s.compute.ptr<bf16>() + off : nullptr, len, s.weight_decay});
    }
  }
  if (chunks.empty()) return;
  LLMPI_CHECK(chunks.size() <= 2147483647u, op, ": too many chunks");
  const double bc1 = 1.0 - std::pow(static_cast<double>(h.beta1), static_cast<double>(h.step));
  const double bc2 = 1.0 - std::pow(static_cast<double>(h.beta2), static_cast<double>(h.step));
  Scratch table(stream_, sizeof(AdamChunk) * chunks.size());
  LLMPI_CUDA(cudaMemcpyAsync(table.as<void>(), chunks.data(), sizeof(AdamChunk) * chunks.size(),
                             cudaMemcpyHostToDevice, stream_));
  adamw_kernel<<<static_cast<unsigned>(chunks.size()), kThreads, 0, stream_>>>(
      table.as<const AdamChunk>(), h.lr, h.beta1, h.beta2, h.eps, h.grad_scale,
      static_cast<float>(1.0 / bc1), static_cast<float>(1.0 / bc2));
  LLMPI_CUDA_LAUNCH_CHECK();
}

}  // namespace llmpi
