#pragma once
// The unigram baseline: cross-entropy (nats/token) of a held-out token sequence under the
// training set's token frequencies (add-one smoothed over the vocabulary). A language model
// that learned anything beyond word frequencies must beat it; the demo prints both.
#include <cstdint>

#include "data/token_dataset.h"

namespace llmpi {

double unigram_cross_entropy(const TokenDataset& train, const TokenDataset& held_out,
                             int64_t vocab_size);

}  // namespace llmpi
