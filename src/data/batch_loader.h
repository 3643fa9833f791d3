#pragma once
// Batches of (inputs, targets) from a TokenDataset.
// Samples: sample i = tokens [i*T, i*T + T] (T + 1 tokens); inputs = the first T, targets =
// the last T (inputs shifted by one). n_samples = (N - 1) / T for N tokens (needs N >= T + 1).
// Training (BatchLoader): a step consumes G = B * M * dp consecutive global positions of the
// SampleOrder: step s uses positions [s*G, (s+1)*G); position s*G + (m*dp + r)*B + b feeds
// micro-batch m, data-parallel rank r, row b. The set of samples of a step therefore depends
// only on G, not on how it is split into micro-batches and ranks.
// Validation (ValLoader): unshuffled; batch k = samples (k*B + b) mod n_samples, b < B.
// Outputs are int32 row-major [B, T]. The loaders keep a reference to the dataset.
#include <cstdint>
#include <vector>

#include "data/sample_order.h"
#include "data/token_dataset.h"

namespace llmpi {

struct BatchLayout {
  int64_t batch_size = 1;     // B: rows per micro-batch per data-parallel rank
  int64_t micro_batches = 1;  // M: gradient-accumulation micro-batches per step
  int64_t dp_size = 1;        // data-parallel ranks
  int64_t global_samples() const { return batch_size * micro_batches * dp_size; }  // G
};

// Position in the global sample order of row `row` of (step, micro_batch, dp_rank):
// step·G + (micro_batch·dp + dp_rank)·B + row (checked against the layout).
int64_t batch_position(int64_t step, int64_t micro_batch, int64_t dp_rank, int64_t row,
                       const BatchLayout& layout);

// Number of samples of length seq_len in the dataset; UserError (naming the shards and their
// token counts) if it holds fewer than seq_len + 1 tokens.
int64_t count_samples(const TokenDataset& data, int64_t seq_len);

// Copies sample `index` into inputs[0, T) and targets[0, T).
void read_sample(const TokenDataset& data, int64_t seq_len, int64_t index, int32_t* inputs,
                 int32_t* targets);

class BatchLoader {
 public:
  BatchLoader(const TokenDataset& data, int64_t seq_len, uint64_t seed);

  int64_t seq_len() const { return seq_len_; }
  int64_t n_samples() const { return order_.n_samples(); }
  const SampleOrder& order() const { return order_; }

  // Fills inputs[B*T] and targets[B*T] for (step, micro_batch, dp_rank) under layout.
  void fill(int64_t step, int64_t micro_batch, int64_t dp_rank, const BatchLayout& layout,
            int32_t* inputs, int32_t* targets) const;
  // The G sample indices step s consumes, in position order (LLM360 data-to-checkpoint map).
  std::vector<int64_t> step_samples(int64_t step, const BatchLayout& layout) const;
  // Global sample index at (step, micro_batch, dp_rank, row).
  int64_t sample_index(int64_t step, int64_t micro_batch, int64_t dp_rank, int64_t row,
                       const BatchLayout& layout) const;

 private:
  const TokenDataset& data_;
  int64_t seq_len_;
  SampleOrder order_;
};

class ValLoader {
 public:
  ValLoader(const TokenDataset& data, int64_t seq_len);
  int64_t n_samples() const { return n_samples_; }
  int64_t seq_len() const { return seq_len_; }
  // Batch k: rows b < batch_size hold samples (k*B + b) mod n_samples.
  void fill(int64_t batch, int64_t batch_size, int32_t* inputs, int32_t* targets) const;

 private:
  const TokenDataset& data_;
  int64_t seq_len_, n_samples_;
};

}  // namespace llmpi
