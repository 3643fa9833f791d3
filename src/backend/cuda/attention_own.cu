// Own flash attention (causal, GQA), the fallback of cuDNN's fused attention.
// Forward, per block: 16 query rows of one (b, head) (4 warps × 4 rows); keys stream through
// shared memory in tiles of 32 (one key per lane). For each row the lane computes its key's
// score from the f32 query row (shared, broadcast) and the bf16 key tile (rows padded by one
// word against bank conflicts), the warp updates the online softmax (running max m and sum
// l; f32), and the output accumulator (D/32 values per lane) is rescaled and fed with P·V.
// out = acc / l, lse = m + log l. Tiles past the causal diagonal are never loaded.
// Packed documents (doc_start, backend.h): query t sees keys [doc_start[t], t]. Key tiles
// before the block's first document start are never loaded either (doc_start is
// nondecreasing, so the block's first row has the smallest); inside a tile a row skips it
// (warp-uniform) when none of its keys is there, else masks the keys before its start.
// Backward (recomputes P = exp(s − lse); Δ = rowsum(dout ∘ out) first):
//   dq kernel: the forward's structure; dS = P·(dout·v − Δ)·scale, dq += dS·k.
//   dkv kernel: 16 key rows of one kv head per block; query tiles of 32 (one per lane) of
//     every query head of the group stream through shared memory; dv += P·dout, dk += dS·q.
//     With documents the query loop ends at the first tile whose first query starts its
//     document after the block's last key.
// Every output element is written once by one thread: no atomics, deterministic.
#include <cmath>

#include "backend/cuda/attention_own.h"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/device_util.cuh"
#include "core/error.h"

namespace llmpi::cuda {
namespace {

constexpr int kWarps = 4;
constexpr int kRows = 4;                   // rows per warp
constexpr int kTileRows = kWarps * kRows;  // rows per block
constexpr unsigned kFull = 0xffffffffu;

__device__ __forceinline__ int64_t imin(int64_t a, int64_t b) { return a < b ? a : b; }

struct Geo {
  int64_t B, T, Hq, Hkv, D, W, group;
  float scale;
  const int32_t* doc_start;  // [B·T] or nullptr (one document per row)
};

// First key visible to query t of batch row b (its document start; 0 without documents).
__device__ __forceinline__ int64_t first_key(const Geo& g, int64_t b, int64_t t) {
  return g.doc_start ? g.doc_start[b * g.T + t] : 0;
}

// dst[r][0, D) = src row r (r < valid), else 0; dst rows are P bf16 apart, src rows `stride`.
__device__ __forceinline__ void load_tile(bf16* dst, int P, const bf16* src, int64_t stride,
                                          int valid, int D) {
  const int pairs = D / 2;
  for (int idx = threadIdx.x; idx < 32 * pairs; idx += blockDim.x) {
    const int r = idx / pairs, c = (idx % pairs) * 2;
    __nv_bfloat162 v = __floats2bfloat162_rn(0.f, 0.f);
    if (r < valid) v = *reinterpret_cast<const __nv_bfloat162*>(src + r * stride + c);
    *reinterpret_cast<__nv_bfloat162*>(dst + r * P + c) = v;
  }
}

// dst[r][0, D) = f32(src row r) for kTileRows rows starting at row0 (rows ≥ T are 0).
__device__ __forceinline__ void load_rows_f32(float* dst, const bf16* src, int64_t stride,
                                              int64_t row0, int64_t T, int D) {
  for (int idx = threadIdx.x; idx < kTileRows * D; idx += blockDim.x) {
    const int r = idx / D, d = idx % D;
    dst[idx] = row0 + r < T ? to_f32(src[(row0 + r) * stride + d]) : 0.f;
  }
}

__device__ __forceinline__ float dot_row(const float* a, const bf16* k, int D) {
  float s = 0.f;
  for (int d = 0; d < D; d += 2) {
    const float2 kv = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(k + d));
    const float2 av = *reinterpret_cast<const float2*>(a + d);
    s = fmaf(av.x, kv.x, fmaf(av.y, kv.y, s));
  }
  return s;
}

template <int DPL>
__global__ void __launch_bounds__(kWarps * 32)
    forward_kernel(bf16* __restrict__ out, float* __restrict__ lse, const bf16* __restrict__ qkv,
                   Geo g) {
  extern __shared__ __align__(16) unsigned char smem[];
  const int D = static_cast<int>(g.D), P = D + 2;
  float* qs = reinterpret_cast<float*>(smem);  // [kTileRows][D]
  bf16* ks = reinterpret_cast<bf16*>(qs + kTileRows * D);  // [32][P]
  bf16* vs = ks + 32 * P;                                   // [32][P]
  const int64_t b = blockIdx.z, h = blockIdx.y, q0 = int64_t(blockIdx.x) * kTileRows;
  const int64_t kvh = h / g.group;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const bf16* base = qkv + b * g.T * g.W;
  load_rows_f32(qs, base + h * D, g.W, q0, g.T, D);

  float m[kRows], l[kRows], acc[kRows][DPL];
  int64_t first[kRows];
#pragma unroll
  for (int r = 0; r < kRows; ++r) {
    m[r] = -INFINITY;
    l[r] = 0.f;
    const int64_t t = q0 + warp * kRows + r;
    first[r] = t < g.T ? first_key(g, b, t) : 0;
#pragma unroll
    for (int i = 0; i < DPL; ++i) acc[r][i] = 0.f;
  }
  const int64_t q_last = imin(g.T - 1, q0 + kTileRows - 1);
  for (int64_t j0 = first_key(g, b, q0) / 32 * 32; j0 <= q_last; j0 += 32) {
    __syncthreads();
    const int valid = static_cast<int>(imin(32, g.T - j0));
    load_tile(ks, P, base + j0 * g.W + (g.Hq + kvh) * D, g.W, valid, D);
    load_tile(vs, P, base + j0 * g.W + (g.Hq + g.Hkv + kvh) * D, g.W, valid, D);
    __syncthreads();
    const int64_t j = j0 + lane;
#pragma unroll
    for (int r = 0; r < kRows; ++r) {
      const int rr = warp * kRows + r;
      const int64_t t = q0 + rr;
      // warp-uniform: the tile holds none of t's keys
      if (t >= g.T || j0 > t || j0 + 31 < first[r]) continue;
      const bool visible = j <= t && j >= first[r];
      const float s = visible ? dot_row(qs + rr * D, ks + lane * P, D) * g.scale : -INFINITY;
      const float m_new = fmaxf(m[r], warp_max(s));  // finite: a key of the tile is visible
      const float p = visible ? __expf(s - m_new) : 0.f;
      const float corr = __expf(m[r] - m_new);
      l[r] = l[r] * corr + warp_sum(p);
      m[r] = m_new;
      const int kmin = static_cast<int>(first[r] > j0 ? first[r] - j0 : 0);
      const int kmax = static_cast<int>(imin(32, t - j0 + 1));
#pragma unroll
      for (int i = 0; i < DPL; ++i) acc[r][i] *= corr;
      for (int k = kmin; k < kmax; ++k) {
        const float pk = __shfl_sync(kFull, p, k);
#pragma unroll
        for (int i = 0; i < DPL; ++i) {
          const int d = lane + 32 * i;
          if (d < D) acc[r][i] = fmaf(pk, to_f32(vs[k * P + d]), acc[r][i]);
        }
      }
    }
  }
#pragma unroll
  for (int r = 0; r < kRows; ++r) {
    const int64_t t = q0 + warp * kRows + r;
    if (t >= g.T) continue;
    const float inv_l = 1.f / l[r];
    bf16* o = out + ((b * g.T + t) * g.Hq + h) * D;
#pragma unroll
    for (int i = 0; i < DPL; ++i) {
      const int d = lane + 32 * i;
      if (d < D) o[d] = from_f32<bf16>(acc[r][i] * inv_l);
    }
    if (lane == 0) lse[(b * g.Hq + h) * g.T + t] = m[r] + logf(l[r]);
  }
}

// delta[b, h, t] = Σ_d dout·out, one warp per (b, t, h) row.
__global__ void delta_kernel(float* delta, const bf16* dout, const bf16* out, Geo g) {
  const int64_t row = (blockIdx.x * int64_t(blockDim.x) + threadIdx.x) >> 5;
  const int lane = threadIdx.x & 31;
  if (row >= g.B * g.T * g.Hq) return;
  const int64_t h = row % g.Hq, t = (row / g.Hq) % g.T, b = row / (g.Hq * g.T);
  float s = 0.f;
  for (int64_t d = lane; d < g.D; d += 32)
    s += to_f32(dout[row * g.D + d]) * to_f32(out[row * g.D + d]);
  s = warp_sum(s);
  if (lane == 0) delta[(b * g.Hq + h) * g.T + t] = s;
}

template <int DPL>
__global__ void __launch_bounds__(kWarps * 32)
    dq_kernel(bf16* __restrict__ dqkv, const bf16* __restrict__ dout,
              const bf16* __restrict__ qkv, const float* __restrict__ lse,
              const float* __restrict__ delta, Geo g) {
  extern __shared__ __align__(16) unsigned char smem[];
  const int D = static_cast<int>(g.D), P = D + 2;
  float* qs = reinterpret_cast<float*>(smem);   // [kTileRows][D]
  float* dos = qs + kTileRows * D;              // [kTileRows][D]
  bf16* ks = reinterpret_cast<bf16*>(dos + kTileRows * D);  // [32][P]
  bf16* vs = ks + 32 * P;                                    // [32][P]
  const int64_t b = blockIdx.z, h = blockIdx.y, q0 = int64_t(blockIdx.x) * kTileRows;
  const int64_t kvh = h / g.group, OW = g.Hq * D;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const bf16* base = qkv + b * g.T * g.W;
  load_rows_f32(qs, base + h * D, g.W, q0, g.T, D);
  load_rows_f32(dos, dout + b * g.T * OW + h * D, OW, q0, g.T, D);
  float row_lse[kRows], row_delta[kRows], acc[kRows][DPL];
  int64_t first[kRows];
#pragma unroll
  for (int r = 0; r < kRows; ++r) {
    const int64_t t = q0 + warp * kRows + r;
    row_lse[r] = t < g.T ? lse[(b * g.Hq + h) * g.T + t] : 0.f;
    row_delta[r] = t < g.T ? delta[(b * g.Hq + h) * g.T + t] : 0.f;
    first[r] = t < g.T ? first_key(g, b, t) : 0;
#pragma unroll
    for (int i = 0; i < DPL; ++i) acc[r][i] = 0.f;
  }
  const int64_t q_last = imin(g.T - 1, q0 + kTileRows - 1);
  for (int64_t j0 = first_key(g, b, q0) / 32 * 32; j0 <= q_last; j0 += 32) {
    __syncthreads();
    const int valid = static_cast<int>(imin(32, g.T - j0));
    load_tile(ks, P, base + j0 * g.W + (g.Hq + kvh) * D, g.W, valid, D);
    load_tile(vs, P, base + j0 * g.W + (g.Hq + g.Hkv + kvh) * D, g.W, valid, D);
    __syncthreads();
    const int64_t j = j0 + lane;
#pragma unroll
    for (int r = 0; r < kRows; ++r) {
      const int rr = warp * kRows + r;
      const int64_t t = q0 + rr;
      if (t >= g.T || j0 > t || j0 + 31 < first[r]) continue;  // warp-uniform
      float ds = 0.f;
      if (j <= t && j >= first[r]) {
        const float p = __expf(dot_row(qs + rr * D, ks + lane * P, D) * g.scale - row_lse[r]);
        const float dp = dot_row(dos + rr * D, vs + lane * P, D);
        ds = p * (dp - row_delta[r]) * g.scale;
      }
      const int kmin = static_cast<int>(first[r] > j0 ? first[r] - j0 : 0);
      const int kmax = static_cast<int>(imin(32, t - j0 + 1));
      for (int k = kmin; k < kmax; ++k) {
        const float dsk = __shfl_sync(kFull, ds, k);
#pragma unroll
        for (int i = 0; i < DPL; ++i) {
          const int d = lane + 32 * i;
          if (d < D) acc[r][i] = fmaf(dsk, to_f32(ks[k * P + d]), acc[r][i]);
        }
      }
    }
  }
#pragma unroll
  for (int r = 0; r < kRows; ++r) {
    const int64_t t = q0 + warp * kRows + r;
    if (t >= g.T) continue;
    bf16* dq = dqkv + (b * g.T + t) * g.W + h * D;
#pragma unroll
    for (int i = 0; i < DPL; ++i) {
      const int d = lane + 32 * i;
      if (d < D) dq[d] = from_f32<bf16>(acc[r][i]);
    }
  }
}

template <int DPL>
__global__ void __launch_bounds__(kWarps * 32)
    dkv_kernel(bf16* __restrict__ dqkv, const bf16* __restrict__ dout,
               const bf16* __restrict__ qkv, const float* __restrict__ lse,
               const float* __restrict__ delta, Geo g) {
  extern __shared__ __align__(16) unsigned char smem[];
  const int D = static_cast<int>(g.D), P = D + 2;
  float* kr = reinterpret_cast<float*>(smem);  // [kTileRows][D] key rows
  float* vr = kr + kTileRows * D;              // [kTileRows][D] value rows
  bf16* qt = reinterpret_cast<bf16*>(vr + kTileRows * D);  // [32][P] query tile
  bf16* dot = qt + 32 * P;                                  // [32][P] dout tile
  float* lse_t = reinterpret_cast<float*>(dot + 32 * P);    // [32]
  float* delta_t = lse_t + 32;                              // [32]
  int32_t* first_t = reinterpret_cast<int32_t*>(delta_t + 32);  // [32] document starts
  const int64_t b = blockIdx.z, kvh = blockIdx.y, j0 = int64_t(blockIdx.x) * kTileRows;
  const int64_t OW = g.Hq * D;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const bf16* base = qkv + b * g.T * g.W;
  load_rows_f32(kr, base + (g.Hq + kvh) * D, g.W, j0, g.T, D);
  load_rows_f32(vr, base + (g.Hq + g.Hkv + kvh) * D, g.W, j0, g.T, D);
  float acc_k[kRows][DPL], acc_v[kRows][DPL];
#pragma unroll
  for (int r = 0; r < kRows; ++r)
#pragma unroll
    for (int i = 0; i < DPL; ++i) acc_k[r][i] = acc_v[r][i] = 0.f;

  const int64_t j_last = imin(g.T - 1, j0 + kTileRows - 1);
  for (int64_t h = kvh * g.group; h < (kvh + 1) * g.group; ++h) {
    for (int64_t t0 = (j0 / 32) * 32; t0 < g.T; t0 += 32) {
      // Queries from t0 on start their documents after every key of the block: done.
      if (first_key(g, b, t0) > j_last) break;  // block-uniform
      __syncthreads();
      const int valid = static_cast<int>(imin(32, g.T - t0));
      load_tile(qt, P, base + t0 * g.W + h * D, g.W, valid, D);
      load_tile(dot, P, dout + (b * g.T + t0) * OW + h * D, OW, valid, D);
      if (threadIdx.x < 32) {
        const int64_t t = t0 + threadIdx.x;
        lse_t[threadIdx.x] = t < g.T ? lse[(b * g.Hq + h) * g.T + t] : 0.f;
        delta_t[threadIdx.x] = t < g.T ? delta[(b * g.Hq + h) * g.T + t] : 0.f;
        first_t[threadIdx.x] = t < g.T ? static_cast<int32_t>(first_key(g, b, t)) : 0;
      }
      __syncthreads();
      const int64_t t = t0 + lane;
#pragma unroll
      for (int r = 0; r < kRows; ++r) {
        const int rr = warp * kRows + r;
        const int64_t j = j0 + rr;
        // warp-uniform: no query of the tile sees j (all before it, or all in later documents)
        if (j >= g.T || t0 + 31 < j || first_t[0] > j) continue;
        float p = 0.f, ds = 0.f;
        if (t >= j && t < g.T && first_t[lane] <= j) {
          p = __expf(dot_row(kr + rr * D, qt + lane * P, D) * g.scale - lse_t[lane]);
          const float dp = dot_row(vr + rr * D, dot + lane * P, D);
          ds = p * (dp - delta_t[lane]) * g.scale;
        }
        const int kmin = static_cast<int>(j > t0 ? j - t0 : 0);
        for (int k = kmin; k < 32; ++k) {
          const float pk = __shfl_sync(kFull, p, k), dsk = __shfl_sync(kFull, ds, k);
#pragma unroll
          for (int i = 0; i < DPL; ++i) {
            const int d = lane + 32 * i;
            if (d < D) {
              acc_v[r][i] = fmaf(pk, to_f32(dot[k * P + d]), acc_v[r][i]);
              acc_k[r][i] = fmaf(dsk, to_f32(qt[k * P + d]), acc_k[r][i]);
            }
          }
        }
      }
    }
  }
#pragma unroll
  for (int r = 0; r < kRows; ++r) {
    const int64_t j = j0 + warp * kRows + r;
    if (j >= g.T) continue;
    bf16* dk = dqkv + (b * g.T + j) * g.W + (g.Hq + kvh) * D;
    bf16* dv = dqkv + (b * g.T + j) * g.W + (g.Hq + g.Hkv + kvh) * D;
#pragma unroll
    for (int i = 0; i < DPL; ++i) {
      const int d = lane + 32 * i;
      if (d < D) {
        dk[d] = from_f32<bf16>(acc_k[r][i]);
        dv[d] = from_f32<bf16>(acc_v[r][i]);
      }
    }
  }
}

Geo geometry(const AttentionShape& s, const int32_t* doc_start) {
  return Geo{s.B, s.T, s.Hq, s.Hkv, s.D, (s.Hq + 2 * s.Hkv) * s.D, s.Hq / s.Hkv,
             static_cast<float>(1.0 / std::sqrt(static_cast<double>(s.D))), doc_start};
}

size_t tile_bytes(int64_t D) { return 2 * 32 * static_cast<size_t>(D + 2) * sizeof(bf16); }

// Calls f(std::integral_constant<int, DPL>) for DPL = ceil(D / 32).
template <class F>
void dispatch_dpl(int64_t D, F&& f) {
  switch ((D + 31) / 32) {
    case 1: f(std::integral_constant<int, 1>{}); return;
    case 2: f(std::integral_constant<int, 2>{}); return;
    case 3: f(std::integral_constant<int, 3>{}); return;
    case 4: f(std::integral_constant<int, 4>{}); return;
    case 5: f(std::integral_constant<int, 5>{}); return;
    case 6: f(std::integral_constant<int, 6>{}); return;
    case 7: f(std::integral_constant<int, 7>{}); return;
    case 8: f(std::integral_constant<int, 8>{}); return;
  }
  LLMPI_CHECK(false, "own attention: head dim ", D, " not supported (even, <= ",
              kOwnAttentionMaxD, ")");
}

template <class K>
void launch(K kernel, dim3 grid, size_t smem, cudaStream_t stream, auto... args) {
  LLMPI_CUDA(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                  static_cast<int>(smem)));
  kernel<<<grid, kWarps * 32, smem, stream>>>(args...);
  LLMPI_CUDA_LAUNCH_CHECK();
}

}  // namespace

bool own_attention_supports(const AttentionShape& s) {
  return s.D > 0 && s.D % 2 == 0 && s.D <= kOwnAttentionMaxD && s.Hkv > 0 &&
         s.Hq % s.Hkv == 0 && s.Hq <= 65535 && s.B <= 65535;
}

void own_attention_forward(void* out, float* lse, const void* qkv, const AttentionShape& s,
                           const int32_t* doc_start, cudaStream_t stream) {
  LLMPI_CHECK(own_attention_supports(s), "own attention: unsupported shape D=", s.D);
  if (s.B * s.T == 0) return;
  const Geo g = geometry(s, doc_start);
  const dim3 grid(static_cast<unsigned>((s.T + kTileRows - 1) / kTileRows),
                  static_cast<unsigned>(s.Hq), static_cast<unsigned>(s.B));
  const size_t smem = kTileRows * s.D * sizeof(float) + tile_bytes(s.D);
  dispatch_dpl(s.D, [&](auto dpl) {
    launch(forward_kernel<decltype(dpl)::value>, grid, smem, stream, static_cast<bf16*>(out),
           lse, static_cast<const bf16*>(qkv), g);
  });
}

void own_attention_backward(void* dqkv, const void* dout, const void* qkv, const void* out,
                            const float* lse, float* delta, const AttentionShape& s,
                            const int32_t* doc_start, cudaStream_t stream) {
  LLMPI_CHECK(own_attention_supports(s), "own attention: unsupported shape D=", s.D);
  if (s.B * s.T == 0) return;
  const Geo g = geometry(s, doc_start);
  const int64_t rows = s.B * s.T * s.Hq;
  delta_kernel<<<blocks_for(rows * 32, 256), 256, 0, stream>>>(
      delta, static_cast<const bf16*>(dout), static_cast<const bf16*>(out), g);
  LLMPI_CUDA_LAUNCH_CHECK();
  const unsigned tiles = static_cast<unsigned>((s.T + kTileRows - 1) / kTileRows);
  const size_t rows_bytes = 2 * kTileRows * s.D * sizeof(float);
  dispatch_dpl(s.D, [&](auto dpl) {
    constexpr int kDpl = decltype(dpl)::value;
    launch(dq_kernel<kDpl>, dim3(tiles, static_cast<unsigned>(s.Hq), static_cast<unsigned>(s.B)),
           rows_bytes + tile_bytes(s.D), stream, static_cast<bf16*>(dqkv),
           static_cast<const bf16*>(dout), static_cast<const bf16*>(qkv), lse,
           static_cast<const float*>(delta), g);
    launch(dkv_kernel<kDpl>,
           dim3(tiles, static_cast<unsigned>(s.Hkv), static_cast<unsigned>(s.B)),
           rows_bytes + tile_bytes(s.D) + 64 * sizeof(float) + 32 * sizeof(int32_t), stream,
           static_cast<bf16*>(dqkv),
           static_cast<const bf16*>(dout), static_cast<const bf16*>(qkv), lse,
           static_cast<const float*>(delta), g);
  });
}

}  // namespace llmpi::cuda
