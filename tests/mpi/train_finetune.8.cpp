// The fine-tuning objectives on the composed layout tp2·pp2·dp2 (8 ranks), each against one
// rank (train_equivalence.h): SFT with packed rows (document starts through the pipeline
// stages) and DPO (preference pairs, reference log-probs, per-token scales).
#include "train_equivalence.h"

using namespace llmpi;
using namespace llmpi::testing;

TEST(TrainFinetune8, Tp2Pp2Dp2) {
  const auto d = shared_corpus("finetune8");
  expect_layout_matches(d, {.arch = "llama", .tp = 2, .pp = 2, .dp = 2, .zero = 1, .micro = 2,
                            .steps = 10, .objective = "sft"});
  expect_layout_matches(d, {.arch = "gpt2", .tp = 2, .pp = 2, .dp = 2, .zero = 1, .micro = 2,
                            .sp = true, .steps = 10, .objective = "dpo"});
}
