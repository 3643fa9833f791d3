// Causal self-attention with grouped-query heads, flash-style: the T×T scores are never stored.
// qkv: [B, T, W], W = (Hq + 2·Hkv)·D, each row [q heads | k heads | v heads]; query head h
// reads kv head h / (Hq/Hkv). out: [B, T, Hq·D]; lse: [B, Hq, T].
// Forward, per (b, h, t): one pass over keys j ≤ t with an online softmax (running max m and
// sum l; the output row itself is the accumulator, rescaled when m grows), then
// out = acc / l and lse = m + log l.
// Backward recomputes P = exp(s − lse): with Δ_t = Σ_d dout·out and dS = P·(dout·v − Δ_t),
//   dq_t = scale·Σ_j dS_tj k_j  (pass 1, parallel over (b, h, t); also stores Δ_t)
//   dk_j = scale·Σ_{h∈group, t≥j} dS_tj q_t,  dv_j = Σ_{h∈group, t≥j} P_tj dout_t
//        (pass 2, parallel over (b, kv head, j): each owns its dk/dv rows, so no races).
#include <cmath>
#include <limits>
#include <vector>

#include "backend/host/host_backend.h"
#include "backend/host/host_kernels.h"

namespace llmpi {
namespace host {
namespace {

// Dot product over a head dim with 8 independent partial sums: breaks the add-latency chain
// and lets the compiler vectorize without reassociation flags.
template <class T>
KOKKOS_INLINE_FUNCTION T dot(const T* a, const T* b, int64_t D) {
  constexpr int64_t kLanes = 8;
  T acc[kLanes] = {};
  int64_t d = 0;
  for (; d + kLanes <= D; d += kLanes)
    for (int64_t l = 0; l < kLanes; ++l) acc[l] += a[d + l] * b[d + l];
  T s = 0;
  for (; d < D; ++d) s += a[d] * b[d];
  for (int64_t l = 0; l < kLanes; ++l) s += acc[l];
  return s;
}

}  // namespace

template <class T>
void attention_forward(T* out, T* lse, const T* qkv, int64_t B, int64_t T_len, int64_t Hq,
                       int64_t Hkv, int64_t D) {
  const int64_t W = (Hq + 2 * Hkv) * D, group = Hq / Hkv, OW = Hq * D;
  const T scale = static_cast<T>(1.0 / std::sqrt(static_cast<double>(D)));
  Kokkos::parallel_for("llmpi::host::attention_forward", Range(0, B * Hq * T_len),
                       KOKKOS_LAMBDA(int64_t idx) {
    const int64_t t = idx % T_len, h = (idx / T_len) % Hq, b = idx / (T_len * Hq);
    const int64_t kvh = h / group;
    const T* base = qkv + b * T_len * W;
    const T* q = base + t * W + h * D;
    T* o = out + (b * T_len + t) * OW + h * D;
    for (int64_t d = 0; d < D; ++d) o[d] = 0;
    T m = -std::numeric_limits<T>::infinity(), l = 0;
    for (int64_t j = 0; j <= t; ++j) {
      const T* k = base + j * W + (Hq + kvh) * D;
      const T* v = base + j * W + (Hq + Hkv + kvh) * D;
      const T s = dot(q, k, D) * scale;
      if (s > m) {
        const T corr = std::exp(m - s);  // 0 on the first key (m = −inf)
        l *= corr;
        for (int64_t d = 0; d < D; ++d) o[d] *= corr;
        m = s;
      }
      const T p = std::exp(s - m);
      l += p;
      for (int64_t d = 0; d < D; ++d) o[d] += p * v[d];
    }
    const T inv_l = T(1) / l;
    for (int64_t d = 0; d < D; ++d) o[d] *= inv_l;
    lse[(b * Hq + h) * T_len + t] = m + std::log(l);
  });
}

template <class T>
void attention_backward(T* dqkv, const T* dout, const T* qkv, const T* out, const T* lse,
                        int64_t B, int64_t T_len, int64_t Hq, int64_t Hkv, int64_t D) {
  const int64_t W = (Hq + 2 * Hkv) * D, group = Hq / Hkv, OW = Hq * D;
  const T scale = static_cast<T>(1.0 / std::sqrt(static_cast<double>(D)));
  std::vector<T> delta_store(static_cast<size_t>(B * Hq * T_len));
  T* delta = delta_store.data();

  // Pass 1: Δ and dq, one query row each.
  Kokkos::parallel_for("llmpi::host::attention_backward_dq", Range(0, B * Hq * T_len),
                       KOKKOS_LAMBDA(int64_t idx) {
    const int64_t t = idx % T_len, h = (idx / T_len) % Hq, b = idx / (T_len * Hq);
    const int64_t kvh = h / group;
    const T* base = qkv + b * T_len * W;
    const T* q = base + t * W + h * D;
    const T* go = dout + (b * T_len + t) * OW + h * D;
    const T* o = out + (b * T_len + t) * OW + h * D;
    const T row_lse = lse[(b * Hq + h) * T_len + t];
    const T dl = dot(go, o, D);
    delta[idx] = dl;
    T* dq = dqkv + (b * T_len + t) * W + h * D;
    for (int64_t d = 0; d < D; ++d) dq[d] = 0;
    for (int64_t j = 0; j <= t; ++j) {
      const T* k = base + j * W + (Hq + kvh) * D;
      const T* v = base + j * W + (Hq + Hkv + kvh) * D;
      const T p = std::exp(dot(q, k, D) * scale - row_lse);
      const T ds = p * (dot(go, v, D) - dl) * scale;
      for (int64_t d = 0; d < D; ++d) dq[d] += ds * k[d];
    }
  });

  // Pass 2: dk and dv, one key row of one kv head each, summed over its query heads.
  Kokkos::parallel_for("llmpi::host::attention_backward_dkv", Range(0, B * Hkv * T_len),
                       KOKKOS_LAMBDA(int64_t idx) {
    const int64_t j = idx % T_len, kvh = (idx / T_len) % Hkv, b = idx / (T_len * Hkv);
    const T* base = qkv + b * T_len * W;
    const T* k = base + j * W + (Hq + kvh) * D;
    const T* v = base + j * W + (Hq + Hkv + kvh) * D;
    T* dk = dqkv + (b * T_len + j) * W + (Hq + kvh) * D;
    T* dv = dqkv + (b * T_len + j) * W + (Hq + Hkv + kvh) * D;
    for (int64_t d = 0; d < D; ++d) dk[d] = dv[d] = 0;
    for (int64_t h = kvh * group; h < (kvh + 1) * group; ++h) {
      for (int64_t t = j; t < T_len; ++t) {
        const T* q = base + t * W + h * D;
        const T* go = dout + (b * T_len + t) * OW + h * D;
        const int64_t row = (b * Hq + h) * T_len + t;
        const T p = std::exp(dot(q, k, D) * scale - lse[row]);
        const T ds = p * (dot(go, v, D) - delta[row]) * scale;
        for (int64_t d = 0; d < D; ++d) {
          dv[d] += p * go[d];
          dk[d] += ds * q[d];
        }
      }
    }
  });
  Kokkos::fence();  // delta_store is freed on return
}

#define LLMPI_INSTANTIATE(T)                                                                  \
  template void attention_forward<T>(T*, T*, const T*, int64_t, int64_t, int64_t, int64_t,    \
                                     int64_t);                                               \
  template void attention_backward<T>(T*, const T*, const T*, const T*, const T*, int64_t,    \
                                      int64_t, int64_t, int64_t, int64_t);
LLMPI_INSTANTIATE(float)
LLMPI_INSTANTIATE(double)
#undef LLMPI_INSTANTIATE

}  // namespace host

using namespace host;

namespace {

void check_attention_shapes(const char* op, const Tensor& qkv, int64_t B, int64_t T,
                            int64_t Hq, int64_t Hkv, int64_t D) {
  LLMPI_CHECK(B >= 0 && T >= 0 && D > 0 && Hkv > 0 && Hq > 0 && Hq % Hkv == 0, op,
              ": bad sizes B=", B, " T=", T, " Hq=", Hq, " Hkv=", Hkv, " D=", D);
  check_host(op, "qkv", qkv);
  check_numel(op, "qkv", qkv, B * T * (Hq + 2 * Hkv) * D);
  LLMPI_CHECK(B * T == 0 || last_dim(qkv) == (Hq + 2 * Hkv) * D, op, ": qkv ",
              qkv.shape.str(), " rows are not (Hq + 2·Hkv)·D = ", (Hq + 2 * Hkv) * D);
}

}  // namespace

void HostBackend::attention_forward(const Tensor& out, const Tensor& lse, const Tensor& qkv,
                                    int64_t B, int64_t T, int64_t Hq, int64_t Hkv, int64_t D) {
  const char* op = "attention_forward";
  check_attention_shapes(op, qkv, B, T, Hq, Hkv, D);
  check_host(op, "out", out);
  check_host(op, "lse", lse);
  check_dtype(op, "out", out, qkv.dtype);
  check_dtype(op, "lse", lse, qkv.dtype);
  check_numel(op, "out", out, B * T * Hq * D);
  check_numel(op, "lse", lse, B * Hq * T);
  LLMPI_CHECK(out.data != qkv.data || out.numel() == 0, op, ": out must not alias qkv");
  dispatch_float(qkv.dtype, op, [&](auto tag) {
    using V = decltype(tag);
    host::attention_forward<V>(out.ptr<V>(), lse.ptr<V>(), qkv.ptr<const V>(), B, T, Hq, Hkv,
                               D);
  });
}

void HostBackend::attention_backward(const Tensor& dqkv, const Tensor& dout, const Tensor& qkv,
                                     const Tensor& out, const Tensor& lse, int64_t B,
                                     int64_t T, int64_t Hq, int64_t Hkv, int64_t D) {
  const char* op = "attention_backward";
  check_attention_shapes(op, qkv, B, T, Hq, Hkv, D);
  const DType dt = qkv.dtype;
  check_host(op, "dqkv", dqkv);
  check_host(op, "dout", dout);
  check_host(op, "out", out);
  check_host(op, "lse", lse);
  check_dtype(op, "dqkv", dqkv, dt);
  check_dtype(op, "dout", dout, dt);
  check_dtype(op, "out", out, dt);
  check_dtype(op, "lse", lse, dt);
  check_numel(op, "dqkv", dqkv, qkv.numel());
  check_numel(op, "dout", dout, B * T * Hq * D);
  check_numel(op, "out", out, B * T * Hq * D);
  check_numel(op, "lse", lse, B * Hq * T);
  LLMPI_CHECK(dqkv.data != qkv.data || qkv.numel() == 0, op, ": dqkv must not alias qkv");
  dispatch_float(dt, op, [&](auto tag) {
    using V = decltype(tag);
    host::attention_backward<V>(dqkv.ptr<V>(), dout.ptr<const V>(), qkv.ptr<const V>(),
                                out.ptr<const V>(), lse.ptr<const V>(), B, T, Hq, Hkv, D);
  });
}

}  // namespace llmpi
