// The whole model on the CUDA backend (bf16 compute, f32 master weights, gradients and
// AdamW state) against the host backend (f32 throughout), for a small GPT-2 and a small
// Llama with grouped-query attention:
//   - mixed-precision store: compute weights are bf16 on CUDA, the master itself on host;
//     after a fused AdamW update the bf16 copy equals bf16(master) exactly;
//   - one forward/backward from identical weights (the host master is set to the CUDA bf16
//     weights, so only the compute arithmetic differs): logits, loss and every parameter
//     gradient, error = ‖cuda − host‖ / ‖host‖;
//   - 50 AdamW steps on the same synthetic batches: the loss curves agree within
//     bf16 tolerance at every step.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <cstdio>
#include <memory>
#include <numeric>
#include <vector>

#include "backend/backend.h"
#include "backend/cuda/cuda_backend.h"
#include "core/rng.h"
#include "model/param_layout.h"
#include "model/transformer.h"
#include "optim/adamw.h"
#include "model_fixtures.h"  // tests/cuda

namespace llmpi {
namespace {

using cuda_test::read;
using cuda_test::small_config;
using cuda_test::synthetic_batch;

constexpr double kBf16Tol = 1e-2;

void write(Backend& be, const Tensor& t, std::vector<double> v) {
  be.copy(t, host_tensor(v.data(), t.shape, DType::f64));
  be.synchronize();
}

// v rounded to the nearest bf16 (ties to even), so device and host inputs are identical.
double bf16_value(double v) {
  const float f = static_cast<float>(v);
  uint32_t b = 0;
  std::memcpy(&b, &f, 4);
  b = (b + 0x7FFFu + ((b >> 16) & 1u)) & 0xFFFF0000u;
  float r = 0;
  std::memcpy(&r, &b, 4);
  return r;
}

double rel_error(const std::vector<double>& got, const std::vector<double>& ref) {
  double num = 0, den = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    num += (got[i] - ref[i]) * (got[i] - ref[i]);
    den += ref[i] * ref[i];
  }
  return den > 0 ? std::sqrt(num / den) : std::sqrt(num);
}

// One backend's model: store, layers, activations, the optimizer.
struct ModelRun {
  Backend& be;
  ParamStore store;
  Transformer model;
  Activations acts;
  Workspace ws;
  Buffer ids, targets;
  AdamW opt;  // default options: betas 0.9 / 0.95, eps 1e-8, weight decay 0.1 on matrices

  ModelRun(Backend& b, const ModelConfig& cfg, int64_t B, int64_t T)
      : be(b),
        store(b, transformer_params(cfg, StageRange::full(cfg)), DType::f32),
        model(cfg, StageRange::full(cfg), store),
        acts(model.alloc_activations(b, B, T)),
        ws(model.alloc_workspace(b, B, T)),
        ids(b.alloc(Shape{B * T}, DType::i32)),
        targets(b.alloc(Shape{B * T}, DType::i32)),
        opt(b, store, AdamWOptions{}) {}

  void load_batch(std::vector<int32_t> id, std::vector<int32_t> tg) {
    const Shape s{static_cast<int64_t>(id.size())};
    be.copy(ids, host_tensor(id.data(), s, DType::i32));
    be.copy(targets, host_tensor(tg.data(), s, DType::i32));
    be.synchronize();
  }

  // Forward + backward (mean loss over the batch); returns the mean loss.
  double forward_backward() {
    store.zero_grads(be);
    model.forward(be, acts, ids);
    const LossSum l = model.loss(be, acts, targets);
    model.backward_loss(be, acts, ws, ids, targets, 1.0 / static_cast<double>(l.count));
    return l.sum / static_cast<double>(l.count);
  }

  // Clip at global norm 1, AdamW (lr 3e-3, wd 0.1 on matrices), compute copy refreshed.
  void update() {
    const Tensor g = store.grads();
    const double norm = std::sqrt(be.sum_squares(std::span<const Tensor>(&g, 1)));
    opt.step(be, 3e-3, norm > 1.0 ? 1.0 / norm : 1.0);
  }
};

class CudaModel : public ::testing::TestWithParam<Arch> {
 protected:
  void SetUp() override {
    host_ = make_host_backend();
    CudaBackendOptions o = CudaBackendOptions::from_env();
    cuda_ = make_cuda_backend(o);
  }
  std::unique_ptr<Backend> host_, cuda_;
};

TEST_P(CudaModel, StoreKeepsF32MasterAndBf16ComputeCopy) {
  const ModelConfig cfg = small_config(GetParam());
  ModelRun c(*cuda_, cfg, 2, 64);
  ModelRun h(*host_, cfg, 2, 64);
  EXPECT_EQ(c.store.dtype(), DType::bf16);
  EXPECT_EQ(c.store.master_dtype(), DType::f32);
  EXPECT_EQ(c.store.grads().dtype, DType::f32);
  EXPECT_TRUE(c.store.has_compute_copy());
  EXPECT_EQ(c.model.dtype(), DType::bf16);
  EXPECT_EQ(h.store.dtype(), DType::f32);
  EXPECT_FALSE(h.store.has_compute_copy());
  EXPECT_EQ(h.store.compute().data, h.store.master().data);  // no extra memory on host

  c.store.init(*cuda_, 7);
  std::vector<int32_t> ids, tg;
  synthetic_batch(ids, tg, 2, 64, cfg.vocab_size, 0);
  c.load_batch(ids, tg);
  c.forward_backward();
  c.update();
  // The fused update wrote bf16(master) into the compute copy, element for element.
  const std::vector<double> master = read(*cuda_, c.store.master());
  const std::vector<double> compute = read(*cuda_, c.store.compute());
  Buffer rounded = cuda_->alloc(Shape{c.store.numel()}, DType::bf16);
  cuda_->copy(rounded, c.store.master());
  const std::vector<double> expect = read(*cuda_, rounded);
  int64_t mismatches = 0;
  for (size_t i = 0; i < master.size(); ++i) mismatches += compute[i] != expect[i];
  EXPECT_EQ(mismatches, 0);
  EXPECT_LT(rel_error(compute, master), 4e-3);  // bf16 has 8 significant bits
}

TEST_P(CudaModel, LogitsLossAndGradientsMatchHost) {
  const ModelConfig cfg = small_config(GetParam());
  const int64_t B = 2, T = 64;
  ModelRun c(*cuda_, cfg, B, T);
  ModelRun h(*host_, cfg, B, T);
  c.store.init(*cuda_, 11);
  // Host master := the CUDA bf16 weights, so both compute with identical weights.
  write(*host_, h.store.master(), read(*cuda_, c.store.compute()));
  std::vector<int32_t> ids, tg;
  synthetic_batch(ids, tg, B, T, cfg.vocab_size, 1);
  c.load_batch(ids, tg);
  h.load_batch(ids, tg);

  c.model.forward(*cuda_, c.acts, c.ids);
  h.model.forward(*host_, h.acts, h.ids);
  const double e_logits = rel_error(read(*cuda_, c.acts.logits), read(*host_, h.acts.logits));
  const LossSum lc = c.model.loss(*cuda_, c.acts, c.targets);
  const LossSum lh = h.model.loss(*host_, h.acts, h.targets);
  ASSERT_EQ(lc.count, lh.count);
  const double e_loss = std::fabs(lc.sum - lh.sum) / std::fabs(lh.sum);
  c.model.backward_loss(*cuda_, c.acts, c.ws, c.ids, c.targets, 1.0 / static_cast<double>(lc.count));
  h.model.backward_loss(*host_, h.acts, h.ws, h.ids, h.targets, 1.0 / static_cast<double>(lh.count));
  const std::vector<double> gc = read(*cuda_, c.store.grads());
  const std::vector<double> gh = read(*host_, h.store.grads());
  const double e_grads = rel_error(gc, gh);
  std::printf("[%s] logits %.2e  loss %.2e (%.5f vs %.5f)  all gradients %.2e\n",
              arch_name(cfg.arch), e_logits, e_loss, lc.sum / lc.count, lh.sum / lh.count,
              e_grads);
  EXPECT_LE(e_logits, kBf16Tol);
  EXPECT_LE(e_loss, kBf16Tol);
  EXPECT_LE(e_grads, kBf16Tol);
  // Per parameter: printed, and bounded by a looser 3·1e-2 (a bias or gain gradient is a sum
  // over all B·T rows of a bf16 activation gradient). Exception: the key bias, whose exact
  // gradient is 0 (it adds q·b_k to every score of a softmax row, which softmax ignores); both
  // backends return rounding noise there (GPU run 2026-11-25: host ~1e-4 of CUDA's), so it is
  // held to being negligible against the whole gradient instead.
  const double g_norm = std::sqrt(std::inner_product(gh.begin(), gh.end(), gh.begin(), 0.0));
  for (const ParamInfo& p : c.store.params()) {
    const auto b = gc.begin() + p.offset, e = b + p.numel();
    const auto hb = gh.begin() + p.offset, he = hb + p.numel();
    const std::vector<double> pc(b, e), ph(hb, he);
    const double err = rel_error(pc, ph);
    const double norm_c = std::sqrt(std::inner_product(pc.begin(), pc.end(), pc.begin(), 0.0));
    std::printf("  %-28s %.2e  (|g| %.2e)\n", p.name.c_str(), err, norm_c);
    if (p.name.ends_with("attn.k.bias"))
      EXPECT_LE(norm_c, 1e-2 * g_norm) << p.name;
    else
      EXPECT_LE(err, 3 * kBf16Tol) << p.name;
  }
}

TEST_P(CudaModel, FiftyStepLossCurveMatchesHost) {
  const ModelConfig cfg = small_config(GetParam());
  const int64_t B = 4, T = 64;
  ModelRun c(*cuda_, cfg, B, T);
  ModelRun h(*host_, cfg, B, T);
  c.store.init(*cuda_, 5);
  h.store.init(*host_, 5);  // same f32 masters; the CUDA forward reads their bf16 rounding
  double worst = 0, first = 0, last_c = 0, last_h = 0;
  std::vector<int32_t> ids, tg;
  for (int s = 0; s < 50; ++s) {
    synthetic_batch(ids, tg, B, T, cfg.vocab_size, static_cast<uint64_t>(s));
    c.load_batch(ids, tg);
    h.load_batch(ids, tg);
    const double loss_c = c.forward_backward();
    const double loss_h = h.forward_backward();
    c.update();
    h.update();
    const double rel = std::fabs(loss_c - loss_h) / loss_h;
    worst = std::max(worst, rel);
    if (s == 0) first = loss_h;
    last_c = loss_c;
    last_h = loss_h;
    if (s % 10 == 0 || s == 49)
      std::printf("[%s] step %2d  loss cuda %.5f  host %.5f  rel %.2e\n", arch_name(cfg.arch),
                  s + 1, loss_c, loss_h, rel);
    EXPECT_LE(rel, 2e-2) << "step " << s + 1;
  }
  std::printf("[%s] worst relative loss difference over 50 steps: %.2e\n", arch_name(cfg.arch),
              worst);
  EXPECT_LT(last_h, first - 0.3) << "the synthetic data should be learnable";
  EXPECT_LT(last_c, first - 0.3);
}

// Deterministic mode (CudaBackendOptions::deterministic): two runs of 5 training steps from
// the same init and batches end with bitwise identical master weights, gradients and losses.
// The batches repeat token ids heavily (V = 128 over B·T = 256 positions), so the default
// atomic embedding backward would add in a run-dependent order. Also the op alone: the
// ordered embedding backward gives the same bits twice and matches the host twin (f32).
TEST_P(CudaModel, DeterministicModeIsBitwiseReproducible) {
  const ModelConfig cfg = small_config(GetParam());
  const int64_t B = 4, T = 64;
  CudaBackendOptions o = CudaBackendOptions::from_env();
  o.deterministic = true;
  auto det = make_cuda_backend(o);
  auto train = [&](std::vector<double>& losses) {
    ModelRun c(*det, cfg, B, T);
    c.store.init(*det, 5);
    std::vector<int32_t> ids, tg;
    for (int s = 0; s < 5; ++s) {
      synthetic_batch(ids, tg, B, T, cfg.vocab_size, static_cast<uint64_t>(s));
      c.load_batch(ids, tg);
      losses.push_back(c.forward_backward());
      c.update();
    }
    std::vector<double> state = read(*det, c.store.master());
    const std::vector<double> g = read(*det, c.store.grads());
    state.insert(state.end(), g.begin(), g.end());
    return state;
  };
  std::vector<double> l1, l2;
  const std::vector<double> a = train(l1), b = train(l2);
  ASSERT_EQ(a.size(), b.size());
  size_t differ = 0;
  for (size_t i = 0; i < a.size(); ++i) differ += std::memcmp(&a[i], &b[i], sizeof(double)) != 0;
  EXPECT_EQ(differ, 0u) << "of " << a.size() << " master weights and gradients";
  EXPECT_EQ(l1, l2);

  // The op: 1024 positions over 16 rows of 96 columns, row_offset 3 (ids outside skipped).
  const int64_t N = 1024, R = 16, C = 96;
  std::vector<double> dout(size_t(N * C));
  std::vector<int32_t> ids(static_cast<size_t>(N));
  const uint64_t key = rng_key(3, "det_embedding");
  for (int64_t i = 0; i < N * C; ++i)
    dout[size_t(i)] = bf16_value(rng_normal(key, uint64_t(i)));
  for (int64_t n = 0; n < N; ++n) ids[size_t(n)] = int32_t((n * 7 + n / 5) % (R + 6));
  auto run_op = [&](Backend& be, DType dout_dtype) {
    Buffer d = be.alloc(Shape{N, C}, dout_dtype), t = be.alloc(Shape{R, C}, DType::f32);
    Buffer i = be.alloc(Shape{N}, DType::i32);
    write(be, d, dout);
    be.copy(i, host_tensor(ids.data(), Shape{N}, DType::i32));
    be.fill(t, 0.0);
    be.embedding_backward(t, d, i, 3);
    return read(be, t);
  };
  const std::vector<double> dev = run_op(*det, DType::bf16), again = run_op(*det, DType::bf16);
  const std::vector<double> host = run_op(*host_, DType::f32);
  EXPECT_EQ(dev, again) << "ordered embedding backward, two runs";
  EXPECT_LE(rel_error(dev, host), 1e-6) << "ordered embedding backward vs the host twin";
}

INSTANTIATE_TEST_SUITE_P(Arch, CudaModel, ::testing::Values(Arch::gpt2, Arch::llama),
                         [](const auto& info) { return std::string(arch_name(info.param)); });

}  // namespace
}  // namespace llmpi
