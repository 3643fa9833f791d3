// Tensor-core flash-attention backward (FlashAttention-2 style, deterministic).
// Tiles of 64 rows; a block is 4 warps, warp w owns rows [16w, 16w + 16) of the block's tile.
// Per (key tile, query tile) pair, in shared memory (bf16 tiles padded by 8 elements):
//   S  = K·Qᵀ (dk/dv kernel) or Q·Kᵀ (dq kernel)  — WMMA bf16 16×16×16, f32 accumulate
//   dP = V·dOᵀ              or dO·Vᵀ
//   P  = exp(scale·S − lse) (0 outside the causal triangle / past T), dS = P·(dP − Δ)·scale
//   dk/dv kernel: dV += P·dO, dK += dS·Q (accumulators in WMMA fragments across the loop over
//                 the group's query heads and the query tiles at or below the diagonal);
//   dq kernel:    dQ += dS·K over the key tiles up to the diagonal.
// A warp only reads back its own rows of S, dP, P and dS, so only tile loads need a block
// barrier. Δ = rowsum(dout ∘ out) is a pre-pass. Every output is written once: no atomics.
// Packed documents (doc_start, backend.h): P = 0 where the key precedes the query's document
// start; the dq kernel starts at the key tile of its first query's document start, the dk/dv
// kernel stops at the first query tile whose first query starts after the block's last key.
#include <mma.h>

#include <cmath>

#include "backend/cuda/attention_tc.h"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/device_util.cuh"
#include "core/error.h"

namespace llmpi::cuda {
namespace {

namespace wmma = nvcuda::wmma;

constexpr int kBlk = 64;      // rows of a tile (keys or queries)
constexpr int kThreads = 128;  // 4 warps × 16 rows

struct TcGeo {
  int64_t B, T, Hq, Hkv, W, OW, group;
  float scale;
  const int32_t* doc_start;  // [B·T] or nullptr (one document per row)
};

// First key visible to query t of batch row b (its document start; 0 without documents).
__device__ __forceinline__ int32_t first_key(const TcGeo& g, int64_t b, int64_t t) {
  return g.doc_start ? g.doc_start[b * g.T + t] : 0;
}

template <int D>
struct Layout {
  static constexpr int LD = D + 8;      // bf16 pitch of the Q, K, V, dO tiles
  static constexpr int SLD = kBlk + 4;  // f32 pitch of S and dP
  static constexpr int PLD = kBlk + 8;  // bf16 pitch of P and dS
  static constexpr size_t tile = size_t(kBlk) * LD * sizeof(bf16);
  static constexpr size_t ftile = size_t(kBlk) * SLD * sizeof(float);
  static constexpr size_t ptile = size_t(kBlk) * PLD * sizeof(bf16);
  static constexpr size_t bytes =
      4 * tile + 2 * ftile + 2 * ptile + 2 * kBlk * sizeof(float) + kBlk * sizeof(int32_t);
};

// Shared-memory regions of both kernels (the tile names follow the dk/dv kernel: `a0`, `a1`
// are the block's resident tiles, `b0`, `b1` the streamed ones).
template <int D>
struct Regions {
  bf16 *a0, *a1, *b0, *b1;
  float *s, *dp;
  bf16 *p, *ds;
  float *lse, *delta;
  int32_t* first;  // document start of each query of the tile
  __device__ explicit Regions(unsigned char* m) {
    using L = Layout<D>;
    a0 = reinterpret_cast<bf16*>(m);
    a1 = a0 + kBlk * L::LD;
    b0 = a1 + kBlk * L::LD;
    b1 = b0 + kBlk * L::LD;
    s = reinterpret_cast<float*>(b1 + kBlk * L::LD);
    dp = s + kBlk * L::SLD;
    p = reinterpret_cast<bf16*>(dp + kBlk * L::SLD);
    ds = p + kBlk * L::PLD;
    lse = reinterpret_cast<float*>(ds + kBlk * L::PLD);
    delta = lse + kBlk;
    first = reinterpret_cast<int32_t*>(delta + kBlk);
  }
};

using FragA = wmma::fragment<wmma::matrix_a, 16, 16, 16, bf16, wmma::row_major>;
using FragBt = wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, wmma::col_major>;
using FragB = wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, wmma::row_major>;
using FragC = wmma::fragment<wmma::accumulator, 16, 16, 16, float>;

// dst rows [0, kBlk) = src rows (row stride `stride`), zero from row `valid` on.
template <int D>
__device__ __forceinline__ void load_tile(bf16* dst, const bf16* src, int64_t stride,
                                          int valid) {
  constexpr int kVec = D / 8;
  for (int idx = threadIdx.x; idx < kBlk * kVec; idx += kThreads) {
    const int r = idx / kVec, c = (idx % kVec) * 8;
    uint4 v = make_uint4(0u, 0u, 0u, 0u);
    if (r < valid) v = *reinterpret_cast<const uint4*>(src + r * stride + c);
    *reinterpret_cast<uint4*>(dst + r * Layout<D>::LD + c) = v;
  }
}

// out[16][kBlk] (f32, pitch SLD) = a[16][D] · bᵀ where b is a [kBlk][D] tile.
template <int D>
__device__ __forceinline__ void rows_times_tile_t(float* out, const bf16* a, const bf16* b) {
  constexpr int LD = Layout<D>::LD;
  FragC c[kBlk / 16];
#pragma unroll
  for (int n = 0; n < kBlk / 16; ++n) wmma::fill_fragment(c[n], 0.f);
#pragma unroll
  for (int k = 0; k < D; k += 16) {
    FragA fa;
    wmma::load_matrix_sync(fa, a + k, LD);
#pragma unroll
    for (int n = 0; n < kBlk / 16; ++n) {
      FragBt fb;
      wmma::load_matrix_sync(fb, b + n * 16 * LD + k, LD);
      wmma::mma_sync(c[n], fa, fb, c[n]);
    }
  }
#pragma unroll
  for (int n = 0; n < kBlk / 16; ++n)
    wmma::store_matrix_sync(out + n * 16, c[n], Layout<D>::SLD, wmma::mem_row_major);
}

// acc[16][D] += a[16][kBlk] (bf16, pitch PLD) · b[kBlk][D] (a tile).
template <int D>
__device__ __forceinline__ void accumulate(FragC (&acc)[D / 16], const bf16* a, const bf16* b) {
  constexpr int LD = Layout<D>::LD;
#pragma unroll
  for (int k = 0; k < kBlk; k += 16) {
    FragA fa;
    wmma::load_matrix_sync(fa, a + k, Layout<D>::PLD);
#pragma unroll
    for (int n = 0; n < D / 16; ++n) {
      FragB fb;
      wmma::load_matrix_sync(fb, b + k * LD + n * 16, LD);
      wmma::mma_sync(acc[n], fa, fb, acc[n]);
    }
  }
}

// Writes the warp's 16 rows of acc (rows row0 + r < T) as bf16 to dst + r·stride, staging each
// 16×16 fragment through the warp's own f32 rows `stage` (pitch SLD).
template <int D>
__device__ __forceinline__ void store_rows(bf16* dst, int64_t stride, int64_t row0, int64_t T,
                                           FragC (&acc)[D / 16], float* stage) {
  const int lane = threadIdx.x & 31, r = lane >> 1, c = (lane & 1) * 8;
#pragma unroll
  for (int n = 0; n < D / 16; ++n) {
    __syncwarp();
    wmma::store_matrix_sync(stage, acc[n], Layout<D>::SLD, wmma::mem_row_major);
    __syncwarp();
    if (row0 + r < T) {
      float v[8];
#pragma unroll
      for (int i = 0; i < 8; ++i) v[i] = stage[r * Layout<D>::SLD + c + i];
      store8(dst + r * stride + n * 16 + c, v);
    }
  }
}

// P and dS for the warp's 16 rows × kBlk columns. Element (r, c) is query tq against key tk,
// visible from key `lo` (the query's document start) on: idx(r, c, tq, tk, lo); the query's
// statistics come from stat(r, c, lse, delta).
template <int D, class Index, class Stat>
__device__ __forceinline__ void softmax_grad(bf16* p_out, bf16* ds_out, const float* s,
                                             const float* dp, int64_t T, float scale,
                                             Index idx, Stat stat) {
  const int lane = threadIdx.x & 31;
#pragma unroll 4
  for (int r = 0; r < 16; ++r) {
    for (int c = lane; c < kBlk; c += 32) {
      int64_t tq, tk, lo;
      idx(r, c, tq, tk, lo);
      float p = 0.f, ds = 0.f;
      if (tq < T && tk <= tq && tk >= lo) {
        float lse, delta;
        stat(r, c, lse, delta);
        p = __expf(s[r * Layout<D>::SLD + c] * scale - lse);
        ds = p * (dp[r * Layout<D>::SLD + c] - delta) * scale;
      }
      if (p_out) p_out[r * Layout<D>::PLD + c] = __float2bfloat16_rn(p);
      ds_out[r * Layout<D>::PLD + c] = __float2bfloat16_rn(ds);
    }
  }
}

template <int D>
__global__ void __launch_bounds__(kThreads)
    dkv_tc_kernel(bf16* __restrict__ dqkv, const bf16* __restrict__ dout,
                  const bf16* __restrict__ qkv, const float* __restrict__ lse,
                  const float* __restrict__ delta, TcGeo g) {
#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 800
  extern __shared__ __align__(128) unsigned char smem[];
  using L = Layout<D>;
  const Regions<D> m(smem);
  bf16 *ks = m.a0, *vs = m.a1, *qs = m.b0, *dos = m.b1;
  const int64_t b = blockIdx.z, kvh = blockIdx.y, j0 = int64_t(blockIdx.x) * kBlk;
  const int warp = threadIdx.x >> 5;
  const bf16* base = qkv + b * g.T * g.W;
  const int kvalid = static_cast<int>(g.T - j0 < kBlk ? g.T - j0 : kBlk);
  load_tile<D>(ks, base + j0 * g.W + (g.Hq + kvh) * D, g.W, kvalid);
  load_tile<D>(vs, base + j0 * g.W + (g.Hq + g.Hkv + kvh) * D, g.W, kvalid);
  FragC dk[D / 16], dv[D / 16];
#pragma unroll
  for (int n = 0; n < D / 16; ++n) {
    wmma::fill_fragment(dk[n], 0.f);
    wmma::fill_fragment(dv[n], 0.f);
  }
  float* s_w = m.s + warp * 16 * L::SLD;
  float* dp_w = m.dp + warp * 16 * L::SLD;
  bf16* p_w = m.p + warp * 16 * L::PLD;
  bf16* ds_w = m.ds + warp * 16 * L::PLD;
  const int64_t jw = j0 + warp * 16;
  const int64_t j_last = j0 + kvalid - 1;
  for (int64_t h = kvh * g.group; h < (kvh + 1) * g.group; ++h) {
    for (int64_t t0 = j0; t0 < g.T; t0 += kBlk) {
      // Queries from t0 on start their documents after every key of the block: done.
      if (first_key(g, b, t0) > j_last) break;  // block-uniform
      __syncthreads();  // every warp is done with the previous query tile
      const int qvalid = static_cast<int>(g.T - t0 < kBlk ? g.T - t0 : kBlk);
      load_tile<D>(qs, base + t0 * g.W + h * D, g.W, qvalid);
      load_tile<D>(dos, dout + (b * g.T + t0) * g.OW + h * D, g.OW, qvalid);
      if (threadIdx.x < kBlk) {
        const int64_t t = t0 + threadIdx.x;
        m.lse[threadIdx.x] = t < g.T ? lse[(b * g.Hq + h) * g.T + t] : 0.f;
        m.delta[threadIdx.x] = t < g.T ? delta[(b * g.Hq + h) * g.T + t] : 0.f;
        m.first[threadIdx.x] = t < g.T ? first_key(g, b, t) : 0;
      }
      __syncthreads();
      rows_times_tile_t<D>(s_w, ks + warp * 16 * L::LD, qs);
      rows_times_tile_t<D>(dp_w, vs + warp * 16 * L::LD, dos);
      __syncwarp();
      const float* lse_t = m.lse;
      const float* delta_t = m.delta;
      const int32_t* first_t = m.first;
      softmax_grad<D>(
          p_w, ds_w, s_w, dp_w, g.T, g.scale,
          [&](int r, int c, int64_t& tq, int64_t& tk, int64_t& lo) {
            tq = t0 + c;
            tk = jw + r;
            lo = first_t[c];
          },
          [&](int, int c, float& l, float& d) {
            l = lse_t[c];
            d = delta_t[c];
          });
      __syncwarp();
      accumulate<D>(dv, p_w, dos);
      accumulate<D>(dk, ds_w, qs);
    }
  }
  bf16* row0 = dqkv + (b * g.T + jw) * g.W;
  store_rows<D>(row0 + (g.Hq + kvh) * D, g.W, jw, g.T, dk, s_w);
  store_rows<D>(row0 + (g.Hq + g.Hkv + kvh) * D, g.W, jw, g.T, dv, s_w);
#endif
}

template <int D>
__global__ void __launch_bounds__(kThreads)
    dq_tc_kernel(bf16* __restrict__ dqkv, const bf16* __restrict__ dout,
                 const bf16* __restrict__ qkv, const float* __restrict__ lse,
                 const float* __restrict__ delta, TcGeo g) {
#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 800
  extern __shared__ __align__(128) unsigned char smem[];
  using L = Layout<D>;
  const Regions<D> m(smem);
  bf16 *qs = m.a0, *dos = m.a1, *ks = m.b0, *vs = m.b1;
  const int64_t b = blockIdx.z, h = blockIdx.y, t0 = int64_t(blockIdx.x) * kBlk;
  const int64_t kvh = h / g.group;
  const int warp = threadIdx.x >> 5;
  const bf16* base = qkv + b * g.T * g.W;
  const int qvalid = static_cast<int>(g.T - t0 < kBlk ? g.T - t0 : kBlk);
  load_tile<D>(qs, base + t0 * g.W + h * D, g.W, qvalid);
  load_tile<D>(dos, dout + (b * g.T + t0) * g.OW + h * D, g.OW, qvalid);
  if (threadIdx.x < kBlk) {
    const int64_t t = t0 + threadIdx.x;
    m.lse[threadIdx.x] = t < g.T ? lse[(b * g.Hq + h) * g.T + t] : 0.f;
    m.delta[threadIdx.x] = t < g.T ? delta[(b * g.Hq + h) * g.T + t] : 0.f;
    m.first[threadIdx.x] = t < g.T ? first_key(g, b, t) : 0;
  }
  FragC dq[D / 16];
#pragma unroll
  for (int n = 0; n < D / 16; ++n) wmma::fill_fragment(dq[n], 0.f);
  float* s_w = m.s + warp * 16 * L::SLD;
  float* dp_w = m.dp + warp * 16 * L::SLD;
  bf16* ds_w = m.ds + warp * 16 * L::PLD;
  const int64_t tw = t0 + warp * 16;
  const float* lse_w = m.lse + warp * 16;
  const float* delta_w = m.delta + warp * 16;
  const int32_t* first_w = m.first + warp * 16;
  // doc_start is nondecreasing: the tile's first query has the smallest start.
  for (int64_t j0 = first_key(g, b, t0) / kBlk * kBlk; j0 <= t0; j0 += kBlk) {
    __syncthreads();  // every warp is done with the previous key tile (and Q, dO are loaded)
    const int kvalid = static_cast<int>(g.T - j0 < kBlk ? g.T - j0 : kBlk);
    load_tile<D>(ks, base + j0 * g.W + (g.Hq + kvh) * D, g.W, kvalid);
    load_tile<D>(vs, base + j0 * g.W + (g.Hq + g.Hkv + kvh) * D, g.W, kvalid);
    __syncthreads();
    rows_times_tile_t<D>(s_w, qs + warp * 16 * L::LD, ks);
    rows_times_tile_t<D>(dp_w, dos + warp * 16 * L::LD, vs);
    __syncwarp();
    softmax_grad<D>(
        nullptr, ds_w, s_w, dp_w, g.T, g.scale,
        [&](int r, int c, int64_t& tq, int64_t& tk, int64_t& lo) {
          tq = tw + r;
          tk = j0 + c;
          lo = first_w[r];
        },
        [&](int r, int, float& l, float& d) {
          l = lse_w[r];
          d = delta_w[r];
        });
    __syncwarp();
    accumulate<D>(dq, ds_w, ks);
  }
  store_rows<D>(dqkv + (b * g.T + tw) * g.W + h * D, g.W, tw, g.T, dq, s_w);
#endif
}

// delta[b, h, t] = Σ_d dout·out, one warp per (b, t, h) row (D a multiple of 8).
__global__ void delta_tc_kernel(float* delta, const bf16* dout, const bf16* out, int64_t rows,
                                int64_t T, int64_t Hq, int D) {
  const int lane = threadIdx.x & 31;
  const int64_t warps = (int64_t(gridDim.x) * blockDim.x) >> 5;
  for (int64_t row = (blockIdx.x * int64_t(blockDim.x) + threadIdx.x) >> 5; row < rows;
       row += warps) {
    float s = 0.f;
    for (int d = lane * 8; d < D; d += 256) {
      float a[8], o[8];
      load8(dout + row * D + d, a);
      load8(out + row * D + d, o);
#pragma unroll
      for (int i = 0; i < 8; ++i) s = fmaf(a[i], o[i], s);
    }
    s = warp_sum(s);
    const int64_t h = row % Hq, t = (row / Hq) % T, b = row / (Hq * T);
    if (lane == 0) delta[(b * Hq + h) * T + t] = s;
  }
}

template <int D>
void launch_tc(bf16* dqkv, const bf16* dout, const bf16* qkv, const float* lse,
               const float* delta, const AttentionShape& s, const TcGeo& g,
               cudaStream_t stream) {
  const size_t smem = Layout<D>::bytes;
  const unsigned tiles = static_cast<unsigned>((s.T + kBlk - 1) / kBlk);
  LLMPI_CUDA(cudaFuncSetAttribute(dkv_tc_kernel<D>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                  static_cast<int>(smem)));
  LLMPI_CUDA(cudaFuncSetAttribute(dq_tc_kernel<D>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                  static_cast<int>(smem)));
  // Blocks of the longest loops (the first key tiles, the last query tiles) start first.
  dkv_tc_kernel<D><<<dim3(tiles, static_cast<unsigned>(s.Hkv), static_cast<unsigned>(s.B)),
                     kThreads, smem, stream>>>(dqkv, dout, qkv, lse, delta, g);
  LLMPI_CUDA_LAUNCH_CHECK();
  dq_tc_kernel<D><<<dim3(tiles, static_cast<unsigned>(s.Hq), static_cast<unsigned>(s.B)),
                    kThreads, smem, stream>>>(dqkv, dout, qkv, lse, delta, g);
  LLMPI_CUDA_LAUNCH_CHECK();
}

bool device_has_bf16_mma() {
  int dev = 0, major = 0;
  if (cudaGetDevice(&dev) != cudaSuccess) return false;
  if (cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) != cudaSuccess)
    return false;
  return major >= 8;
}

}  // namespace

bool tc_attention_supports(const AttentionShape& s) {
  return own_attention_supports(s) && s.D % 32 == 0 && s.D <= 128 && s.Hq <= 65535 &&
         s.B <= 65535 && device_has_bf16_mma();
}

void tc_attention_backward(void* dqkv, const void* dout, const void* qkv, const void* out,
                           const float* lse, float* delta, const AttentionShape& s,
                           const int32_t* doc_start, cudaStream_t stream) {
  LLMPI_CHECK(tc_attention_supports(s), "tensor-core attention backward: unsupported shape D=",
              s.D);
  LLMPI_CHECK(aligned16(dqkv) && aligned16(dout) && aligned16(qkv) && aligned16(out),
              "tensor-core attention backward: tensors must be 16-byte aligned");
  if (s.B * s.T == 0) return;
  const TcGeo g{s.B,
                s.T,
                s.Hq,
                s.Hkv,
                (s.Hq + 2 * s.Hkv) * s.D,
                s.Hq * s.D,
                s.Hq / s.Hkv,
                static_cast<float>(1.0 / std::sqrt(static_cast<double>(s.D))),
                doc_start};
  const int64_t rows = s.B * s.T * s.Hq;
  delta_tc_kernel<<<blocks_for(rows * 32, 256), 256, 0, stream>>>(
      delta, static_cast<const bf16*>(dout), static_cast<const bf16*>(out), rows, s.T, s.Hq,
      static_cast<int>(s.D));
  LLMPI_CUDA_LAUNCH_CHECK();
  auto* dq = static_cast<bf16*>(dqkv);
  auto* o = static_cast<const bf16*>(dout);
  auto* x = static_cast<const bf16*>(qkv);
  switch (s.D) {
    case 32: launch_tc<32>(dq, o, x, lse, delta, s, g, stream); return;
    case 64: launch_tc<64>(dq, o, x, lse, delta, s, g, stream); return;
    case 96: launch_tc<96>(dq, o, x, lse, delta, s, g, stream); return;
    case 128: launch_tc<128>(dq, o, x, lse, delta, s, g, stream); return;
  }
  LLMPI_CHECK(false, "tensor-core attention backward: no kernel for D=", s.D);
}

}  // namespace llmpi::cuda
