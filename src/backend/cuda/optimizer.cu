// Optimizer kernels of the CUDA backend, each ONE launch over any number of tensors: the
// host cuts every tensor into chunks of at most kChunk elements and uploads a chunk table;
// block b works on chunk b.
//   sum_squares: Σ x² over tensors of f32, bf16 or f64; each block writes an f64 partial,
//     a single-block pass adds the partials in order (deterministic), the host reads one f64.
//   adamw_update: AdamW with decoupled weight decay on f32 master weights, gradients and
//     moments (backend.h gives the formula); bias corrections computed once in f64 on the host.
//     A slice's optional bf16 `compute` copy is written in the same pass (round to nearest
//     even), so refreshing the weights read by forward costs no extra read of the master.
// Both are bandwidth-bound. adamw_update moves four elements per access in a chunk whose
// pointers are 16-byte aligned (8-byte for the bf16 copy), then the chunk's last n % 4 one by
// one; an unaligned chunk goes element by element, with the same per-element arithmetic.
// (sum_squares reads one stream and is at its byte floor element by element.) The chunk
// tables stay on the device between calls (chunk_table.h).
#include <cmath>
#include <vector>

#include "backend/cuda/chunk_table.h"
#include "backend/cuda/cuda_backend_impl.h"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/device_util.cuh"

namespace llmpi {
namespace cuda {
namespace {

constexpr int64_t kChunk = 32768;
constexpr int kThreads = 256;

// Chunk-table rows have no implicit padding: ChunkTable compares their bytes.
struct SquaresChunk {
  const void* p;
  int64_t n;
  int32_t dtype;  // DType
  int32_t unused;
};

static_assert(sizeof(SquaresChunk) == 24);

struct AdamChunk {
  float* p;
  const float* g;
  float* m;
  float* v;
  bf16* c;  // compute copy of p, or nullptr
  int64_t n;
  float weight_decay;
  int32_t vector;  // 1: p, g, m, v 16-byte aligned and c (if any) 8-byte aligned
};

static_assert(sizeof(AdamChunk) == 56);

struct alignas(8) Bf16x4 {
  bf16 v[4];
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

struct AdamStep {
  float lr, beta1, beta2, eps, grad_scale, inv_bc1, inv_bc2;
};

// One element's update of m, v and p, in place.
__device__ __forceinline__ void adamw_element(const AdamStep& h, float wd, float grad, float& m,
                                              float& v, float& p) {
  const float g = h.grad_scale * grad;
  m = h.beta1 * m + (1.f - h.beta1) * g;
  v = h.beta2 * v + (1.f - h.beta2) * g * g;
  p = p - h.lr * ((m * h.inv_bc1) / (sqrtf(v * h.inv_bc2) + h.eps) + wd * p);
}

__global__ void adamw_kernel(const AdamChunk* chunks, AdamStep h) {
  const AdamChunk c = chunks[blockIdx.x];
  const int64_t head = c.vector ? c.n / 4 * 4 : 0;
  for (int64_t i = threadIdx.x; i < head / 4; i += blockDim.x) {
    const float4 g = reinterpret_cast<const float4*>(c.g)[i];
    float4 m = reinterpret_cast<const float4*>(c.m)[i];
    float4 v = reinterpret_cast<const float4*>(c.v)[i];
    float4 p = reinterpret_cast<const float4*>(c.p)[i];
    adamw_element(h, c.weight_decay, g.x, m.x, v.x, p.x);
    adamw_element(h, c.weight_decay, g.y, m.y, v.y, p.y);
    adamw_element(h, c.weight_decay, g.z, m.z, v.z, p.z);
    adamw_element(h, c.weight_decay, g.w, m.w, v.w, p.w);
    reinterpret_cast<float4*>(c.m)[i] = m;
    reinterpret_cast<float4*>(c.v)[i] = v;
    reinterpret_cast<float4*>(c.p)[i] = p;
    if (c.c != nullptr) {
      const Bf16x4 out{{__float2bfloat16_rn(p.x), __float2bfloat16_rn(p.y),
                        __float2bfloat16_rn(p.z), __float2bfloat16_rn(p.w)}};
      reinterpret_cast<Bf16x4*>(c.c)[i] = out;
    }
  }
  for (int64_t i = head + threadIdx.x; i < c.n; i += blockDim.x) {
    float m = c.m[i], v = c.v[i], p = c.p[i];
    adamw_element(h, c.weight_decay, c.g[i], m, v, p);
    c.m[i] = m;
    c.v[i] = v;
    c.p[i] = p;
    if (c.c != nullptr) c.c[i] = __float2bfloat16_rn(p);
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
      chunks.push_back({base, n, static_cast<int32_t>(t.dtype), 0});
    }
  }
  if (chunks.empty()) return 0.0;
  const int64_t nc = static_cast<int64_t>(chunks.size());
  LLMPI_CHECK(nc <= 2147483647, op, ": too many chunks");
  if (!squares_table_) squares_table_ = std::make_unique<ChunkTable>(stream_);
  const SquaresChunk* table = squares_table_->upload(chunks);
  Scratch partial(stream_, sizeof(double) * (chunks.size() + 1));
  sum_squares_partial<<<static_cast<unsigned>(nc), kThreads, 0, stream_>>>(
      partial.as<double>() + 1, table);
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
      AdamChunk c{s.param.ptr<float>() + off, s.grad.ptr<const float>() + off,
                  s.m.ptr<float>() + off, s.v.ptr<float>() + off,
                  with_copy ? s.compute.ptr<bf16>() + off : nullptr, len, s.weight_decay, 0};
      const bool vector = aligned16(c.p) && aligned16(c.g) && aligned16(c.m) && aligned16(c.v) &&
                          (reinterpret_cast<uintptr_t>(c.c) & 7u) == 0;
      c.vector = vector ? 1 : 0;
      chunks.push_back(c);
    }
  }
  if (chunks.empty()) return;
  LLMPI_CHECK(chunks.size() <= 2147483647u, op, ": too many chunks");
  const double bc1 = 1.0 - std::pow(static_cast<double>(h.beta1), static_cast<double>(h.step));
  const double bc2 = 1.0 - std::pow(static_cast<double>(h.beta2), static_cast<double>(h.step));
  if (!adamw_table_) adamw_table_ = std::make_unique<ChunkTable>(stream_);
  const AdamChunk* table = adamw_table_->upload(chunks);
  const AdamStep step{h.lr, h.beta1, h.beta2, h.eps, h.grad_scale,
                      static_cast<float>(1.0 / bc1), static_cast<float>(1.0 / bc2)};
  adamw_kernel<<<static_cast<unsigned>(chunks.size()), kThreads, 0, stream_>>>(table, step);
  LLMPI_CUDA_LAUNCH_CHECK();
}

}  // namespace llmpi
