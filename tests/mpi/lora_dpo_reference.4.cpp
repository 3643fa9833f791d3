// DPO with LoRA on 4 ranks: the reference pass runs the base with the adapters disabled on
// every rank, pipeline stage, tensor-parallel slab and ZeRO-3 unit. The layout matrix
// (train_lora.4.cpp) computes the reference at step 0, where B = 0 makes disabled and enabled
// adapters alike; here a run under each layout trains 4 steps (the adapters move the policy),
// loses its reference cache and resumes: the recomputed cache must equal the first one, and
// both the cache of a 1-rank run from the same base. Layouts: tp2·pp2 (llama, 2 micro-batches)
// and dp4 ZeRO 3 (the just-in-time unit chain).
#include <gtest/gtest.h>
#include <mpi.h>

#include <cmath>
#include <filesystem>
#include <sstream>

#include "../unit/dpo_fixtures.h"
#include "backend/backend.h"
#include "config/config.h"
#include "data/token_dataset.h"
#include "parallel/engine.h"
#include "parallel/topology.h"
#include "train/dpo_objective.h"
#include "train/reference_logprobs.h"
#include "train/step_rows.h"
#include "train/trainer.h"

using namespace llmpi;
using namespace llmpi::testing;
namespace fs = std::filesystem;

namespace {

int world_rank() {
  int r = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &r);
  return r;
}

// One directory for all ranks (rank 0's), with the pairs written once.
fs::path shared_dir() {
  std::string path;
  if (world_rank() == 0) {
    const fs::path d = dpo_temp_dir("lora_ref4");
    write_pairs(d / "train.bin", 8, 5);
    write_pairs(d / "val.bin", 4, 29);
    path = d.string();
  }
  int n = int(path.size());
  MPI_Bcast(&n, 1, MPI_INT, 0, MPI_COMM_WORLD);
  path.resize(size_t(n));
  MPI_Bcast(path.data(), n, MPI_CHAR, 0, MPI_COMM_WORLD);
  return path;
}

// The cached reference sums of the run `c` describes, read on one rank with `c`'s data and
// reference key (the layout does not enter the key of a full-precision base).
std::vector<ReferenceSplit> cached(Config c) {
  c.parallel = ParallelSection{};
  auto be = make_host_backend();
  const TokenDataset train({c.data.train}, 64), val({c.data.val}, 64);
  const StepRows rows(c, train), val_rows(c, val);
  Topology topo(c, MPI_COMM_SELF);
  ParallelEngine engine(c, topo, *be);
  std::string why;
  const auto want = DpoObjective(c, engine, topo, rows, &val_rows).wanted_splits();
  auto got = read_reference_cache(reference_cache_path(c.run.dir), want, why);
  EXPECT_EQ(why, "") << c.run.dir;
  return got.value_or(std::vector<ReferenceSplit>{});
}


void check_layout(const fs::path& d, const std::string& name, const std::string& parallel) {
  SCOPED_TRACE(name);
  auto be = make_host_backend();
  const Config first = dpo_config(d, name, 4, kDpoLora + parallel);
  {
    std::ostringstream log;
    Trainer(first, *be, MPI_COMM_WORLD, log).run(RunOptions{.write_model = false, .checkpoints = true});
    if (world_rank() == 0)
      EXPECT_NE(log.str().find("reference log-probs: the LoRA base with its adapters disabled"),
                std::string::npos) << log.str();
  }
  std::vector<ReferenceSplit> before;
  if (world_rank() == 0) {
    before = cached(first);
    fs::remove(reference_cache_path(first.run.dir));
  }
  MPI_Barrier(MPI_COMM_WORLD);
  // Resumed at step 4 without the cache: recomputed beside trained adapters, disabled.
  const Config resumed_cfg = dpo_config(d, name, 6, kDpoLora + parallel);
  std::ostringstream log;
  Trainer t(resumed_cfg, *be, MPI_COMM_WORLD, log);
  ASSERT_TRUE(t.resume_latest().has_value());
  const TrainSummary resumed = t.run(RunOptions{.write_model = false, .checkpoints = false});
  ASSERT_EQ(resumed.steps.size(), 2u);
  EXPECT_GT(std::abs(resumed.steps[0].reward_margin), 1e-4) << "the adapters should move the policy";
  if (world_rank() == 0) {
    EXPECT_NE(log.str().find("reference log-probs: written to"), std::string::npos) << log.str();
    const std::vector<ReferenceSplit> after = cached(resumed_cfg);
    expect_same_logprobs(before, after, 1e-6, "recomputed after training");
    // One rank from the same base.
    Config one = dpo_config(d, name + "-1rank", 1, kDpoLora);
    std::ostringstream log1;
    Trainer(one, *be, MPI_COMM_SELF, log1).run(RunOptions{.write_model = false, .checkpoints = false});
    expect_same_logprobs(cached(one), before, 1e-5, "layout vs one rank");
  }
  MPI_Barrier(MPI_COMM_WORLD);
}

}  // namespace

TEST(LoraDpoReference4, RecomputedBesideTrainedAdaptersEqualsTheBase) {
  const fs::path d = shared_dir();
  check_layout(d, "tp2pp2", "[parallel]\ntp = 2\npp = 2\nmicro_batches = 2\n");
  check_layout(d, "zero3", "[parallel]\ndp = 4\nzero_stage = 3\n");
  MPI_Barrier(MPI_COMM_WORLD);
  if (world_rank() == 0) fs::remove_all(d);
}
