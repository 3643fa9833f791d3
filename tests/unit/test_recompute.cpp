// Activation recomputation (ModelConfig::recompute): `selective` and `full` give the loss and
// every parameter gradient of `none` bit for bit on the host backend (f64 and f32, GPT-2 and
// Llama, one stage and two pipeline stages, two micro-batches in flight so that the second
// forward overwrites the shared block activations before the first backward); the bytes of
// the activation buffers follow the closed forms of docs/model.md and drop full < selective <
// none; and `llmpi train`'s Trainer with [train] recompute = "full" / "selective" logs the
// same losses and ends with the same weights as "none".
// Why bitwise: recomputation runs the same host kernels on bitwise-equal inputs in the same
// order (and the host kernels are deterministic), so it must reproduce the forward's values
// exactly; any difference is a bug (a stale or overwritten buffer), not rounding.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "corpus_util.h"
#include "config/config.h"
#include "core/rng.h"
#include "data/token_shard.h"
#include "model/param_layout.h"
#include "model/transformer.h"
#include "test_model_util.h"
#include "train/trainer.h"

using namespace llmpi;
using namespace llmpi::testing;
namespace fs = std::filesystem;

namespace {

// The loss sums of each micro-batch and every gradient (by stage and name) of one step.
struct StepResult {
  std::vector<double> loss_sums;
  std::map<std::string, std::vector<double>> grads;
};

bool bitwise_equal(const std::vector<double>& a, const std::vector<double>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(double)) == 0;
}

// One training step's forward and backward of `micro` micro-batches on a model of `cfg` cut
// into `stages` pipeline stages (dividing n_layer), the micro-batches all in flight: every
// forward of every stage first, then the backwards (last stage first) in micro-batch order:
// the order that stresses the shared block activations most (each forward overwrites them).
// share: every stage views stage 0's shared block activations (as ZeRO-3's one-layer units
// may), instead of one shared part per stage.
StepResult run_step(const ModelConfig& cfg, DType dtype, int64_t stages, bool share,
                    int64_t micro) {
  auto be_ptr = make_host_backend();
  Backend& be = *be_ptr;
  const int64_t L = cfg.n_layer, B = 2, T = cfg.max_seq_len;
  std::vector<StageRange> ranges;
  for (int64_t s = 0; s < stages; ++s)
    ranges.push_back({s * L / stages, (s + 1) * L / stages, s == 0, s == stages - 1});
  std::vector<std::unique_ptr<ParamStore>> stores;
  std::vector<std::unique_ptr<Transformer>> models;
  std::vector<std::vector<Activations>> acts(ranges.size());
  std::vector<Workspace> ws;
  for (size_t s = 0; s < ranges.size(); ++s) {
    stores.push_back(std::make_unique<ParamStore>(be, transformer_params(cfg, ranges[s]), dtype));
    randomize_params(be, *stores.back(), 11);  // by name: every stage sees the same values
    stores.back()->zero_grads(be);
    models.push_back(std::make_unique<Transformer>(cfg, ranges[s], *stores.back()));
    for (int64_t m = 0; m < micro; ++m) {
      std::shared_ptr<BlockActs> shared = share && s > 0 ? acts[0][0].shared : nullptr;
      acts[s].push_back(models[s]->alloc_activations(be, B, T, shared));
      if (share && cfg.recompute != Recompute::none) EXPECT_EQ(acts[s][m].shared, acts[0][0].shared);
    }
    ws.push_back(models[s]->alloc_workspace(be, B, T));
  }
  std::vector<Buffer> ids, targets;
  for (int64_t m = 0; m < micro; ++m) {
    const TokenBatch tb = random_batch(B, T, cfg.vocab_size, 20 + uint64_t(m), {1, 5});
    ids.push_back(upload_i32(be, tb.ids));
    targets.push_back(upload_i32(be, tb.targets));
  }
  StepResult r;
  int64_t count = 0;
  const size_t last = ranges.size() - 1;
  for (int64_t m = 0; m < micro; ++m) {
    for (size_t s = 0; s < ranges.size(); ++s) {
      if (s > 0) be.copy(acts[s][m].input, acts[s - 1][m].output());  // "send"
      models[s]->forward(be, acts[s][m], s == 0 ? ids[m].tensor() : Tensor{});
    }
    const LossSum l = models[last]->loss(be, acts[last][m], targets[m]);
    r.loss_sums.push_back(l.sum);
    count += l.count;
  }
  const double scale = 1.0 / static_cast<double>(count);
  for (int64_t m = 0; m < micro; ++m)
    for (size_t s = ranges.size(); s-- > 0;) {
      const Tensor id = s == 0 ? ids[m].tensor() : Tensor{};
      if (s == last)
        models[s]->backward_loss(be, acts[s][m], ws[s], id, targets[m], scale);
      else
        models[s]->backward(be, acts[s][m], ws[s], id, models[s + 1]->input_grad(ws[s + 1], acts[s + 1][m]));
    }
  for (size_t s = 0; s < ranges.size(); ++s)
    for (const ParamInfo& p : stores[s]->params())
      r.grads["stage " + std::to_string(s) + " " + p.name] = to_host(be, stores[s]->grad(p.name));
  return r;
}

struct Case {
  Arch arch;
  DType dtype;
  int64_t stages;
  bool share = false;
};

std::string case_name(const Case& c) {
  return std::string(arch_name(c.arch)) + "_" + dtype_name(c.dtype) + "_" +
         std::to_string(c.stages) + "stage" + (c.share ? "_shared" : "");
}

void PrintTo(const Case& c, std::ostream* os) { *os << case_name(c); }

class RecomputeBitwise : public ::testing::TestWithParam<Case> {};

TEST_P(RecomputeBitwise, LossAndEveryGradientEqualNone) {
  const Case& c = GetParam();
  ModelConfig cfg = tiny_config(c.arch);
  cfg.n_layer = 4;  // inner blocks whose input is another block's kept output
  const StepResult want = run_step(cfg, c.dtype, c.stages, c.share, 2);
  double norm = 0;
  for (const auto& [name, g] : want.grads)
    for (double x : g) norm += x * x;
  ASSERT_GT(norm, 0.0);  // the comparison below compares something
  for (Recompute mode : {Recompute::selective, Recompute::full}) {
    SCOPED_TRACE(recompute_name(mode));
    cfg.recompute = mode;
    const StepResult got = run_step(cfg, c.dtype, c.stages, c.share, 2);
    EXPECT_TRUE(bitwise_equal(got.loss_sums, want.loss_sums));
    ASSERT_EQ(got.grads.size(), want.grads.size());
    for (const auto& [name, g] : want.grads)
      EXPECT_TRUE(bitwise_equal(got.grads.at(name), g)) << name;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Recompute, RecomputeBitwise,
    ::testing::Values(Case{Arch::gpt2, DType::f64, 1}, Case{Arch::gpt2, DType::f32, 1},
                      Case{Arch::llama, DType::f64, 1}, Case{Arch::llama, DType::f32, 1},
                      Case{Arch::gpt2, DType::f32, 2}, Case{Arch::llama, DType::f32, 2},
                      Case{Arch::gpt2, DType::f32, 4, true}, Case{Arch::llama, DType::f64, 4, true}),
    [](const auto& info) { return case_name(info.param); });

// docs/model.md "Activation memory per micro-batch", in elements (one dtype: f32 here, so the
// statistics are 4-byte too), without sequence parallelism (n = N). F' = F (gelu) or 2F.
struct Bytes {
  int64_t per_micro, shared;
};
Bytes formula(const ModelConfig& c, Recompute mode, int64_t B, int64_t T, int64_t elem) {
  const int64_t N = B * T, C = c.d_model, L = c.n_layer, V = c.vocab_size, F = c.d_ff;
  const int64_t Hq = c.n_head, D = c.head_dim(), F2 = c.arch == Arch::llama ? 2 * F : F;
  const int64_t sn = c.arch == Arch::gpt2 ? 2 : 1;  // norm statistics per row
  const int64_t kept_sel = 2 * N * C + N * c.qkv_dim() + N * Hq * D + N * Hq + N * F2;  // mid, out, qkv, attn out, lse, pre
  const int64_t dropped_sel = 2 * N * C + 2 * sn * N + N * F;                           // h1, h2, stats, act
  const int64_t block = kept_sel + dropped_sel;
  int64_t kept = block, shared = 0;
  if (mode == Recompute::selective) kept = kept_sel, shared = dropped_sel;
  if (mode == Recompute::full) kept = N * C, shared = block - N * C;
  const int64_t stage = N * C + L * kept + (sn * N + N * C + N * V + 2 * N);  // input, blocks, head
  const int64_t pos = c.learned_positions() ? N * 4 : 0;                       // i32 positions
  return {stage * elem + pos, shared * elem};
}

TEST(RecomputeMemory, ActivationBytesFollowTheFormulaAndDrop) {
  // The tiny.toml shape (GPT-2, V = 2048, L = 4, C = 128, Hq = 4, F = 512, B·T = 8·128) and a
  // Llama one with GQA; f32.
  ModelConfig gpt2 = tiny_config(Arch::gpt2);
  gpt2.vocab_size = 2048, gpt2.n_layer = 4, gpt2.d_model = 128, gpt2.d_ff = 512;
  gpt2.max_seq_len = 128;
  ModelConfig llama = tiny_config(Arch::llama);
  llama.vocab_size = 2048, llama.n_layer = 4, llama.d_model = 128, llama.n_head = 8;
  llama.n_kv_head = 2, llama.d_ff = 352, llama.max_seq_len = 128;
  const int64_t B = 8, T = 128;
  auto be = make_host_backend();
  for (ModelConfig cfg : {gpt2, llama}) {
    std::vector<Bytes> got;
    for (Recompute mode : {Recompute::none, Recompute::selective, Recompute::full}) {
      SCOPED_TRACE(std::string(arch_name(cfg.arch)) + " " + recompute_name(mode));
      cfg.recompute = mode;
      ParamStore store(*be, transformer_params(cfg, StageRange::full(cfg)), DType::f32);
      const Transformer m(cfg, StageRange::full(cfg), store);
      const Activations a = m.alloc_activations(*be, B, T);
      const Activations a2 = m.alloc_activations(*be, B, T);  // a second micro-batch in flight
      const Bytes b{activation_bytes(a), recompute_shared_bytes(a)};
      const Bytes want = formula(cfg, mode, B, T, 4);
      EXPECT_EQ(b.per_micro, want.per_micro);
      EXPECT_EQ(b.shared, want.shared);
      EXPECT_EQ(a2.shared, a.shared);  // one shared part per model, not per micro-batch
      EXPECT_EQ(recompute_shared_bytes(a2), b.shared);
      std::printf("activation bytes, %s, L=%lld C=%lld B·T=%lld·%lld f32, recompute %-9s: "
                  "%lld per micro-batch + %lld shared\n",
                  arch_name(cfg.arch), (long long)cfg.n_layer, (long long)cfg.d_model,
                  (long long)B, (long long)T, recompute_name(mode), (long long)b.per_micro,
                  (long long)b.shared);
      got.push_back(b);
    }
    // Per micro-batch, and in total with one micro-batch in flight.
    EXPECT_LT(got[2].per_micro, got[1].per_micro);
    EXPECT_LT(got[1].per_micro, got[0].per_micro);
    EXPECT_EQ(got[0].shared, 0);
    EXPECT_LT(got[2].per_micro + got[2].shared, got[1].per_micro + got[1].shared);
    EXPECT_LT(got[1].per_micro + got[1].shared, got[0].per_micro);
  }
}

// ---- end to end: the training loop ---------------------------------------------------------

fs::path make_corpus() { return llmpi::testing::learnable_corpus("recompute", 5, 4000); }

Config train_config(const fs::path& d, const std::string& arch, const std::string& recompute,
                    int zero_stage) {
  std::ostringstream t;
  t << "[model]\narch = \"" << arch << "\"\nvocab_size = 64\nn_layer = 3\nn_head = 4\n"
    << (arch == "llama" ? "n_kv_head = 2\nd_ff = 64\n" : "") << "d_model = 32\nmax_seq_len = 16\n"
    << "[train]\nsteps = 4\nbatch_size = 2\nseq_len = 16\nlr = 1e-2\nwarmup_steps = 1\n"
    << "recompute = \"" << recompute << "\"\n"
    << "[data]\ntrain = \"" << (d / "train.bin").string() << "\"\n"
    << "[parallel]\nmicro_batches = 2\nzero_stage = " << zero_stage << "\n[run]\ndir = \""
    << (d / ("run_" + arch + "_" + recompute + "_" + std::to_string(zero_stage))).string()
    << "\"\n";
  return parse_config(t.str(), "recompute.toml");
}

// ZeRO stage 3 (here with dp = 1) takes the engine's other path: one-layer units, each with
// its own Transformer and Activations.
TEST(RecomputeTrainer, FullAndSelectiveLogTheLossesOfNone) {
  const fs::path d = make_corpus();
  for (const char* arch : {"gpt2", "llama"})
  for (int zero : {0, 3}) {
    SCOPED_TRACE(std::string(arch) + " zero_stage " + std::to_string(zero));
    auto be = make_host_backend();
    std::vector<TrainSummary> runs;
    std::vector<std::vector<float>> weights;
    for (const char* mode : {"none", "full", "selective"}) {
      const Config cfg = train_config(d, arch, mode, zero);
      ASSERT_EQ(recompute_name(cfg.model.recompute), std::string(mode));
      std::ostringstream log;
      Trainer tr(cfg, *be, MPI_COMM_SELF, log);
      runs.push_back(tr.run());
      const Tensor& w = tr.params().master();
      weights.emplace_back(w.ptr<float>(), w.ptr<float>() + w.numel());
    }
    ASSERT_EQ(runs[0].steps.size(), 4u);
    for (size_t k = 1; k < runs.size(); ++k) {
      ASSERT_EQ(runs[k].steps.size(), runs[0].steps.size());
      for (size_t i = 0; i < runs[0].steps.size(); ++i) {
        EXPECT_EQ(runs[k].steps[i].loss, runs[0].steps[i].loss) << arch << " run " << k << " step " << i + 1;
        EXPECT_EQ(runs[k].steps[i].grad_norm, runs[0].steps[i].grad_norm);
      }
      EXPECT_EQ(weights[k], weights[0]) << arch << " run " << k;
    }
    EXPECT_LT(runs[0].steps.back().loss, runs[0].steps.front().loss);  // it trained
  }
  fs::remove_all(d);
}

}  // namespace
