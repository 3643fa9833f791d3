// Training sanity in f32: a tiny model of each architecture memorizes one fixed batch with
// AdamW. The loss starts near ln(V) (uniform prediction at init) and falls below 0.05.
#include <gtest/gtest.h>

#include <cmath>

#include "model/param_layout.h"
#include "model/transformer.h"
#include "optim/adamw.h"
#include "optim/grad_clip.h"
#include "test_model_util.h"

using namespace llmpi;
using namespace llmpi::testing;

namespace {

void overfit(Arch arch) {
  ModelConfig cfg = tiny_config(arch);
  cfg.d_model = 32;
  cfg.d_ff = 64;
  cfg.max_seq_len = 16;
  auto be_ptr = make_host_backend();
  Backend& be = *be_ptr;
  ParamStore store(be, transformer_params(cfg, StageRange::full(cfg)), DType::f32);
  store.init(be, 42);
  const Transformer model(cfg, StageRange::full(cfg), store);
  const int64_t B = 2, T = 16;
  TokenBatch tb = random_batch(B, T, cfg.vocab_size, 3);
  tb.ids[T] = static_cast<int32_t>((tb.ids[0] + 1) % cfg.vocab_size);  // distinct contexts
  Buffer ids = upload_i32(be, tb.ids), targets = upload_i32(be, tb.targets);
  Activations a = model.alloc_activations(be, B, T);
  Workspace ws = model.alloc_workspace(be, B, T);
  AdamW opt(be, store, AdamWOptions{0.9, 0.95, 1e-8, 0.0});

  double first = 0, last = 0;
  for (int step = 1; step <= 150; ++step) {
    store.zero_grads(be);
    model.forward(be, a, ids);
    const LossSum l = model.loss(be, a, targets);
    last = l.sum / static_cast<double>(l.count);
    if (step == 1) first = last;
    model.backward_loss(be, a, ws, ids, targets, 1.0 / static_cast<double>(l.count));
    const Tensor g = store.grads();
    const ClipResult clip = clip_grad_norm(be, std::span<const Tensor>(&g, 1), 1.0);
    ASSERT_TRUE(clip.finite) << "step " << step;
    opt.step(be, 1e-2, clip.scale);
  }
  EXPECT_NEAR(first, std::log(static_cast<double>(cfg.vocab_size)), 0.1);
  EXPECT_LT(last, 0.05) << arch_name(arch) << ": loss " << first << " -> " << last;
  EXPECT_EQ(opt.step_count(), 150);
}

}  // namespace

TEST(ModelOverfit, Gpt2MemorizesOneBatch) { overfit(Arch::gpt2); }
TEST(ModelOverfit, LlamaMemorizesOneBatch) { overfit(Arch::llama); }
