#pragma once
// SFT targets: the next-token labels of a sequence from its tokens, its loss mask and its
// documents. loss_mask[i] = 1 marks a token the model must learn to produce (an assistant
// turn's tokens, including its end-of-turn token); 0 marks prompt, system prompt, template
// markup and padding. The mask marks the PREDICTED token, so it shifts with the labels:
//   targets[t] = tokens[t + 1]  if loss_mask[t + 1] = 1 and token t + 1 is in t's document
//              = -1 (ignored)   otherwise, and always for the last token.
// doc_start (core/documents.h; empty: one document) gives the documents: token t + 1 starts a
// new one when doc_start[t + 1] = t + 1, so nothing is predicted across a boundary.
// Averaging (the engine's rule, docs/finetuning.md): a step's loss is the sum of the counted
// targets' cross-entropies divided by the number of counted targets in the whole global step
// (all micro-batches and data-parallel ranks): a mean per token, not per sequence.
#include <cstdint>
#include <span>

namespace llmpi {

// tokens, loss_mask, doc_start (or empty) and targets all have n entries.
void sft_targets(std::span<const int32_t> tokens, std::span<const uint8_t> loss_mask,
                 std::span<const int32_t> doc_start, std::span<int32_t> targets);

}  // namespace llmpi
