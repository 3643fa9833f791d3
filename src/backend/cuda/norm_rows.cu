// One-pass LayerNorm / RMSNorm kernels with the residual add fused in (norm_rows.h).
// Layout: a row of C = 8·V columns is V vectors of eight bf16; thread j of a row group of G
// threads owns vectors j, j + G, ..., j + (VPT−1)·G (coalesced across the group), G =
// round_up(ceil(V / VPT), 32); the block is R = 512 / G row groups, row group r taking row
// base + r of each step of the grid-stride loop. Reductions over a row: a warp shuffle, then
// the group's warps through shared memory (two alternating buffers, one barrier per
// reduction); every thread of a block runs the same number of steps, so the barriers match.
// Math in f32; bf16 rounded to nearest even.
#include "backend/cuda/column_sum.cuh"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/norm_rows.h"

namespace llmpi::cuda {
namespace {

constexpr int kBlock = 512;         // threads per block (R row groups of G)
constexpr int kWarpsPerBlock = kBlock / 32;
// One access per thread (VPT = 1): C ≤ 4096. Two (C ≤ 8192) compiled to 128 registers with
// spills under the 512-thread bound; wider rows take the warp-per-row kernels (norm.cu).
constexpr int64_t kMaxC = 8 * kBlock;
// Rows of the backward's input loaded ahead of the one being reduced (registers per thread:
// 87 / 98 / 109 for 1 / 2 / 3 with RMSNorm; one 512-thread block per SM either way). Measured
// on an H100 (docs/performance.md): 2 takes the TinyLlama shape's norm backward from 7.09 to
// 6.81 ms a step and GPT-2 124M's from 3.54 to 3.06 ms; 3 is no better than 2.
constexpr int kRowsAhead = 2;

struct RowShape {
  int vpt;    // vectors of 8 per thread
  int group;  // G, threads per row
  int rows;   // R, row groups per block
};

RowShape row_shape(int64_t C) {
  const int64_t vecs = C / 8;
  const int vpt = 1;
  const int64_t threads = (vecs + vpt - 1) / vpt;
  const int group = static_cast<int>((threads + 31) / 32 * 32);
  return {vpt, group, kBlock / group};
}

__device__ __forceinline__ Bf16x8 load_raw(const bf16* p) {
  return *reinterpret_cast<const Bf16x8*>(p);
}
__device__ __forceinline__ void widen(const Bf16x8& r, float (&out)[8]) {
#pragma unroll
  for (int i = 0; i < 8; ++i) out[i] = __bfloat162float(r.v[i]);
}

// (x, y) summed over this thread's row group; every thread of the group gets the totals.
// All threads of the block call it together. red: 2 × kWarpsPerBlock entries.
__device__ __forceinline__ float2 group_sum(float2 v, float2* red, int& phase, int group_warps) {
  v.x = warp_sum(v.x);
  v.y = warp_sum(v.y);
  const int warp = threadIdx.x >> 5;
  float2* buf = red + phase * kWarpsPerBlock;
  if ((threadIdx.x & 31) == 0) buf[warp] = v;
  __syncthreads();
  const int first = warp / group_warps * group_warps;
  float2 t = make_float2(0.f, 0.f);
  for (int w = 0; w < group_warps; ++w) {
    t.x += buf[first + w].x;
    t.y += buf[first + w].y;
  }
  phase ^= 1;
  return t;
}

// This thread's vectors of row n (vector j + k·G of the row, for k < VPT, where it exists).
template <int VPT>
__device__ __forceinline__ void load_row(Bf16x8 (&out)[VPT], const bf16* p, int64_t n, int C,
                                         int j, int G, int vecs) {
#pragma unroll
  for (int k = 0; k < VPT; ++k)
    if (j + k * G < vecs) out[k] = load_raw(p + n * C + 8 * (j + k * G));
}

template <int VPT>
__device__ __forceinline__ void copy_row(Bf16x8 (&to)[VPT], const Bf16x8 (&from)[VPT]) {
#pragma unroll
  for (int k = 0; k < VPT; ++k) to[k] = from[k];
}

// Rows are held as raw bf16 (four registers per eight values; every value is exactly a bf16,
// so nothing is lost) and the next row's loads are issued before this row's reductions.
template <int VPT, bool kLayer>
__global__ void __launch_bounds__(kBlock)
    norm_rows_forward_kernel(bf16* __restrict__ out, float* __restrict__ mean_out,
                             float* __restrict__ rstd_out, const bf16* x, const bf16* res,
                             bf16* sum, const bf16* __restrict__ gain,
                             const bf16* __restrict__ bias, int64_t N, int C, int G,
                             float eps) {
  __shared__ float2 red[2 * kWarpsPerBlock];
  const int R = blockDim.x / G, r = threadIdx.x / G, j = threadIdx.x % G;
  const int vecs = C / 8;
  const float inv_c = 1.f / static_cast<float>(C);
  const int64_t step = int64_t(gridDim.x) * R;
  Bf16x8 gv[VPT], bv[VPT], xa[VPT], xb[VPT];
#pragma unroll
  for (int k = 0; k < VPT; ++k) {
    const int vi = j + k * G;
    if (vi < vecs) {
      gv[k] = load_raw(gain + 8 * vi);
      if (kLayer && bias) bv[k] = load_raw(bias + 8 * vi);
    }
  }
  int64_t base = int64_t(blockIdx.x) * R;
  if (base + r < N) {
    load_row<VPT>(xa, x, base + r, C, j, G, vecs);
    if (res) load_row<VPT>(xb, res, base + r, C, j, G, vecs);
  }
  int phase = 0;
  for (; base < N; base += step) {
    const int64_t n = base + r;
    const bool row = n < N;
    Bf16x8 v[VPT];  // this row (x, or the rounded sum x + res)
    copy_row<VPT>(v, xa);
    if (res && row) {
#pragma unroll
      for (int k = 0; k < VPT; ++k) {
        if (j + k * G >= vecs) continue;
        float a[8], b[8];
        widen(xa[k], a);
        widen(xb[k], b);
#pragma unroll
        for (int i = 0; i < 8; ++i) v[k].v[i] = __float2bfloat16_rn(a[i] + b[i]);
        *reinterpret_cast<Bf16x8*>(sum + n * C + 8 * (j + k * G)) = v[k];
      }
    }
    if (n + step < N) {  // prefetch the next row
      load_row<VPT>(xa, x, n + step, C, j, G, vecs);
      if (res) load_row<VPT>(xb, res, n + step, C, j, G, vecs);
    }
    float s = 0.f;
#pragma unroll
    for (int k = 0; k < VPT; ++k) {
      if (!row || j + k * G >= vecs) continue;
      float f[8];
      widen(v[k], f);
#pragma unroll
      for (int i = 0; i < 8; ++i) s += f[i];
    }
    float mean = 0.f;
    if constexpr (kLayer) mean = group_sum(make_float2(s, 0.f), red, phase, G / 32).x * inv_c;
    float ss = 0.f;
#pragma unroll
    for (int k = 0; k < VPT; ++k) {
      if (!row || j + k * G >= vecs) continue;
      float f[8];
      widen(v[k], f);
#pragma unroll
      for (int i = 0; i < 8; ++i) ss += (f[i] - mean) * (f[i] - mean);
    }
    const float rstd = rsqrtf(group_sum(make_float2(ss, 0.f), red, phase, G / 32).x * inv_c + eps);
    if (!row) continue;
    if (j == 0) {
      if constexpr (kLayer) mean_out[n] = mean;
      rstd_out[n] = rstd;
    }
#pragma unroll
    for (int k = 0; k < VPT; ++k) {
      const int vi = j + k * G;
      if (vi >= vecs) continue;
      float f[8], g[8], b[8] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f}, o[8];
      widen(v[k], f);
      widen(gv[k], g);
      if (kLayer && bias) widen(bv[k], b);
#pragma unroll
      for (int i = 0; i < 8; ++i) o[i] = (f[i] - mean) * rstd * g[i] + b[i];
      store8(out + n * C + 8 * vi, o);
    }
  }
}

// A row's raw inputs for the backward: x, dout, dres (this thread's vectors) and statistics.
template <int VPT>
struct BackwardRow {
  Bf16x8 x[VPT], d[VPT], r[VPT];
  float mean = 0.f, rstd = 0.f;
};

template <int VPT, bool kLayer>
__device__ __forceinline__ void load_backward_row(BackwardRow<VPT>& b, const bf16* x,
                                                  const bf16* dout, const bf16* dres,
                                                  const float* mean_in, const float* rstd_in,
                                                  int64_t n, int C, int j, int G, int vecs) {
  load_row<VPT>(b.x, x, n, C, j, G, vecs);
  load_row<VPT>(b.d, dout, n, C, j, G, vecs);
  if (dres) load_row<VPT>(b.r, dres, n, C, j, G, vecs);
  if (kLayer) b.mean = mean_in[n];
  b.rstd = rstd_in[n];
}

// partial: [gridDim.x][2][C] (dgain row, dbias row), or null for no parameter gradients.
// Dynamic shared memory: 2·C floats when R > 1 and partial is given. The x, dout, dres and
// statistics of the kRowsAhead rows after this one (this row group's next grid steps) are in
// flight while this row is reduced.
template <int VPT, bool kLayer>
__global__ void __launch_bounds__(kBlock)
    norm_rows_backward_kernel(bf16* dx, float* __restrict__ partial, const bf16* dout,
                              const bf16* dres, const bf16* __restrict__ x,
                              const bf16* __restrict__ gain, const float* __restrict__ mean_in,
                              const float* __restrict__ rstd_in, int64_t N, int C, int G) {
  __shared__ float2 red[2 * kWarpsPerBlock];
  extern __shared__ float combine[];
  const int R = blockDim.x / G, r = threadIdx.x / G, j = threadIdx.x % G;
  const int vecs = C / 8;
  const float inv_c = 1.f / static_cast<float>(C);
  const int64_t step = int64_t(gridDim.x) * R;
  Bf16x8 gv[VPT];
  float acc_g[VPT][8], acc_b[VPT][8];
#pragma unroll
  for (int k = 0; k < VPT; ++k) {
    if (j + k * G < vecs) gv[k] = load_raw(gain + 8 * (j + k * G));
#pragma unroll
    for (int i = 0; i < 8; ++i) acc_g[k][i] = acc_b[k][i] = 0.f;
  }
  int64_t base = int64_t(blockIdx.x) * R;
  // ahead[q]: row n + q·step, where n is the row the next iteration reduces.
  BackwardRow<VPT> ahead[kRowsAhead];
#pragma unroll
  for (int q = 0; q < kRowsAhead; ++q)
    if (base + r + q * step < N)
      load_backward_row<VPT, kLayer>(ahead[q], x, dout, dres, mean_in, rstd_in,
                                     base + r + q * step, C, j, G, vecs);
  int phase = 0;
  for (; base < N; base += step) {
    const int64_t n = base + r;
    const bool row = n < N;
    const BackwardRow<VPT> cur = ahead[0];
#pragma unroll
    for (int q = 0; q + 1 < kRowsAhead; ++q) ahead[q] = ahead[q + 1];
    if (n + kRowsAhead * step < N)  // prefetch the row kRowsAhead steps ahead
      load_backward_row<VPT, kLayer>(ahead[kRowsAhead - 1], x, dout, dres, mean_in, rstd_in,
                                     n + kRowsAhead * step, C, j, G, vecs);
    const Bf16x8(&xv)[VPT] = cur.x;
    const Bf16x8(&dv)[VPT] = cur.d;
    const Bf16x8(&rv)[VPT] = cur.r;
    const float mean = cur.mean, rstd = cur.rstd;
    float sg = 0.f, sgx = 0.f;
#pragma unroll
    for (int k = 0; k < VPT; ++k) {
      if (!row || j + k * G >= vecs) continue;
      float xf[8], d[8], g[8];
      widen(xv[k], xf);
      widen(dv[k], d);
      widen(gv[k], g);
#pragma unroll
      for (int i = 0; i < 8; ++i) {
        const float gg = d[i] * g[i];
        sg += gg;
        sgx += gg * ((xf[i] - mean) * rstd);
      }
    }
    const float2 t = group_sum(make_float2(sg, sgx), red, phase, G / 32);
    if (!row) continue;
    const float mg = kLayer ? t.x * inv_c : 0.f, mgx = t.y * inv_c;
#pragma unroll
    for (int k = 0; k < VPT; ++k) {
      const int vi = j + k * G;
      if (vi >= vecs) continue;
      float xf[8], d[8], g[8], o[8], rr[8] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
      widen(xv[k], xf);
      widen(dv[k], d);
      widen(gv[k], g);
      if (dres) widen(rv[k], rr);
#pragma unroll
      for (int i = 0; i < 8; ++i) {
        const float xh = (xf[i] - mean) * rstd;
        o[i] = rr[i] + rstd * (d[i] * g[i] - mg - xh * mgx);
        acc_g[k][i] += d[i] * xh;
        acc_b[k][i] += d[i];
      }
      store8(dx + n * C + 8 * vi, o);
    }
  }
  if (!partial) return;
  // Combine the row groups' sums in row-group order, then write this block's partial row.
  float* pg = partial + (int64_t(blockIdx.x) * 2) * C;
  float* pb = pg + C;
  float* sg_out = R > 1 ? combine : pg;
  float* sb_out = R > 1 ? combine + C : pb;
  for (int q = 0; q < R; ++q) {
    if (q == r) {
#pragma unroll
      for (int k = 0; k < VPT; ++k) {
        const int vi = j + k * G;
        if (vi >= vecs) continue;
#pragma unroll
        for (int i = 0; i < 8; ++i) {
          const int c = 8 * vi + i;
          sg_out[c] = q == 0 ? acc_g[k][i] : sg_out[c] + acc_g[k][i];
          if (kLayer) sb_out[c] = q == 0 ? acc_b[k][i] : sb_out[c] + acc_b[k][i];
        }
      }
    }
    if (R > 1) __syncthreads();
  }
  if (R > 1) {
    for (int c = threadIdx.x; c < C; c += blockDim.x) {
      pg[c] = combine[c];
      if (kLayer) pb[c] = combine[C + c];
    }
  }
}

template <int VPT>
void launch_forward(cudaStream_t stream, bool layer, const RowShape& sh, bf16* out, float* mean,
                    float* rstd, const bf16* x, const bf16* res, bf16* sum, const bf16* gain,
                    const bf16* bias, int64_t N, int C, float eps) {
  const int64_t blocks = (N + sh.rows - 1) / sh.rows;
  const unsigned grid = static_cast<unsigned>(blocks < 2147483647 ? blocks : 2147483647);
  const unsigned block = static_cast<unsigned>(sh.rows * sh.group);
  if (layer)
    norm_rows_forward_kernel<VPT, true><<<grid, block, 0, stream>>>(
        out, mean, rstd, x, res, sum, gain, bias, N, C, sh.group, eps);
  else
    norm_rows_forward_kernel<VPT, false><<<grid, block, 0, stream>>>(
        out, mean, rstd, x, res, sum, gain, bias, N, C, sh.group, eps);
  LLMPI_CUDA_LAUNCH_CHECK();
}

// A resident grid (blocks per SM from the occupancy calculator) loops over the rows: one
// partial row per block, added up by column_sum_finish in a fixed order.
template <int VPT>
void launch_backward(cudaStream_t stream, int sm_count, bool layer, const RowShape& sh,
                     bf16* dx, float* dgain, float* dbias, const bf16* dout, const bf16* dres,
                     const bf16* x, const bf16* gain, const float* mean, const float* rstd,
                     int64_t N, int C) {
  auto* kernel = layer ? norm_rows_backward_kernel<VPT, true> : norm_rows_backward_kernel<VPT, false>;
  const int block = sh.rows * sh.group;
  const size_t shared = dgain && sh.rows > 1 ? 2 * static_cast<size_t>(C) * sizeof(float) : 0;
  int per_sm = 0;
  LLMPI_CUDA(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, block, shared));
  const int64_t need = (N + sh.rows - 1) / sh.rows;
  const int64_t resident = int64_t{sm_count > 0 ? sm_count : 1} * (per_sm > 0 ? per_sm : 1);
  const unsigned grid = static_cast<unsigned>(need < resident ? need : resident);
  Scratch partial(stream, dgain ? size_t{grid} * 2 * static_cast<size_t>(C) * sizeof(float) : 0);
  float* p = dgain ? partial.as<float>() : nullptr;
  kernel<<<grid, static_cast<unsigned>(block), shared, stream>>>(dx, p, dout, dres, x, gain, mean,
                                                                 rstd, N, C, sh.group);
  LLMPI_CUDA_LAUNCH_CHECK();
  if (!dgain) return;
  column_sum_finish_launch<2>(stream, dgain, layer ? dbias : nullptr, p, C, grid);
}

}  // namespace

bool norm_rows_support(int64_t C) { return C > 0 && C % 8 == 0 && C <= kMaxC; }

void norm_rows_forward(cudaStream_t stream, bool layer, bf16* out, float* mean, float* rstd,
                       const bf16* x, const bf16* res, bf16* sum, const bf16* gain,
                       const bf16* bias, int64_t N, int64_t C, float eps) {
  if (N == 0) return;
  const RowShape sh = row_shape(C);
  const int c = static_cast<int>(C);
  launch_forward<1>(stream, layer, sh, out, mean, rstd, x, res, sum, gain, bias, N, c, eps);
}

void norm_rows_backward(cudaStream_t stream, int sm_count, bool layer, bf16* dx, float* dgain,
                        float* dbias, const bf16* dout, const bf16* dres, const bf16* x,
                        const bf16* gain, const float* mean, const float* rstd, int64_t N,
                        int64_t C) {
  if (N == 0) return;
  const RowShape sh = row_shape(C);
  const int c = static_cast<int>(C);
  launch_backward<1>(stream, sm_count, layer, sh, dx, dgain, dbias, dout, dres, x, gain, mean,
                    rstd, N, c);
}

}  // namespace llmpi::cuda
