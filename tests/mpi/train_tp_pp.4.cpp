// Layouts of 4 ranks through the trainer and the engine, each against one rank
// (train_equivalence.h), GPT-2 and Llama shapes: tp4, pp4 (1F1B), tp2·dp2 with ZeRO 3
// (just-in-time units on tp slabs), tp2+sp·dp2 with ZeRO 2, tp4+sp with T = 14, pp2·dp2 with ZeRO 2
// (reduce-scattered pipeline gradients) and pp2·dp2 with ZeRO 1.
#include "train_equivalence.h"

using namespace llmpi;
using namespace llmpi::testing;

TEST(TrainTpPp4, Tp4AndPp4) {
  const auto d = shared_corpus("tp4pp4");
  for (const char* arch : {"gpt2", "llama"}) {
    expect_layout_matches(d, {.arch = arch, .tp = 4});
    expect_layout_matches(d, {.arch = arch, .pp = 4, .micro = 4});
  }
}

// Sequence parallelism over tp = 4 with T = 14 (not a multiple of 4): B·T = 28 rows, 7 per
// rank, so every rank but the first starts mid-sequence (config/layout_rules.h, sp_rows).
TEST(TrainTpPp4, SequenceParallelRowsCrossSequences) {
  const auto d = shared_corpus("sp_rows4");
  for (const char* arch : {"gpt2", "llama"})
    expect_layout_matches(d, {.arch = arch, .tp = 4, .sp = true, .seq_len = 14});
}

TEST(TrainTpPp4, WithZero) {
  const auto d = shared_corpus("zero_tp_pp");
  for (const char* arch : {"gpt2", "llama"}) {
    expect_layout_matches(d, {.arch = arch, .tp = 2, .dp = 2, .zero = 3});
    expect_layout_matches(d, {.arch = arch, .tp = 2, .dp = 2, .zero = 2, .sp = true});
    expect_layout_matches(d, {.arch = arch, .pp = 2, .dp = 2, .zero = 2, .micro = 2});
    expect_layout_matches(d, {.arch = arch, .pp = 2, .dp = 2, .zero = 1, .micro = 2});
    // The ZeRO-3 units share one set of recomputation buffers across units.
    expect_layout_matches(d, {.arch = arch, .tp = 2, .dp = 2, .zero = 3, .recompute = "full"});
  }
}
