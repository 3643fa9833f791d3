#pragma once
// Naive reference implementations of the Backend ops, in double, written straight from the
// formulas of backend.h with plain loops and no cleverness (attention builds the explicit T×T
// score matrix). Tests of any backend — host kernels, CUDA twins, model layers — compare
// against these. All arrays are row-major std::vector<double>; shapes follow backend.h.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

namespace llmpi::ref {

using Vec = std::vector<double>;

// out[N, O] = in[N, I] · w[O, I]ᵀ + bias[O] (bias may be empty).
inline Vec linear(const Vec& in, const Vec& w, const Vec& bias, int64_t N, int64_t I,
                  int64_t O) {
  Vec out(N * O);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t o = 0; o < O; ++o) {
      double s = bias.empty() ? 0.0 : bias[o];
      for (int64_t i = 0; i < I; ++i) s += in[n * I + i] * w[o * I + i];
      out[n * O + o] = s;
    }
  return out;
}

// out[n] = table[ids[n] - row_offset] or 0 outside [row_offset, row_offset + R).
inline Vec embedding(const std::vector<int32_t>& ids, const Vec& table, int64_t R, int64_t C,
                     int64_t row_offset) {
  Vec out(ids.size() * C, 0.0);
  for (size_t n = 0; n < ids.size(); ++n) {
    const int64_t r = ids[n] - row_offset;
    if (r < 0 || r >= R) continue;
    for (int64_t c = 0; c < C; ++c) out[n * C + c] = table[r * C + c];
  }
  return out;
}

// LayerNorm over rows of x[N, C]; fills mean[N], rstd[N]. bias may be empty.
inline Vec layernorm(const Vec& x, const Vec& gain, const Vec& bias, int64_t N, int64_t C,
                     double eps, Vec& mean, Vec& rstd) {
  Vec out(N * C);
  mean.assign(N, 0.0);
  rstd.assign(N, 0.0);
  for (int64_t n = 0; n < N; ++n) {
    double mu = 0;
    for (int64_t c = 0; c < C; ++c) mu += x[n * C + c];
    mu /= C;
    double var = 0;
    for (int64_t c = 0; c < C; ++c) var += (x[n * C + c] - mu) * (x[n * C + c] - mu);
    var /= C;
    mean[n] = mu;
    rstd[n] = 1.0 / std::sqrt(var + eps);
    for (int64_t c = 0; c < C; ++c)
      out[n * C + c] = (x[n * C + c] - mu) * rstd[n] * gain[c] + (bias.empty() ? 0.0 : bias[c]);
  }
  return out;
}

// RMSNorm over rows of x[N, C]; fills rstd[N].
inline Vec rmsnorm(const Vec& x, const Vec& gain, int64_t N, int64_t C, double eps, Vec& rstd) {
  Vec out(N * C);
  rstd.assign(N, 0.0);
  for (int64_t n = 0; n < N; ++n) {
    double ms = 0;
    for (int64_t c = 0; c < C; ++c) ms += x[n * C + c] * x[n * C + c];
    rstd[n] = 1.0 / std::sqrt(ms / C + eps);
    for (int64_t c = 0; c < C; ++c) out[n * C + c] = x[n * C + c] * rstd[n] * gain[c];
  }
  return out;
}

inline double gelu(double x) {
  const double k = std::sqrt(2.0 / M_PI);
  return 0.5 * x * (1.0 + std::tanh(k * (x + 0.044715 * x * x * x)));
}

// in[N, 2F] = [gate | up] → out[N, F] = silu(gate)·up.
inline Vec swiglu(const Vec& in, int64_t N, int64_t F) {
  Vec out(N * F);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t f = 0; f < F; ++f) {
      const double g = in[n * 2 * F + f], u = in[n * 2 * F + F + f];
      out[n * F + f] = g / (1.0 + std::exp(-g)) * u;
    }
  return out;
}

// Rotary embedding of the first n_rot heads of each row (width W) of x[B·T, W], explicit
// 2×2 rotation of every pair (i, i + D/2) by ±(t − doc_start + pos_offset)·theta^(−2i/D)
// (doc_start [B·T] per row, or empty: 0).
inline Vec rope(const Vec& x, int64_t rows, int64_t W, int64_t T, int64_t n_rot, int64_t D,
                double theta, int64_t pos_offset, bool inverse,
                const std::vector<int32_t>& doc_start = {}) {
  Vec y = x;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t h = 0; h < n_rot; ++h)
      for (int64_t i = 0; i < D / 2; ++i) {
        const int64_t start = doc_start.empty() ? 0 : doc_start[r];
        const double angle = (inverse ? -1.0 : 1.0) * double(r % T - start + pos_offset) *
                             std::pow(theta, -2.0 * double(i) / double(D));
        const int64_t a = r * W + h * D + i, b = a + D / 2;
        y[a] = x[a] * std::cos(angle) - x[b] * std::sin(angle);
        y[b] = x[b] * std::cos(angle) + x[a] * std::sin(angle);
      }
  return y;
}

// Causal GQA attention with the explicit score matrix S = QKᵀ/√D + mask, P = softmax(S),
// out = P·V. qkv: [B, T, (Hq + 2Hkv)·D]; returns out [B, T, Hq·D]; fills lse [B, Hq, T].
// The mask is explicit: key j is visible to query t iff j <= t and, with packed documents
// (doc_start [B·T], backend.h), j >= doc_start[t].
inline Vec attention(const Vec& qkv, int64_t B, int64_t T, int64_t Hq, int64_t Hkv, int64_t D,
                     Vec& lse, const std::vector<int32_t>& doc_start = {}) {
  const int64_t W = (Hq + 2 * Hkv) * D;
  Vec out(B * T * Hq * D, 0.0);
  lse.assign(B * Hq * T, 0.0);
  Vec S(T * T);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < Hq; ++h) {
      const int64_t kvh = h / (Hq / Hkv);
      auto q = [&](int64_t t, int64_t d) { return qkv[(b * T + t) * W + h * D + d]; };
      auto k = [&](int64_t t, int64_t d) { return qkv[(b * T + t) * W + (Hq + kvh) * D + d]; };
      auto v = [&](int64_t t, int64_t d) {
        return qkv[(b * T + t) * W + (Hq + Hkv + kvh) * D + d];
      };
      for (int64_t t = 0; t < T; ++t)
        for (int64_t j = 0; j < T; ++j) {
          double s = 0;
          for (int64_t d = 0; d < D; ++d) s += q(t, d) * k(j, d);
          const int64_t first = doc_start.empty() ? 0 : doc_start[b * T + t];
          const bool visible = j <= t && j >= first;
          S[t * T + j] =
              visible ? s / std::sqrt(double(D)) : -std::numeric_limits<double>::infinity();
        }
      for (int64_t t = 0; t < T; ++t) {
        double m = -std::numeric_limits<double>::infinity();
        for (int64_t j = 0; j < T; ++j) m = std::max(m, S[t * T + j]);
        double z = 0;
        for (int64_t j = 0; j < T; ++j) z += std::exp(S[t * T + j] - m);
        lse[(b * Hq + h) * T + t] = m + std::log(z);
        for (int64_t d = 0; d < D; ++d) {
          double acc = 0;
          for (int64_t j = 0; j < T; ++j) acc += std::exp(S[t * T + j] - m) / z * v(j, d);
          out[(b * T + t) * Hq * D + h * D + d] = acc;
        }
      }
    }
  return out;
}

// log Σ_v exp(logits[n, v]) per row of logits[N, V].
inline Vec row_logsumexp(const Vec& logits, int64_t N, int64_t V) {
  Vec lse(N);
  for (int64_t n = 0; n < N; ++n) {
    double m = -std::numeric_limits<double>::infinity();
    for (int64_t v = 0; v < V; ++v) m = std::max(m, logits[n * V + v]);
    double z = 0;
    for (int64_t v = 0; v < V; ++v) z += std::exp(logits[n * V + v] - m);
    lse[n] = m + std::log(z);
  }
  return lse;
}

// log softmax of each row of logits[N, V].
inline Vec log_softmax(const Vec& logits, int64_t N, int64_t V) {
  Vec out(N * V);
  for (int64_t n = 0; n < N; ++n) {
    double z = 0;
    for (int64_t v = 0; v < V; ++v) z += std::exp(logits[n * V + v]);
    for (int64_t v = 0; v < V; ++v) out[n * V + v] = logits[n * V + v] - std::log(z);
  }
  return out;
}

}  // namespace llmpi::ref
