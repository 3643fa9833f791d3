#pragma once
// Pipeline-parallel equivalence harness for the pp_* multi-rank tests (the job's ranks are
// a tp × pp grid: pp = world / tp; with tp > 1 every chunk is tensor-parallel, optionally
// sequence-parallel, through TensorParallel). Every rank also runs the 1-rank model on the same
// micro-batches (cheap at these shapes) as the reference. Per step: the pipeline's loss
// (summed over the pp group) and every local parameter gradient (after the tied-embedding
// sync) equal the reference's within 1e-5 relative; then both take the same SGD update, so
// later steps also check that the tied copies stayed identical and that the slot pool is
// reused correctly; a final forward-only pass (evaluation) gives the reference's loss.
// Comparisons are slab-wise: a local element against the reference's element
// at its global coordinates. Coverage: the non-replica slabs of all ranks hold exactly the
// reference's number of elements.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "config/config.h"
#include "core/rng.h"
#include "model/param_layout.h"
#include "model/transformer.h"
#include "parallel/pipeline.h"
#include "parallel/tensor_parallel.h"
#include "parallel/topology.h"

namespace llmpi::pp_test {

struct PipeCase {
  Arch arch = Arch::gpt2;
  int64_t n_layer = 4;
  int64_t virtual_stages = 1;
  int64_t micro_batches = 4;
  std::vector<int64_t> stage_layers;  // empty: balanced
  int steps = 3;
  // One ParamStore for all of the rank's chunks (rank_params), instead of one per chunk.
  bool shared_store = false;
  int tp = 1;               // tensor-parallel degree (pp = world / tp)
  bool sequence_parallel = false;
};


inline std::vector<float> to_host(Backend& be, const Tensor& t) {
  std::vector<float> v(static_cast<size_t>(t.numel()));
  be.copy(host_tensor(v.data(), t.shape, DType::f32), t);
  be.synchronize();
  return v;
}

inline void from_host(Backend& be, const Tensor& t, std::vector<float> v) {
  be.copy(t, host_tensor(v.data(), t.shape, DType::f32));
  be.synchronize();
}

// Row-major offsets of a slab's elements in the global tensor, in the slab's own order.
inline std::vector<int64_t> slab_indices(const ParamInfo& p) {
  const int nd = p.global_shape.ndim;
  std::vector<int64_t> out;
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

// The elements of `global` (a whole reference tensor) that slab `p` holds.
inline std::vector<float> slab_of(const std::vector<float>& global, const ParamInfo& p) {
  std::vector<float> out;
  for (int64_t i : slab_indices(p)) out.push_back(global[static_cast<size_t>(i)]);
  return out;
}

// max |got - want| <= tol · max |want| (with a floor for all-zero tensors).
inline void expect_close(const std::vector<float>& got, const std::vector<float>& want,
                         double tol, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  double diff = 0, scale = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    diff = std::max(diff, std::abs(double(got[i]) - double(want[i])));
    scale = std::max(scale, std::abs(double(want[i])));
  }
  EXPECT_LE(diff, tol * std::max(scale, 1e-6)) << what << ": max |diff| " << diff
                                               << ", max |want| " << scale;
}

// One micro-batch of B·T ids and next-token targets (two targets ignored).
struct Tokens {
  std::vector<int32_t> ids, targets;
};
inline Tokens tokens(int64_t step, int64_t micro, int64_t B, int64_t T, int64_t V) {
  Tokens t;
  const uint64_t key = rng_key(77 + static_cast<uint64_t>(step), "pp-tokens");
  for (int64_t b = 0; b < B; ++b) {
    std::vector<int32_t> seq;
    for (int64_t i = 0; i <= T; ++i)
      seq.push_back(static_cast<int32_t>(
          rng_bits(key, static_cast<uint64_t>((micro * B + b) * (T + 1) + i)) % uint64_t(V)));
    for (int64_t i = 0; i < T; ++i) {
      t.ids.push_back(seq[static_cast<size_t>(i)]);
      t.targets.push_back(seq[static_cast<size_t>(i + 1)]);
    }
  }
  t.targets[1] = -1;
  t.targets[static_cast<size_t>(B * T - 1)] = -1;
  return t;
}

inline Config make_config(const PipeCase& c, int world) {
  Config cfg;
  ModelConfig& m = cfg.model;
  m.arch = c.arch;
  m.vocab_size = 37;
  m.n_layer = c.n_layer;
  m.n_head = 4;
  m.n_kv_head = c.arch == Arch::gpt2 ? 4 : 2;
  m.d_model = 16;
  m.d_ff = 32;
  m.max_seq_len = 8;
  m.tied_embeddings = c.arch == Arch::gpt2;
  cfg.train.batch_size = 2;
  cfg.train.seq_len = 8;
  cfg.parallel.tp = c.tp;
  cfg.parallel.pp = world / c.tp;
  cfg.parallel.sequence_parallel = c.sequence_parallel;
  cfg.parallel.virtual_stages = c.virtual_stages;
  cfg.parallel.micro_batches = c.micro_batches;
  cfg.parallel.stage_layers = c.stage_layers;
  return cfg;
}

// Plain SGD on every parameter of `store`: p -= lr · g.
inline void sgd(Backend& be, const ParamStore& store, float lr) {
  std::vector<float> p = to_host(be, store.master()), g = to_host(be, store.grads());
  for (size_t i = 0; i < p.size(); ++i) p[i] -= lr * g[i];
  from_host(be, store.master(), p);
}

inline void check_pipeline_matches_single_rank(const PipeCase& c) {
  int world = 0;
  MPI_Comm_size(MPI_COMM_WORLD, &world);
  const Config cfg = make_config(c, world);
  const ModelConfig& mc = cfg.model;
  Topology topo(cfg);
  const int r = topo.pp_rank();
  const int64_t B = cfg.train.batch_size, T = cfg.train.seq_len, M = c.micro_batches;
  const uint64_t seed = 2024;
  auto be_ptr = make_host_backend();
  Backend& be = *be_ptr;

  // The 1-rank reference.
  const StageRange full_range = StageRange::full(mc);
  ParamStore ref(be, transformer_params(mc, full_range), DType::f32);
  ref.init(be, seed);
  const Transformer ref_model(mc, full_range, ref);
  Activations ref_acts = ref_model.alloc_activations(be, B, T);
  Workspace ref_ws = ref_model.alloc_workspace(be, B, T);
  Buffer ids = be.alloc(Shape{B * T}, DType::i32), targets = be.alloc(Shape{B * T}, DType::i32);

  // This rank's chunks.
  const std::vector<StageRange> ranges = pipeline_chunks(mc, cfg.parallel, r);
  ASSERT_EQ(static_cast<int64_t>(ranges.size()), c.virtual_stages);
  std::vector<std::unique_ptr<ParamStore>> stores;
  std::vector<std::unique_ptr<Transformer>> models;
  std::vector<std::vector<Activations>> acts(ranges.size());
  std::vector<Workspace> wss;
  std::vector<PipelineChunk> chunks;
  // DESIGN.md's order: pipeline split → tensor parallel → memory.
  auto shard = [&](std::vector<ParamInfo> ps) {
    return c.tp > 1 ? shard_params_tp(mc, std::move(ps), c.tp, topo.tp_rank()) : ps;
  };
  if (c.shared_store)
    stores.push_back(std::make_unique<ParamStore>(be, shard(rank_params(mc, ranges)), DType::f32));
  else
    for (const StageRange& range : ranges)
      stores.push_back(std::make_unique<ParamStore>(be, shard(chunk_params(mc, range)), DType::f32));
  for (auto& s : stores) s->init(be, seed);
  TensorParallel tensor_parallel(topo.tp(), c.sequence_parallel);
  wss.reserve(ranges.size());  // chunks point into it
  for (size_t j = 0; j < ranges.size(); ++j) {
    ParamStore& store = *stores[c.shared_store ? 0 : j];
    models.push_back(std::make_unique<Transformer>(mc, ranges[j], store));
    if (c.tp > 1) tensor_parallel.install(*models.back());
    wss.push_back(models.back()->alloc_workspace(be, B, T));
    chunks.push_back({models[j].get(), &store, &acts[j], &wss[j]});
  }

  // Coverage: the non-replica slabs of all ranks hold the reference's number of elements
  // (the slab-wise comparisons below check where they sit). Counts go as doubles: the
  // collectives reduce i32/f32/f64, and these are exact.
  double held_numel = 0;
  for (const auto& s : stores)
    for (const ParamInfo& p : s->params()) {
      EXPECT_TRUE(ref.contains(p.name)) << p.name;
      if (!p.replica) held_numel += double(p.numel());
    }
  EXPECT_EQ(topo.world().all_reduce_value(held_numel), double(ref.numel()));

  PipelineSchedule schedule(topo.pp(), cfg.parallel, r, B, T);
  for (int step = 0; step < c.steps; ++step) {
    SCOPED_TRACE(::testing::Message() << "step " << step << ", pp rank " << r);
    std::vector<Tokens> batch;
    int64_t counted = 0;
    for (int64_t m = 0; m < M; ++m) {
      batch.push_back(tokens(step, m, B, T, mc.vocab_size));
      for (int32_t t : batch.back().targets) counted += t >= 0;
    }
    const double scale = 1.0 / double(counted);

    // Reference: gradient accumulation over the micro-batches.
    ref.zero_grads(be);
    LossSum ref_loss;
    for (int64_t m = 0; m < M; ++m) {
      be.copy(ids, host_tensor(batch[size_t(m)].ids.data(), Shape{B * T}, DType::i32));
      be.copy(targets, host_tensor(batch[size_t(m)].targets.data(), Shape{B * T}, DType::i32));
      ref_model.forward(be, ref_acts, ids);
      const LossSum l = ref_model.loss(be, ref_acts, targets);
      ref_loss.sum += l.sum;
      ref_loss.count += l.count;
      ref_model.backward_loss(be, ref_acts, ref_ws, ids, targets, scale);
    }

    // Pipeline.
    for (auto& s : stores) s->zero_grads(be);
    int loads = 0;
    const LossSum got = schedule.run(
        be, chunks,
        [&](int64_t m, const Tensor& i, const Tensor& t) {
          ++loads;
          be.copy(i, host_tensor(batch[size_t(m)].ids.data(), Shape{B * T}, DType::i32));
          be.copy(t, host_tensor(batch[size_t(m)].targets.data(), Shape{B * T}, DType::i32));
        },
        scale);
    if (c.tp > 1)
      for (auto& s : stores) tensor_parallel.sync_grads(be, *s);
    sync_tied_embedding(be, topo, mc, chunks);

    int ends = 0;
    for (const StageRange& range : ranges) ends += range.embedding + range.head;
    EXPECT_EQ(loads, ends * M);  // once per micro-batch on each chunk with embedding/head
    if (!topo.last_stage()) EXPECT_EQ(got.count, 0);
    const double loss_sum = topo.pp().all_reduce_value(got.sum);
    const double loss_count = topo.pp().all_reduce_value(double(got.count));
    EXPECT_EQ(loss_count, double(ref_loss.count));
    EXPECT_NEAR(loss_sum, ref_loss.sum, 1e-5 * std::abs(ref_loss.sum));
    const int pp = topo.layout().pp;
    if (c.virtual_stages == 1) {
      EXPECT_LE(schedule.max_in_flight(), pp);
      // Stage r runs pp - r micro-batches at once; a non-first stage also reserves the slot
      // of the next input it already receives.
      EXPECT_EQ(schedule.max_in_flight(), std::min<int64_t>(pp - r + (r > 0), M));
    }
    for (const auto& s : stores)
      for (const ParamInfo& p : s->params())
        expect_close(to_host(be, s->grad(p.name)), slab_of(to_host(be, ref.grad(p.name)), p),
                     1e-5, "grad " + p.name);

    sgd(be, ref, 0.5f);
    for (const auto& s : stores) sgd(be, *s, 0.5f);
    for (const auto& s : stores)
      for (const ParamInfo& p : s->params())
        expect_close(to_host(be, s->master(p.name)),
                     slab_of(to_host(be, ref.master(p.name)), p), 1e-5, "param " + p.name);
  }

  // Evaluation: forward passes only, on two fresh micro-batches.
  LossSum ref_eval;
  std::vector<Tokens> eval_batch;
  for (int64_t m = 0; m < 2; ++m) {
    eval_batch.push_back(tokens(1000, m, B, T, mc.vocab_size));
    be.copy(ids, host_tensor(eval_batch.back().ids.data(), Shape{B * T}, DType::i32));
    be.copy(targets, host_tensor(eval_batch.back().targets.data(), Shape{B * T}, DType::i32));
    ref_model.forward(be, ref_acts, ids);
    const LossSum l = ref_model.loss(be, ref_acts, targets);
    ref_eval.sum += l.sum;
    ref_eval.count += l.count;
  }
  const LossSum eval = schedule.forward_only(
      be, chunks,
      [&](int64_t m, const Tensor& i, const Tensor& t) {
        be.copy(i, host_tensor(eval_batch[size_t(m)].ids.data(), Shape{B * T}, DType::i32));
        be.copy(t, host_tensor(eval_batch[size_t(m)].targets.data(), Shape{B * T}, DType::i32));
      },
      2);
  EXPECT_EQ(topo.pp().all_reduce_value(double(eval.count)), double(ref_eval.count));
  EXPECT_NEAR(topo.pp().all_reduce_value(eval.sum), ref_eval.sum, 1e-5 * ref_eval.sum);
}

}  // namespace llmpi::pp_test
