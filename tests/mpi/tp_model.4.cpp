// Tensor (+ sequence) parallel transformer on 4 ranks against the 1-rank model: tp2 (two
// groups {0,1} {2,3}) and tp4, with and without sequence parallelism, GPT-2 (tied embedding,
// biases, learned positions, V = 37 split unevenly) and Llama (GQA with Hkv = 2 < tp = 4, so
// kv heads are replicated). Every rank also runs the reference model on one rank, with the
// same random parameters (not the init: gains and biases must matter), and checks the loss
// and every gradient slab it holds — replicas included — and that the non-replica slabs of
// the group cover every element of every global tensor exactly once. f64 runs check to
// 1e-10 (so a missing or doubled term cannot hide); f32 runs to the contract's 1e-5.
#include <gtest/gtest.h>
#include <mpi.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <vector>

#include "../unit/test_model_util.h"
#include "model/param_layout.h"
#include "model/transformer.h"
#include "parallel/communicator.h"
#include "parallel/mpi_collectives.h"
#include "parallel/tensor_parallel.h"
#include "parallel/vocab_parallel.h"

namespace llmpi {
namespace {

using namespace llmpi::testing;

// The world split into tensor-parallel groups of p consecutive ranks (tp fastest-varying).
struct TpGroup {
  Communicator world = Communicator::dup(MPI_COMM_WORLD, "tp-test-world");
  Communicator comm;
  std::unique_ptr<MpiCollectives> coll;
  explicit TpGroup(int p) {
    comm = Communicator::split(world, world.rank() / p, world.rank() % p, "tp-test");
    coll = std::make_unique<MpiCollectives>(comm);
  }
};

// Row-major offsets of a slab's elements in the global tensor, in the slab's own order.
std::vector<int64_t> slab_indices(const ParamInfo& p) {
  const int nd = p.global_shape.ndim;
  std::vector<int64_t> out;
  out.reserve(static_cast<size_t>(p.numel()));
  std::array<int64_t, Shape::kMaxDims> idx{};
  for (int64_t i = 0; i < p.numel(); ++i) {
    int64_t g = 0;
    for (int d = 0; d < nd; ++d) g = g * p.global_shape[d] + idx[d] + p.local_start[d];
    out.push_back(g);
    for (int d = nd - 1; d >= 0; --d) {
      if (++idx[d] < p.local_shape[d]) break;
      idx[d] = 0;
    }
  }
  return out;
}

struct StepResult {
  LossSum loss;
  std::vector<std::vector<double>> grads;  // per parameter of the store, its local slab
};

constexpr int64_t kB = 2, kT = 8;

// Two micro-batches accumulated (so reused activations and gradient accumulation are
// covered), loss scale 1 / (all counted targets).
StepResult train_step(Backend& be, const Transformer& m, ParamStore& store, TensorParallel* tp) {
  Activations a = m.alloc_activations(be, kB, kT);
  Workspace ws = m.alloc_workspace(be, kB, kT);
  const TokenBatch b0 = random_batch(kB, kT, m.config().vocab_size, 11, {3});
  const TokenBatch b1 = random_batch(kB, kT, m.config().vocab_size, 12, {0, 9, 15});
  const int64_t count = 2 * kB * kT - 4;
  store.zero_grads(be);
  StepResult run;
  for (const TokenBatch* tb : {&b0, &b1}) {
    Buffer ids = upload_i32(be, tb->ids), targets = upload_i32(be, tb->targets);
    m.forward(be, a, ids);
    const LossSum l = m.loss(be, a, targets);
    run.loss.sum += l.sum;
    run.loss.count += l.count;
    m.backward_loss(be, a, ws, ids, targets, 1.0 / static_cast<double>(count));
  }
  EXPECT_EQ(run.loss.count, count);
  if (tp) tp->sync_grads(be, store);
  for (const ParamInfo& p : store.params()) run.grads.push_back(to_host(be, store.grad(p.name)));
  return run;
}

// Errors are relative to a parameter's largest gradient, but at least to 1e-2 × the model's
// largest: the key bias's exact gradient is 0 (softmax ignores a per-row shift of the
// scores), so its computed value is rounding noise that no layout reproduces.
double grad_floor(Backend& be, const ParamStore& ref) {
  double m = 0.0;
  for (double v : to_host(be, ref.grads())) m = std::max(m, std::abs(v));
  return 1e-2 * m;
}

void check_layout(Arch arch, int p, bool sp, DType dtype, double tol) {
  SCOPED_TRACE(::testing::Message() << arch_name(arch) << " tp=" << p << (sp ? "+sp" : "")
                                    << " " << dtype_name(dtype));
  auto be = make_host_backend();
  TpGroup g(p);
  ASSERT_EQ(g.coll->size(), p);
  const int r = g.coll->rank();
  const ModelConfig cfg = tiny_config(arch);
  const StageRange full = StageRange::full(cfg);

  // Reference: the whole model on this rank.
  ParamStore ref(*be, transformer_params(cfg, full), dtype);
  randomize_params(*be, ref, 5);
  const Transformer ref_model(cfg, full, ref);
  const StepResult want = train_step(*be, ref_model, ref, nullptr);

  // This rank's shard, with the reference values copied slab by slab.
  ParamStore sh(*be, shard_params_tp(cfg, transformer_params(cfg, full), p, r), dtype);
  for (const ParamInfo& q : sh.params()) {
    const std::vector<double> global = to_host(*be, ref.master(q.name));
    std::vector<double> local;
    for (int64_t i : slab_indices(q)) local.push_back(global[static_cast<size_t>(i)]);
    from_host(*be, sh.master(q.name), local);
  }
  TensorParallel tp(*g.coll, sp);
  Transformer model(cfg, full, sh);
  tp.install(model);
  EXPECT_EQ(model.local_rows(kB, kT), sp ? kB * kT / p : kB * kT);
  const StepResult got = train_step(*be, model, sh, &tp);

  EXPECT_EQ(got.loss.count, want.loss.count);
  EXPECT_NEAR(got.loss.sum, want.loss.sum, tol * std::abs(want.loss.sum));

  const double floor = grad_floor(*be, ref);
  for (size_t k = 0; k < sh.params().size(); ++k) {
    const ParamInfo& q = sh.params()[k];
    SCOPED_TRACE(q.name);
    const std::vector<double> global = to_host(*be, ref.grad(q.name));
    double scale = floor;
    for (double v : global) scale = std::max(scale, std::abs(v));
    const std::vector<int64_t> idx = slab_indices(q);
    double worst = 0.0;
    for (size_t i = 0; i < idx.size(); ++i)
      worst = std::max(worst, std::abs(got.grads[k][i] - global[static_cast<size_t>(idx[i])]));
    EXPECT_LE(worst / scale, tol) << "max |grad - ref| = " << worst << ", max |ref| = " << scale;

    // Non-replica slabs cover the global tensor exactly once over the group.
    std::vector<int32_t> cover(static_cast<size_t>(q.global_shape.numel()), 0);
    if (!q.replica)
      for (int64_t i : idx) cover[static_cast<size_t>(i)] += 1;
    g.coll->all_reduce(Tensor{cover.data(), q.global_shape, DType::i32, Device::host});
    EXPECT_TRUE(std::all_of(cover.begin(), cover.end(), [](int32_t c) { return c == 1; }));
  }
}

TEST(TensorParallelModel, Gpt2MatchesOneRank) {
  for (int p : {2, 4})
    for (bool sp : {false, true}) check_layout(Arch::gpt2, p, sp, DType::f64, 1e-10);
}

TEST(TensorParallelModel, LlamaWithReplicatedKvHeadsMatchesOneRank) {
  for (int p : {2, 4})
    for (bool sp : {false, true}) check_layout(Arch::llama, p, sp, DType::f64, 1e-10);
}

TEST(TensorParallelModel, Float32WithinContractTolerance) {
  check_layout(Arch::gpt2, 2, true, DType::f32, 1e-5);
  check_layout(Arch::llama, 4, true, DType::f32, 1e-5);
  check_layout(Arch::llama, 4, false, DType::f32, 1e-5);
}

// Sharded init equals the slab of the unsharded init, exactly (init from global coordinates).
TEST(TensorParallelModel, ShardedInitEqualsUnshardedSlab) {
  auto be = make_host_backend();
  const int r = TpGroup(4).coll->rank();
  for (Arch arch : {Arch::gpt2, Arch::llama}) {
    const ModelConfig cfg = tiny_config(arch);
    const StageRange full = StageRange::full(cfg);
    ParamStore ref(*be, transformer_params(cfg, full), DType::f32);
    ref.init(*be, 77);
    for (int p : {2, 4}) {
      ParamStore sh(*be, shard_params_tp(cfg, transformer_params(cfg, full), p, r % p),
                    DType::f32);
      sh.init(*be, 77);
      for (const ParamInfo& q : sh.params()) {
        const std::vector<double> global = to_host(*be, ref.master(q.name));
        const std::vector<double> local = to_host(*be, sh.master(q.name));
        const std::vector<int64_t> idx = slab_indices(q);
        size_t bad = 0;
        for (size_t i = 0; i < idx.size(); ++i)
          bad += local[i] != global[static_cast<size_t>(idx[i])];
        EXPECT_EQ(bad, 0u) << arch_name(arch) << " tp=" << p << " " << q.name;
      }
    }
  }
}

// A two-stage split of the tp-sharded model in one process (stage 0: embedding + layer 0;
// stage 1: layer 1 + head): what crosses between stages is the local rows. With tied
// embeddings each stage's embed.tokens copy gets part of the gradient; their sum is the
// reference.
TEST(TensorParallelModel, PipelineStagesPassLocalRows) {
  auto be = make_host_backend();
  TpGroup g(4);
  for (bool sp : {false, true}) {
    SCOPED_TRACE(sp ? "sp" : "no sp");
    const ModelConfig cfg = tiny_config(Arch::gpt2);
    const StageRange full = StageRange::full(cfg), s0{0, 1, true, false}, s1{1, 2, false, true};
    ParamStore ref(*be, transformer_params(cfg, full), DType::f64);
    randomize_params(*be, ref, 6);
    const Transformer ref_model(cfg, full, ref);
    const StepResult want = train_step(*be, ref_model, ref, nullptr);

    TensorParallel tp(*g.coll, sp);
    const int r = g.coll->rank();
    ParamStore st0(*be, shard_params_tp(cfg, transformer_params(cfg, s0), 4, r), DType::f64);
    ParamStore st1(*be, shard_params_tp(cfg, transformer_params(cfg, s1), 4, r), DType::f64);
    for (ParamStore* st : {&st0, &st1})
      for (const ParamInfo& q : st->params()) {
        const std::vector<double> global = to_host(*be, ref.master(q.name));
        std::vector<double> local;
        for (int64_t i : slab_indices(q)) local.push_back(global[static_cast<size_t>(i)]);
        from_host(*be, st->master(q.name), local);
      }
    Transformer m0(cfg, s0, st0), m1(cfg, s1, st1);
    tp.install(m0);
    tp.install(m1);
    Activations a0 = m0.alloc_activations(*be, kB, kT), a1 = m1.alloc_activations(*be, kB, kT);
    Workspace w0 = m0.alloc_workspace(*be, kB, kT), w1 = m1.alloc_workspace(*be, kB, kT);
    EXPECT_EQ(a0.output().dim(0), sp ? kB * kT / 4 : kB * kT);
    const TokenBatch tb = random_batch(kB, kT, cfg.vocab_size, 11, {3});
    Buffer ids = upload_i32(*be, tb.ids), targets = upload_i32(*be, tb.targets);
    // The reference for this one micro-batch.
    Activations ra = ref_model.alloc_activations(*be, kB, kT);
    Workspace rw = ref_model.alloc_workspace(*be, kB, kT);
    ref.zero_grads(*be);
    ref_model.forward(*be, ra, ids);
    const LossSum rl = ref_model.loss(*be, ra, targets);
    ref_model.backward_loss(*be, ra, rw, ids, targets, 1.0 / static_cast<double>(rl.count));

    m0.forward(*be, a0, ids);
    be->copy(a1.input, a0.output());  // "send" to the next stage
    m1.forward(*be, a1, Tensor{});
    const LossSum l = m1.loss(*be, a1, targets);
    EXPECT_NEAR(l.sum, rl.sum, 1e-10 * std::abs(rl.sum));
    m1.backward_loss(*be, a1, w1, Tensor{}, targets, 1.0 / static_cast<double>(l.count));
    m0.backward(*be, a0, w0, ids, m1.input_grad(w1, a1));  // "send" the gradient back
    tp.sync_grads(*be, st0);
    tp.sync_grads(*be, st1);
    for (const ParamInfo& q : ref.params()) {
      SCOPED_TRACE(q.name);
      const std::vector<double> global = to_host(*be, ref.grad(q.name));
      std::vector<double> got;
      const ParamInfo* info = nullptr;
      for (ParamStore* st : {&st0, &st1}) {
        if (!st->contains(q.name)) continue;
        const std::vector<double> part = to_host(*be, st->grad(q.name));
        if (got.empty()) got.assign(part.size(), 0.0);
        for (size_t i = 0; i < part.size(); ++i) got[i] += part[i];  // tied copies: summed
        info = &st->info(q.name);
      }
      ASSERT_NE(info, nullptr);
      const std::vector<int64_t> idx = slab_indices(*info);
      double scale = grad_floor(*be, ref), worst = 0.0;
      for (double v : global) scale = std::max(scale, std::abs(v));
      for (size_t i = 0; i < idx.size(); ++i)
        worst = std::max(worst, std::abs(got[i] - global[static_cast<size_t>(idx[i])]));
      EXPECT_LE(worst / scale, 1e-10);
    }
  }
}

// Activation memory per rank with and without sequence parallelism, on the tiny.toml shape
// (GPT-2, V = 2048, L = 4, C = 128, Hq = 4, F = 512, B·T = 8·128), f32: measured from the
// allocated buffers and checked against the closed form; printed for docs/parallelism.md.
TEST(TensorParallelModel, SequenceParallelActivationMemory) {
  auto be = make_host_backend();
  ModelConfig cfg;
  cfg.arch = Arch::gpt2;
  cfg.vocab_size = 2048;
  cfg.n_layer = 4;
  cfg.n_head = 4;
  cfg.n_kv_head = 4;
  cfg.d_model = 128;
  cfg.d_ff = 512;
  cfg.max_seq_len = 128;
  const int64_t B = 8, T = 128, N = B * T, C = 128, F = 512, L = 4, V = 2048, H = 4;
  const StageRange full = StageRange::full(cfg);
  std::vector<int64_t> bytes_by_p;
  for (int p : {1, 2, 4}) {
    TpGroup g(p);
    const int r = g.coll->rank();
    for (bool sp : {false, true}) {
      if (sp && p == 1) continue;
      ParamStore sh(*be, shard_params_tp(cfg, transformer_params(cfg, full), p, r), DType::f32);
      TensorParallel tp(*g.coll, sp);
      Transformer m(cfg, full, sh);
      tp.install(m);
      const Activations a = m.alloc_activations(*be, B, T);
      const int64_t got = activation_bytes(a);
      // Closed form, in f32 elements (+ the i32 positions): n token-row rows, N full rows.
      const int64_t n = sp ? N / p : N, Vl = vocab_range(V, p, r).size();
      const int64_t per_layer = 2 * 2 * n            // two LayerNorms: mean, rstd
                                + 4 * n * C          // h1, mid, h2, out
                                + N * 3 * C / p      // qkv
                                + N * C / p          // attention output
                                + B * (H / p) * T    // attention lse
                                + 2 * N * F / p;     // MLP pre-activation, activation
      const int64_t want = 4 * (n                      // positions (i32)
                                + n * C                // input
                                + L * per_layer        //
                                + 2 * n + n * C        // final norm stats, hf
                                + N * Vl + 2 * N       // logits, lse, picked
                                + (sp ? N * C : 0));   // full-row forward scratch
      EXPECT_EQ(got, want) << "tp=" << p << (sp ? "+sp" : "");
      if (g.world.rank() == 0)
        std::printf("activation bytes per rank, tiny.toml shape, B=8 T=128 f32: tp=%d%s: %lld\n",
                    p, sp ? "+sp" : "   ", static_cast<long long>(got));
      if (p > 1 && sp) EXPECT_LT(got, bytes_by_p.back());  // SP below tp alone
      bytes_by_p.push_back(got);
    }
  }
}

}  // namespace
}  // namespace llmpi
