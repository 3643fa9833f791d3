// CUDA graphs in training ([train] cuda_graphs, parallel/step_graphs.h) through the whole
// engine on the deterministic CUDA backend: a run whose micro-batch passes are replayed from
// recordings ends with the same bits as the same run op by op — losses, gradient norms and
// master weights — for GPT-2, Llama and Llama with LoRA adapters, while the batches change at
// every step, a step with masked targets (another loss scale) runs its backward eagerly, and
// switching LoRA's adapters off and on (DPO's reference pass) drops the recordings.
#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "backend/cuda/cuda_backend.h"
#include "parallel/engine.h"
#include "parallel/topology.h"
#include "model_fixtures.h"  // tests/cuda

namespace llmpi {
namespace {

using cuda_test::read;
using cuda_test::small_config;
using cuda_test::synthetic_batch;

struct GraphCase {
  std::string name;
  Arch arch;
  int64_t lora_rank;
};

constexpr int64_t kB = 2, kT = 64, kM = 2, kSteps = 6;
constexpr int64_t kMaskedStep = 3;  // its targets partly -1: a loss scale of its own
constexpr int64_t kToggleAfter = 4;  // LoRA: adapters off for an eval, then on, after this step

Config graph_config(const GraphCase& c, CudaGraphs graphs) {
  Config cfg;
  cfg.model = small_config(c.arch);
  cfg.train.batch_size = kB;
  cfg.train.seq_len = kT;
  cfg.train.steps = kSteps;
  cfg.train.cuda_graphs = graphs;
  cfg.parallel.micro_batches = kM;
  cfg.lora.rank = c.lora_rank;
  return cfg;
}

struct RunResult {
  std::vector<double> losses, norms, initial, master;
  int64_t replays = 0;
};

RunResult train(const GraphCase& c, CudaGraphs graphs, Backend& be) {
  const Config cfg = graph_config(c, graphs);
  Topology topo(cfg);
  ParallelEngine engine(cfg, topo, be);
  RunResult r;
  r.initial = read(be, engine.gathered_params().master());
  std::vector<int32_t> ids, targets, micro_ids, micro_targets;
  for (int64_t step = 1; step <= kSteps; ++step) {
    ids.clear();
    targets.clear();
    for (int64_t m = 0; m < kM; ++m) {
      synthetic_batch(micro_ids, micro_targets, kB, kT, cfg.model.vocab_size, uint64_t(step * kM + m));
      ids.insert(ids.end(), micro_ids.begin(), micro_ids.end());
      targets.insert(targets.end(), micro_targets.begin(), micro_targets.end());
    }
    if (step == kMaskedStep)
      for (size_t i = 0; i < targets.size(); i += 3) targets[i] = -1;
    const StepStats s = engine.step(ids, targets, 1e-3);
    EXPECT_TRUE(s.applied) << "step " << step;
    r.losses.push_back(s.loss);
    r.norms.push_back(s.grad_norm);
    if (c.lora_rank > 0 && step == kToggleAfter) {
      engine.set_adapters_enabled(false);
      r.losses.push_back(engine.eval(micro_ids, micro_targets).sum);
      engine.set_adapters_enabled(true);
    }
  }
  r.master = read(be, engine.gathered_params().master());
  r.replays = engine.graph_replays();
  EXPECT_NE(engine.graphs_summary().find(graphs == CudaGraphs::off ? "off" : "on"), std::string::npos)
      << engine.graphs_summary();
  return r;
}

size_t differing(const std::vector<double>& a, const std::vector<double>& b) {
  size_t n = a.size() == b.size() ? 0 : std::max(a.size(), b.size());
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i)
    n += std::memcmp(&a[i], &b[i], sizeof(double)) != 0;
  return n;
}

class CudaGraphsTraining : public ::testing::TestWithParam<GraphCase> {};

TEST_P(CudaGraphsTraining, ReplayedStepsEqualEagerStepsBitwise) {
  const GraphCase& c = GetParam();
  CudaBackendOptions o = CudaBackendOptions::from_env();
  o.deterministic = true;
  auto be = make_cuda_backend(o);
  const RunResult eager = train(c, CudaGraphs::off, *be);
  const RunResult graphed = train(c, CudaGraphs::on, *be);

  EXPECT_EQ(differing(eager.losses, graphed.losses), 0u) << "losses";
  EXPECT_EQ(differing(eager.norms, graphed.norms), 0u) << "gradient norms";
  EXPECT_EQ(differing(eager.master, graphed.master), 0u) << "of " << eager.master.size() << " master weights";
  EXPECT_GT(differing(eager.initial, eager.master), 0u) << "the steps updated the weights";
  if (c.lora_rank == 0) {
    EXPECT_LT(eager.losses.back(), eager.losses.front()) << "the runs learn";
  }

  // Expected replays: a pass runs eagerly once (warm-up), is recorded at its second run and
  // replayed from then on; the masked step's backward runs eagerly (another scale), and
  // switching the adapters drops both recordings (LoRA: warm-up and recording again).
  const int64_t passes = kSteps * kM;
  int64_t fwd = passes - 1, bwd = passes - 1 - kM;
  if (c.lora_rank > 0) {  // the first passes after the toggle run eagerly again
    fwd -= 1;
    bwd -= 1;
  }
  EXPECT_EQ(eager.replays, 0);
  EXPECT_EQ(graphed.replays, fwd + bwd);
}

INSTANTIATE_TEST_SUITE_P(Models, CudaGraphsTraining,
                         ::testing::Values(GraphCase{"gpt2", Arch::gpt2, 0},
                                           GraphCase{"llama", Arch::llama, 0},
                                           GraphCase{"llama_lora", Arch::llama, 4}),
                         [](const auto& info) { return info.param.name; });

// The rule's reasons: the host backend and more than one rank are refused; zero_stage 2 and
// 3 (the unit path) too; "on" where the rule refuses is a UserError naming the key.
TEST(CudaGraphsRule, BlockersNameTheirReason) {
  Config cfg = graph_config(GraphCase{"gpt2", Arch::gpt2, 0}, CudaGraphs::on);
  auto be = make_cuda_backend(CudaBackendOptions::from_env());
  Layout one;
  EXPECT_EQ(step_graphs_blocker(cfg, one, *be), "");
  Layout two;
  two.dp = 2;
  EXPECT_NE(step_graphs_blocker(cfg, two, *be).find("2 ranks"), std::string::npos);
  cfg.parallel.zero_stage = 3;
  EXPECT_NE(step_graphs_blocker(cfg, one, *be).find("zero_stage 3"), std::string::npos);
  Topology topo(cfg);
  try {
    ParallelEngine engine(cfg, topo, *be);
    ADD_FAILURE() << "cuda_graphs = \"on\" with zero_stage 3 was accepted";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("cuda_graphs = \"on\""), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace llmpi
