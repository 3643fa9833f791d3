#pragma once
// Deterministic column sums for parameter gradients: out_k[c] += Σ_n f_k(n, c), k < K ≤ 2,
// over N rows of C columns (bias gradients, norm gain/bias gradients).
// Pass 1: a grid of (column blocks × row chunks); each thread owns one column of one chunk
// and sums its rows in order (coalesced reads across the warp) into partial[chunk][k][c].
// Pass 2: per column, eight slices of the chunk partials (each in chunk order), then the
// slices in order, added to out_k.
// No atomics: the result is bitwise reproducible for a given (N, C).
#include <algorithm>

#include "backend/cuda/cuda_backend_impl.h"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/device_util.cuh"

namespace llmpi::cuda {

template <int K, class F>
__global__ void column_sum_partial(float* __restrict__ partial, int64_t N, int64_t C,
                                   int64_t rows_per_chunk, F f) {
  const int64_t c = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (c >= C) return;
  const int64_t n0 = blockIdx.y * rows_per_chunk;
  const int64_t n1 = n0 + rows_per_chunk < N ? n0 + rows_per_chunk : N;
  float acc[K];
#pragma unroll
  for (int k = 0; k < K; ++k) acc[k] = 0.f;
  for (int64_t n = n0; n < n1; ++n) f(n, c, acc);
#pragma unroll
  for (int k = 0; k < K; ++k) partial[(blockIdx.y * K + k) * C + c] = acc[k];
}

// Pass 2 kernel: a block is kFinishCols columns × kFinishSlices slices of the chunks; thread
// (slice q, column c) adds partials q, q + kFinishSlices, … in order, then the slice sums are
// added in slice order. A fixed order for a given chunk count, and every SM busy: one thread
// per column walking all chunks leaves most of the GPU idle on a chain of dependent loads.
constexpr int kFinishCols = 32, kFinishSlices = 8;

template <int K>
__global__ void __launch_bounds__(kFinishCols* kFinishSlices)
    column_sum_finish(float* __restrict__ out0, float* __restrict__ out1,
                      const float* __restrict__ partial, int64_t C, int64_t chunks) {
  __shared__ float slice_sum[K][kFinishSlices][kFinishCols];
  const int lane = threadIdx.x % kFinishCols, q = threadIdx.x / kFinishCols;
  const int64_t c = blockIdx.x * int64_t(kFinishCols) + lane;
#pragma unroll
  for (int k = 0; k < K; ++k) {
    float s = 0.f;
    if (c < C) {
#pragma unroll 4
      for (int64_t j = q; j < chunks; j += kFinishSlices) s += partial[(j * K + k) * C + c];
    }
    slice_sum[k][q][lane] = s;
  }
  __syncthreads();
  if (q != 0 || c >= C) return;
  float* outs[2] = {out0, out1};
#pragma unroll
  for (int k = 0; k < K; ++k) {
    if (!outs[k]) continue;
    float s = 0.f;
#pragma unroll
    for (int r = 0; r < kFinishSlices; ++r) s += slice_sum[k][r][lane];
    outs[k][c] += s;
  }
}

// out_k[c] += Σ_j partial[j][k][c] over `chunks` rows of partials (K ≤ 2; out1 unused for K = 1).
template <int K>
void column_sum_finish_launch(cudaStream_t stream, float* out0, float* out1,
                              const float* partial, int64_t C, int64_t chunks) {
  const auto blocks = static_cast<unsigned>((C + kFinishCols - 1) / kFinishCols);
  column_sum_finish<K><<<blocks, kFinishCols * kFinishSlices, 0, stream>>>(out0, out1, partial,
                                                                         C, chunks);
  LLMPI_CUDA_LAUNCH_CHECK();
}

// out0 (and out1 when K = 2; either may be null to skip it) += column sums of f.
template <int K, class F>
void column_sums(cudaStream_t stream, float* out0, float* out1, int64_t N, int64_t C, F f) {
  if (N == 0 || C == 0) return;
  constexpr int kThreads = 256;
  const int64_t col_blocks = (C + kThreads - 1) / kThreads;
  // About 1024 blocks in all, each chunk at least 32 rows long.
  const int64_t want = std::max<int64_t>(1, 1024 / col_blocks);
  const int64_t chunks = std::min<int64_t>(want, std::max<int64_t>(1, N / 32));
  const int64_t rows_per_chunk = (N + chunks - 1) / chunks;
  const int64_t used = (N + rows_per_chunk - 1) / rows_per_chunk;
  Scratch partial(stream, static_cast<size_t>(used * K * C) * sizeof(float));
  column_sum_partial<K><<<dim3(static_cast<unsigned>(col_blocks), static_cast<unsigned>(used)),
                          kThreads, 0, stream>>>(partial.as<float>(), N, C, rows_per_chunk, f);
  LLMPI_CUDA_LAUNCH_CHECK();
  column_sum_finish_launch<K>(stream, out0, out1, partial.as<float>(), C, used);
}

}  // namespace llmpi::cuda
