// ZeRO memory on 4 data-parallel ranks: each rank's persistent bytes for parameters,
// gradients and optimizer state follow the stage's fractions of the P-parameter model
// (f32, 4 bytes each; AdamW keeps m and v):
//   stage 0: params 4P, grads 4P, optimizer 8P
//   stage 1: params 4P, grads 4P, optimizer 8·|shard|        |shard| = P/4 up to the tail
//   stage 2: params 4P, grads 4·|shard|, optimizer 8·|shard|
//   stage 3: params, grads 4·|shard|, optimizer 8·|shard|
// Shards partition the model: their sizes sum to P over the 4 ranks exactly. Stages 2 and 3
// use just-in-time unit buffers (transient > 0, less than the full model); 0 and 1 none.
#include <gtest/gtest.h>
#include <mpi.h>

#include <sstream>

#include "backend/backend.h"
#include "config/config.h"
#include "parallel/engine.h"
#include "parallel/topology.h"

using namespace llmpi;

namespace {

Config zero_config(const std::string& arch, int zero) {
  std::ostringstream t;
  t << "[model]\narch = \"" << arch << "\"\nvocab_size = 64\nn_layer = 3\nn_head = 4\n"
    << (arch == std::string("llama") ? "n_kv_head = 2\nd_ff = 64\n" : "")
    << "d_model = 32\nmax_seq_len = 16\n[train]\nsteps = 1\nbatch_size = 2\nseq_len = 16\n"
    << "[data]\ntrain = \"unused.bin\"\n[parallel]\ndp = 4\nzero_stage = " << zero << "\n";
  return parse_config(t.str(), "zero_memory.toml");
}

int64_t sum_over_ranks(int64_t v) {
  int64_t s = 0;
  MPI_Allreduce(&v, &s, 1, MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD);
  return s;
}

}  // namespace

TEST(ZeroMemory, FractionsPerStage) {
  for (const char* arch : {"gpt2", "llama"}) {
    for (int zero = 0; zero <= 3; ++zero) {
      SCOPED_TRACE(std::string(arch) + " zero " + std::to_string(zero));
      const Config cfg = zero_config(arch, zero);
      Topology topo(cfg, MPI_COMM_WORLD);
      auto be = make_host_backend();
      ParallelEngine eng(cfg, topo, *be);
      // One step so that the transient unit buffers are exercised.
      std::vector<int32_t> ids(32), targets(32);
      for (int i = 0; i < 32; ++i) {
        ids[size_t(i)] = (i * 7 + topo.dp_rank()) % 64;
        targets[size_t(i)] = (i * 5 + 3) % 64;
      }
      eng.step(ids, targets, 1e-3);
      const EngineMemory m = eng.memory();
      const int64_t P = eng.global_param_count(), f = 4, units = cfg.model.n_layer;
      auto expect_shard = [&](int64_t bytes, const char* what) {
        EXPECT_EQ(sum_over_ranks(bytes), 4 * f * P / 4) << what << ": shards partition P";
        EXPECT_NEAR(double(bytes / f), double(P) / 4, double(units * 4)) << what;
      };
      if (zero <= 2) EXPECT_EQ(m.params, f * P);
      else expect_shard(m.params, "params");
      if (zero <= 1) EXPECT_EQ(m.grads, f * P);
      else expect_shard(m.grads, "grads");
      if (zero == 0) EXPECT_EQ(m.optimizer, 2 * f * P);
      else expect_shard(m.optimizer / 2, "optimizer");
      if (zero <= 1) {
        EXPECT_EQ(m.transient, 0);
      } else {
        EXPECT_GT(m.transient, 0);
        EXPECT_LT(m.transient, 2 * f * P) << "a unit at a time, never the whole model twice";
      }
      const std::string table = eng.memory_table();
      if (topo.rank() == 0) EXPECT_NE(table.find("   3 |  0  3  0 |"), std::string::npos) << table;
    }
  }
}
