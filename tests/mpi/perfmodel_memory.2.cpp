// The performance model's memory arithmetic (bench/perfmodel/memory_model.h) against the
// engine's own start-up memory table on 2 ranks, for every 2-rank layout kind: dp2 under
// ZeRO 0–3 (ZeRO 3 also with 2 micro-batches), tp2 (with and without sequence parallelism), pp2 1F1B and interleaved. The
// persistent bytes (parameters, gradients, AdamW moments) must be equal on the rank the model
// describes (tp rank 0, the last dp rank: the largest shard) and within a shard's tail (< dp
// elements) elsewhere; the ZeRO-2/3 transient peak after a step must not exceed the model's
// bound and reach at least half of it.
#include <gtest/gtest.h>
#include <mpi.h>

#include <sstream>

#include "backend/backend.h"
#include "bench/perfmodel/memory_model.h"
#include "config/config.h"
#include "parallel/engine.h"
#include "parallel/topology.h"

using namespace llmpi;

namespace {

Config layout_config(const std::string& arch, const std::string& parallel, int64_t batch) {
  std::ostringstream t;
  t << "[model]\narch = \"" << arch << "\"\nvocab_size = 64\nn_layer = 4\nn_head = 4\n"
    << (arch == "llama" ? "n_kv_head = 2\nd_ff = 64\n" : "")
    << "d_model = 32\nmax_seq_len = 16\n[train]\nsteps = 1\nbatch_size = " << batch
    << "\nseq_len = 16\n[data]\ntrain = \"unused.bin\"\n[parallel]\n" << parallel;
  return parse_config(t.str(), "perfmodel_memory.toml");
}

perf::Plan plan_of(const Config& c) {
  perf::Plan p;
  p.tp = c.parallel.tp, p.pp = c.parallel.pp, p.dp = c.parallel.dp, p.zero = c.parallel.zero_stage;
  p.micro_batches = c.parallel.micro_batches, p.batch = c.train.batch_size, p.seq_len = c.train.seq_len;
  p.virtual_stages = c.parallel.virtual_stages, p.sp = c.parallel.sequence_parallel;
  return p;
}

}  // namespace

TEST(PerfModelMemory, MatchesTheEngineOnTwoRanks) {
  const std::pair<const char*, int64_t> layouts[] = {
      {"dp = 2\nzero_stage = 0\n", 2}, {"dp = 2\nzero_stage = 1\n", 2},
      {"dp = 2\nzero_stage = 2\n", 2}, {"dp = 2\nzero_stage = 3\n", 2},
      {"dp = 2\nzero_stage = 3\nmicro_batches = 2\n", 1},
      {"tp = 2\n", 2},                 {"tp = 2\nsequence_parallel = true\n", 2},
      {"pp = 2\nmicro_batches = 4\n", 1},
      {"pp = 2\nvirtual_stages = 2\nmicro_batches = 4\n", 1}};
  for (const char* arch : {"gpt2", "llama"})
    for (const auto& [par, batch] : layouts) {
      SCOPED_TRACE(std::string(arch) + ": " + par);
      const Config cfg = layout_config(arch, par, batch);
      Topology topo(cfg, MPI_COMM_WORLD);
      auto be = make_host_backend();
      ParallelEngine eng(cfg, topo, *be);
      const int64_t N = cfg.parallel.micro_batches * batch * 16;
      std::vector<int32_t> ids(static_cast<size_t>(N)), targets(static_cast<size_t>(N));
      for (int64_t i = 0; i < N; ++i) ids[size_t(i)] = int32_t(i % 64), targets[size_t(i)] = int32_t((i * 7) % 64);
      eng.step(ids, targets, 1e-3);
      const EngineMemory e = eng.memory();
      const perf::RankMemory m = perf::rank_memory(cfg.model, plan_of(cfg), Device::host, topo.pp_rank());
      const bool described = topo.tp_rank() == 0 && topo.dp_rank() == topo.layout().dp - 1;
      const double slack = described ? 0.0 : 8.0 * topo.layout().dp;  // a shard's tail, f32 m and v
      EXPECT_NEAR(double(e.params), m.params, slack);
      EXPECT_NEAR(double(e.grads), m.grads, slack);
      EXPECT_NEAR(double(e.optimizer), m.optimizer, slack);
      if (cfg.parallel.zero_stage >= 2) {
        EXPECT_LE(double(e.transient), m.transient);
        EXPECT_GE(double(e.transient), 0.5 * m.transient);
      } else {
        EXPECT_EQ(e.transient, 0);
      }
    }
}
