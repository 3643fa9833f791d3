// LoRA in the model (model/lora_targets.h, lora_linear.h, lora_merge.h) on the host backend in
// f64: adapters on every target module of GPT-2 and Llama shapes beside a frozen base. At init
// (B = 0) and with the adapters disabled the model is the base model exactly; with trained
// (random) adapters it equals the plain model over the merged weights W + s·B A (tied
// embeddings untied when the head is adapted); the frozen store keeps no matrix gradient and
// its weights do not move; the adapters' tensor-parallel split follows their base's.
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>

#include "model/lora_merge.h"
#include "model/nf4_weights.h"
#include "parallel/lora_base.h"
#include "quant/nf4.h"
#include "model/lora_targets.h"
#include "model/param_layout.h"
#include "model/transformer.h"
#include "parallel/tensor_parallel.h"
#include "test_model_util.h"

using namespace llmpi;
using namespace llmpi::testing;

namespace {

constexpr int64_t kB = 2, kT = 5;

std::vector<std::string> all_targets(Arch arch) {
  if (arch == Arch::llama) return {"q", "k", "v", "o", "gate", "up", "down", "head"};
  return {"q", "k", "v", "o", "up", "down", "head"};
}

struct LoraModelFixture {
  ModelConfig cfg;
  LoraSpec spec;
  std::unique_ptr<Backend> be = make_host_backend();
  std::unique_ptr<ParamStore> base, adapters;
  TokenBatch tb;
  Buffer ids, targets;

  LoraModelFixture(Arch arch, std::vector<std::string> targets_)
      : cfg(tiny_config(arch)), spec{3, 6.0, arch == Arch::llama, std::move(targets_)} {
    const StageRange full = StageRange::full(cfg);
    base = std::make_unique<ParamStore>(*be, transformer_params(cfg, full), DType::f64,
                                        StoreRole::frozen);
    randomize_params(*be, *base, 3);
    adapters = std::make_unique<ParamStore>(*be, adapter_params(cfg, spec, full), DType::f64);
    adapters->init(*be, 9);  // A Kaiming-uniform, B zero
    tb = random_batch(kB, kT, cfg.vocab_size, 2, {3});
    ids = upload_i32(*be, tb.ids);
    targets = upload_i32(*be, tb.targets);
  }
  std::unique_ptr<Transformer> lora_model() const {
    return std::make_unique<Transformer>(cfg, StageRange::full(cfg), *base,
                                         AdapterStore{adapters.get(), spec.scale()});
  }
  // Logits [B·T, V] of `model` on the batch.
  std::vector<double> logits(const Transformer& model) {
    Activations a = model.alloc_activations(*be, kB, kT);
    model.forward(*be, a, ids);
    return to_host(*be, a.logits);
  }
};

double max_abs_diff(const std::vector<double>& a, const std::vector<double>& b) {
  EXPECT_EQ(a.size(), b.size());
  double d = 0;
  for (size_t i = 0; i < a.size(); ++i) d = std::max(d, std::abs(a[i] - b[i]));
  return d;
}

}  // namespace

TEST(LoraModel, AdapterParametersPerTargetModule) {
  const ModelConfig c = tiny_config(Arch::llama);  // C 16, Hq 4, Hkv 2, D 4, F 32, V 37
  const LoraSpec spec{8, 16.0, false, {"k", "down", "head"}};
  const std::vector<ParamInfo> ps = adapter_params(c, spec, StageRange::full(c));
  ASSERT_EQ(ps.size(), 2u * (2 * 2 + 1));  // (k, down) × 2 layers + head; A and B each
  EXPECT_EQ(ps[0].name, "layers.0.attn.k.lora_A");
  EXPECT_EQ(ps[0].global_shape, (Shape{8, 16}));
  EXPECT_EQ(ps[1].name, "layers.0.attn.k.lora_B");
  EXPECT_EQ(ps[1].global_shape, (Shape{8, 8}));  // Hkv·D = 8 rows
  EXPECT_EQ(ps[2].name, "layers.0.mlp.down.lora_A");
  EXPECT_EQ(ps[2].global_shape, (Shape{8, 32}));
  EXPECT_EQ(ps[3].global_shape, (Shape{16, 8}));
  EXPECT_EQ(ps[8].name, "head.lora_A");
  EXPECT_EQ(ps[9].global_shape, (Shape{37, 8}));
  EXPECT_DOUBLE_EQ(spec.scale(), 2.0);
  // A pipeline stage without the head has no head adapter; one of layer 1 only, layer 1's.
  const std::vector<ParamInfo> s1 = adapter_params(c, spec, StageRange{1, 2, false, false});
  ASSERT_EQ(s1.size(), 4u);
  EXPECT_EQ(s1[0].name, "layers.1.attn.k.lora_A");
  EXPECT_EQ(lora_base_weight(tiny_config(Arch::gpt2), "head", 0), "embed.tokens");
}

TEST(LoraModel, TensorParallelSplitFollowsTheBase) {
  EXPECT_EQ(tp_split_of("layers.0.attn.q.lora_A"), TpSplit::lora_shared);
  EXPECT_EQ(tp_split_of("layers.0.attn.q.lora_B"), TpSplit::out_rows);
  EXPECT_EQ(tp_split_of("layers.0.attn.k.lora_B"), TpSplit::kv_rows);
  EXPECT_EQ(tp_split_of("layers.0.mlp.gate.lora_B"), TpSplit::out_rows);
  EXPECT_EQ(tp_split_of("layers.2.attn.out.lora_A"), TpSplit::in_cols);
  EXPECT_EQ(tp_split_of("layers.2.attn.out.lora_B"), TpSplit::lora_shared);
  EXPECT_EQ(tp_split_of("layers.2.mlp.down.lora_A"), TpSplit::in_cols);
  EXPECT_EQ(tp_split_of("head.lora_A"), TpSplit::lora_shared);
  EXPECT_EQ(tp_split_of("head.lora_B"), TpSplit::vocab_rows);
  // Sharded over 2 ranks: B of q by rows, A of down by columns; the shared factors replicas
  // on rank 1.
  const ModelConfig c = tiny_config(Arch::llama);
  const LoraSpec spec{4, 8.0, false, {"q", "down"}};
  const std::vector<ParamInfo> r1 =
      shard_params_tp(c, adapter_params(c, spec, StageRange::full(c)), 2, 1);
  EXPECT_EQ(r1[0].local_shape, (Shape{4, 16}));  // q.lora_A whole
  EXPECT_TRUE(r1[0].replica);
  EXPECT_EQ(r1[1].local_shape, (Shape{8, 4}));  // q.lora_B: rows 8..15 of 16
  EXPECT_EQ(r1[1].local_start[0], 8);
  EXPECT_FALSE(r1[1].replica);
  EXPECT_EQ(r1[2].local_shape, (Shape{4, 16}));  // down.lora_A: columns 16..31 of 32
  EXPECT_EQ(r1[2].local_start[1], 16);
  EXPECT_EQ(r1[3].local_shape, (Shape{16, 4}));  // down.lora_B whole
  EXPECT_TRUE(r1[3].replica);
}

TEST(LoraModel, StartsAsTheBaseAndDisabledAdaptersGiveTheBase) {
  for (Arch arch : {Arch::gpt2, Arch::llama}) {
    SCOPED_TRACE(arch_name(arch));
    LoraModelFixture fx(arch, all_targets(arch));
    // A: Kaiming-uniform element by element (a constant A would make h ∝ Σ x).
    const std::vector<double> a0 = to_host(*fx.be, fx.adapters->master("layers.0.attn.q.lora_A"));
    EXPECT_NE(*std::min_element(a0.begin(), a0.end()), *std::max_element(a0.begin(), a0.end()));
    const Transformer plain(fx.cfg, StageRange::full(fx.cfg), *fx.base);
    const std::vector<double> want = fx.logits(plain);
    const std::unique_ptr<Transformer> m = fx.lora_model();
    EXPECT_EQ(max_abs_diff(fx.logits(*m), want), 0.0) << "B = 0: the branches add exact zeros";
    randomize_params(*fx.be, *fx.adapters, 4, 0.3);
    EXPECT_GT(max_abs_diff(fx.logits(*m), want), 1e-3) << "trained adapters change the model";
    m->set_adapters_enabled(false);
    EXPECT_EQ(max_abs_diff(fx.logits(*m), want), 0.0) << "disabled: the base model, bitwise";
    m->set_adapters_enabled(true);
    EXPECT_GT(max_abs_diff(fx.logits(*m), want), 1e-3);
  }
}

TEST(LoraModel, MergedWeightsGiveTheSameModel) {
  for (Arch arch : {Arch::gpt2, Arch::llama}) {
    SCOPED_TRACE(arch_name(arch));
    LoraModelFixture fx(arch, all_targets(arch));
    randomize_params(*fx.be, *fx.adapters, 4, 0.3);
    const ModelConfig mc = merged_config(fx.cfg, fx.spec);
    EXPECT_FALSE(mc.tied_embeddings) << "an adapted head unties the embeddings";
    ParamStore merged(*fx.be, transformer_params(mc, StageRange::full(mc)), DType::f64);
    merge_adapters(*fx.be, fx.cfg, fx.spec, *fx.base, *fx.adapters, merged);
    // One merged element by hand: W + s·B A.
    const std::vector<double> W = to_host(*fx.be, fx.base->master("layers.1.attn.v.weight"));
    const std::vector<double> A = to_host(*fx.be, fx.adapters->master("layers.1.attn.v.lora_A"));
    const std::vector<double> Bm = to_host(*fx.be, fx.adapters->master("layers.1.attn.v.lora_B"));
    const std::vector<double> M = to_host(*fx.be, merged.master("layers.1.attn.v.weight"));
    const int64_t I = fx.cfg.d_model, r = fx.spec.rank, o = 2, i = 5;
    double ba = 0;
    for (int64_t k = 0; k < r; ++k) ba += Bm[size_t(o * r + k)] * A[size_t(k * I + i)];
    EXPECT_NEAR(M[size_t(o * I + i)], W[size_t(o * I + i)] + fx.spec.scale() * ba, 1e-14);
    const Transformer plain(mc, StageRange::full(mc), merged);
    const std::unique_ptr<Transformer> m = fx.lora_model();
    EXPECT_LE(max_abs_diff(fx.logits(*m), fx.logits(plain)), 1e-12);
  }
}

TEST(LoraModel, TheFrozenBaseKeepsNoGradientsAndDoesNotMove) {
  LoraModelFixture fx(Arch::llama, {"q", "v", "down"});
  const ParamStore& b = *fx.base;
  int64_t vectors = 0;
  for (const ParamInfo& p : b.params())
    if (p.global_shape.ndim == 1) vectors += p.numel();
  EXPECT_EQ(b.grads().numel(), vectors) << "the sink holds the vector parameters only";
  EXPECT_TRUE(b.grad("layers.0.attn.q.weight").empty());
  EXPECT_TRUE(b.grad("embed.tokens").empty());
  EXPECT_EQ(b.grad("final_norm.weight").numel(), fx.cfg.d_model);
  randomize_params(*fx.be, *fx.adapters, 4, 0.3);
  const std::vector<double> before = to_host(*fx.be, b.master());
  const std::unique_ptr<Transformer> m = fx.lora_model();
  Activations a = m->alloc_activations(*fx.be, kB, kT);
  Workspace ws = m->alloc_workspace(*fx.be, kB, kT);
  fx.adapters->zero_grads(*fx.be);
  m->forward(*fx.be, a, fx.ids);
  m->backward_loss(*fx.be, a, ws, fx.ids, fx.targets, 0.1);
  EXPECT_EQ(to_host(*fx.be, b.master()), before);
  double g = 0;
  for (double x : to_host(*fx.be, fx.adapters->grad("layers.0.attn.q.lora_A"))) g += x * x;
  EXPECT_GT(g, 0.0);
  // Disabled adapters get no gradient.
  fx.adapters->zero_grads(*fx.be);
  m->set_adapters_enabled(false);
  m->forward(*fx.be, a, fx.ids);
  m->backward_loss(*fx.be, a, ws, fx.ids, fx.targets, 0.1);
  for (double x : to_host(*fx.be, fx.adapters->grads())) ASSERT_EQ(x, 0.0);
}

// QLoRA: a base whose block weights are NF4 (external parameters, dequantised on use) gives
// the model over the dense dequantised weights exactly, adapters included; the NF4 weights
// take 0.5 byte per weight plus 1/64 (block scales) plus 4/16384 (group scales), rounded up
// per tensor.
TEST(LoraModel, Nf4BaseEqualsItsDequantisedWeights) {
  LoraModelFixture fx(Arch::llama, all_targets(Arch::llama));
  randomize_params(*fx.be, *fx.adapters, 4, 0.3);
  Backend& be = *fx.be;
  const StageRange full = StageRange::full(fx.cfg);
  std::vector<ParamInfo> ps = transformer_params(fx.cfg, full);
  int64_t quantized = 0, largest = 0;
  for (ParamInfo& p : ps)
    if (nf4_base_weight(p.name)) {
      p.external = true;
      quantized += p.numel();
      largest = std::max(largest, p.numel());
    }
  Nf4Weights q;
  q.reserve_scratch(be, 2 * largest, DType::f64);  // gate|up, the largest packed map
  ParamStore nf4_base(be, ps, DType::f64, StoreRole::frozen);
  nf4_base.attach_nf4(&q);
  ParamStore dense(be, transformer_params(fx.cfg, full), DType::f64, StoreRole::frozen);
  for (const ParamInfo& p : ps) {
    const std::vector<double> v = to_host(be, fx.base->master(p.name));
    if (!p.external) {
      from_host(be, nf4_base.master(p.name), v);
      from_host(be, dense.master(p.name), v);
      continue;
    }
    const std::vector<float> f(v.begin(), v.end());
    q.add(be, p.name, p.local_shape, f);
    std::vector<float> back(f.size());
    nf4_dequantize(nf4_quantize(f), back);
    from_host(be, dense.master(p.name), std::vector<double>(back.begin(), back.end()));
  }
  const AdapterStore ad{fx.adapters.get(), fx.spec.scale()};
  const Transformer a(fx.cfg, full, nf4_base, ad), b(fx.cfg, full, dense, ad);
  EXPECT_EQ(max_abs_diff(fx.logits(a), fx.logits(b)), 0.0);
  // Gradients of the adapters alike (backward dequantises again).
  auto grads = [&](const Transformer& m) {
    Activations acts = m.alloc_activations(be, kB, kT);
    Workspace ws = m.alloc_workspace(be, kB, kT);
    fx.adapters->zero_grads(be);
    m.forward(be, acts, fx.ids);
    m.backward_loss(be, acts, ws, fx.ids, fx.targets, 0.1);
    return to_host(be, fx.adapters->grads());
  };
  EXPECT_EQ(grads(a), grads(b));
  const double per = double(q.bytes()) / double(quantized);
  EXPECT_GT(per, 0.5 + 1.0 / 64);
  EXPECT_LT(per, 0.5 + 1.0 / 64 + 0.05);  // + the group scales of tiny tensors
}
