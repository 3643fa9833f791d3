// [train] objective = "dpo" under layouts of 4 ranks, each against one rank
// (train_equivalence.h): preference pairs (two adjacent documents kept in one row), the
// reference log-probs computed by each run itself (split over its dp ranks) and the per-token
// scales of the DPO gradient, through tp2 with sequence parallelism and dp2 ZeRO 1,
// tp2·dp2 ZeRO 3 (just-in-time units), dp4 ZeRO 2 (packed), and pp2·dp2 with 2 micro-batches
// (1F1B, document starts on every stage), packed and one pair per row.
#include "train_equivalence.h"

using namespace llmpi;
using namespace llmpi::testing;

TEST(TrainDpo4, TpSpDpAndZero) {
  const auto d = shared_corpus("dpo_tp4");
  expect_layout_matches(d, {.arch = "llama", .tp = 2, .dp = 2, .zero = 1, .sp = true,
                            .steps = 16, .objective = "dpo"});
  expect_layout_matches(d, {.arch = "gpt2", .tp = 2, .dp = 2, .zero = 3, .steps = 16,
                            .objective = "dpo"});
  expect_layout_matches(d, {.arch = "llama", .dp = 4, .zero = 2, .steps = 16, .objective = "dpo"});
}

TEST(TrainDpo4, Pipeline) {
  const auto d = shared_corpus("dpo_pp4");
  expect_layout_matches(d, {.arch = "gpt2", .pp = 2, .dp = 2, .zero = 1, .micro = 2,
                            .steps = 16, .objective = "dpo"});
  expect_layout_matches(d, {.arch = "llama", .pp = 2, .dp = 2, .zero = 1, .micro = 2,
                            .steps = 16, .objective = "dpo", .packing = false});
}
