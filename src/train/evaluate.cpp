#include "train/evaluate.h"

#include <algorithm>

#include "core/error.h"

namespace llmpi {

LossSum evaluate_loss(const Transformer& model, Backend& be, const StepRows& rows, int64_t T,
                      int64_t B, int64_t batches) {
  // Rows past the last one count nothing, so a batch of more rows than there are, or batches
  // past them, would only cost memory and time (eval --batch-size 100000 ran out of memory,
  // --batches 1000000 ran for hours): both are cut to the rows, counting the same rows.
  const int64_t R = rows.n_rows();
  B = std::min(B, std::max<int64_t>(R, 1));
  batches = std::min(batches, (R + B - 1) / B);
  Activations acts = model.alloc_activations(be, B, T);
  Buffer ids = be.alloc(Shape{B * T}, DType::i32), targets = be.alloc(Shape{B * T}, DType::i32);
  std::vector<int32_t> hi(size_t(B * T)), ht(size_t(B * T)), hd(size_t(B * T));
  LossSum total;
  for (int64_t k = 0; k < batches; ++k) {
    rows.fill_val(k, B, hi.data(), ht.data(), hd.data());
    // Rows past the last one wrap around to the first ones: count each row once.
    for (int64_t b = 0; b < B; ++b)
      if (k * B + b >= rows.n_rows())
        std::fill(ht.begin() + b * T, ht.begin() + (b + 1) * T, -1);
    be.copy(ids, Tensor{hi.data(), Shape{B * T}, DType::i32, Device::host});
    be.copy(targets, Tensor{ht.data(), Shape{B * T}, DType::i32, Device::host});
    if (rows.has_documents()) model.set_documents(be, acts, hd);
    model.forward(be, acts, ids);
    const LossSum ls = model.loss(be, acts, targets);
    total.sum += ls.sum;
    total.count += ls.count;
  }
  return total;
}

std::vector<double> greedy_match(const Transformer& model, Backend& be,
                                 const std::vector<std::vector<int32_t>>& sequences, int64_t P,
                                 int64_t K, int64_t B) {
  LLMPI_CHECK(P >= 1 && K >= 1 && B >= 1, "greedy_match: P ", P, ", K ", K, ", B ", B);
  const int64_t T = P + K;
  const int64_t V = model.config().vocab_size;
  Activations acts = model.alloc_activations(be, B, T);
  Buffer ids = be.alloc(Shape{B * T}, DType::i32);
  std::vector<int32_t> host(size_t(B * T));
  std::vector<double> scores;
  for (size_t first = 0; first < sequences.size(); first += size_t(B)) {
    const size_t n = std::min(sequences.size() - first, size_t(B));
    std::fill(host.begin(), host.end(), 0);
    for (size_t b = 0; b < n; ++b) {
      const auto& s = sequences[first + b];
      LLMPI_CHECK(int64_t(s.size()) >= T, "greedy_match: a sequence of ", s.size(), " tokens for P + K = ", T);
      std::copy(s.begin(), s.begin() + P, host.begin() + int64_t(b) * T);
    }
    std::vector<int64_t> matches(n, 0);
    for (int64_t j = 0; j < K; ++j) {
      be.copy(ids, Tensor{host.data(), Shape{B * T}, DType::i32, Device::host});
      model.forward(be, acts, ids);
      const std::vector<float> logits = model.logits_at(be, acts, P + j - 1);  // [B, V]
      for (size_t b = 0; b < n; ++b) {
        const float* row = logits.data() + int64_t(b) * V;
        const int32_t next = int32_t(std::max_element(row, row + V) - row);  // first maximum
        host[size_t(int64_t(b) * T + P + j)] = next;
        matches[b] += next == sequences[first + b][size_t(P + j)];
      }
    }
    for (size_t b = 0; b < n; ++b) scores.push_back(double(matches[b]) / double(K));
  }
  return scores;
}

}  // namespace llmpi
