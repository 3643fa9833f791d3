// [train] objective = "sft" under layouts of 4 ranks, each against one rank
// (train_equivalence.h): fine-tuning shards (documents + loss mask), rows packed several
// documents to a row (block-diagonal attention, positions restarting) through tp2 with
// sequence parallelism and dp2 ZeRO 1, tp2·dp2 ZeRO 3 (just-in-time units), dp4 ZeRO 2;
// rows through pp2·dp2 (1F1B) unpacked and packed (document starts on every stage).
#include "train_equivalence.h"

using namespace llmpi;
using namespace llmpi::testing;

TEST(TrainSft4, PackedUnderTpSpDpAndZero) {
  const auto d = shared_corpus("sft_packed4");
  expect_layout_matches(d, {.arch = "llama", .tp = 2, .dp = 2, .zero = 1, .sp = true,
                            .objective = "sft"});
  expect_layout_matches(d, {.arch = "gpt2", .tp = 2, .dp = 2, .zero = 3, .objective = "sft"});
  expect_layout_matches(d, {.arch = "llama", .dp = 4, .zero = 2, .objective = "sft"});
}

TEST(TrainSft4, UnpackedUnderPipeline) {
  const auto d = shared_corpus("sft_pp4");
  expect_layout_matches(d, {.arch = "gpt2", .pp = 2, .dp = 2, .zero = 1, .micro = 2,
                            .objective = "sft", .packing = false});
}

TEST(TrainSft4, PackedUnderPipeline) {
  const auto d = shared_corpus("sft_pp_packed4");
  expect_layout_matches(d, {.arch = "llama", .pp = 2, .dp = 2, .zero = 1, .micro = 2,
                            .objective = "sft"});
}
