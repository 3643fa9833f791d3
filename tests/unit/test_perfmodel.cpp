// The performance model's arithmetic (bench/perfmodel/, docs/scaling.md), each against a
// closed form: pipeline makespans and bubble fractions, α-β fits and collective times,
// per-rank parameter counts and activation bytes against the model's own allocations, work
// ratios, layout enumeration, the step model on synthetic profiles, profile classification of
// a real one-rank step, and the JSON forms.
#include <gtest/gtest.h>
#include <mpi.h>

#include <cmath>
#include <sstream>

#include "backend/backend.h"
#include "backend/timing_backend.h"
#include "bench/perfmodel/comm_model.h"
#include "bench/perfmodel/h100_reference.h"
#include "bench/perfmodel/layout_search.h"
#include "bench/perfmodel/memory_model.h"
#include "bench/perfmodel/op_profile.h"
#include "bench/perfmodel/pipeline_sim.h"
#include "bench/perfmodel/step_model.h"
#include "config/config.h"
#include "core/error.h"
#include "model/param_layout.h"
#include "model/transformer.h"
#include "parallel/engine.h"
#include "parallel/pipeline_split.h"
#include "parallel/tensor_parallel.h"
#include "parallel/topology.h"

using namespace llmpi;
using namespace llmpi::perf;

namespace {

ModelConfig small_model(Arch arch, int64_t layers = 4) {
  ModelConfig m;
  m.arch = arch;
  m.vocab_size = 64;
  m.n_layer = layers;
  m.n_head = 4;
  m.n_kv_head = arch == Arch::llama ? 2 : 4;
  m.d_model = 32;
  m.d_ff = arch == Arch::llama ? 48 : 128;
  m.max_seq_len = 16;
  m.tied_embeddings = arch == Arch::gpt2;
  return m;
}

PipeTimes uniform(int64_t pp, int64_t v, double f, double b) {
  PipeTimes t;
  t.fwd.assign(size_t(pp), std::vector<double>(size_t(v), f));
  t.bwd.assign(size_t(pp), std::vector<double>(size_t(v), b));
  return t;
}

// A measured table in which every collective costs α + S·β exactly.
CommTable linear_table(double alpha, double beta) {
  CommTable t;
  t.source = "synthetic";
  t.group = 2;
  for (Coll c : kColls)
    for (double s : {4.0, 4096.0, 4194304.0}) t.points[c].push_back({s, alpha + beta * s});
  return t;
}

}  // namespace

TEST(PerfPipeline, OneFOneBMatchesClosedForm) {
  for (int64_t pp : {2, 3, 4})
    for (int64_t m : {4, 8, 12}) {
      const PipeResult r = simulate_pipeline(pp, 1, m, uniform(pp, 1, 1.0, 2.0));
      EXPECT_NEAR(r.makespan, double(m + pp - 1) * 3.0, 1e-9) << "pp " << pp << " m " << m;
      // Each rank computes m·(f+b); the rest of the makespan is the bubble.
      EXPECT_NEAR(r.busy[0], double(m) * 3.0, 1e-9);
      EXPECT_NEAR((r.makespan - r.busy[0]) / r.busy[0], bubble_fraction_1f1b(pp, m), 1e-9);
    }
}

TEST(PerfPipeline, InterleavedMatchesClosedForm) {
  for (int64_t pp : {2, 4})
    for (int64_t v : {2, 3})
      for (int64_t m : {pp, 2 * pp, 4 * pp}) {
        const PipeResult r = simulate_pipeline(pp, v, m, uniform(pp, v, 0.5, 1.0));
        const double per_chunk = 1.5;
        EXPECT_NEAR(r.makespan, double(m * v + pp - 1) * per_chunk, 1e-9)
            << "pp " << pp << " v " << v << " m " << m;
        EXPECT_NEAR((r.makespan - r.busy[0]) / r.busy[0], bubble_fraction_interleaved(pp, v, m), 1e-9);
      }
}

TEST(PerfPipeline, MessagesAndSlowStagesLengthenIt) {
  PipeTimes t = uniform(2, 1, 1.0, 2.0);
  const double base = simulate_pipeline(2, 1, 4, t).makespan;
  t.message_s = 0.25;
  // 1F1B on 2 stages, m = 4, f = 1, b = 2 (worked by hand): rank 0 waits for every
  // backward's round trip; 4 messages lie on the critical path (F0→, ←B0, ←B2, ←B3).
  EXPECT_NEAR(simulate_pipeline(2, 1, 4, t).makespan, base + 4 * 0.25, 1e-9);
  t.message_s = 0;
  t.fwd[1][0] = 2.0;  // the last stage forwards twice as slowly: it bounds the steady state
  EXPECT_NEAR(simulate_pipeline(2, 1, 4, t).makespan, 1.0 + 4 * (2.0 + 2.0) + 2.0, 1e-9);
}

TEST(PerfComm, AlphaBetaFitRecoversALine) {
  std::vector<CommPoint> pts;
  for (double s = 4; s <= 1 << 24; s *= 4) pts.push_back({s, 3e-6 + s * 2e-10});
  const AlphaBeta f = fit_alpha_beta(pts);
  EXPECT_NEAR(f.alpha, 3e-6, 1e-12);
  EXPECT_NEAR(f.beta, 2e-10, 1e-16);
  EXPECT_LT(f.max_rel, 1e-9);
}

TEST(PerfComm, AlphaBetaFitStaysPhysical) {
  // Times that fall with size (noise) would give β < 0: the fit keeps β = 0 and α = the
  // weighted mean; a zero-latency line keeps α = 0.
  const std::vector<CommPoint> falling = {{4, 2e-6}, {4096, 1e-6}};
  const AlphaBeta f = fit_alpha_beta(falling);
  EXPECT_EQ(f.beta, 0.0);
  EXPECT_GT(f.alpha, 1e-6);
  EXPECT_LT(f.alpha, 2e-6);
  const std::vector<CommPoint> through_zero = {{1000, 1e-6}, {2000, 2.1e-6}, {4000, 4.4e-6}};
  const AlphaBeta g = fit_alpha_beta(through_zero);
  EXPECT_GE(g.alpha, 0.0);
  EXPECT_GT(g.beta, 0.0);
}

TEST(PerfComm, TableInterpolatesPiecewiseLinearly) {
  CommTable t;
  t.source = "test";
  t.group = 2;
  t.points[Coll::all_reduce] = {{100, 1.0}, {200, 3.0}, {400, 4.0}};
  EXPECT_DOUBLE_EQ(t.seconds(Coll::all_reduce, 50, 2), 1.0);    // below: the smallest point
  EXPECT_DOUBLE_EQ(t.seconds(Coll::all_reduce, 150, 2), 2.0);   // inside a segment
  EXPECT_DOUBLE_EQ(t.seconds(Coll::all_reduce, 300, 2), 3.5);
  EXPECT_DOUBLE_EQ(t.seconds(Coll::all_reduce, 800, 2), 6.0);   // beyond: the last slope
  EXPECT_DOUBLE_EQ(t.seconds(Coll::all_reduce, 800, 1), 0.0);   // a group of one
  EXPECT_THROW(t.seconds(Coll::all_reduce, 800, 4), InternalError);
  EXPECT_THROW(t.seconds(Coll::broadcast, 800, 2), InternalError);
}

TEST(PerfComm, LinkFormulasAndNodeSpans) {
  const Link l{1e-6, 100e9};
  const double S = 8e6;
  EXPECT_NEAR(link_seconds(Coll::all_reduce, S, 8, l), 2 * 3 * 1e-6 + 2 * 7.0 / 8 * S / 100e9, 1e-15);
  EXPECT_NEAR(link_seconds(Coll::all_gather, S, 4, l), 2 * 1e-6 + 3.0 / 4 * S / 100e9, 1e-15);
  EXPECT_NEAR(link_seconds(Coll::reduce_scatter, S, 2, l), 1e-6 + 0.5 * S / 100e9, 1e-15);
  EXPECT_NEAR(link_seconds(Coll::broadcast, S, 4, l), 2e-6 + S / 100e9, 1e-15);
  EXPECT_NEAR(link_seconds(Coll::p2p, S, 2, l), 1e-6 + S / 100e9, 1e-15);
  const Cluster k{8, {1e-6, 400e9}, {5e-6, 40e9}};
  EXPECT_FALSE((GroupSpan{8, 1}).crosses_nodes(8));  // tp 8 in one node
  EXPECT_TRUE((GroupSpan{2, 8}).crosses_nodes(8));   // dp over nodes behind tp 8
  EXPECT_FALSE((GroupSpan{4, 2}).crosses_nodes(8));  // dp 4 behind tp 2: ranks 0,2,4,6
  EXPECT_TRUE((GroupSpan{8, 2}).crosses_nodes(8));
  EXPECT_DOUBLE_EQ(cluster_seconds(Coll::all_reduce, S, {8, 1}, k), link_seconds(Coll::all_reduce, S, 8, k.intra));
  EXPECT_DOUBLE_EQ(cluster_seconds(Coll::all_reduce, S, {2, 8}, k), link_seconds(Coll::all_reduce, S, 2, k.inter));
  EXPECT_DOUBLE_EQ(cluster_seconds(Coll::all_reduce, S, {1, 8}, k), 0.0);
  EXPECT_DOUBLE_EQ(cluster_seconds(Coll::p2p, S, {2, 16}, k), link_seconds(Coll::p2p, S, 2, k.inter));
  EXPECT_DOUBLE_EQ(cluster_seconds(Coll::p2p, S, {2, 4}, k), link_seconds(Coll::p2p, S, 2, k.intra));
}

TEST(PerfComm, JsonRoundTripAndErrors) {
  const CommTable t = linear_table(1e-6, 1e-9);
  const CommTable back = comm_from_json(to_json(t), "t.json");
  EXPECT_EQ(back.group, 2);
  for (Coll c : kColls) ASSERT_EQ(back.points.at(c).size(), 3u);
  EXPECT_DOUBLE_EQ(back.seconds(Coll::p2p, 4096, 2), t.seconds(Coll::p2p, 4096, 2));
  try {
    comm_from_json(R"({"source": "x", "group": 2, "collectives": {"all_scatter": {"points": []}}})", "bad.json");
    FAIL() << "an unknown collective was accepted";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("all_scatter"), std::string::npos) << e.what();
  }
  EXPECT_THROW(comm_from_json("{", "broken.json"), UserError);
  EXPECT_THROW(comm_from_json(R"({"source": "x", "group": 1, "collectives": {}})", "g.json"), UserError);
}

TEST(PerfWork, ScalesByTokensTensorParallelismAndSequenceParallelism) {
  const ModelConfig m = small_model(Arch::llama);
  const WorkShape a{m, 2, 16, 1, false}, b{m, 4, 16, 2, false}, c{m, 2, 16, 2, true};
  EXPECT_DOUBLE_EQ(work(OpClass::matmul, Role::mlp_up, a), 2.0 * 32 * 32 * 96);
  EXPECT_DOUBLE_EQ(work(OpClass::matmul, Role::mlp_up, b), work(OpClass::matmul, Role::mlp_up, a));
  EXPECT_DOUBLE_EQ(work(OpClass::attention, Role::none, a), 2.0 * 4 * 16 * 16 * 8);
  EXPECT_DOUBLE_EQ(work(OpClass::row, Role::none, b), 2 * work(OpClass::row, Role::none, a));  // no sp
  EXPECT_DOUBLE_EQ(work(OpClass::row, Role::none, c), work(OpClass::row, Role::none, a) / 2);
  EXPECT_DOUBLE_EQ(work(OpClass::loss, Role::none, c), work(OpClass::loss, Role::none, a) / 2);
  EXPECT_DOUBLE_EQ(work(OpClass::embedding, Role::none, c), work(OpClass::embedding, Role::none, a));
  EXPECT_EQ(role_of("linear_forward", "32x48", m), Role::mlp_down);
  EXPECT_EQ(role_of("linear_backward", "96x32", m), Role::mlp_up);
  EXPECT_EQ(role_of("linear_forward", "64x32", m), Role::head);
  EXPECT_THROW(role_of("linear_forward", "7x7", m), InternalError);
}

TEST(PerfPlan, FlopsPerTokenClosedForm) {
  const ModelConfig m = small_model(Arch::gpt2);
  const double C = 32, F = 128, V = 64, L = 4, T = 16;
  EXPECT_DOUBLE_EQ(model_flops_per_token(m, 16), 6 * (L * (4 * C * C + 2 * C * F) + C * V) + 6 * L * T * C);
}

TEST(PerfMemory, RankParamsAreTheEnginesSlabs) {
  for (Arch arch : {Arch::gpt2, Arch::llama})
    for (int64_t tp : {1, 2})
      for (int64_t pp : {1, 2})
        for (int64_t v : {1, 2}) {
          if (v > 1 && pp == 1) continue;
          const ModelConfig m = small_model(arch);
          Plan p;
          p.tp = tp, p.pp = pp, p.virtual_stages = v, p.micro_batches = 2, p.batch = 2, p.seq_len = 16;
          const Config cfg = plan_config(m, p);
          for (int64_t r = 0; r < pp; ++r) {
            const std::vector<StageRange> chunks =
                pp > 1 ? pipeline_chunks(m, cfg.parallel, int(r)) : std::vector<StageRange>{StageRange::full(m)};
            std::vector<ParamInfo> ps = rank_params(m, chunks);
            if (tp > 1) ps = shard_params_tp(m, std::move(ps), int(tp), 0);
            int64_t n = 0;
            for (const ParamInfo& q : ps) n += q.numel();
            EXPECT_EQ(chunk_params_local(m, p, chunks), n)
                << arch_name(arch) << " tp " << tp << " pp " << pp << " v " << v << " rank " << r;
            EXPECT_EQ(rank_memory(m, p, Device::host, r).rank_params, n);
          }
        }
}

TEST(PerfMemory, ZeroStagesShardAsTheEngineDoes) {
  const ModelConfig m = small_model(Arch::llama, 3);
  int64_t P = 0;
  for (const ParamInfo& q : transformer_params(m, StageRange::full(m))) P += q.numel();
  Plan p;
  p.dp = 4, p.batch = 2, p.seq_len = 16;
  const int64_t shard = ShardRange::of(P, 4, 3).size();
  p.zero = 0;
  RankMemory r = rank_memory(m, p, Device::host, 0);
  EXPECT_EQ(r.params, 4.0 * P);
  EXPECT_EQ(r.optimizer, 8.0 * P);
  p.zero = 1;
  r = rank_memory(m, p, Device::host, 0);
  EXPECT_EQ(r.grads, 4.0 * P);
  EXPECT_EQ(r.optimizer, 8.0 * shard);
  // ZeRO 2/3: each unit's owned group is sharded on its own; the shards still cover P once.
  p.zero = 3;
  r = rank_memory(m, p, Device::host, 0);
  const UnitSizes us = unit_sizes(m, p);
  int64_t owned = 0, sh = 0;
  for (int64_t g : us.group) owned += g, sh += ShardRange::of(g, 4, 3).size();
  EXPECT_EQ(owned, P);
  EXPECT_EQ(r.params, 4.0 * sh);
  EXPECT_EQ(r.grads, 4.0 * sh);
  EXPECT_GT(r.transient, 0.0);
  p.zero = 2;
  EXPECT_EQ(rank_memory(m, p, Device::host, 0).params, 4.0 * P);
  EXPECT_EQ(rank_memory(m, p, Device::cuda, 0).compute_copy, 0.0);  // units: bf16 copy is transient
  p.zero = 1;
  EXPECT_EQ(rank_memory(m, p, Device::cuda, 0).compute_copy, 2.0 * P);
}

TEST(PerfMemory, ActivationBytesAreTheModelsAllocations) {
  auto be = make_host_backend();
  for (Arch arch : {Arch::gpt2, Arch::llama})
    for (Recompute rc : {Recompute::none, Recompute::selective, Recompute::full}) {
      ModelConfig m = small_model(arch, 3);
      m.recompute = rc;
      ParamStore store(*be, transformer_params(m, StageRange::full(m)), DType::f32);
      Transformer model(m, StageRange::full(m), store);
      const Activations a = model.alloc_activations(*be, 2, 16);
      Plan p;
      p.batch = 2, p.seq_len = 16, p.recompute = rc;
      EXPECT_EQ(chunk_activation_bytes(m, p, Device::host, 3, true, true), double(activation_bytes(a)))
          << arch_name(arch) << " " << recompute_name(rc);
      EXPECT_EQ(chunk_shared_bytes(m, p, Device::host), double(recompute_shared_bytes(a)));
    }
}

TEST(PerfSearch, EnumeratesOnlyWholeLayouts) {
  EXPECT_EQ(divisors(12), (std::vector<int64_t>{1, 2, 3, 4, 6, 12}));
  const ModelConfig m = small_model(Arch::llama, 4);
  SearchSpace s;
  s.batch = {1, 2};
  const std::vector<Plan> plans = enumerate_plans(m, 8, 8, 16, 16, s);
  ASSERT_FALSE(plans.empty());
  bool saw_interleaved = false, saw_zero3 = false;
  for (const Plan& p : plans) {
    EXPECT_EQ(p.world(), 8);
    EXPECT_EQ(p.global_sequences(), 16);
    EXPECT_FALSE(p.zero >= 2 && p.pp > 1) << p.str();
    EXPECT_FALSE(p.sp && p.tp == 1) << p.str();
    if (p.virtual_stages > 1) {
      saw_interleaved = true;
      EXPECT_EQ(p.micro_batches % p.pp, 0) << p.str();
      EXPECT_LE(p.pp * p.virtual_stages, m.n_layer) << p.str();
    }
    saw_zero3 |= p.zero == 3;
  }
  EXPECT_TRUE(saw_interleaved);
  EXPECT_TRUE(saw_zero3);
  // tp 8 of a 4-head model is refused by the engine's own rules.
  Plan bad;
  bad.tp = 8, bad.batch = 2, bad.seq_len = 16;
  EXPECT_FALSE(plan_problems(m, bad).empty());
}

TEST(PerfStep, SyntheticProfileScalesAsTheClosedForm) {
  // A profile whose only op is a block GEMM of 1 ms per layer forward and 2 ms backward.
  OpProfile prof;
  prof.source = "synthetic";
  prof.device = "host";
  prof.model = small_model(Arch::llama, 4);
  prof.B = 2, prof.T = 16, prof.params = 1000, prof.copy_gbs = 1, prof.fresh_gbs = 1;
  prof.rows.push_back({Phase::block_fwd, "linear_forward", "96x32", OpClass::matmul, Role::mlp_up, 4, 4.0, 0, 0});
  prof.rows.push_back({Phase::block_bwd, "linear_backward", "96x32", OpClass::matmul, Role::mlp_up, 4, 8.0, 0, 0});
  const CommCost free_comm(linear_table(1e-12, 0));
  Plan p;
  p.batch = 2, p.seq_len = 16, p.micro_batches = 3;
  const ModelOptions o;
  EXPECT_NEAR(predict_step(prof.model, p, prof, free_comm, o).total_s, 3 * 12e-3, 1e-9);
  p.tp = 2;  // half the GEMM per rank; 4 all-reduces per layer and micro-batch at ~0
  EXPECT_NEAR(predict_step(prof.model, p, prof, free_comm, o).total_s, 3 * 6e-3, 1e-6);
  p.tp = 1, p.pp = 2, p.micro_batches = 4;  // 2 layers per stage: (m + p - 1)·(f + b)
  EXPECT_NEAR(predict_step(prof.model, p, prof, free_comm, o).total_s, (4 + 1) * 6e-3, 1e-6);
  p.pp = 1, p.micro_batches = 1, p.recompute = Recompute::full;  // + the block forward again
  EXPECT_NEAR(predict_step(prof.model, p, prof, free_comm, o).total_s, 16e-3, 1e-9);
  // Exposed data-parallel all-reduce: ZeRO 0 buckets of the 1000... parameters of the model.
  const CommCost ar(linear_table(1e-3, 0));
  p.recompute = Recompute::none, p.dp = 2;
  const StepPrediction d = predict_step(prof.model, p, prof, ar, o);
  EXPECT_NEAR(d.dp_comm_s, 1e-3, 1e-12);  // one bucket (fewer than 2^20 parameters)
  // Two ranks time-sharing one core: every part twice as long; a core per rank: unchanged.
  ModelOptions shared;
  shared.host_cores = 1;
  EXPECT_NEAR(predict_step(prof.model, p, prof, ar, shared).total_s, 2 * d.total_s, 1e-12);
  shared.host_cores = 2;
  EXPECT_NEAR(predict_step(prof.model, p, prof, ar, shared).total_s, d.total_s, 1e-12);
  Plan bad = p;
  bad.tp = 3;  // does not divide the 4 heads: the engine's rules refuse it
  EXPECT_THROW(predict_step(prof.model, bad, prof, free_comm, o), UserError);
}

TEST(PerfProfile, ClassifiesARealStep) {
  const Config cfg = parse_config(
      "[model]\narch = \"gpt2\"\nvocab_size = 64\nn_layer = 3\nn_head = 4\nd_model = 32\nmax_seq_len = 16\n"
      "[train]\nsteps = 1\nbatch_size = 2\nseq_len = 16\n[data]\ntrain = \"unused.bin\"\n",
      "profile.toml");
  Topology topo(cfg, MPI_COMM_SELF);
  auto be = make_host_backend();
  HostOpClock clock(*be);
  TimingBackend tb(*be, clock);
  ParallelEngine eng(cfg, topo, tb);
  std::vector<int32_t> ids(32), targets(32);
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = int32_t(i % 64), targets[i] = int32_t((i + 1) % 64);
  eng.step(ids, targets, 1e-3);
  tb.clear();
  eng.step(ids, targets, 1e-3);
  const std::vector<OpRecord> records = tb.records();
  const std::vector<ProfileRow> rows = classify(records, cfg.model);
  auto calls = [&](Phase ph, const std::string& op, Role r) {
    int64_t n = 0;
    for (const ProfileRow& x : rows)
      if (x.phase == ph && x.op == op && x.role == r) n += x.calls;
    return n;
  };
  // With LLMPI_FUSED (the default) the MLP's GELU rides in its linears and the residual adds
  // in the norms: each op counts under its plain or its fused name.
  auto both = [&](Phase ph, const std::string& op, const std::string& fused, Role r) {
    return calls(ph, op, r) + calls(ph, fused, r);
  };
  for (Role r : {Role::qkv, Role::attn_out, Role::mlp_up, Role::mlp_down}) {
    EXPECT_EQ(both(Phase::block_fwd, "linear_forward", "linear_gelu_forward", r), 3) << role_name(r);
    EXPECT_EQ(both(Phase::block_bwd, "linear_backward", "linear_backward_gelu", r), 3) << role_name(r);
  }
  EXPECT_EQ(both(Phase::block_fwd, "norm_forward", "add_norm_forward", Role::none), 6);
  EXPECT_EQ(both(Phase::head_fwd, "norm_forward", "add_norm_forward", Role::none), 1);
  EXPECT_EQ(both(Phase::head_bwd, "norm_backward", "norm_backward_add", Role::none), 1);
  EXPECT_EQ(both(Phase::block_bwd, "norm_backward", "norm_backward_add", Role::none), 6);
  EXPECT_EQ(calls(Phase::head_fwd, "linear_forward", Role::head), 1);
  EXPECT_EQ(calls(Phase::head_bwd, "linear_backward", Role::head), 1);
  EXPECT_EQ(calls(Phase::embed_fwd, "embedding_forward", Role::none), 2);  // tokens + positions
  EXPECT_EQ(calls(Phase::embed_bwd, "embedding_backward", Role::none), 2);
  EXPECT_EQ(calls(Phase::step, "adamw_update", Role::none), 1);
  EXPECT_EQ(calls(Phase::block_fwd, "attention_forward", Role::none), 3);
  // Round trip through JSON.
  OpProfile p;
  p.source = "test", p.device = "host", p.model = cfg.model, p.B = 2, p.T = 16;
  p.params = eng.global_param_count(), p.copy_gbs = 1, p.fresh_gbs = 1, p.rows = rows;
  const OpProfile back = profile_from_json(to_json(p), "p.json");
  ASSERT_EQ(back.rows.size(), rows.size());
  EXPECT_DOUBLE_EQ(back.total_ms(), p.total_ms());
  EXPECT_EQ(back.model.d_model, p.model.d_model);
  EXPECT_EQ(back.model.n_layer, p.model.n_layer);
  EXPECT_EQ(back.model.kv_heads(), p.model.kv_heads());
  // Records that are not a step are refused.
  const std::vector<OpRecord> partial(records.begin(), records.begin() + 5);
  EXPECT_THROW(classify(partial, cfg.model), InternalError);
  try {
    profile_from_json(R"({"source": "x", "device": "host"})", "short.json");
    FAIL() << "a profile without a model was accepted";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("'model'"), std::string::npos) << e.what();
  }
}

TEST(PerfReference, H100ProfileReproducesTheMeasuredStep) {
  // docs/performance.md: TinyLlama shape, B = 8, T = 2048, one H100: 235.9 ms per step
  // (69,468 tokens/s) with 237.4 ms of ops.
  const OpProfile prof = h100_reference_profile();
  EXPECT_NEAR(prof.total_ms(), 237.4, 237.4 * 0.02);
  Plan p;
  p.batch = 8, p.seq_len = 2048;
  ModelOptions o;
  o.device = Device::cuda;
  o.peak_flops = kH100Bf16Dense;
  const StepPrediction r = predict_step(prof.model, p, prof, CommCost(h100_cluster()), o);
  EXPECT_NEAR(r.tokens_per_s, 69468, 69468 * 0.03);
  EXPECT_NEAR(r.mfu, 0.475, 0.02);
}

TEST(PerfReference, Llama70bPresetIsTheLlama2Shape) {
  const Config c = load_config(std::string(LLMPI_SOURCE_DIR) + "/configs/llama-70b.toml");
  int64_t P = 0;
  for (const ParamInfo& q : transformer_params(c.model, StageRange::full(c.model))) P += q.numel();
  // 80 · (q, o 8192² + k, v 1024·8192 + SwiGLU 3·8192·28672 + 2 norms) + 2 · 32000·8192 + 8192
  EXPECT_EQ(P, 80 * (2 * 8192LL * 8192 + 2 * 1024LL * 8192 + 3 * 8192LL * 28672 + 2 * 8192) +
                   2 * 32000LL * 8192 + 8192);
  EXPECT_EQ(P, 68976648192LL);  // Llama-2-70B
  const int64_t world = c.parallel.tp * c.parallel.pp * c.parallel.dp;
  EXPECT_EQ(validate_layout(c, int(world)), "");
  EXPECT_EQ(c.parallel.dp * c.parallel.micro_batches * c.train.batch_size * c.train.seq_len,
            int64_t{1024} * 4096);  // the projections' global batch: 4M tokens (Llama 2)
}
