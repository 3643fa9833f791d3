// Embedding lookup on a vocab-parallel shard: table holds rows [row_offset, row_offset + R)
// of the full table. ids: i32 [N]; table: [R, C]; out: [N, C] (any shape with N·C elements).
// Forward: out[n] (= or +=) table[ids[n] - row_offset], or 0 for an id outside the shard.
// Backward: dtable[ids[n] - row_offset] += dout[n]. Repeated ids would race if parallelized
// over n, so backward is parallel over column blocks (each owns its columns of every row)
// and walks n in order, which is also deterministic.
#include "backend/host/host_backend.h"
#include "backend/host/host_kernels.h"

namespace llmpi {
namespace host {

template <class T>
void embedding_forward(T* out, const int32_t* ids, const T* table, int64_t N, int64_t R,
                       int64_t C, int64_t row_offset, bool accumulate) {
  Kokkos::parallel_for("llmpi::host::embedding_forward", Range(0, N), KOKKOS_LAMBDA(int64_t n) {
    const int64_t r = static_cast<int64_t>(ids[n]) - row_offset;
    T* o = out + n * C;
    const bool inside = r >= 0 && r < R;
    if (inside) {
      const T* row = table + r * C;
      if (accumulate)
        for (int64_t c = 0; c < C; ++c) o[c] += row[c];
      else
        for (int64_t c = 0; c < C; ++c) o[c] = row[c];
    } else if (!accumulate) {
      for (int64_t c = 0; c < C; ++c) o[c] = T(0);
    }
  });
}

template <class T>
void embedding_backward(T* dtable, const T* dout, const int32_t* ids, int64_t N, int64_t R,
                        int64_t C, int64_t row_offset) {
  constexpr int64_t kBlock = 64;
  const int64_t blocks = (C + kBlock - 1) / kBlock;
  Kokkos::parallel_for("llmpi::host::embedding_backward", Range(0, blocks),
                       KOKKOS_LAMBDA(int64_t blk) {
    const int64_t c0 = blk * kBlock;
    const int64_t c1 = c0 + kBlock < C ? c0 + kBlock : C;
    for (int64_t n = 0; n < N; ++n) {
      const int64_t r = static_cast<int64_t>(ids[n]) - row_offset;
      if (r < 0 || r >= R) continue;
      T* d = dtable + r * C;
      const T* g = dout + n * C;
      for (int64_t c = c0; c < c1; ++c) d[c] += g[c];
    }
  });
}

#define LLMPI_INSTANTIATE(T)                                                                  \
  template void embedding_forward<T>(T*, const int32_t*, const T*, int64_t, int64_t, int64_t, \
                                     int64_t, bool);                                         \
  template void embedding_backward<T>(T*, const T*, const int32_t*, int64_t, int64_t, int64_t, \
                                      int64_t);
LLMPI_INSTANTIATE(float)
LLMPI_INSTANTIATE(double)
#undef LLMPI_INSTANTIATE

}  // namespace host

using namespace host;

void HostBackend::embedding_forward(const Tensor& out, const Tensor& ids, const Tensor& table,
                                    int64_t row_offset, bool accumulate) {
  const char* op = "embedding_forward";
  check_host(op, {{"out", &out}, {"ids", &ids}, {"table", &table}});
  check_dtype(op, "ids", ids, DType::i32);
  check_dtype(op, "table", table, out.dtype);
  const op_shapes::EmbeddingSizes s = op_shapes::embedding(op, "table", table, ids, "out", out);
  dispatch_float(out.dtype, op, [&](auto tag) {
    using T = decltype(tag);
    host::embedding_forward<T>(out.ptr<T>(), ids.ptr<const int32_t>(), table.ptr<const T>(), s.N,
                               s.R, s.C, row_offset, accumulate);
  });
}

void HostBackend::embedding_backward(const Tensor& dtable, const Tensor& dout, const Tensor& ids,
                                     int64_t row_offset) {
  const char* op = "embedding_backward";
  check_host(op, {{"dtable", &dtable}, {"dout", &dout}, {"ids", &ids}});
  check_dtype(op, "ids", ids, DType::i32);
  check_dtype(op, "dout", dout, dtable.dtype);
  const op_shapes::EmbeddingSizes s = op_shapes::embedding(op, "dtable", dtable, ids, "dout", dout);
  dispatch_float(dtable.dtype, op, [&](auto tag) {
    using T = decltype(tag);
    host::embedding_backward<T>(dtable.ptr<T>(), dout.ptr<const T>(), ids.ptr<const int32_t>(),
                                s.N, s.R, s.C, row_offset);
  });
}

}  // namespace llmpi
