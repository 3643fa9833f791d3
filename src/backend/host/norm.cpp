// Row normalization over the last dim C of x[N, C], statistics per row n kept for backward.
//   layernorm: mean = Σx/C, rstd = 1/sqrt(Σ(x-mean)²/C + eps), x̂ = (x-mean)·rstd,
//              out = x̂·gain + bias;  dx = rstd·(g - mean(g) - x̂·mean(g·x̂)) with g = dout·gain
//   rmsnorm:   rstd = 1/sqrt(Σx²/C + eps), x̂ = x·rstd, out = x̂·gain;
//              dx = rstd·(g - x̂·mean(g·x̂))
// Row sums accumulate in double. Parameter grads (dgain, dbias) are accumulated by a pass
// parallel over column blocks that runs before dx is written, so dx may alias dout.
// Fused residual forms (add_norm_forward, norm_backward_add): each row first forms
// sum = x + res (written, then normalized), and dx = dres + ∂/∂x; per element every input is
// read before the output at the same index is written, so the aliases the contract allows
// (sum = x or res; dx = dout or dres) are safe. Same arithmetic as add() + the plain op.
#include <cmath>

#include "backend/host/host_backend.h"
#include "backend/host/host_kernels.h"

namespace llmpi {
namespace host {
namespace {

constexpr int64_t kColBlock = 64;

// dgain[c] += Σ_n dout[n,c]·x̂[n,c]; dbias[c] += Σ_n dout[n,c] (dbias may be null).
// mean may be null (rmsnorm: x̂ = x·rstd).
template <class T>
void norm_param_grads(T* dgain, T* dbias, const T* dout, const T* x, const T* mean,
                      const T* rstd, int64_t N, int64_t C) {
  const int64_t blocks = (C + kColBlock - 1) / kColBlock;
  Kokkos::parallel_for("llmpi::host::norm_param_grads", Range(0, blocks),
                       KOKKOS_LAMBDA(int64_t blk) {
    const int64_t c0 = blk * kColBlock;
    const int64_t w = c0 + kColBlock < C ? kColBlock : C - c0;
    T g_acc[kColBlock] = {};
    T b_acc[kColBlock] = {};
    for (int64_t n = 0; n < N; ++n) {
      const T m = mean ? mean[n] : T(0), s = rstd[n];
      const T* xr = x + n * C + c0;
      const T* dr = dout + n * C + c0;
      for (int64_t c = 0; c < w; ++c) {
        g_acc[c] += dr[c] * (xr[c] - m) * s;
        b_acc[c] += dr[c];
      }
    }
    for (int64_t c = 0; c < w; ++c) {
      dgain[c0 + c] += g_acc[c];
      if (dbias) dbias[c0 + c] += b_acc[c];
    }
  });
}

// dx (+ dres when non-null) for one normalization family; mean null means rmsnorm (no
// centering term).
template <class T>
void norm_input_grad(T* dx, const T* dout, const T* x, const T* gain, const T* mean,
                     const T* rstd, int64_t N, int64_t C, const T* dres) {
  Kokkos::parallel_for("llmpi::host::norm_input_grad", Range(0, N), KOKKOS_LAMBDA(int64_t n) {
    const T m = mean ? mean[n] : T(0), s = rstd[n];
    const T* xr = x + n * C;
    const T* dr = dout + n * C;
    double sum_g = 0, sum_gx = 0;
    for (int64_t c = 0; c < C; ++c) {
      const double g = static_cast<double>(dr[c]) * gain[c];
      sum_g += g;
      sum_gx += g * static_cast<double>((xr[c] - m) * s);
    }
    const T mean_g = mean ? static_cast<T>(sum_g / C) : T(0);
    const T mean_gx = static_cast<T>(sum_gx / C);
    T* o = dx + n * C;
    const T* rr = dres ? dres + n * C : nullptr;
    for (int64_t c = 0; c < C; ++c) {
      const T xhat = (xr[c] - m) * s;
      const T g = s * (dr[c] * gain[c] - mean_g - xhat * mean_gx);
      o[c] = rr ? rr[c] + g : g;
    }
  });
}

// The row x_n, or (res non-null) sum_n = x_n + res_n written to `sum` first.
template <class T>
KOKKOS_INLINE_FUNCTION const T* row_input(const T* x, const T* res, T* sum, int64_t n,
                                          int64_t C) {
  if (!res) return x + n * C;
  const T* xr = x + n * C;
  const T* rr = res + n * C;
  T* sr = sum + n * C;
  for (int64_t c = 0; c < C; ++c) sr[c] = xr[c] + rr[c];
  return sr;
}

}  // namespace

template <class T>
void layernorm_forward(T* out, T* mean, T* rstd, const T* x, const T* gain, const T* bias,
                       int64_t N, int64_t C, double eps, const T* res, T* sum_out) {
  Kokkos::parallel_for("llmpi::host::layernorm_forward", Range(0, N), KOKKOS_LAMBDA(int64_t n) {
    const T* xr = row_input(x, res, sum_out, n, C);
    double sum = 0;
    for (int64_t c = 0; c < C; ++c) sum += xr[c];
    const double mu = sum / C;
    double var = 0;
    for (int64_t c = 0; c < C; ++c) var += (xr[c] - mu) * (xr[c] - mu);
    const T m = static_cast<T>(mu);
    const T s = static_cast<T>(1.0 / std::sqrt(var / C + eps));
    mean[n] = m;
    rstd[n] = s;
    T* o = out + n * C;
    for (int64_t c = 0; c < C; ++c) o[c] = (xr[c] - m) * s * gain[c] + (bias ? bias[c] : T(0));
  });
}

template <class T>
void layernorm_backward(T* dx, T* dgain, T* dbias, const T* dout, const T* x, const T* gain,
                        const T* mean, const T* rstd, int64_t N, int64_t C, const T* dres) {
  if (dgain) norm_param_grads(dgain, dbias, dout, x, mean, rstd, N, C);
  else LLMPI_CHECK(!dbias, "layernorm_backward: dbias without dgain");
  norm_input_grad(dx, dout, x, gain, mean, rstd, N, C, dres);
}

template <class T>
void rmsnorm_forward(T* out, T* rstd, const T* x, const T* gain, int64_t N, int64_t C,
                     double eps, const T* res, T* sum_out) {
  Kokkos::parallel_for("llmpi::host::rmsnorm_forward", Range(0, N), KOKKOS_LAMBDA(int64_t n) {
    const T* xr = row_input(x, res, sum_out, n, C);
    double ss = 0;
    for (int64_t c = 0; c < C; ++c) ss += static_cast<double>(xr[c]) * xr[c];
    const T s = static_cast<T>(1.0 / std::sqrt(ss / C + eps));
    rstd[n] = s;
    T* o = out + n * C;
    for (int64_t c = 0; c < C; ++c) o[c] = xr[c] * s * gain[c];
  });
}

template <class T>
void rmsnorm_backward(T* dx, T* dgain, const T* dout, const T* x, const T* gain, const T* rstd,
                      int64_t N, int64_t C, const T* dres) {
  if (dgain) norm_param_grads<T>(dgain, nullptr, dout, x, nullptr, rstd, N, C);
  norm_input_grad<T>(dx, dout, x, gain, nullptr, rstd, N, C, dres);
}

#define LLMPI_INSTANTIATE(T)                                                                  \
  template void layernorm_forward<T>(T*, T*, T*, const T*, const T*, const T*, int64_t,       \
                                     int64_t, double, const T*, T*);                         \
  template void layernorm_backward<T>(T*, T*, T*, const T*, const T*, const T*, const T*,     \
                                      const T*, int64_t, int64_t, const T*);                 \
  template void rmsnorm_forward<T>(T*, T*, const T*, const T*, int64_t, int64_t, double,      \
                                   const T*, T*);                                            \
  template void rmsnorm_backward<T>(T*, T*, const T*, const T*, const T*, const T*, int64_t,  \
                                    int64_t, const T*);
LLMPI_INSTANTIATE(float)
LLMPI_INSTANTIATE(double)
#undef LLMPI_INSTANTIATE

}  // namespace host

using namespace host;

namespace {

// A per-row statistic or a per-column parameter: in host memory, of the op's dtype.
void check_stat(const char* op, const char* what, const Tensor& t, DType dt) {
  check_host(op, what, t);
  check_dtype(op, what, t, dt);
}

// norm_forward, or with `fused` add_norm_forward (res = b and sum given; x = a).
void norm_forward_impl(const char* op, NormKind kind, bool fused, const Tensor& out,
                       const Tensor& mean, const Tensor& rstd, const Tensor& x,
                       const Tensor& gain, const Tensor& bias, double eps, const Tensor& res,
                       const Tensor& sum) {
  check_host(op, "out", out);
  check_host(op, "x", x);
  check_dtype(op, "x", x, out.dtype);
  check_stat(op, "gain", gain, out.dtype);
  check_stat(op, "rstd", rstd, out.dtype);
  if (kind == NormKind::layernorm) check_stat(op, "mean", mean, out.dtype);
  if (!bias.empty()) check_stat(op, "bias", bias, out.dtype);
  const op_shapes::RowSizes sz =
      fused ? op_shapes::add_norm(op, kind, sum, out, mean, rstd, x, res, gain, bias, eps)
            : op_shapes::norm(op, kind, x, gain, mean, rstd, bias, Tensor{}, {{"out", &out}}, eps);
  if (fused) {
    check_stat(op, "b", res, out.dtype);
    check_stat(op, "sum", sum, out.dtype);
  }
  const int64_t N = sz.N, C = sz.C;
  dispatch_float(out.dtype, op, [&](auto tag) {
    using T = decltype(tag);
    const T* r = fused ? res.ptr<const T>() : nullptr;
    T* s = fused ? sum.ptr<T>() : nullptr;
    if (kind == NormKind::layernorm)
      host::layernorm_forward<T>(out.ptr<T>(), mean.ptr<T>(), rstd.ptr<T>(), x.ptr<const T>(),
                                 gain.ptr<const T>(),
                                 bias.empty() ? nullptr : bias.ptr<const T>(), N, C, eps, r, s);
    else
      host::rmsnorm_forward<T>(out.ptr<T>(), rstd.ptr<T>(), x.ptr<const T>(),
                               gain.ptr<const T>(), N, C, eps, r, s);
  });
}

// norm_backward, or with `fused` norm_backward_add (dres given).
void norm_backward_impl(const char* op, NormKind kind, bool fused, const Tensor& dx,
                        const Tensor& dgain, const Tensor& dbias, const Tensor& dout,
                        const Tensor& dres, const Tensor& x, const Tensor& gain,
                        const Tensor& mean, const Tensor& rstd) {
  check_host(op, "dx", dx);
  check_host(op, "dout", dout);
  check_host(op, "x", x);
  const DType dt = x.dtype;
  check_dtype(op, "dx", dx, dt);
  check_dtype(op, "dout", dout, dt);
  check_stat(op, "gain", gain, dt);
  check_stat(op, "rstd", rstd, dt);
  if (!dgain.empty()) check_stat(op, "dgain", dgain, dt);
  if (kind == NormKind::layernorm) check_stat(op, "mean", mean, dt);
  if (!dbias.empty()) check_stat(op, "dbias", dbias, dt);
  const op_shapes::RowSizes sz =
      fused ? op_shapes::norm_backward_add(op, kind, dx, dgain, dbias, dout, dres, x, gain, mean,
                                           rstd)
            : op_shapes::norm(op, kind, x, gain, mean, rstd, dbias, dgain,
                              {{"dx", &dx}, {"dout", &dout}}, 0.0);
  if (fused) check_stat(op, "dres", dres, dt);
  LLMPI_CHECK(dbias.empty() || !dgain.empty(), op, ": dbias given without dgain");
  const int64_t N = sz.N, C = sz.C;
  dispatch_float(dt, op, [&](auto tag) {
    using T = decltype(tag);
    T* dg = dgain.empty() ? nullptr : dgain.ptr<T>();
    const T* dr = fused ? dres.ptr<const T>() : nullptr;
    if (kind == NormKind::layernorm)
      host::layernorm_backward<T>(dx.ptr<T>(), dg, dbias.empty() ? nullptr : dbias.ptr<T>(),
                                  dout.ptr<const T>(), x.ptr<const T>(), gain.ptr<const T>(),
                                  mean.ptr<const T>(), rstd.ptr<const T>(), N, C, dr);
    else
      host::rmsnorm_backward<T>(dx.ptr<T>(), dg, dout.ptr<const T>(), x.ptr<const T>(),
                                gain.ptr<const T>(), rstd.ptr<const T>(), N, C, dr);
  });
}

}  // namespace

void HostBackend::norm_forward(NormKind kind, const Tensor& out, const Tensor& mean,
                               const Tensor& rstd, const Tensor& x, const Tensor& gain,
                               const Tensor& bias, double eps) {
  norm_forward_impl(kind == NormKind::layernorm ? "norm_forward(layernorm)"
                                                : "norm_forward(rmsnorm)",
                    kind, false, out, mean, rstd, x, gain, bias, eps, Tensor{}, Tensor{});
}

void HostBackend::add_norm_forward(NormKind kind, const Tensor& sum, const Tensor& out,
                                   const Tensor& mean, const Tensor& rstd, const Tensor& a,
                                   const Tensor& b, const Tensor& gain, const Tensor& bias,
                                   double eps) {
  norm_forward_impl(kind == NormKind::layernorm ? "add_norm_forward(layernorm)"
                                                : "add_norm_forward(rmsnorm)",
                    kind, true, out, mean, rstd, a, gain, bias, eps, b, sum);
}

void HostBackend::norm_backward(NormKind kind, const Tensor& dx, const Tensor& dgain,
                                const Tensor& dbias, const Tensor& dout, const Tensor& x,
                                const Tensor& gain, const Tensor& mean, const Tensor& rstd) {
  norm_backward_impl(kind == NormKind::layernorm ? "norm_backward(layernorm)"
                                                 : "norm_backward(rmsnorm)",
                     kind, false, dx, dgain, dbias, dout, Tensor{}, x, gain, mean, rstd);
}

void HostBackend::norm_backward_add(NormKind kind, const Tensor& dx, const Tensor& dgain,
                                    const Tensor& dbias, const Tensor& dout, const Tensor& dres,
                                    const Tensor& x, const Tensor& gain, const Tensor& mean,
                                    const Tensor& rstd) {
  norm_backward_impl(kind == NormKind::layernorm ? "norm_backward_add(layernorm)"
                                                 : "norm_backward_add(rmsnorm)",
                     kind, true, dx, dgain, dbias, dout, dres, x, gain, mean, rstd);
}

}  // namespace llmpi
