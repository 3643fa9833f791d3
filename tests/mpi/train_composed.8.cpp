// All three axes at once on 8 ranks: tp2·pp2·dp2 with ZeRO 1 (and ZeRO 0 and 2, and with
// sequence parallelism), GPT-2 and Llama shapes, trains exactly as one rank does
// (train_equivalence.h).
#include "train_equivalence.h"

using namespace llmpi;
using namespace llmpi::testing;

TEST(TrainComposed8, Tp2Pp2Dp2) {
  const auto d = shared_corpus("tp2pp2dp2");
  for (const char* arch : {"gpt2", "llama"}) {
    expect_layout_matches(d, {.arch = arch, .tp = 2, .pp = 2, .dp = 2, .zero = 1, .micro = 2});
    expect_layout_matches(d, {.arch = arch, .tp = 2, .pp = 2, .dp = 2, .zero = 2, .micro = 2, .sp = true});
  }
  expect_layout_matches(d, {.arch = "gpt2", .tp = 2, .pp = 2, .dp = 2, .zero = 0, .micro = 2});
}
