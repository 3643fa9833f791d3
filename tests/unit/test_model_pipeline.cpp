// Pipeline stage ranges: a model cut into two stages (embedding + layer 0 | layer 1 + head),
// run back to back — the first stage's output fed as the second's input, the second's input
// gradient fed back — computes the full model's logits, loss and every parameter gradient.
// With tied embeddings the head stage holds its own copy of embed.tokens; the full model's
// gradient of it is the sum of both stages' gradients.
#include <gtest/gtest.h>

#include <cmath>

#include "model/param_layout.h"
#include "model/transformer.h"
#include "test_model_util.h"

using namespace llmpi;
using namespace llmpi::testing;

namespace {

void expect_close(const std::vector<double>& got, const std::vector<double>& want,
                  const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < got.size(); ++i)
    ASSERT_NEAR(got[i], want[i], 1e-12 * (1 + std::abs(want[i]))) << what << "[" << i << "]";
}

void check_two_stages(Arch arch) {
  const ModelConfig cfg = tiny_config(arch);
  auto be_ptr = make_host_backend();
  Backend& be = *be_ptr;
  const StageRange full_r = StageRange::full(cfg), r0{0, 1, true, false}, r1{1, 2, false, true};
  ParamStore full(be, transformer_params(cfg, full_r), DType::f64);
  ParamStore s0(be, transformer_params(cfg, r0), DType::f64);
  ParamStore s1(be, transformer_params(cfg, r1), DType::f64);
  EXPECT_EQ(s1.contains("embed.tokens"), cfg.tied_embeddings);
  EXPECT_FALSE(s0.contains("final_norm.weight"));
  EXPECT_FALSE(s1.contains("layers.0.attn.q.weight"));

  // The init is a function of (seed, name, global index): every stage gets the full
  // model's values without any communication.
  full.init(be, 5);
  s0.init(be, 5);
  s1.init(be, 5);
  for (const ParamStore* s : {&s0, &s1})
    for (const ParamInfo& p : s->params())
      expect_close(to_host(be, s->master(p.name)), to_host(be, full.master(p.name)), p.name);
  // Then generic values (nonzero biases) for a sharper comparison.
  randomize_params(be, full, 9);
  copy_params_by_name(be, s0, full);
  copy_params_by_name(be, s1, full);

  const int64_t B = 2, T = 6;
  const TokenBatch tb = random_batch(B, T, cfg.vocab_size, 8, {3});
  Buffer ids = upload_i32(be, tb.ids), targets = upload_i32(be, tb.targets);

  const Transformer m(cfg, full_r, full), m0(cfg, r0, s0), m1(cfg, r1, s1);
  Activations a = m.alloc_activations(be, B, T), a0 = m0.alloc_activations(be, B, T),
              a1 = m1.alloc_activations(be, B, T);
  Workspace w = m.alloc_workspace(be, B, T), w0 = m0.alloc_workspace(be, B, T),
            w1 = m1.alloc_workspace(be, B, T);

  m.forward(be, a, ids);
  const LossSum l = m.loss(be, a, targets);
  m0.forward(be, a0, ids);
  be.copy(a1.input, a0.output());  // "send" to the next stage
  m1.forward(be, a1, Tensor{});
  const LossSum l1 = m1.loss(be, a1, targets);
  expect_close(to_host(be, a1.logits), to_host(be, a.logits), "logits");
  EXPECT_EQ(l1.count, l.count);
  EXPECT_NEAR(l1.sum, l.sum, 1e-12 * l.sum);

  const double scale = 1.0 / static_cast<double>(l.count);
  m.backward_loss(be, a, w, ids, targets, scale);
  m1.backward_loss(be, a1, w1, Tensor{}, targets, scale);
  m0.backward(be, a0, w0, ids, m1.input_grad(w1, a1));  // "send" the gradient back

  for (const ParamInfo& p : full.params()) {
    std::vector<double> got(static_cast<size_t>(p.numel()), 0.0);
    int holders = 0;
    for (const ParamStore* s : {&s0, &s1}) {
      if (!s->contains(p.name)) continue;
      ++holders;
      const std::vector<double> g = to_host(be, s->grad(p.name));
      for (size_t i = 0; i < g.size(); ++i) got[i] += g[i];
    }
    EXPECT_EQ(holders, p.name == "embed.tokens" && cfg.tied_embeddings ? 2 : 1) << p.name;
    expect_close(got, to_host(be, full.grad(p.name)), p.name);
  }
  double norm = 0;
  for (double g : to_host(be, full.grads())) norm += g * g;
  EXPECT_GT(norm, 0.0);
}

}  // namespace

TEST(ModelPipeline, TwoHalvesEqualFullGpt2) { check_two_stages(Arch::gpt2); }
TEST(ModelPipeline, TwoHalvesEqualFullLlama) { check_two_stages(Arch::llama); }
