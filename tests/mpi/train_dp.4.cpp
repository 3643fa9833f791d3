// Data parallel on 4 ranks: dp4 with ZeRO 0, 1, 2, 3 (GPT-2 and Llama shapes) trains
// exactly as one rank does (train_equivalence.h).
#include "train_equivalence.h"

using namespace llmpi;
using namespace llmpi::testing;

TEST(TrainDp4, Gpt2AllZeroStages) {
  const auto d = shared_corpus("dp4_gpt2");
  for (int zero = 0; zero <= 3; ++zero) expect_layout_matches(d, {.arch = "gpt2", .dp = 4, .zero = zero});
}

TEST(TrainDp4, LlamaAllZeroStages) {
  const auto d = shared_corpus("dp4_llama");
  for (int zero = 0; zero <= 3; ++zero) expect_layout_matches(d, {.arch = "llama", .dp = 4, .zero = zero});
}
