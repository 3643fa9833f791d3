// Causal self-attention with grouped-query heads, flash-style: the T×T scores are never stored.
// qkv: [B, T, W], W = (Hq + 2·Hkv)·D, each row [q heads | k heads | v heads]; query head h
// reads kv head h / (Hq/Hkv). out: [B, T, Hq·D]; lse: [B, Hq, T]. Scale c = 1/√D.
// Rows are cut in blocks of kBlock; a tile is (query block i, key block j ≤ i), and only the
// diagonal tile is masked causally. Packed documents (doc_start, backend.h): row t sees keys
// [doc_start[t], t]; key blocks wholly before the block's first document start are skipped
// (block-sparse), and a row's keys before its own start are masked inside a tile. Tiles live in per-thread scratch (kBlock² each, allocated once per
// call); all products are CBLAS gemms reading Q, K, V, dO in place through leading dims.
// Forward, per (b, h, i): for j = 0..i, S = c·Q_i K_jᵀ; online softmax per row (running max m,
// sum l; out rows rescaled by e^(m_old − m) when m grows); out_i += P V_j. Then out /= l and
// lse = m + log l.
// Backward, one pass per (b, kv head), over its query heads h, blocks i and tiles j ≤ i, with
// Δ_t = Σ_d dO·O: P = e^(S − lse) (one exp per pair), dP = dO_i V_jᵀ, dS = P∘(dP − Δ),
//   dV_j += Pᵀ dO_i,  dK_j += c·dSᵀ Q_i,  dQ_i += c·dS K_j.
// Races: a forward work item writes only its own out rows/head columns and lse entries; a
// backward one writes dQ of its group's query heads and dK, dV of its kv head, in batch b
// only — disjoint across items, so any threaded Kokkos space needs no atomics, and sums run
// in a fixed order (deterministic). Scratch slots are Kokkos UniqueTokens (one per thread).
#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "backend/host/host_backend.h"
#include "backend/host/host_kernels.h"

namespace llmpi {
namespace host {
namespace {

// Rows per query block and per key block. 64 keeps a tile (16 KiB in f32) and its Q/K/V
// blocks in L1/L2 and the gemms large enough for OpenBLAS's kernels; at T = 128 it wastes the
// masked half of 2 of 3 tiles; 32 and 128 measured slower or equal (docs/kernels.md).
constexpr int64_t kBlock = 64;

// One scratch slot per thread that can run an item concurrently.
using Token =
    Kokkos::Experimental::UniqueToken<Exec, Kokkos::Experimental::UniqueTokenScope::Global>;

// C[M, N] = alpha · op(A) · op(B) + beta · C, row-major; all sizes ≥ 1 here.
void gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
          int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
              blasint(M), blasint(N), blasint(K), alpha, A, blasint(lda), B, blasint(ldb), beta,
              C, blasint(ldc));
}
void gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, double alpha, const double* A,
          int64_t lda, const double* B, int64_t ldb, double beta, double* C, int64_t ldc) {
  cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
              blasint(M), blasint(N), blasint(K), alpha, A, blasint(lda), B, blasint(ldb), beta,
              C, blasint(ldc));
}

// Reductions with 8 independent partial results: breaks the latency chain and lets the
// compiler vectorize without reassociation flags.
constexpr int64_t kLanes = 8;

template <class T>
T dot(const T* a, const T* b, int64_t n) {
  T acc[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int64_t l = 0; l < kLanes; ++l) acc[l] += a[i + l] * b[i + l];
  T s = 0;
  for (; i < n; ++i) s += a[i] * b[i];
  for (int64_t l = 0; l < kLanes; ++l) s += acc[l];
  return s;
}

template <class T>
T row_max(const T* x, int64_t n) {
  T acc[kLanes];
  for (int64_t l = 0; l < kLanes; ++l) acc[l] = -std::numeric_limits<T>::infinity();
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int64_t l = 0; l < kLanes; ++l) acc[l] = acc[l] < x[i + l] ? x[i + l] : acc[l];
  T m = -std::numeric_limits<T>::infinity();
  for (; i < n; ++i) m = m < x[i] ? x[i] : m;
  for (int64_t l = 0; l < kLanes; ++l) m = m < acc[l] ? acc[l] : m;
  return m;
}

// Keys [lo, hi) of a tile (first key s0, nk keys) visible to query t at row r of the tile:
// causally, all nk, or on the diagonal tile (same first row for queries and keys) those up to
// the query itself; and none before the query's document start `first` (0 without
// documents). lo >= hi: no key of the tile is visible.
struct KeyRange {
  int64_t lo, hi;
};
inline KeyRange visible_keys(bool diagonal, int64_t r, int64_t nk, int64_t s0, int64_t first) {
  return {std::clamp<int64_t>(first - s0, 0, nk), diagonal ? r + 1 : nk};
}

// Zeroes x[0, lo) and x[hi, n) (all of x when lo >= hi).
template <class T>
void zero_outside(T* x, int64_t n, KeyRange k) {
  const int64_t lo = std::min(k.lo, n), hi = std::max(lo, std::min(k.hi, n));
  for (int64_t c = 0; c < lo; ++c) x[c] = 0;
  for (int64_t c = hi; c < n; ++c) x[c] = 0;
}

}  // namespace

template <class T>
void attention_forward(T* out, T* lse, const T* qkv, int64_t B, int64_t T_len, int64_t Hq,
                       int64_t Hkv, int64_t D, const int32_t* doc_start) {
  const int64_t W = (Hq + 2 * Hkv) * D, group = Hq / Hkv, OW = Hq * D;
  const int64_t n_blocks = (T_len + kBlock - 1) / kBlock;
  const T scale = static_cast<T>(1.0 / std::sqrt(static_cast<double>(D)));
  constexpr int64_t kScratch = kBlock * kBlock + 2 * kBlock;  // S tile, m, l
  Token token;
  std::vector<T> scratch_store(static_cast<size_t>(token.size() * kScratch));
  T* scratch = scratch_store.data();
  Kokkos::fence();  // BLAS runs inside the items: order after the kernels that wrote qkv

  Kokkos::parallel_for("llmpi::host::attention_forward", Range(0, B * Hq * n_blocks),
                       KOKKOS_LAMBDA(int64_t idx) {
    const int64_t qb = idx % n_blocks, h = (idx / n_blocks) % Hq, b = idx / (n_blocks * Hq);
    const int64_t kvh = h / group, t0 = qb * kBlock, nq = std::min(kBlock, T_len - t0);
    const int slot = token.acquire();
    T* S = scratch + slot * kScratch;
    T* m = S + kBlock * kBlock;
    T* l = m + kBlock;
    const T* base = qkv + b * T_len * W;
    const T* Q = base + t0 * W + h * D;
    T* O = out + (b * T_len + t0) * OW + h * D;
    const int32_t* first = doc_start ? doc_start + b * T_len + t0 : nullptr;
    for (int64_t r = 0; r < nq; ++r) m[r] = -std::numeric_limits<T>::infinity(), l[r] = 0;

    // doc_start is nondecreasing: the block's first row has the smallest start.
    const int64_t kb0 = first ? first[0] / kBlock : 0;
    for (int64_t kb = kb0; kb <= qb; ++kb) {
      const int64_t s0 = kb * kBlock, nk = std::min(kBlock, T_len - s0);
      const T* K = base + s0 * W + (Hq + kvh) * D;
      const T* V = base + s0 * W + (Hq + Hkv + kvh) * D;
      gemm(false, true, nq, nk, D, scale, Q, W, K, W, T(0), S, kBlock);
      for (int64_t r = 0; r < nq; ++r) {
        T* s = S + r * kBlock;
        const KeyRange k = visible_keys(kb == qb, r, nk, s0, first ? first[r] : 0);
        if (k.lo < k.hi) {  // else the row sees none of the tile: m, l, O unchanged
          const T m_new = std::max(m[r], row_max(s + k.lo, k.hi - k.lo));
          const T corr = std::exp(m[r] - m_new);  // 0 on the row's first tile (m = −inf)
          l[r] = l[r] * corr + exp_shifted_sum(s + k.lo, k.hi - k.lo, m_new);
          if (kb > kb0 && corr != T(1))
            for (int64_t d = 0; d < D; ++d) O[r * OW + d] *= corr;
          m[r] = m_new;
        }
        zero_outside(s, nk, k);
      }
      gemm(false, false, nq, D, nk, T(1), S, kBlock, V, W, kb == kb0 ? T(0) : T(1), O, OW);
    }
    for (int64_t r = 0; r < nq; ++r) {
      const T inv_l = T(1) / l[r];
      for (int64_t d = 0; d < D; ++d) O[r * OW + d] *= inv_l;
      lse[(b * Hq + h) * T_len + t0 + r] = m[r] + std::log(l[r]);
    }
    token.release(slot);
  });
  Kokkos::fence();  // scratch_store is freed on return
}

template <class T>
void attention_backward(T* dqkv, const T* dout, const T* qkv, const T* out, const T* lse,
                        int64_t B, int64_t T_len, int64_t Hq, int64_t Hkv, int64_t D,
                        const int32_t* doc_start) {
  const int64_t W = (Hq + 2 * Hkv) * D, group = Hq / Hkv, OW = Hq * D;
  const int64_t n_blocks = (T_len + kBlock - 1) / kBlock;
  const T scale = static_cast<T>(1.0 / std::sqrt(static_cast<double>(D)));
  constexpr int64_t kScratch = 2 * kBlock * kBlock + kBlock;  // P tile, dP/dS tile, Δ
  Token token;
  std::vector<T> scratch_store(static_cast<size_t>(token.size() * kScratch));
  T* scratch = scratch_store.data();
  Kokkos::fence();

  Kokkos::parallel_for("llmpi::host::attention_backward", Range(0, B * Hkv),
                       KOKKOS_LAMBDA(int64_t idx) {
    const int64_t kvh = idx % Hkv, b = idx / Hkv;
    const int slot = token.acquire();
    T* __restrict P = scratch + slot * kScratch;
    T* __restrict dS = P + kBlock * kBlock;
    T* delta = dS + kBlock * kBlock;
    const T* base = qkv + b * T_len * W;
    T* dbase = dqkv + b * T_len * W;
    const int64_t k_col = (Hq + kvh) * D, v_col = (Hq + Hkv + kvh) * D;
    for (int64_t t = 0; t < T_len; ++t)
      for (int64_t d = 0; d < D; ++d) dbase[t * W + k_col + d] = dbase[t * W + v_col + d] = 0;

    for (int64_t h = kvh * group; h < (kvh + 1) * group; ++h) {
      for (int64_t qb = 0; qb < n_blocks; ++qb) {
        const int64_t t0 = qb * kBlock, nq = std::min(kBlock, T_len - t0);
        const T* Q = base + t0 * W + h * D;
        T* dQ = dbase + t0 * W + h * D;
        const T* dO = dout + (b * T_len + t0) * OW + h * D;
        const T* O = out + (b * T_len + t0) * OW + h * D;
        const T* row_lse = lse + (b * Hq + h) * T_len + t0;
        const int32_t* first = doc_start ? doc_start + b * T_len + t0 : nullptr;
        for (int64_t r = 0; r < nq; ++r) delta[r] = dot(dO + r * OW, O + r * OW, D);

        const int64_t kb0 = first ? first[0] / kBlock : 0;
        for (int64_t kb = kb0; kb <= qb; ++kb) {
          const int64_t s0 = kb * kBlock, nk = std::min(kBlock, T_len - s0);
          const T* K = base + s0 * W + k_col;
          const T* V = base + s0 * W + v_col;
          gemm(false, true, nq, nk, D, scale, Q, W, K, W, T(0), P, kBlock);
          gemm(false, true, nq, nk, D, T(1), dO, OW, V, W, T(0), dS, kBlock);
          for (int64_t r = 0; r < nq; ++r) {
            T* p = P + r * kBlock;
            T* ds = dS + r * kBlock;
            const KeyRange k = visible_keys(kb == qb, r, nk, s0, first ? first[r] : 0);
            if (k.lo < k.hi) exp_shifted_sum(p + k.lo, k.hi - k.lo, row_lse[r]);
            zero_outside(p, nk, k);
            const T dl = delta[r];
            for (int64_t c = 0; c < nk; ++c) ds[c] = p[c] * (ds[c] - dl);
          }
          gemm(true, false, nk, D, nq, T(1), P, kBlock, dO, OW, T(1), dbase + s0 * W + v_col, W);
          gemm(true, false, nk, D, nq, scale, dS, kBlock, Q, W, T(1), dbase + s0 * W + k_col, W);
          gemm(false, false, nq, D, nk, scale, dS, kBlock, K, W, kb == kb0 ? T(0) : T(1), dQ, W);
        }
      }
    }
    token.release(slot);
  });
  Kokkos::fence();  // scratch_store is freed on return
}

#define LLMPI_INSTANTIATE(T)                                                                  \
  template void attention_forward<T>(T*, T*, const T*, int64_t, int64_t, int64_t, int64_t,    \
                                     int64_t, const int32_t*);                               \
  template void attention_backward<T>(T*, const T*, const T*, const T*, const T*, int64_t,    \
                                      int64_t, int64_t, int64_t, int64_t, const int32_t*);
LLMPI_INSTANTIATE(float)
LLMPI_INSTANTIATE(double)
#undef LLMPI_INSTANTIATE

}  // namespace host

using namespace host;

void HostBackend::attention_forward(const Tensor& out, const Tensor& lse, const Tensor& qkv,
                                    int64_t B, int64_t T, int64_t Hq, int64_t Hkv, int64_t D,
                                    const Tensor& doc_start) {
  const char* op = "attention_forward";
  check_host(op, "qkv", qkv);
  check_host(op, "out", out);
  check_host(op, "lse", lse);
  check_dtype(op, "out", out, qkv.dtype);
  check_dtype(op, "lse", lse, qkv.dtype);
  op_shapes::attention(op, qkv, out, lse, B, T, Hq, Hkv, D);
  const int32_t* docs = checked_doc_start(op, doc_start, B, T);
  dispatch_float(qkv.dtype, op, [&](auto tag) {
    using V = decltype(tag);
    host::attention_forward<V>(out.ptr<V>(), lse.ptr<V>(), qkv.ptr<const V>(), B, T, Hq, Hkv,
                               D, docs);
  });
}

void HostBackend::attention_backward(const Tensor& dqkv, const Tensor& dout, const Tensor& qkv,
                                     const Tensor& out, const Tensor& lse, int64_t B,
                                     int64_t T, int64_t Hq, int64_t Hkv, int64_t D,
                                     const Tensor& doc_start) {
  const char* op = "attention_backward";
  const DType dt = qkv.dtype;
  check_host(op, "qkv", qkv);
  check_host(op, "dqkv", dqkv);
  check_host(op, "dout", dout);
  check_host(op, "out", out);
  check_host(op, "lse", lse);
  check_dtype(op, "dqkv", dqkv, dt);
  check_dtype(op, "dout", dout, dt);
  check_dtype(op, "out", out, dt);
  check_dtype(op, "lse", lse, dt);
  op_shapes::attention(op, qkv, out, lse, B, T, Hq, Hkv, D);
  op_shapes::attention_grads(op, qkv, dqkv, dout, B, T, Hq, D);
  const int32_t* docs = checked_doc_start(op, doc_start, B, T);
  dispatch_float(dt, op, [&](auto tag) {
    using V = decltype(tag);
    host::attention_backward<V>(dqkv.ptr<V>(), dout.ptr<const V>(), qkv.ptr<const V>(),
                                out.ptr<const V>(), lse.ptr<const V>(), B, T, Hq, Hkv, D,
                                docs);
  });
}

}  // namespace llmpi
