// Rotary position embedding ("rotate_half" convention of Hugging Face Llama), in place.
// x: rows = B·T rows of width W = (Hq + 2·Hkv)·D; row r is token t = r mod T, at position
// p = t − doc_start[r] (packed documents, backend.h; p = t without them). In each of the first
// n_rot heads (q and k), element pairs (i, i + D/2), i < D/2, are rotated by
//   angle = (p + pos_offset) · theta^(-2i/D):  (a, b) → (a cos − b sin, b cos + a sin).
// inverse = true rotates by −angle: the transpose of the rotation, hence its backward.
// Angles are computed in double per (row, i) and shared by all heads of the row.
#include <cmath>

#include "backend/host/host_backend.h"
#include "backend/host/host_kernels.h"

namespace llmpi {
namespace host {

template <class T>
void rope(T* x, int64_t rows, int64_t W, int64_t T_len, int64_t n_rot, int64_t D,
          double theta, int64_t pos_offset, const int32_t* doc_start, bool inverse) {
  const int64_t half = D / 2;
  const double sign = inverse ? -1.0 : 1.0;
  const double log_theta = std::log(theta);
  Kokkos::parallel_for("llmpi::host::rope", Range(0, rows), KOKKOS_LAMBDA(int64_t r) {
    const int64_t first = doc_start ? doc_start[r] : 0;
    const double pos = static_cast<double>(r % T_len - first + pos_offset);
    T* row = x + r * W;
    for (int64_t i = 0; i < half; ++i) {
      const double angle = pos * std::exp(-log_theta * (2.0 * i) / D);
      const T c = static_cast<T>(std::cos(angle));
      const T s = static_cast<T>(sign * std::sin(angle));
      for (int64_t h = 0; h < n_rot; ++h) {
        T* a = row + h * D + i;
        T* b = a + half;
        const T av = *a, bv = *b;
        *a = av * c - bv * s;
        *b = bv * c + av * s;
      }
    }
  });
}

template void rope<float>(float*, int64_t, int64_t, int64_t, int64_t, int64_t, double, int64_t,
                          const int32_t*, bool);
template void rope<double>(double*, int64_t, int64_t, int64_t, int64_t, int64_t, double, int64_t,
                           const int32_t*, bool);

}  // namespace host

using namespace host;

void HostBackend::rope(const Tensor& qkv, int64_t T, int64_t n_rot_heads, int64_t head_dim,
                       double theta, int64_t pos_offset, const Tensor& doc_start,
                       bool inverse) {
  const char* op = "rope";
  check_host(op, "qkv", qkv);
  const op_shapes::RowSizes s = op_shapes::rope(op, qkv, T, n_rot_heads, head_dim, theta);
  const int64_t rows = s.N, W = s.C;
  const int32_t* docs = checked_doc_start(op, doc_start, rows / T, T);
  dispatch_float(qkv.dtype, op, [&](auto tag) {
    using V = decltype(tag);
    host::rope<V>(qkv.ptr<V>(), rows, W, T, n_rot_heads, head_dim, theta, pos_offset, docs,
                  inverse);
  });
}

}  // namespace llmpi
