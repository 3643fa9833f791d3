#include "train/sampler.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "core/error.h"
#include "core/rng.h"

namespace llmpi {

int64_t sample_token(std::span<const float> logits, const SamplingOptions& opt, uint64_t key,
                     uint64_t counter) {
  const int64_t V = int64_t(logits.size());
  LLMPI_CHECK(V > 0, "sampling from an empty row");
  if (opt.temperature <= 0.0)
    return int64_t(std::max_element(logits.begin(), logits.end()) - logits.begin());

  // Candidates sorted by logit (descending; ties by id, so the order is deterministic).
  std::vector<int64_t> idx(static_cast<size_t>(V));
  std::iota(idx.begin(), idx.end(), 0);
  const int64_t k = opt.top_k > 0 ? std::min(opt.top_k, V) : V;
  auto by_logit = [&](int64_t a, int64_t b) {
    return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
  };
  std::partial_sort(idx.begin(), idx.begin() + k, idx.end(), by_logit);
  idx.resize(size_t(k));

  std::vector<double> p(idx.size());
  const double top = logits[idx[0]];
  double total = 0.0;
  for (size_t i = 0; i < idx.size(); ++i) {
    p[i] = std::exp((double(logits[idx[i]]) - top) / opt.temperature);
    total += p[i];
  }
  // Nucleus: keep the smallest prefix whose probability reaches top_p.
  size_t keep = idx.size();
  if (opt.top_p < 1.0) {
    double mass = 0.0;
    for (size_t i = 0; i < idx.size(); ++i) {
      mass += p[i] / total;
      if (mass >= opt.top_p) {
        keep = i + 1;
        break;
      }
    }
  }
  const double kept = std::accumulate(p.begin(), p.begin() + long(keep), 0.0);
  double u = rng_uniform(key, counter) * kept;
  for (size_t i = 0; i < keep; ++i) {
    u -= p[i];
    if (u <= 0.0) return idx[i];
  }
  return idx[keep - 1];
}

}  // namespace llmpi
