// Cross-entropy over a (possibly vocab-parallel) shard of logits[N, V] holding global columns
// [col_offset, col_offset + V). Split into three ops so a vocab-parallel loss can all-reduce
// between them:  loss_n = lse_n − logits[n, target_n]  where
//   row_logsumexp:  lse[n] = m + log Σ_v exp(logits[n, v] − m),  m = max_v logits[n, v]
//   pick_targets:   picked[n] = logits[n, target − col_offset] if in this shard, else 0
//   backward:       dlogits = row_scale[n]·(softmax − onehot(target)); rows with a negative
//                   (ignored) target get 0. dlogits may alias logits (read-then-write per
//                   element). lse, picked and row_scale have the logits' dtype on the host.
#include <cmath>
#include <limits>

#include "backend/host/host_backend.h"
#include "backend/host/host_kernels.h"

namespace llmpi {
namespace host {

template <class T>
void row_logsumexp(T* lse, const T* logits, int64_t N, int64_t V) {
  Kokkos::parallel_for("llmpi::host::row_logsumexp", Range(0, N), KOKKOS_LAMBDA(int64_t n) {
    const T* x = logits + n * V;
    T m = -std::numeric_limits<T>::infinity();
    for (int64_t v = 0; v < V; ++v) m = x[v] > m ? x[v] : m;
    if (V == 0 || m == -std::numeric_limits<T>::infinity()) {
      lse[n] = m;  // log of an empty (or all-zero) sum
      return;
    }
    double sum = 0;
    for (int64_t v = 0; v < V; ++v) sum += std::exp(static_cast<double>(x[v] - m));
    lse[n] = m + static_cast<T>(std::log(sum));
  });
}

template <class T>
void pick_targets(T* picked, const T* logits, const int32_t* targets, int64_t N, int64_t V,
                  int64_t col_offset) {
  Kokkos::parallel_for("llmpi::host::pick_targets", Range(0, N), KOKKOS_LAMBDA(int64_t n) {
    const int64_t c = static_cast<int64_t>(targets[n]) - col_offset;
    picked[n] = targets[n] >= 0 && c >= 0 && c < V ? logits[n * V + c] : T(0);
  });
}

template <class T>
void cross_entropy_backward(T* dlogits, const T* logits, const T* lse, const int32_t* targets,
                            const T* row_scale, int64_t N, int64_t V, int64_t col_offset) {
  Kokkos::parallel_for("llmpi::host::cross_entropy_backward", Range(0, N),
                       KOKKOS_LAMBDA(int64_t n) {
    T* d = dlogits + n * V;
    const T* x = logits + n * V;
    if (targets[n] < 0) {
      for (int64_t v = 0; v < V; ++v) d[v] = 0;
      return;
    }
    const T s = row_scale[n], l = lse[n];
    const int64_t c = static_cast<int64_t>(targets[n]) - col_offset;
    for (int64_t v = 0; v < V; ++v) d[v] = s * std::exp(x[v] - l);
    if (c >= 0 && c < V) d[c] -= s;
  });
}

#define LLMPI_INSTANTIATE(T)                                                                  \
  template void row_logsumexp<T>(T*, const T*, int64_t, int64_t);                             \
  template void pick_targets<T>(T*, const T*, const int32_t*, int64_t, int64_t, int64_t);     \
  template void cross_entropy_backward<T>(T*, const T*, const T*, const int32_t*, const T*,   \
                                          int64_t, int64_t, int64_t);
LLMPI_INSTANTIATE(float)
LLMPI_INSTANTIATE(double)
#undef LLMPI_INSTANTIATE

}  // namespace host

using namespace host;

void HostBackend::row_logsumexp(const Tensor& lse, const Tensor& logits) {
  const char* op = "row_logsumexp";
  check_host(op, "lse", lse);
  check_host(op, "logits", logits);
  check_dtype(op, "lse", lse, logits.dtype);
  const op_shapes::RowSizes s = op_shapes::logsumexp(op, lse, logits);
  dispatch_float(logits.dtype, op, [&](auto tag) {
    using T = decltype(tag);
    host::row_logsumexp<T>(lse.ptr<T>(), logits.ptr<const T>(), s.N, s.C);
  });
}

void HostBackend::pick_targets(const Tensor& picked, const Tensor& logits, const Tensor& targets,
                               int64_t col_offset) {
  const char* op = "pick_targets";
  check_host(op, "picked", picked);
  check_host(op, "logits", logits);
  check_host(op, "targets", targets);
  check_dtype(op, "picked", picked, logits.dtype);
  check_dtype(op, "targets", targets, DType::i32);
  const op_shapes::RowSizes s =
      op_shapes::cross_entropy(op, logits, targets, {{"picked", &picked}}, {});
  dispatch_float(logits.dtype, op, [&](auto tag) {
    using T = decltype(tag);
    host::pick_targets<T>(picked.ptr<T>(), logits.ptr<const T>(), targets.ptr<const int32_t>(),
                          s.N, s.C, col_offset);
  });
}

void HostBackend::cross_entropy_backward(const Tensor& dlogits, const Tensor& logits,
                                         const Tensor& lse, const Tensor& targets,
                                         const Tensor& row_scale, int64_t col_offset) {
  const char* op = "cross_entropy_backward";
  check_host(op, "dlogits", dlogits);
  check_host(op, "logits", logits);
  check_host(op, "lse", lse);
  check_host(op, "targets", targets);
  check_host(op, "row_scale", row_scale);
  const DType dt = logits.dtype;
  check_dtype(op, "dlogits", dlogits, dt);
  check_dtype(op, "lse", lse, dt);
  check_dtype(op, "row_scale", row_scale, dt);
  check_dtype(op, "targets", targets, DType::i32);
  const op_shapes::RowSizes s = op_shapes::cross_entropy(
      op, logits, targets, {{"lse", &lse}, {"row_scale", &row_scale}}, {{"dlogits", &dlogits}});
  dispatch_float(dt, op, [&](auto tag) {
    using T = decltype(tag);
    host::cross_entropy_backward<T>(dlogits.ptr<T>(), logits.ptr<const T>(), lse.ptr<const T>(),
                                    targets.ptr<const int32_t>(), row_scale.ptr<const T>(), s.N,
                                    s.C, col_offset);
  });
}

}  // namespace llmpi
