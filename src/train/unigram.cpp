#include "train/unigram.h"

#include <cmath>
#include <vector>

#include "core/error.h"

namespace llmpi {

namespace {
std::vector<double> counts_of(const TokenDataset& d, int64_t vocab) {
  std::vector<double> c(size_t(vocab), 0.0);
  std::vector<int32_t> buf(1 << 16);
  for (int64_t i = 0; i < d.size(); i += int64_t(buf.size())) {
    const int64_t n = std::min<int64_t>(int64_t(buf.size()), d.size() - i);
    d.copy(i, n, buf.data());
    for (int64_t j = 0; j < n; ++j) {
      LLMPI_CHECK(buf[j] >= 0 && buf[j] < vocab, "token ", buf[j], " outside the vocabulary");
      c[size_t(buf[j])] += 1.0;
    }
  }
  return c;
}
}  // namespace

double unigram_cross_entropy(const TokenDataset& train, const TokenDataset& held_out,
                             int64_t vocab_size) {
  const std::vector<double> tc = counts_of(train, vocab_size);
  const std::vector<double> hc = counts_of(held_out, vocab_size);
  const double total = double(train.size()) + double(vocab_size);
  double ce = 0.0, n = 0.0;
  for (int64_t v = 0; v < vocab_size; ++v) {
    if (hc[size_t(v)] == 0) continue;
    ce -= hc[size_t(v)] * std::log((tc[size_t(v)] + 1.0) / total);
    n += hc[size_t(v)];
  }
  return n > 0 ? ce / n : 0.0;
}

}  // namespace llmpi
