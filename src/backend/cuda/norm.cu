// LayerNorm and RMSNorm on the CUDA backend, f32 math: the ops, their placement and dtype
// checks (the shapes: op_shapes), and the warp-per-row kernels used where the one-pass
// kernels (norm_rows.h, with the residual add fused in) do not apply or are switched off
// (CudaFusions::norm, LLMPI_FUSED). The fused ops then run as their compositions:
// add + norm_forward, norm_backward + add.
// Warp-per-row kernels, one warp per row of x[N, C]:
//   layernorm: mean = Σx/C, rstd = 1/sqrt(Σ(x−mean)²/C + eps), out = (x−mean)·rstd·gain + bias
//   rmsnorm:   rstd = 1/sqrt(Σx²/C + eps), out = x·rstd·gain
//   backward:  g = dout·gain, x̂ = (x−mean)·rstd;  dx = rstd·(g − mean(g) − x̂·mean(g·x̂))
//              (rmsnorm: no mean(g) term); dgain += Σ_n dout·x̂, dbias += Σ_n dout.
// The variance is a second pass over the row (cached), not E[x²]−mean², which cancels.
// Rows are read as eight bf16 per 16-byte access when C % 8 == 0 and the pointers allow.
// dtypes: x, out, gain, bias, dout, dx bf16; mean, rstd f32 [N]; dgain, dbias f32 [C].
// The parameter grads run first (deterministic column sums), so dx may alias dout.
#include <initializer_list>

#include "backend/cuda/column_sum.cuh"
#include "backend/cuda/norm_rows.h"
#include "backend/cuda/cuda_backend_impl.h"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/device_util.cuh"

namespace llmpi {
namespace cuda {
namespace {

constexpr int kWarps = 8;

// f(c, value) for every element of a row handled by this lane.
template <bool kVec, class F>
__device__ __forceinline__ void for_row(const bf16* x, int64_t C, int lane, F&& f) {
  if constexpr (kVec) {
    for (int64_t c = lane * 8; c < C; c += 256) {
      float v[8];
      load8(x + c, v);
#pragma unroll
      for (int k = 0; k < 8; ++k) f(c + k, v[k]);
    }
  } else {
    for (int64_t c = lane; c < C; c += 32) f(c, to_f32(x[c]));
  }
}

template <bool kVec, bool kLayer>
__global__ void norm_forward_kernel(bf16* out, float* mean_out, float* rstd_out, const bf16* x,
                                    const bf16* gain, const bf16* bias, int64_t N, int64_t C,
                                    float eps) {
  const int lane = threadIdx.x & 31;
  const int64_t n = blockIdx.x * int64_t(kWarps) + (threadIdx.x >> 5);
  if (n >= N) return;
  const bf16* xr = x + n * C;
  float mean = 0.f;
  if constexpr (kLayer) {
    float s = 0.f;
    for_row<kVec>(xr, C, lane, [&](int64_t, float v) { s += v; });
    mean = warp_sum(s) / static_cast<float>(C);
  }
  float ss = 0.f;
  for_row<kVec>(xr, C, lane, [&](int64_t, float v) { ss += (v - mean) * (v - mean); });
  const float rstd = rsqrtf(warp_sum(ss) / static_cast<float>(C) + eps);
  if (lane == 0) {
    if constexpr (kLayer) mean_out[n] = mean;
    rstd_out[n] = rstd;
  }
  bf16* orow = out + n * C;
  if constexpr (kVec) {
    for (int64_t c = lane * 8; c < C; c += 256) {
      float v[8], g[8], b[8] = {0, 0, 0, 0, 0, 0, 0, 0};
      load8(xr + c, v);
      load8(gain + c, g);
      if constexpr (kLayer) load8(bias + c, b);
#pragma unroll
      for (int k = 0; k < 8; ++k) v[k] = (v[k] - mean) * rstd * g[k] + b[k];
      store8(orow + c, v);
    }
  } else {
    for (int64_t c = lane; c < C; c += 32) {
      const float b = kLayer ? to_f32(bias[c]) : 0.f;
      orow[c] = from_f32<bf16>((to_f32(xr[c]) - mean) * rstd * to_f32(gain[c]) + b);
    }
  }
}

template <bool kVec, bool kLayer>
__global__ void norm_backward_kernel(bf16* dx, const bf16* dout, const bf16* x, const bf16* gain,
                                     const float* mean_in, const float* rstd_in, int64_t N,
                                     int64_t C) {
  const int lane = threadIdx.x & 31;
  const int64_t n = blockIdx.x * int64_t(kWarps) + (threadIdx.x >> 5);
  if (n >= N) return;
  const bf16* xr = x + n * C;
  const bf16* dr = dout + n * C;
  const float mean = kLayer ? mean_in[n] : 0.f, rstd = rstd_in[n];
  float sum_g = 0.f, sum_gx = 0.f;
  if constexpr (kVec) {
    for (int64_t c = lane * 8; c < C; c += 256) {
      float v[8], d[8], g[8];
      load8(xr + c, v);
      load8(dr + c, d);
      load8(gain + c, g);
#pragma unroll
      for (int k = 0; k < 8; ++k) {
        const float gg = d[k] * g[k];
        sum_g += gg;
        sum_gx += gg * (v[k] - mean) * rstd;
      }
    }
  } else {
    for (int64_t c = lane; c < C; c += 32) {
      const float gg = to_f32(dr[c]) * to_f32(gain[c]);
      sum_g += gg;
      sum_gx += gg * (to_f32(xr[c]) - mean) * rstd;
    }
  }
  const float inv_c = 1.f / static_cast<float>(C);
  const float mg = kLayer ? warp_sum(sum_g) * inv_c : 0.f;
  const float mgx = warp_sum(sum_gx) * inv_c;
  bf16* dxr = dx + n * C;
  if constexpr (kVec) {
    for (int64_t c = lane * 8; c < C; c += 256) {
      float v[8], d[8], g[8];
      load8(xr + c, v);
      load8(dr + c, d);
      load8(gain + c, g);
#pragma unroll
      for (int k = 0; k < 8; ++k) v[k] = rstd * (d[k] * g[k] - mg - (v[k] - mean) * rstd * mgx);
      store8(dxr + c, v);
    }
  } else {
    for (int64_t c = lane; c < C; c += 32) {
      const float xh = (to_f32(xr[c]) - mean) * rstd;
      dxr[c] = from_f32<bf16>(rstd * (to_f32(dr[c]) * to_f32(gain[c]) - mg - xh * mgx));
    }
  }
}

// acc[0] += dout·x̂ (dgain), acc[1] += dout (dbias).
struct NormParamGrad {
  const bf16* dout;
  const bf16* x;
  const float* mean;  // null for rmsnorm
  const float* rstd;
  int64_t C;
  __device__ void operator()(int64_t n, int64_t c, float (&acc)[2]) const {
    const float d = to_f32(dout[n * C + c]);
    const float m = mean ? mean[n] : 0.f;
    acc[0] += d * (to_f32(x[n * C + c]) - m) * rstd[n];
    acc[1] += d;
  }
};

}  // namespace
}  // namespace cuda

using namespace cuda;

namespace {

// Placement and dtypes of norm_forward's tensors (the shapes: op_shapes::norm).
void check_forward_args(const char* op, bool layer, const Tensor& out, const Tensor& mean,
                        const Tensor& rstd, const Tensor& x, const Tensor& gain,
                        const Tensor& bias) {
  check_device(op, "x", x);
  check_device(op, "out", out);
  check_device(op, "gain", gain);
  check_device(op, "rstd", rstd);
  check_dtype(op, "x", x, DType::bf16);
  check_dtype(op, "out", out, DType::bf16);
  check_dtype(op, "gain", gain, DType::bf16);
  check_dtype(op, "rstd", rstd, DType::f32);
  if (layer) {
    LLMPI_CHECK(!bias.empty(), op, ": the cuda layernorm needs a bias");  // the kernel reads it
    check_device(op, "mean", mean);
    check_device(op, "bias", bias);
    check_dtype(op, "mean", mean, DType::f32);
    check_dtype(op, "bias", bias, DType::bf16);
  }
}

// Placement and dtypes of norm_backward's tensors (the shapes: op_shapes::norm).
void check_backward_args(const char* op, bool layer, const Tensor& dx, const Tensor& dgain,
                         const Tensor& dbias, const Tensor& dout, const Tensor& x,
                         const Tensor& gain, const Tensor& mean, const Tensor& rstd) {
  LLMPI_CHECK(!dgain.empty(), op, ": the cuda norm backward needs dgain");
  check_device(op, "dx", dx);
  check_device(op, "dgain", dgain);
  check_device(op, "dout", dout);
  check_device(op, "x", x);
  check_device(op, "gain", gain);
  check_device(op, "rstd", rstd);
  check_dtype(op, "dx", dx, DType::bf16);
  check_dtype(op, "dgain", dgain, DType::f32);
  check_dtype(op, "dout", dout, DType::bf16);
  check_dtype(op, "x", x, DType::bf16);
  check_dtype(op, "gain", gain, DType::bf16);
  check_dtype(op, "rstd", rstd, DType::f32);
  if (layer) {
    check_device(op, "mean", mean);
    check_dtype(op, "mean", mean, DType::f32);
  }
  if (!dbias.empty()) {
    check_device(op, "dbias", dbias);
    check_dtype(op, "dbias", dbias, DType::f32);
  }
}

// A [N, C] operand of a fused op (its shape: op_shapes): in device memory, bf16.
void check_bf16_rows(const char* op, const char* what, const Tensor& t) {
  check_device(op, what, t);
  check_dtype(op, what, t, DType::bf16);
}

// Whether the one-pass kernels take these rows: width and 16-byte alignment of every pointer.
bool rows_ok(int64_t C, std::initializer_list<const void*> ptrs) {
  if (!norm_rows_support(C)) return false;
  for (const void* p : ptrs)
    if (p && !aligned16(p)) return false;
  return true;
}

}  // namespace

void CudaBackend::norm_forward(NormKind kind, const Tensor& out, const Tensor& mean,
                               const Tensor& rstd, const Tensor& x, const Tensor& gain,
                               const Tensor& bias, double eps) {
  const char* op = "norm_forward";
  const bool layer = kind == NormKind::layernorm;
  check_forward_args(op, layer, out, mean, rstd, x, gain, bias);
  const op_shapes::RowSizes sz =
      op_shapes::norm(op, kind, x, gain, mean, rstd, bias, Tensor{}, {{"out", &out}}, eps);
  const int64_t N = sz.N, C = sz.C;
  if (N == 0) return;
  const float e = static_cast<float>(eps);
  auto* o = out.ptr<bf16>();
  auto* mp = layer ? mean.ptr<float>() : nullptr;
  auto* rp = rstd.ptr<float>();
  auto* xp = x.ptr<const bf16>();
  auto* gp = gain.ptr<const bf16>();
  auto* bp = layer ? bias.ptr<const bf16>() : nullptr;
  if (options_.fused.norm && rows_ok(C, {o, xp, gp, bp})) {
    norm_rows_forward(stream_, layer, o, mp, rp, xp, nullptr, nullptr, gp, bp, N, C, e);
    return;
  }
  const bool vec = C % 8 == 0 && aligned16(x.data) && aligned16(out.data) &&
                   aligned16(gain.data) && (!layer || aligned16(bias.data));
  const unsigned grid = static_cast<unsigned>((N + kWarps - 1) / kWarps);
  const dim3 block(32 * kWarps);
  if (vec && layer)
    norm_forward_kernel<true, true><<<grid, block, 0, stream_>>>(o, mp, rp, xp, gp, bp, N, C, e);
  else if (vec)
    norm_forward_kernel<true, false><<<grid, block, 0, stream_>>>(o, mp, rp, xp, gp, bp, N, C, e);
  else if (layer)
    norm_forward_kernel<false, true><<<grid, block, 0, stream_>>>(o, mp, rp, xp, gp, bp, N, C, e);
  else
    norm_forward_kernel<false, false><<<grid, block, 0, stream_>>>(o, mp, rp, xp, gp, bp, N, C, e);
  LLMPI_CUDA_LAUNCH_CHECK();
}

void CudaBackend::add_norm_forward(NormKind kind, const Tensor& sum, const Tensor& out,
                                   const Tensor& mean, const Tensor& rstd, const Tensor& a,
                                   const Tensor& b, const Tensor& gain, const Tensor& bias,
                                   double eps) {
  const char* op = "add_norm_forward";
  const bool layer = kind == NormKind::layernorm;
  check_forward_args(op, layer, out, mean, rstd, a, gain, bias);
  const op_shapes::RowSizes sz =
      op_shapes::add_norm(op, kind, sum, out, mean, rstd, a, b, gain, bias, eps);
  check_bf16_rows(op, "b", b);
  check_bf16_rows(op, "sum", sum);
  const int64_t N = sz.N, C = sz.C;
  if (N == 0) return;
  auto* bp = layer ? bias.ptr<const bf16>() : nullptr;
  if (options_.fused.norm &&
      rows_ok(C, {out.data, a.data, b.data, sum.data, gain.data, bp})) {
    norm_rows_forward(stream_, layer, out.ptr<bf16>(), layer ? mean.ptr<float>() : nullptr,
                      rstd.ptr<float>(), a.ptr<const bf16>(), b.ptr<const bf16>(),
                      sum.ptr<bf16>(), gain.ptr<const bf16>(), bp, N, C,
                      static_cast<float>(eps));
    return;
  }
  add(sum, a, b);
  norm_forward(kind, out, mean, rstd, sum, gain, bias, eps);
}

void CudaBackend::norm_backward(NormKind kind, const Tensor& dx, const Tensor& dgain,
                                const Tensor& dbias, const Tensor& dout, const Tensor& x,
                                const Tensor& gain, const Tensor& mean, const Tensor& rstd) {
  const char* op = "norm_backward";
  const bool layer = kind == NormKind::layernorm;
  check_backward_args(op, layer, dx, dgain, dbias, dout, x, gain, mean, rstd);
  const op_shapes::RowSizes sz = op_shapes::norm(op, kind, x, gain, mean, rstd, dbias, dgain,
                                                 {{"dx", &dx}, {"dout", &dout}}, 0.0);
  const int64_t N = sz.N, C = sz.C;
  if (N == 0) return;
  const float* mp = layer ? mean.ptr<const float>() : nullptr;
  auto* d = dx.ptr<bf16>();
  auto* dp = dout.ptr<const bf16>();
  auto* xp = x.ptr<const bf16>();
  auto* gp = gain.ptr<const bf16>();
  auto* rp = rstd.ptr<const float>();
  float* db = dbias.empty() ? nullptr : dbias.ptr<float>();
  if (options_.fused.norm && rows_ok(C, {d, dp, xp, gp})) {
    norm_rows_backward(stream_, sm_count_, layer, d, dgain.ptr<float>(), db, dp, nullptr, xp, gp,
                       mp, rp, N, C);
    return;
  }
  column_sums<2>(stream_, dgain.ptr<float>(), db, N, C, NormParamGrad{dp, xp, mp, rp, C});
  const bool vec = C % 8 == 0 && aligned16(dx.data) && aligned16(dout.data) &&
                   aligned16(x.data) && aligned16(gain.data);
  const unsigned grid = static_cast<unsigned>((N + kWarps - 1) / kWarps);
  const dim3 block(32 * kWarps);
  if (vec && layer)
    norm_backward_kernel<true, true><<<grid, block, 0, stream_>>>(d, dp, xp, gp, mp, rp, N, C);
  else if (vec)
    norm_backward_kernel<true, false><<<grid, block, 0, stream_>>>(d, dp, xp, gp, mp, rp, N, C);
  else if (layer)
    norm_backward_kernel<false, true><<<grid, block, 0, stream_>>>(d, dp, xp, gp, mp, rp, N, C);
  else
    norm_backward_kernel<false, false><<<grid, block, 0, stream_>>>(d, dp, xp, gp, mp, rp, N, C);
  LLMPI_CUDA_LAUNCH_CHECK();
}

void CudaBackend::norm_backward_add(NormKind kind, const Tensor& dx, const Tensor& dgain,
                                    const Tensor& dbias, const Tensor& dout, const Tensor& dres,
                                    const Tensor& x, const Tensor& gain, const Tensor& mean,
                                    const Tensor& rstd) {
  const char* op = "norm_backward_add";
  const bool layer = kind == NormKind::layernorm;
  check_backward_args(op, layer, dx, dgain, dbias, dout, x, gain, mean, rstd);
  const op_shapes::RowSizes sz = op_shapes::norm_backward_add(op, kind, dx, dgain, dbias, dout,
                                                              dres, x, gain, mean, rstd);
  check_bf16_rows(op, "dres", dres);
  const int64_t N = sz.N, C = sz.C;
  if (N == 0) return;
  if (options_.fused.norm && rows_ok(C, {dx.data, dout.data, dres.data, x.data, gain.data})) {
    norm_rows_backward(stream_, sm_count_, layer, dx.ptr<bf16>(), dgain.ptr<float>(),
                       dbias.empty() ? nullptr : dbias.ptr<float>(), dout.ptr<const bf16>(),
                       dres.ptr<const bf16>(), x.ptr<const bf16>(), gain.ptr<const bf16>(),
                       layer ? mean.ptr<const float>() : nullptr, rstd.ptr<const float>(), N, C);
    return;
  }
  // The composition: the norm's dx into scratch, then added to the residual gradient.
  Scratch tmp(stream_, static_cast<size_t>(N * C) * sizeof(bf16));
  const Tensor t{tmp.as<void>(), dx.shape, DType::bf16, Device::cuda};
  norm_backward(kind, t, dgain, dbias, dout, x, gain, mean, rstd);
  add(dx, dres, t);
}

}  // namespace llmpi
