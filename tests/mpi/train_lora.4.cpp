// LoRA ([lora] rank > 0: adapters on every module beside the frozen base, parallel/lora_base.h)
// under layouts of 4 ranks, each against one rank (train_equivalence.h: losses, gradient
// norms and every adapter slab; the layout's model file holds the adapters): tensor
// parallelism with sequence parallelism and dp2 ZeRO 1 (A or B of each branch split with its
// base), gpt2 dp4 and llama tp2·dp2 ZeRO 3 (the unit chain over adapters), pp2·dp2 (adapters
// in their stage; SFT rows), tp2·pp2; QLoRA (NF4 base) under pp2·dp2 ZeRO 1 and dp4 ZeRO 3;
// DPO with adapters (the reference pass runs the base with the adapters disabled) under
// tp2 + sp·dp2 ZeRO 1, dp4 ZeRO 3 (just-in-time units) and pp2·dp2, and QLoRA DPO.
#include "train_equivalence.h"

using namespace llmpi;
using namespace llmpi::testing;

TEST(TrainLora4, TensorParallelAndZero) {
  const auto d = shared_corpus("lora_tp4");
  expect_layout_matches(d, {.arch = "llama", .tp = 2, .dp = 2, .zero = 1, .sp = true, .lora = 4});
  expect_layout_matches(d, {.arch = "gpt2", .tp = 2, .dp = 2, .zero = 1, .lora = 4});
}

TEST(TrainLora4, Zero3Units) {
  const auto d = shared_corpus("lora_zero3");
  expect_layout_matches(d, {.arch = "gpt2", .dp = 4, .zero = 3, .lora = 4});
  expect_layout_matches(d, {.arch = "llama", .tp = 2, .dp = 2, .zero = 3, .lora = 4});
}

TEST(TrainLora4, PipelineStages) {
  const auto d = shared_corpus("lora_pp4");
  expect_layout_matches(d, {.arch = "gpt2", .pp = 2, .dp = 2, .zero = 1, .micro = 2,
                            .objective = "sft", .packing = false, .lora = 4});
  expect_layout_matches(d, {.arch = "llama", .tp = 2, .pp = 2, .micro = 2, .lora = 4});
}

// QLoRA: the NF4 base is quantised per tensor-parallel slab, so pipeline stages, data
// parallelism and ZeRO leave it (and the trajectory) as one rank has it.
TEST(TrainLora4, QloraUnderPipelineAndZero) {
  const auto d = shared_corpus("qlora_pp4");
  expect_layout_matches(d, {.arch = "llama", .pp = 2, .dp = 2, .zero = 1, .micro = 2, .lora = 4,
                            .base_dtype = "nf4"});
  expect_layout_matches(d, {.arch = "llama", .dp = 4, .zero = 3, .lora = 4, .base_dtype = "nf4"});
}

// DPO: each run computes its reference log-probs with the adapters disabled (every stage, tp
// rank and ZeRO-3 unit of the layout), then trains the adapters against them.
TEST(TrainLora4, DpoReferenceIsTheBase) {
  const auto d = shared_corpus("lora_dpo4");
  expect_layout_matches(d, {.arch = "llama", .tp = 2, .dp = 2, .zero = 1, .sp = true,
                            .steps = 16, .objective = "dpo", .lora = 4});
  expect_layout_matches(d, {.arch = "gpt2", .dp = 4, .zero = 3, .steps = 16, .objective = "dpo",
                            .lora = 4});
  expect_layout_matches(d, {.arch = "gpt2", .pp = 2, .dp = 2, .zero = 1, .micro = 2, .steps = 16,
                            .objective = "dpo", .lora = 4});
  expect_layout_matches(d, {.arch = "llama", .dp = 4, .zero = 2, .steps = 16, .objective = "dpo",
                            .lora = 4, .base_dtype = "nf4"});
}
