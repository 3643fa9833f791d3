// Data parallel on 2 ranks: dp2 with ZeRO 0, 1, 2, 3 (GPT-2 and Llama shapes, one and two
// micro-batches per rank) trains exactly as one rank does (train_equivalence.h), and the
// per-rank memory follows the ZeRO fractions.
#include "train_equivalence.h"

using namespace llmpi;
using namespace llmpi::testing;

TEST(TrainDp2, Gpt2AllZeroStages) {
  const auto d = shared_corpus("dp2_gpt2");
  for (int zero = 0; zero <= 3; ++zero)
    expect_layout_matches(d, {.arch = "gpt2", .dp = 2, .zero = zero, .micro = zero % 2 + 1});
}

TEST(TrainDp2, LlamaAllZeroStages) {
  const auto d = shared_corpus("dp2_llama");
  for (int zero = 0; zero <= 3; ++zero)
    expect_layout_matches(d, {.arch = "llama", .dp = 2, .zero = zero, .micro = 2 - zero % 2});
}
