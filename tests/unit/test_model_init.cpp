// Parameter layout and init: names/packing, GPT-2 init statistics (std, residual scaling,
// zero biases, unit gains), and layout independence — a hand-built local slab of a
// parameter (as tensor parallelism would hold) gets exactly the values of those global
// elements in the full tensor.
#include <gtest/gtest.h>

#include <cmath>

#include "core/error.h"
#include "model/param_layout.h"
#include "test_model_util.h"

using namespace llmpi;
using namespace llmpi::testing;

namespace {

double stddev(const std::vector<double>& v) {
  double s = 0, s2 = 0;
  for (double x : v) {
    s += x;
    s2 += x * x;
  }
  const double m = s / v.size();
  return std::sqrt(s2 / v.size() - m * m);
}

}  // namespace

TEST(ModelInit, LayoutNamesShapesAndPacking) {
  const ModelConfig c = tiny_config(Arch::llama);
  auto be = make_host_backend();
  ParamStore s(*be, transformer_params(c, StageRange::full(c)), DType::f32);
  const int64_t C = 16, D = 4, F = 32, V = 37;
  EXPECT_EQ(s.info("embed.tokens").global_shape, (Shape{V, C}));
  EXPECT_FALSE(s.contains("embed.positions"));  // RoPE instead
  EXPECT_FALSE(s.contains("layers.0.attn_norm.bias"));
  EXPECT_EQ(s.info("layers.1.attn.k.weight").global_shape, (Shape{2 * D, C}));  // GQA
  EXPECT_EQ(s.info("layers.1.mlp.down.weight").global_shape, (Shape{C, F}));
  EXPECT_EQ(s.info("head.weight").global_shape, (Shape{V, C}));  // untied
  // Adjacency that the packed GEMMs rely on.
  const ParamInfo &q = s.info("layers.1.attn.q.weight"), &k = s.info("layers.1.attn.k.weight"),
                  &v = s.info("layers.1.attn.v.weight");
  EXPECT_EQ(k.offset, q.offset + q.numel());
  EXPECT_EQ(v.offset, k.offset + k.numel());
  EXPECT_EQ(s.info("layers.0.mlp.up.weight").offset,
            s.info("layers.0.mlp.gate.weight").offset + F * C);
  // Flat buffers are packed without gaps, grads share the layout.
  int64_t total = 0;
  for (const ParamInfo& p : s.params()) total += p.numel();
  EXPECT_EQ(s.numel(), total);
  EXPECT_EQ(s.grad("head.weight").data,
            static_cast<char*>(s.grads().data) + s.info("head.weight").offset * 4);
  // Weight decay on matrices and embeddings only.
  EXPECT_TRUE(s.info("embed.tokens").weight_decay);
  EXPECT_TRUE(s.info("layers.0.attn.out.weight").weight_decay);
  EXPECT_FALSE(s.info("final_norm.weight").weight_decay);

  const ModelConfig g = tiny_config(Arch::gpt2);
  ParamStore sg(*be, transformer_params(g, StageRange::full(g)), DType::f32);
  EXPECT_FALSE(sg.contains("head.weight"));  // tied
  EXPECT_EQ(sg.info("embed.positions").global_shape, (Shape{8, C}));
  EXPECT_EQ(sg.info("layers.0.attn.k.bias").offset,
            sg.info("layers.0.attn.q.bias").offset + C);
  EXPECT_FALSE(sg.info("layers.0.mlp.up.bias").weight_decay);
  // A misshapen config is a user error naming the key.
  ModelConfig bad = g;
  bad.d_model = 18;
  try {
    transformer_params(bad, StageRange::full(bad));
    FAIL() << "expected a UserError";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("model.d_model"), std::string::npos) << e.what();
  }
}

TEST(ModelInit, Gpt2Statistics) {
  ModelConfig c = tiny_config(Arch::gpt2);
  c.vocab_size = 512;
  c.d_model = 64;
  c.d_ff = 256;
  c.n_layer = 8;
  auto be = make_host_backend();
  ParamStore s(*be, transformer_params(c, StageRange::full(c)), DType::f32);
  s.init(*be, 1234);
  // 32768 draws: the sample std is within 1% of the true one with overwhelming odds.
  EXPECT_NEAR(stddev(to_host(*be, s.master("embed.tokens"))), 0.02, 0.02 * 0.03);
  EXPECT_NEAR(stddev(to_host(*be, s.master("layers.3.mlp.up.weight"))), 0.02, 0.02 * 0.03);
  const double resid = 0.02 / std::sqrt(2.0 * 8);
  EXPECT_NEAR(stddev(to_host(*be, s.master("layers.3.mlp.down.weight"))), resid, resid * 0.03);
  EXPECT_NEAR(stddev(to_host(*be, s.master("layers.5.attn.out.weight"))), resid, resid * 0.05);
  for (double x : to_host(*be, s.master("layers.2.attn.q.bias"))) ASSERT_EQ(x, 0.0);
  for (double x : to_host(*be, s.master("layers.2.mlp_norm.weight"))) ASSERT_EQ(x, 1.0);
  for (double x : to_host(*be, s.master("final_norm.bias"))) ASSERT_EQ(x, 0.0);
  // Different parameters and seeds draw different values; the same seed the same ones.
  const auto q = to_host(*be, s.master("layers.0.attn.q.weight"));
  EXPECT_NE(q[0], to_host(*be, s.master("layers.1.attn.q.weight"))[0]);
  ParamStore s2(*be, transformer_params(c, StageRange::full(c)), DType::f32);
  s2.init(*be, 1234);
  EXPECT_EQ(q, to_host(*be, s2.master("layers.0.attn.q.weight")));
  s2.init(*be, 99);
  EXPECT_NE(q[5], to_host(*be, s2.master("layers.0.attn.q.weight"))[5]);
}

TEST(ModelInit, LocalSlabMatchesGlobalTensor) {
  const ModelConfig c = tiny_config(Arch::llama);
  auto be = make_host_backend();
  ParamStore full(*be, transformer_params(c, StageRange::full(c)), DType::f64);
  full.init(*be, 77);

  // Row slab of a [rows, C] matrix (column-parallel) and column slab of down [C, F]
  // (row-parallel), as tensor parallelism would hold them.
  std::vector<ParamInfo> ps;
  ParamInfo q = full.info("layers.1.attn.q.weight");
  q.local_shape = Shape{q.global_shape[0] / 2, q.global_shape[1]};
  q.local_start = {q.global_shape[0] / 2, 0};
  ps.push_back(q);
  ParamInfo down = full.info("layers.0.mlp.down.weight");
  down.local_shape = Shape{down.global_shape[0], 12};
  down.local_start = {0, 7};
  ps.push_back(down);
  ParamStore slab(*be, ps, DType::f64);
  slab.init(*be, 77);

  for (const ParamInfo& p : slab.params()) {
    const std::vector<double> g = to_host(*be, full.master(p.name));
    const std::vector<double> l = to_host(*be, slab.master(p.name));
    const int64_t cols = p.global_shape[1], lc = p.local_shape[1];
    for (int64_t i = 0; i < p.local_shape[0]; ++i)
      for (int64_t j = 0; j < lc; ++j)
        ASSERT_EQ(l[i * lc + j], g[(i + p.local_start[0]) * cols + j + p.local_start[1]])
            << p.name << " local (" << i << ", " << j << ")";
  }
  EXPECT_EQ(slab.numel(), full.info("layers.1.attn.q.weight").numel() / 2 + 16 * 12);
}
