#pragma once
// Vocab parallelism: the token embedding and the output head (the same matrix when tied) are
// split by vocabulary rows over the tp group; rank r holds rows [begin, end) of vocab_range.
//   embedding:  x = Σ_r E_r[ids]   (each rank looks up only its rows, 0 elsewhere; the
//               partial rows are summed like a row-parallel output, model/regions.h)
//   head:       logits_r = h · W_rᵀ  [N, V_r]; the full [N, V] logits never exist anywhere
//   loss:       lse = log Σ_r exp(lse_r)  (each lse_r over the rank's columns);
//               picked = Σ_r picked_r      (the target's column lives on exactly one rank)
//               loss_n = lse_n - picked_n, and d(logits_r) = softmax over the GLOBAL lse
//               minus the one-hot of the target in the rank's columns: no further traffic.
// Communication per micro-batch: all-gather of N log-sum-exps, all-reduce of N picks.
// The split is balanced and allows V % tp != 0 (slabs differ by at most one row).
#include <cstdint>

#include "backend/backend.h"
#include "parallel/collectives.h"

namespace llmpi {

struct VocabRange {
  int64_t begin = 0, end = 0;  // global vocab rows [begin, end)
  int64_t size() const { return end - begin; }
};

// Rows of tp rank `rank` of `size`: [⌊rank·V/size⌋, ⌊(rank+1)·V/size⌋).
VocabRange vocab_range(int64_t vocab_size, int tp_size, int tp_rank);

// lse[N] (statistics dtype, on be) ← log Σ_ranks exp(lse of each rank), identical bits on
// every rank (each combines the gathered values in rank order).
void combine_vocab_logsumexp(Collectives& tp, Backend& be, const Tensor& lse);
// picked[N] ← Σ_ranks picked, in place.
void combine_vocab_picked(Collectives& tp, Backend& be, const Tensor& picked);

}  // namespace llmpi
