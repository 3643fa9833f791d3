// LoRA under the composed layout tp2·pp2·dp2 (8 ranks) against one rank
// (train_equivalence.h): adapters split with their base over tp, in their pipeline stage,
// their moments sharded by ZeRO 1 over dp.
#include "train_equivalence.h"

using namespace llmpi;
using namespace llmpi::testing;

TEST(TrainLora8, TensorPipelineAndData) {
  const auto d = shared_corpus("lora_composed8");
  expect_layout_matches(d, {.arch = "llama", .tp = 2, .pp = 2, .dp = 2, .zero = 1, .micro = 2,
                            .lora = 4});
}
