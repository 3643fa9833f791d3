// Cross-entropy pieces on the CUDA backend, working on the bf16 logits in place (no f32 copy
// of the N×V logits is ever made). One block per row of logits[N, V] (a vocab shard holding
// global columns [col_offset, col_offset + V)).
//   row_logsumexp:   lse[n] = m + log Σ_v exp(x − m), one pass with an online (max, sum)
//                    per thread, combined across the block. lse f32 [N].
//   pick_targets:    picked[n] = logits[n, target − col_offset] in this shard, else 0 (f32).
//   backward:        dlogits = row_scale[n]·(exp(x − lse) − onehot); rows with a negative
//                    target are zero. dlogits (bf16) may alias logits: each element is read
//                    by the thread that writes it. targets i32 [N]; row_scale f32 [N].
#include <cmath>

#include "backend/cuda/cuda_backend_impl.h"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/device_util.cuh"

namespace llmpi {
namespace cuda {
namespace {

constexpr int kThreads = 512;

struct MaxSum {
  float m, s;  // running max and Σ exp(x − m)
};
__device__ __forceinline__ MaxSum combine(MaxSum a, MaxSum b) {
  const float m = fmaxf(a.m, b.m);
  if (m == -INFINITY) return {m, 0.f};
  return {m, a.s * __expf(a.m - m) + b.s * __expf(b.m - m)};
}
__device__ __forceinline__ void push(MaxSum& a, float x) {
  if (x > a.m) {
    a.s = a.s * __expf(a.m - x) + 1.f;  // exp(−inf) = 0 on the first element
    a.m = x;
  } else {
    a.s += __expf(x - a.m);
  }
}

template <bool kVec>
__global__ void row_logsumexp_kernel(float* lse, const bf16* logits, int64_t V) {
  __shared__ MaxSum shared[32];
  const bf16* x = logits + blockIdx.x * V;
  MaxSum a{-INFINITY, 0.f};
  if constexpr (kVec) {
    for (int64_t c = threadIdx.x * 8; c < V; c += 8 * blockDim.x) {
      float v[8];
      load8(x + c, v);
#pragma unroll
      for (int k = 0; k < 8; ++k) push(a, v[k]);
    }
  } else {
    for (int64_t c = threadIdx.x; c < V; c += blockDim.x) push(a, to_f32(x[c]));
  }
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    const MaxSum b{__shfl_xor_sync(0xffffffffu, a.m, o), __shfl_xor_sync(0xffffffffu, a.s, o)};
    a = combine(a, b);
  }
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  if (lane == 0) shared[warp] = a;
  __syncthreads();
  if (warp == 0) {
    a = lane < static_cast<int>(blockDim.x >> 5) ? shared[lane] : MaxSum{-INFINITY, 0.f};
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
      const MaxSum b{__shfl_xor_sync(0xffffffffu, a.m, o), __shfl_xor_sync(0xffffffffu, a.s, o)};
      a = combine(a, b);
    }
    if (lane == 0) lse[blockIdx.x] = a.m == -INFINITY ? a.m : a.m + logf(a.s);
  }
}

__global__ void pick_targets_kernel(float* picked, const bf16* logits, const int32_t* targets,
                                    int64_t N, int64_t V, int64_t col_offset) {
  const int64_t n = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (n >= N) return;
  const int64_t c = static_cast<int64_t>(targets[n]) - col_offset;
  picked[n] = targets[n] >= 0 && c >= 0 && c < V ? to_f32(logits[n * V + c]) : 0.f;
}

template <bool kVec>
__global__ void cross_entropy_backward_kernel(bf16* dlogits, const bf16* logits,
                                              const float* lse, const int32_t* targets,
                                              const float* row_scale, int64_t V,
                                              int64_t col_offset) {
  const int64_t n = blockIdx.x;
  const bf16* x = logits + n * V;
  bf16* d = dlogits + n * V;
  const int32_t t = targets[n];
  const float s = t < 0 ? 0.f : row_scale[n], l = lse[n];
  const int64_t tc = t < 0 ? -1 : static_cast<int64_t>(t) - col_offset;
  if constexpr (kVec) {
    for (int64_t c = threadIdx.x * 8; c < V; c += 8 * blockDim.x) {
      float v[8];
      load8(x + c, v);
#pragma unroll
      for (int k = 0; k < 8; ++k)
        v[k] = t < 0 ? 0.f : s * (__expf(v[k] - l) - (c + k == tc ? 1.f : 0.f));
      store8(d + c, v);
    }
  } else {
    for (int64_t c = threadIdx.x; c < V; c += blockDim.x) {
      const float v = to_f32(x[c]);
      d[c] = from_f32<bf16>(t < 0 ? 0.f : s * (__expf(v - l) - (c == tc ? 1.f : 0.f)));
    }
  }
}

}  // namespace
}  // namespace cuda

using namespace cuda;

void CudaBackend::row_logsumexp(const Tensor& lse, const Tensor& logits) {
  const char* op = "row_logsumexp";
  check_device(op, "lse", lse);
  check_device(op, "logits", logits);
  check_dtype(op, "lse", lse, DType::f32);
  check_dtype(op, "logits", logits, DType::bf16);
  const op_shapes::RowSizes s = op_shapes::logsumexp(op, lse, logits);
  const int64_t N = s.N, V = s.C;
  if (N == 0) return;
  LLMPI_CHECK(N <= 2147483647, op, ": ", N, " rows exceed the grid");
  if (V % 8 == 0 && aligned16(logits.data))
    row_logsumexp_kernel<true><<<static_cast<unsigned>(N), kThreads, 0, stream_>>>(
        lse.ptr<float>(), logits.ptr<const bf16>(), V);
  else
    row_logsumexp_kernel<false><<<static_cast<unsigned>(N), kThreads, 0, stream_>>>(
        lse.ptr<float>(), logits.ptr<const bf16>(), V);
  LLMPI_CUDA_LAUNCH_CHECK();
}

void CudaBackend::pick_targets(const Tensor& picked, const Tensor& logits,
                               const Tensor& targets, int64_t col_offset) {
  const char* op = "pick_targets";
  check_device(op, "picked", picked);
  check_device(op, "logits", logits);
  check_device(op, "targets", targets);
  check_dtype(op, "picked", picked, DType::f32);
  check_dtype(op, "logits", logits, DType::bf16);
  check_dtype(op, "targets", targets, DType::i32);
  const op_shapes::RowSizes s =
      op_shapes::cross_entropy(op, logits, targets, {{"picked", &picked}}, {});
  const int64_t N = s.N, V = s.C;
  if (N == 0) return;
  pick_targets_kernel<<<blocks_for(N, 256), 256, 0, stream_>>>(
      picked.ptr<float>(), logits.ptr<const bf16>(), targets.ptr<const int32_t>(), N, V,
      col_offset);
  LLMPI_CUDA_LAUNCH_CHECK();
}

void CudaBackend::cross_entropy_backward(const Tensor& dlogits, const Tensor& logits,
                                         const Tensor& lse, const Tensor& targets,
                                         const Tensor& row_scale, int64_t col_offset) {
  const char* op = "cross_entropy_backward";
  check_device(op, "dlogits", dlogits);
  check_device(op, "logits", logits);
  check_device(op, "lse", lse);
  check_device(op, "targets", targets);
  check_device(op, "row_scale", row_scale);
  check_dtype(op, "dlogits", dlogits, DType::bf16);
  check_dtype(op, "logits", logits, DType::bf16);
  check_dtype(op, "lse", lse, DType::f32);
  check_dtype(op, "targets", targets, DType::i32);
  check_dtype(op, "row_scale", row_scale, DType::f32);
  const op_shapes::RowSizes s = op_shapes::cross_entropy(
      op, logits, targets, {{"lse", &lse}, {"row_scale", &row_scale}}, {{"dlogits", &dlogits}});
  const int64_t N = s.N, V = s.C;
  if (N * V == 0) return;
  LLMPI_CHECK(N <= 2147483647, op, ": ", N, " rows exceed the grid");
  if (V % 8 == 0 && aligned16(logits.data) && aligned16(dlogits.data))
    cross_entropy_backward_kernel<true><<<static_cast<unsigned>(N), kThreads, 0, stream_>>>(
        dlogits.ptr<bf16>(), logits.ptr<const bf16>(), lse.ptr<const float>(),
        targets.ptr<const int32_t>(), row_scale.ptr<const float>(), V, col_offset);
  else
    cross_entropy_backward_kernel<false><<<static_cast<unsigned>(N), kThreads, 0, stream_>>>(
        dlogits.ptr<bf16>(), logits.ptr<const bf16>(), lse.ptr<const float>(),
        targets.ptr<const int32_t>(), row_scale.ptr<const float>(), V, col_offset);
  LLMPI_CUDA_LAUNCH_CHECK();
}

}  // namespace llmpi
