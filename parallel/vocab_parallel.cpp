// Vocab-parallel embedding/head slabs and the cross-entropy combination over the tp group.
#include "parallel/vocab_parallel.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/error.h"

namespace llmpi {

VocabRange vocab_range(int64_t vocab_size, int tp_size, int tp_rank) {
  LLMPI_CHECK(tp_size >= 1 && 0 <= tp_rank && tp_rank < tp_size, "tp rank ", tp_rank, " of ",
              tp_size);
  LLMPI_CHECK(vocab_size >= tp_size, "vocabulary of ", vocab_size, " rows over ", tp_size,
              " tp ranks");
  return {tp_rank * vocab_size / tp_size, (tp_rank + 1) * vocab_size / tp_size};
}

void combine_vocab_logsumexp(Collectives& tp, Backend& be, const Tensor& lse) {
  const int p = tp.size();
  if (p == 1) return;
  const int64_t N = lse.numel();
  // Gather every rank's values on the backend (the collectives' device), then combine them on
  // the host: N values per rank, negligible next to the logits GEMM.
  Buffer all = be.alloc(Shape{p * N}, lse.dtype);
  be.synchronize();
  tp.all_gather(all, lse);
  std::vector<double> host(static_cast<size_t>(p * N)), out(static_cast<size_t>(N));
  be.copy(Tensor{host.data(), Shape{p * N}, DType::f64, Device::host}, all);
  be.synchronize();
  for (int64_t n = 0; n < N; ++n) {
    double m = -INFINITY;
    for (int r = 0; r < p; ++r) m = std::max(m, host[static_cast<size_t>(r * N + n)]);
    double s = 0.0;
    for (int r = 0; r < p; ++r) s += std::exp(host[static_cast<size_t>(r * N + n)] - m);
    out[static_cast<size_t>(n)] = m + std::log(s);
  }
  be.copy(lse, Tensor{out.data(), Shape{N}, DType::f64, Device::host});
  be.synchronize();  // `out` goes out of scope
}

void combine_vocab_picked(Collectives& tp, Backend& be, const Tensor& picked) {
  if (tp.size() == 1) return;
  be.synchronize();
  tp.all_reduce(picked, ReduceOp::sum);
}

}  // namespace llmpi
