#pragma once
// Evaluation of a whole model held by one process (llmpi eval, llmpi analyze):
//  - evaluate_loss: Σ cross-entropy over `batches` batches of B validation rows
//    (StepRows::fill_val order, document starts and loss masks included); rows that wrap
//    around past the last one are not counted, so each row counts at most once (B and
//    `batches` are cut to what covers the rows: more would count nothing);
//  - greedy_match: LLM360's memorization score of token sequences — from the first P tokens
//    of each, greedy decoding (argmax, lowest id on ties) generates K tokens; the score is the
//    fraction of positions P..P+K−1 where the generated token equals the sequence's own.
//    Generation is batched (B sequences per forward over P+K positions; causal attention
//    makes the padding after the current position irrelevant).
#include <cstdint>
#include <vector>

#include "backend/backend.h"
#include "model/transformer.h"
#include "train/step_rows.h"

namespace llmpi {

LossSum evaluate_loss(const Transformer& model, Backend& be, const StepRows& rows, int64_t T,
                      int64_t B, int64_t batches);

// sequences: each at least P + K tokens. Returns one score in [0, 1] per sequence.
std::vector<double> greedy_match(const Transformer& model, Backend& be,
                                 const std::vector<std::vector<int32_t>>& sequences, int64_t P,
                                 int64_t K, int64_t B);

}  // namespace llmpi
