// Finite-difference gradient checks, in f64 on the host backend, of every layer (embedding,
// both norms, packed linear, attention with MHA and GQA+RoPE, both MLPs, both blocks) and of
// the whole model of both architectures (loss with ignored targets). For each layer the
// objective is L = Σ r ⊙ y for a fixed random r; for the model it is the mean loss. Checked:
// a random subset of elements of every parameter (and of the layer input), plus the
// directional derivative along a random direction over all of them at once.
// Central differences with h = 1e-5 in f64 are accurate to ~1e-10, so a relative error
// above 1e-5 (denominator floored at 1e-4) is a real mistake in a backward.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <memory>

#include "model/attention.h"
#include "model/block.h"
#include "model/embedding.h"
#include "model/linear.h"
#include "model/lora.h"
#include "model/mlp.h"
#include "model/norm.h"
#include "model/param_layout.h"
#include "core/documents.h"
#include "data/sft_targets.h"
#include "model/transformer.h"
#include "test_model_util.h"
#include "train/dpo_objective.h"

using namespace llmpi;
using namespace llmpi::testing;

namespace {

constexpr int64_t kB = 2, kT = 5, kN = kB * kT;
constexpr double kStep = 1e-5, kTol = 1e-5, kFloor = 1e-4;

struct Var {
  std::string name;
  Tensor value, grad;
};

double rel_err(double a, double n) {
  return std::abs(a - n) / std::max({std::abs(a), std::abs(n), kFloor});
}

// f: runs forward, returns the objective. fill_grads: recomputes every Var::grad at the
// current values (zeroing accumulated parameter gradients first).
void check_gradients(Backend& be, const std::function<double()>& f,
                     const std::function<void()>& fill_grads, const std::vector<Var>& vars,
                     int samples_per_var = 4) {
  fill_grads();
  std::vector<std::vector<double>> g;
  for (const Var& v : vars) g.push_back(to_host(be, v.grad));

  auto f_at = [&](const Tensor& t, std::vector<double> x) {
    from_host(be, t, std::move(x));
    return f();
  };
  // Elementwise, on a deterministic random subset.
  int64_t checked = 0;
  for (size_t k = 0; k < vars.size(); ++k) {
    const Var& v = vars[k];
    const int64_t n = v.value.numel();
    const uint64_t key = rng_key(7, v.name);
    for (int s = 0; s < std::min<int64_t>(samples_per_var, n); ++s) {
      const int64_t i = static_cast<int64_t>(rng_bits(key, s) % static_cast<uint64_t>(n));
      const Tensor e = v.value.slice(i, Shape{1});
      const double x0 = to_host(be, e)[0];
      const double fp = f_at(e, {x0 + kStep}), fm = f_at(e, {x0 - kStep});
      from_host(be, e, {x0});
      const double num = (fp - fm) / (2 * kStep), ana = g[k][static_cast<size_t>(i)];
      EXPECT_LE(rel_err(ana, num), kTol)
          << v.name << "[" << i << "]: analytic " << ana << ", numeric " << num;
      ++checked;
    }
  }
  EXPECT_GT(checked, 0);
  // Directional derivative over every element of every variable.
  std::vector<std::vector<double>> x0, u;
  double dot = 0, gnorm = 0;
  for (size_t k = 0; k < vars.size(); ++k) {
    x0.push_back(to_host(be, vars[k].value));
    u.push_back(normal_values(vars[k].value.numel(), 11, vars[k].name));
    for (size_t i = 0; i < u[k].size(); ++i) {
      dot += g[k][i] * u[k][i];
      gnorm += g[k][i] * g[k][i];
    }
  }
  EXPECT_GT(gnorm, 0.0) << "all gradients are zero: the check would be vacuous";
  auto shifted = [&](double h) {
    for (size_t k = 0; k < vars.size(); ++k) {
      std::vector<double> x = x0[k];
      for (size_t i = 0; i < x.size(); ++i) x[i] += h * u[k][i];
      from_host(be, vars[k].value, x);
    }
    return f();
  };
  const double num = (shifted(kStep) - shifted(-kStep)) / (2 * kStep);
  for (size_t k = 0; k < vars.size(); ++k) from_host(be, vars[k].value, x0[k]);
  EXPECT_LE(rel_err(dot, num), kTol) << "directional derivative: analytic " << dot
                                     << ", numeric " << num;
}

// A tiny model's parameters in f64 with random values; layers are bound from it.
struct Fixture {
  ModelConfig cfg;
  std::unique_ptr<Backend> be = make_host_backend();
  std::unique_ptr<ParamStore> store;

  explicit Fixture(Arch arch) : cfg(tiny_config(arch)) {
    store = std::make_unique<ParamStore>(*be, transformer_params(cfg, StageRange::full(cfg)),
                                         DType::f64);
    randomize_params(*be, *store, 3);
  }
  // The parameters whose names start with `prefix`, as gradient-check variables.
  std::vector<Var> params(const std::string& prefix) const {
    std::vector<Var> vs;
    for (const ParamInfo& p : store->params())
      if (p.name.rfind(prefix, 0) == 0) vs.push_back({p.name, store->master(p.name), store->grad(p.name)});
    EXPECT_FALSE(vs.empty()) << "no parameter starts with " << prefix;
    return vs;
  }
  Buffer random(Shape s, const std::string& stream, double std = 1.0, double mean = 0.0) {
    Buffer b = be->alloc(s, DType::f64);
    from_host(*be, b, normal_values(s.numel(), 5, stream, std, mean));
    return b;
  }
  double dot(const Tensor& a, const Tensor& b) {
    const std::vector<double> x = to_host(*be, a), y = to_host(*be, b);
    double s = 0;
    for (size_t i = 0; i < x.size(); ++i) s += x[i] * y[i];
    return s;
  }
};

// Layer y = layer(x) with input x [N, C]: checks the parameters under `prefix` and dx.
// forward(y, x) and backward(dx, dy, x) run the layer.
void check_layer(Fixture& fx, int64_t y_cols, const std::string& prefix,
                 const std::function<void(const Tensor&, const Tensor&)>& forward,
                 const std::function<void(const Tensor&, const Tensor&, const Tensor&)>& backward) {
  Backend& be = *fx.be;
  const int64_t C = fx.cfg.d_model;
  Buffer x = fx.random(Shape{kN, C}, "x", 0.8, 0.1), dx = be.alloc(Shape{kN, C}, DType::f64);
  Buffer y = be.alloc(Shape{kN, y_cols}, DType::f64);
  Buffer r = fx.random(Shape{kN, y_cols}, "r");
  auto f = [&] {
    forward(y, x);
    return fx.dot(y, r);
  };
  auto grads = [&] {
    fx.store->zero_grads(be);
    forward(y, x);
    backward(dx, r, x);
  };
  std::vector<Var> vars = fx.params(prefix);
  vars.push_back({"x", x, dx});
  check_gradients(be, f, grads, vars);
}

}  // namespace

TEST(ModelGradcheck, Embedding) {
  for (Arch arch : {Arch::gpt2, Arch::llama}) {
    Fixture fx(arch);
    Backend& be = *fx.be;
    const Embedding e = Embedding::bind(fx.cfg, *fx.store);
    const TokenBatch tb = random_batch(kB, kT, fx.cfg.vocab_size, 1);
    std::vector<int32_t> pos;
    for (int64_t n = 0; n < kN; ++n) pos.push_back(static_cast<int32_t>(n % kT));
    Buffer ids = upload_i32(be, tb.ids), p = upload_i32(be, pos);
    Buffer y = be.alloc(Shape{kN, fx.cfg.d_model}, DType::f64);
    Buffer r = fx.random(y.tensor().shape, "r");
    auto f = [&] {
      e.forward(be, y, ids, p);
      return fx.dot(y, r);
    };
    auto grads = [&] {
      fx.store->zero_grads(be);
      e.backward(be, r, ids, p);
    };
    SCOPED_TRACE(arch_name(arch));
    // Sample enough elements to hit used rows: unused rows must have exactly zero gradient.
    check_gradients(be, f, grads, fx.params("embed."), 40);
  }
}

TEST(ModelGradcheck, LayerNormAndRmsNorm) {
  for (Arch arch : {Arch::gpt2, Arch::llama}) {
    Fixture fx(arch);
    const Norm n = Norm::bind(fx.cfg, *fx.store, "layers.0.attn_norm");
    EXPECT_EQ(n.kind, arch == Arch::gpt2 ? NormKind::layernorm : NormKind::rmsnorm);
    NormActs a = n.alloc_acts(*fx.be, kN, DType::f64);
    SCOPED_TRACE(arch_name(arch));
    check_layer(
        fx, fx.cfg.d_model, "layers.0.attn_norm.",
        [&](const Tensor& y, const Tensor& x) { n.forward(*fx.be, a, y, x); },
        [&](const Tensor& dx, const Tensor& dy, const Tensor& x) { n.backward(*fx.be, a, dx, dy, x); });
  }
}

TEST(ModelGradcheck, PackedLinear) {
  {  // gpt2: q | k | v weights and biases as one packed linear
    Fixture fx(Arch::gpt2);
    const std::string p = "layers.1.attn.";
    const Linear l = Linear::bind(*fx.store, {p + "q.weight", p + "k.weight", p + "v.weight"},
                                  {p + "q.bias", p + "k.bias", p + "v.bias"}, fx.cfg.qkv_dim(),
                                  fx.cfg.d_model);
    check_layer(
        fx, fx.cfg.qkv_dim(), "layers.1.attn.",
        [&](const Tensor& y, const Tensor& x) { l.forward(*fx.be, y, x); },
        [&](const Tensor& dx, const Tensor& dy, const Tensor& x) { l.backward(*fx.be, dx, dy, x); });
  }
  {  // llama: gate | up, no bias
    Fixture fx(Arch::llama);
    const std::string p = "layers.0.mlp.";
    const Linear l = Linear::bind(*fx.store, {p + "gate.weight", p + "up.weight"}, {},
                                  2 * fx.cfg.d_ff, fx.cfg.d_model);
    EXPECT_TRUE(l.b.empty());
    check_layer(
        fx, 2 * fx.cfg.d_ff, "layers.0.mlp.gate.",
        [&](const Tensor& y, const Tensor& x) { l.forward(*fx.be, y, x); },
        [&](const Tensor& dx, const Tensor& dy, const Tensor& x) { l.backward(*fx.be, dx, dy, x); });
  }
}

TEST(ModelGradcheck, AttentionMhaAndGqaRope) {
  for (Arch arch : {Arch::gpt2, Arch::llama}) {
    Fixture fx(arch);
    const Attention at = Attention::bind(fx.cfg, *fx.store, "layers.0.attn");
    EXPECT_EQ(at.rope, arch == Arch::llama);
    EXPECT_EQ(at.n_kv_head, arch == Arch::llama ? 2 : 4);
    AttentionActs a = at.alloc_acts(*fx.be, kB, kT, DType::f64);
    AttentionScratch s = at.alloc_scratch(*fx.be, kB, kT, DType::f64);
    SCOPED_TRACE(arch_name(arch));
    check_layer(
        fx, fx.cfg.d_model, "layers.0.attn.",
        [&](const Tensor& y, const Tensor& x) { at.forward(*fx.be, a, y, x); },
        [&](const Tensor& dx, const Tensor& dy, const Tensor& x) {
          at.backward(*fx.be, a, s, dx, dy, x);
        });
  }
}

TEST(ModelGradcheck, MlpGeluAndSwiglu) {
  for (Arch arch : {Arch::gpt2, Arch::llama}) {
    Fixture fx(arch);
    const Mlp m = Mlp::bind(fx.cfg, *fx.store, "layers.1.mlp");
    MlpActs a = m.alloc_acts(*fx.be, kN, DType::f64);
    MlpScratch s = m.alloc_scratch(*fx.be, kN, DType::f64);
    SCOPED_TRACE(arch_name(arch));
    check_layer(
        fx, fx.cfg.d_model, "layers.1.mlp.",
        [&](const Tensor& y, const Tensor& x) { m.forward(*fx.be, a, y, x); },
        [&](const Tensor& dx, const Tensor& dy, const Tensor& x) {
          m.backward(*fx.be, a, s, dx, dy, x);
        });
  }
}

TEST(ModelGradcheck, Block) {
  for (Arch arch : {Arch::gpt2, Arch::llama}) {
    Fixture fx(arch);
    Backend& be = *fx.be;
    const Block b = Block::bind(fx.cfg, *fx.store, 1);
    BlockActs a = b.alloc_acts(be, kB, kT, DType::f64);
    BlockScratch s = b.alloc_scratch(be, kB, kT, DType::f64);
    SCOPED_TRACE(arch_name(arch));
    check_layer(
        fx, fx.cfg.d_model, "layers.1.",
        [&](const Tensor& y, const Tensor& x) {
          b.forward(be, a, x);
          be.copy(y, a.out);
        },
        [&](const Tensor& dx, const Tensor& dy, const Tensor& x) {
          be.copy(dx, dy);  // block backward runs in place on the residual gradient
          b.backward(be, a, s, dx, x);
        });
  }
}

TEST(ModelGradcheck, WholeModelMeanLoss) {
  for (Arch arch : {Arch::gpt2, Arch::llama}) {
    Fixture fx(arch);
    Backend& be = *fx.be;
    SCOPED_TRACE(arch_name(arch));
    const Transformer model(fx.cfg, StageRange::full(fx.cfg), *fx.store);
    Activations a = model.alloc_activations(be, kB, kT);
    Workspace ws = model.alloc_workspace(be, kB, kT);
    const TokenBatch tb = random_batch(kB, kT, fx.cfg.vocab_size, 2, {1, 4, 8});
    Buffer ids = upload_i32(be, tb.ids), targets = upload_i32(be, tb.targets);
    auto f = [&] {
      model.forward(be, a, ids);
      const LossSum l = model.loss(be, a, targets);
      EXPECT_EQ(l.count, kN - 3);
      return l.sum / static_cast<double>(l.count);
    };
    auto grads = [&] {
      fx.store->zero_grads(be);
      model.forward(be, a, ids);
      const LossSum l = model.loss(be, a, targets);
      model.backward_loss(be, a, ws, ids, targets, 1.0 / static_cast<double>(l.count));
    };
    check_gradients(be, f, grads, fx.params(""), 3);
  }
}

// The SFT loss: targets from a loss mask (data/sft_targets.h), averaged per counted token.
// Gradients must come only from the unmasked tokens: the analytic gradient (backward from the
// masked targets, scale 1/K) is checked against finite differences of an objective computed
// independently — every position's cross-entropy with its true next token (nothing ignored),
// summed over the positions the test itself selects (mask of the next token, same document)
// and divided by their number K. Row 1 packs two documents, so a boundary is crossed too.
TEST(ModelGradcheck, MaskedLossGradientsComeOnlyFromUnmaskedTokens) {
  // T + 1 tokens per row; mask[i] = 1: token i is an answer token to learn.
  const std::vector<std::vector<uint8_t>> mask = {{0, 0, 1, 1, 0, 1}, {0, 1, 0, 1, 0, 1}};
  const std::vector<int64_t> docs1 = {3, 3};  // row 1: tokens [0, 3) and [3, 6)
  for (Arch arch : {Arch::gpt2, Arch::llama}) {
    Fixture fx(arch);
    Backend& be = *fx.be;
    SCOPED_TRACE(arch_name(arch));
    const Transformer model(fx.cfg, StageRange::full(fx.cfg), *fx.store);
    Activations a = model.alloc_activations(be, kB, kT);
    Workspace ws = model.alloc_workspace(be, kB, kT);

    const TokenBatch tb = random_batch(kB, kT + 1, fx.cfg.vocab_size, 4);
    std::vector<int32_t> ids, sft, full, doc_start;
    std::vector<bool> counted;
    for (int64_t b = 0; b < kB; ++b) {
      const std::vector<int32_t> seq(tb.ids.begin() + b * (kT + 1),
                                     tb.ids.begin() + (b + 1) * (kT + 1));
      const std::vector<int32_t> ds =
          b == 1 ? doc_start_from_lengths(docs1, kT + 1) : std::vector<int32_t>(kT + 1, 0);
      std::vector<int32_t> tg(static_cast<size_t>(kT + 1));
      sft_targets(seq, mask[static_cast<size_t>(b)], ds, tg);
      for (int64_t t = 0; t < kT; ++t) {
        ids.push_back(seq[t]);
        sft.push_back(tg[t]);
        full.push_back(seq[t + 1]);
        doc_start.push_back(ds[t]);
        counted.push_back(mask[static_cast<size_t>(b)][t + 1] && ds[t + 1] != t + 1);
      }
    }
    int64_t K = 0;
    for (size_t n = 0; n < counted.size(); ++n) {
      K += counted[n];
      EXPECT_EQ(sft[n] >= 0, counted[n]) << "position " << n;
      if (counted[n]) EXPECT_EQ(sft[n], full[n]);
    }
    ASSERT_EQ(K, 5);  // row 0: t = 1, 2, 4; row 1: t = 0, 4 (t = 1, 3 masked, t = 2 crosses)
    model.set_documents(be, a, doc_start);
    Buffer id = upload_i32(be, ids), tg_sft = upload_i32(be, sft), tg_full = upload_i32(be, full);

    auto objective = [&] {
      model.forward(be, a, id);
      const std::vector<double> losses = model.token_losses(be, a, tg_full);
      double j = 0;
      for (size_t n = 0; n < losses.size(); ++n)
        if (counted[n]) j += losses[n];
      return j / static_cast<double>(K);
    };
    auto grads = [&] {
      fx.store->zero_grads(be);
      model.forward(be, a, id);
      EXPECT_EQ(model.loss(be, a, tg_sft).count, K);
      model.backward_loss(be, a, ws, id, tg_sft, 1.0 / static_cast<double>(K));
    };
    check_gradients(be, objective, grads, fx.params(""), 3);

    // The check can fail: counting every position gives another gradient.
    grads();
    const std::vector<double> masked = to_host(be, fx.store->grads());
    fx.store->zero_grads(be);
    model.forward(be, a, id);
    model.backward_loss(be, a, ws, id, tg_full, 1.0 / static_cast<double>(K));
    const std::vector<double> everything = to_host(be, fx.store->grads());
    double diff = 0, norm = 0;
    for (size_t i = 0; i < masked.size(); ++i) {
      diff += (masked[i] - everything[i]) * (masked[i] - everything[i]);
      norm += masked[i] * masked[i];
    }
    EXPECT_GT(std::sqrt(diff / norm), 0.1);
  }
}

// Per-token averaging over the global step: micro-batches holding different numbers of
// counted targets, each run backward with scale 1/(counted targets of the step), accumulate
// exactly the gradient of the one batch holding them all (the engine's rule, parallel/
// engine.h) — not the mean of per-micro-batch means.
TEST(ModelGradcheck, MaskedLossIsAMeanPerTokenOverTheStep) {
  Fixture fx(Arch::llama);
  Backend& be = *fx.be;
  const Transformer model(fx.cfg, StageRange::full(fx.cfg), *fx.store);
  // Row 0 counts 1 target, row 1 counts 5.
  const TokenBatch tb = random_batch(kB, kT, fx.cfg.vocab_size, 6, {0, 1, 2, 3});
  const int64_t K = kN - 4;
  auto grads_of = [&](int64_t B, int64_t first_row, double scale) {
    Activations a = model.alloc_activations(be, B, kT);
    Workspace ws = model.alloc_workspace(be, B, kT);
    const auto from = tb.ids.begin() + first_row * kT, tfrom = tb.targets.begin() + first_row * kT;
    Buffer id = upload_i32(be, std::vector<int32_t>(from, from + B * kT));
    Buffer tg = upload_i32(be, std::vector<int32_t>(tfrom, tfrom + B * kT));
    model.forward(be, a, id);
    model.backward_loss(be, a, ws, id, tg, scale);
  };
  fx.store->zero_grads(be);
  grads_of(kB, 0, 1.0 / double(K));
  const std::vector<double> whole = to_host(be, fx.store->grads());
  fx.store->zero_grads(be);
  grads_of(1, 0, 1.0 / double(K));
  grads_of(1, 1, 1.0 / double(K));
  const std::vector<double> split = to_host(be, fx.store->grads());
  fx.store->zero_grads(be);
  grads_of(1, 0, 0.5 / 1.0);  // the mean of the two micro-batch means, for contrast
  grads_of(1, 1, 0.5 / 5.0);
  const std::vector<double> per_batch = to_host(be, fx.store->grads());
  double d_split = 0, d_per_batch = 0, norm = 0;
  for (size_t i = 0; i < whole.size(); ++i) {
    d_split = std::max(d_split, std::abs(split[i] - whole[i]));
    d_per_batch = std::max(d_per_batch, std::abs(per_batch[i] - whole[i]));
    norm = std::max(norm, std::abs(whole[i]));
  }
  EXPECT_LE(d_split / norm, 1e-12);
  EXPECT_GT(d_per_batch / norm, 1e-2);
}

// A LoRA branch beside a frozen linear map: y = x Wᵀ + s (x Aᵀ) Bᵀ, objective Σ r ⊙ y.
// Gradients w.r.t. A, B and x (the base W is frozen: bound without a gradient) against finite
// differences; B is made non-zero first (its init is zero, which would hide dA). The branch
// output equals x (s B A)ᵀ, the merged weight's contribution.
TEST(ModelGradcheck, LoraBranchOnAFrozenLinear) {
  auto be = make_host_backend();
  const int64_t I = 6, O = 5, r = 3;
  const double s = lora_scale(4.0, r, /*rslora=*/true);
  EXPECT_DOUBLE_EQ(s, 4.0 / std::sqrt(3.0));
  EXPECT_DOUBLE_EQ(lora_scale(16.0, 8, false), 2.0);
  std::vector<ParamInfo> ps = lora_params("blk.q", I, O, r);
  ps.push_back(full_param("blk.q.weight", Shape{O, I}, InitKind::normal, 0.5, true));
  ParamStore store(*be, ps, DType::f64);
  store.init(*be, 17);
  const std::vector<double> a0 = to_host(*be, store.master("blk.q.lora_A"));
  const double bound = 1.0 / std::sqrt(double(I));
  double amax = 0;
  for (double v : a0) amax = std::max(amax, std::abs(v));
  EXPECT_LE(amax, bound);
  EXPECT_GT(amax, 0.5 * bound);
  for (double v : to_host(*be, store.master("blk.q.lora_B"))) ASSERT_EQ(v, 0.0);

  const LoraBranch lora = LoraBranch::bind(store, "blk.q", s);
  Linear base;
  base.in_features = I;
  base.out_features = O;
  base.w = store.weight("blk.q.weight");  // frozen: no dw bound
  Buffer x = be->alloc(Shape{kN, I}, DType::f64), dx = be->alloc(Shape{kN, I}, DType::f64);
  Buffer y = be->alloc(Shape{kN, O}, DType::f64), z = be->alloc(Shape{kN, O}, DType::f64);
  Buffer rw = be->alloc(Shape{kN, O}, DType::f64);
  from_host(*be, x, normal_values(kN * I, 5, "x"));
  from_host(*be, rw, normal_values(kN * O, 5, "r"));
  LoraActs acts = lora.alloc_acts(*be, kN, DType::f64);
  LoraScratch scratch = lora.alloc_scratch(*be, kN, DType::f64);

  // Zero B: the branch adds exactly nothing.
  lora.forward(*be, acts, z, x);
  for (double v : to_host(*be, z)) ASSERT_EQ(v, 0.0);
  from_host(*be, store.master("blk.q.lora_B"), normal_values(O * r, 5, "B"));

  auto objective = [&] {
    base.forward(*be, y, x);
    lora.forward(*be, acts, z, x);
    be->add(y, y, z);
    const std::vector<double> yv = to_host(*be, y), rv = to_host(*be, rw);
    double l = 0;
    for (size_t i = 0; i < yv.size(); ++i) l += yv[i] * rv[i];
    return l;
  };
  auto grads = [&] {
    store.zero_grads(*be);
    objective();
    base.backward(*be, dx, rw, x);  // dx = dy W; no dW
    lora.backward(*be, acts, scratch, dx, rw, x);
  };
  check_gradients(*be, objective, grads,
                  {{"lora_A", store.master("blk.q.lora_A"), store.grad("blk.q.lora_A")},
                   {"lora_B", store.master("blk.q.lora_B"), store.grad("blk.q.lora_B")},
                   {"x", x, dx}});
  for (double v : to_host(*be, store.grad("blk.q.weight"))) ASSERT_EQ(v, 0.0) << "frozen";

  // z = x (s B A)ᵀ.
  lora.forward(*be, acts, z, x);
  const std::vector<double> A = to_host(*be, store.master("blk.q.lora_A")),
                            B = to_host(*be, store.master("blk.q.lora_B")),
                            xv = to_host(*be, x), zv = to_host(*be, z);
  for (int64_t n = 0; n < kN; ++n)
    for (int64_t o = 0; o < O; ++o) {
      double want = 0;
      for (int64_t i = 0; i < I; ++i) {
        double ba = 0;
        for (int64_t k = 0; k < r; ++k) ba += B[o * r + k] * A[k * I + i];
        want += xv[n * I + i] * s * ba;
      }
      ASSERT_NEAR(zv[n * O + o], want, 1e-12);
    }
}

// The DPO objective end to end on a tiny model (train/dpo_objective.h): two rows, each holding
// one preference pair (prompt + chosen answer, then prompt + rejected answer, documents
// blocked from each other). Objective: the mean over the pairs of the DPO loss of the policy
// sums (−Σ cross-entropy over each answer's masked targets, pair_logprobs) against fixed
// reference sums. Its analytic gradient — the per-token scales of pair_token_scales through
// backward_loss — is checked against f64 central differences, for the sigmoid loss with label
// smoothing and for IPO.
TEST(ModelGradcheck, DpoObjectiveGradientsByFiniteDifferences) {
  constexpr int64_t B = 2, T = 8;
  // Row 0: chosen [0, 4), rejected [4, 8); row 1: chosen [0, 3), rejected [3, 7), padding.
  const std::vector<std::vector<int64_t>> lengths = {{4, 4}, {3, 4, 1}};
  // Loss masks (1: answer token), per row; the first two tokens of each document are prompt.
  const std::vector<std::vector<uint8_t>> masks = {{0, 0, 1, 1, 0, 0, 1, 1},
                                                   {0, 0, 1, 0, 0, 1, 1, 0}};
  const std::vector<RowDocument> docs = {
      {0, 0, 4, 0, true}, {0, 4, 4, 0, false}, {1, 0, 3, 1, true}, {1, 3, 4, 1, false}};
  const std::vector<double> ref = {-7.5, -8.25, -4.0, -6.5};  // (ρ_c, ρ_r) of pairs 0 and 1
  for (const DpoOptions opt : {DpoOptions{0.5, DpoLossType::sigmoid, 0.1},
                               DpoOptions{0.5, DpoLossType::ipo, 0.0}}) {
    SCOPED_TRACE(dpo_loss_name(opt.type));
    Fixture fx(Arch::llama);
    Backend& be = *fx.be;
    const Transformer model(fx.cfg, StageRange::full(fx.cfg), *fx.store);
    Activations a = model.alloc_activations(be, B, T);
    Workspace ws = model.alloc_workspace(be, B, T);
    const TokenBatch tb = random_batch(B, T, fx.cfg.vocab_size, 9);
    std::vector<int32_t> ids(tb.ids.begin(), tb.ids.begin() + B * T), targets(size_t(B * T)),
        doc_start;
    for (int64_t b = 0; b < B; ++b) {
      const std::vector<int32_t> ds = doc_start_from_lengths(lengths[size_t(b)], T);
      doc_start.insert(doc_start.end(), ds.begin(), ds.end());
      sft_targets(std::span<const int32_t>(ids).subspan(size_t(b * T), size_t(T)), masks[size_t(b)],
                  ds, std::span<int32_t>(targets).subspan(size_t(b * T), size_t(T)));
    }
    model.set_documents(be, a, doc_start);
    Buffer id = upload_i32(be, ids), tg = upload_i32(be, targets);

    auto pairs_now = [&] {
      model.forward(be, a, id);
      std::vector<double> losses;
      model.loss(be, a, tg, &losses);
      return std::make_pair(pair_logprobs(losses, targets, docs, T), losses);
    };
    auto results_of = [&](const std::vector<PairLogprobs>& ps) {
      std::vector<DpoPairResult> rs;
      for (const PairLogprobs& p : ps)
        rs.push_back(dpo_pair(opt, {p.chosen, p.rejected, ref[size_t(2 * p.unit)],
                                    ref[size_t(2 * p.unit + 1)]}));
      return rs;
    };
    auto objective = [&] {
      double l = 0;
      for (const DpoPairResult& r : results_of(pairs_now().first)) l += r.loss;
      return l / 2.0;
    };
    auto grads = [&] {
      fx.store->zero_grads(be);
      const auto [ps, losses] = pairs_now();
      ASSERT_EQ(ps.size(), 2u);
      // pair_logprobs by hand: −Σ of the losses at the counted targets of each answer.
      double c0 = 0;
      for (int64_t t = 0; t < 4; ++t) if (targets[size_t(t)] >= 0) c0 -= losses[size_t(t)];
      EXPECT_DOUBLE_EQ(ps[0].chosen, c0);
      const std::vector<DpoPairResult> rs = results_of(ps);
      std::vector<double> scales(size_t(B * T));
      pair_token_scales(ps, rs, docs, targets, T, 0.5, scales);
      model.backward_loss(be, a, ws, id, tg, LossScale{0.0, scales});
    };
    check_gradients(be, objective, grads, fx.params(""), 3);
  }
}

// The pair rule is checked where pairs are read: a chosen answer without its rejected one in
// the same row is an internal error, never a silently wrong loss.
TEST(ModelGradcheck, DpoPairSplitAcrossRowsIsRefused) {
  const std::vector<double> losses(16, 1.0);
  std::vector<int32_t> targets(16, 1);
  const std::vector<RowDocument> split = {{0, 0, 8, 3, true}, {1, 0, 8, 3, false}};
  EXPECT_THROW(pair_logprobs(losses, targets, split, 8), InternalError);
  const std::vector<RowDocument> alone = {{0, 0, 8, 3, true}};
  EXPECT_THROW(pair_logprobs(losses, targets, alone, 8), InternalError);
  // Whole pairs: sums and scales by hand (targets −1 are not in an answer's sum).
  targets[2] = -1;
  const std::vector<RowDocument> whole = {{0, 0, 3, 5, true}, {0, 3, 5, 5, false}};
  const std::vector<PairLogprobs> ps = pair_logprobs(losses, targets, whole, 8);
  ASSERT_EQ(ps.size(), 1u);
  EXPECT_EQ(ps[0].unit, 5);
  EXPECT_DOUBLE_EQ(ps[0].chosen, -2.0);
  EXPECT_DOUBLE_EQ(ps[0].rejected, -5.0);
  DpoPairResult r;
  r.dpolicy_chosen = -0.25;
  r.dpolicy_rejected = 0.25;
  std::vector<double> scales(16, 9.0);
  pair_token_scales(ps, std::vector<DpoPairResult>{r}, whole, targets, 8, 0.5, scales);
  const std::vector<double> want = {0.125, 0.125, 0, -0.125, -0.125, -0.125, -0.125, -0.125,
                                    0, 0, 0, 0, 0, 0, 0, 0};
  for (size_t i = 0; i < want.size(); ++i) EXPECT_DOUBLE_EQ(scales[i], want[i]) << i;
}
