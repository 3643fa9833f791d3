// Tensor, sequence and pipeline parallel on 2 ranks, through the trainer and the engine:
// tp2, tp2 + sequence parallel, pp2 (1F1B) and pp2 interleaved with 2 virtual stages, GPT-2
// and Llama shapes, each trains exactly as one rank does (train_equivalence.h).
#include "train_equivalence.h"

using namespace llmpi;
using namespace llmpi::testing;

TEST(TrainTpPp2, TensorParallel) {
  const auto d = shared_corpus("tp2");
  for (const char* arch : {"gpt2", "llama"}) {
    expect_layout_matches(d, {.arch = arch, .tp = 2});
    expect_layout_matches(d, {.arch = arch, .tp = 2, .sp = true});
    expect_layout_matches(d, {.arch = arch, .tp = 2, .micro = 2, .sp = true});
  }
}

// Sequence parallelism splits the B·T token rows of a micro-batch, not each sequence, so
// the layout rules ask only that tp divide batch_size · seq_len (config/layout_rules.h,
// sp_rows), not seq_len: T = 15 over tp = 2 (refused by the old seq_len rule), and B = 3,
// T = 10, where rank 1's 15 rows start at position 5 of sequence 1, both train as one rank.
TEST(TrainTpPp2, SequenceParallelSplitsRowsNotSequences) {
  const auto d = shared_corpus("sp_rows2");
  for (const char* arch : {"gpt2", "llama"}) {
    expect_layout_matches(d, {.arch = arch, .tp = 2, .sp = true, .seq_len = 15});
    expect_layout_matches(d, {.arch = arch, .tp = 2, .micro = 2, .sp = true,
                              .seq_len = 10, .batch = 3});
  }
}

// Activation recomputation under tp + sp and the pipeline: a recomputed forward re-issues the
// same region collectives; the trajectory equals the 1-rank run without recomputation.
TEST(TrainTpPp2, Recomputation) {
  const auto d = shared_corpus("rc2");
  for (const char* arch : {"gpt2", "llama"}) {
    expect_layout_matches(d, {.arch = arch, .tp = 2, .sp = true, .recompute = "full"});
    expect_layout_matches(d, {.arch = arch, .tp = 2, .micro = 2, .recompute = "selective"});
    expect_layout_matches(d, {.arch = arch, .pp = 2, .micro = 4, .recompute = "full"});
  }
}

TEST(TrainTpPp2, Pipeline) {
  const auto d = shared_corpus("pp2");
  for (const char* arch : {"gpt2", "llama"}) {
    expect_layout_matches(d, {.arch = arch, .pp = 2, .micro = 4});
    expect_layout_matches(d, {.arch = arch, .pp = 2, .micro = 4, .virtual_stages = 2});
    // ZeRO 2 with a pipeline on one dp rank: the one-store path, nothing to shard.
    expect_layout_matches(d, {.arch = arch, .pp = 2, .zero = 2, .micro = 4});
  }
}
