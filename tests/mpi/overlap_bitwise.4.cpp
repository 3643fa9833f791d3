// The overlapped data-parallel gradient reduction (parallel/grad_reducer.h) against the same
// engine with parallel.overlap_grad_reduce = false, on 4 ranks over the layouts with dp > 1
// that ZeroStore runs: dp4 under ZeRO 0 and 1, dp2 × tp2 (with and without sequence
// parallelism), dp2 × pp2 (1F1B, interleaved, ZeRO 0/1/2), with gradient accumulation, for
// the GPT-2 (tied) and Llama shapes. Three steps each: every loss and gradient norm and
// every parameter of every rank must be BITWISE equal, and the step's communication split
// consistent (exposed ≤ total ≤ step). When buckets start: tests/unit/test_grad_reducer.cpp.
#include <gtest/gtest.h>
#include <mpi.h>

#include <cmath>
#include <cstring>
#include <sstream>
#include <vector>

#include "backend/backend.h"
#include "config/config.h"
#include "parallel/engine.h"
#include "parallel/topology.h"

using namespace llmpi;

namespace {

Config layout_config(const std::string& arch, const std::string& parallel, bool overlap) {
  std::ostringstream t;
  t << "[model]\narch = \"" << arch << "\"\nvocab_size = 64\nn_layer = 4\nn_head = 4\n"
    << (arch == "llama" ? "n_kv_head = 2\nd_ff = 64\n" : "")
    << "d_model = 32\nmax_seq_len = 16\n[train]\nsteps = 3\nbatch_size = 2\nseq_len = 16\n"
    << "[data]\ntrain = \"unused.bin\"\n[parallel]\n" << parallel
    << "grad_bucket_elems = 3000\noverlap_grad_reduce = " << (overlap ? "true" : "false") << "\n";
  return parse_config(t.str(), "overlap_bitwise.toml");
}

struct Trained {
  std::vector<double> losses, norms;
  std::vector<char> params;
  double exposed_s = 0, total_s = 0;
};

Trained train(const Config& cfg) {
  Topology topo(cfg, MPI_COMM_WORLD);
  auto be = make_host_backend();
  ParallelEngine eng(cfg, topo, *be);
  const int64_t N = cfg.parallel.micro_batches * cfg.train.batch_size * cfg.train.seq_len;
  std::vector<int32_t> ids(static_cast<size_t>(N)), targets(static_cast<size_t>(N));
  Trained r;
  for (int step = 0; step < 3; ++step) {
    for (int64_t i = 0; i < N; ++i) {
      const int64_t k = i + N * (step * 4 + topo.dp_rank());
      ids[size_t(i)] = int32_t((k * 13 + 5) % 64), targets[size_t(i)] = int32_t((k * 7 + 3) % 64);
    }
    const StepStats s = eng.step(ids, targets, 1e-2);
    r.losses.push_back(s.loss);
    r.norms.push_back(s.grad_norm);
    r.exposed_s += s.times.comm_exposed_s, r.total_s += s.times.comm_total_s;
    // One time split: the phases and the exposed communication make up the step.
    const StepTimes& t = s.times;
    EXPECT_TRUE(t.comm_measured);
    EXPECT_EQ(std::isnan(t.backward_s), cfg.parallel.pp > 1);  // pp: the schedule is forward
    const double phases = t.forward_s + (std::isnan(t.backward_s) ? 0.0 : t.backward_s) + t.optimizer_s;
    EXPECT_NEAR(phases + t.comm_exposed_s, t.step_s, 1e-9);
    EXPECT_GE(t.forward_s, 0.0);
    EXPECT_GE(t.optimizer_s, 0.0);
    EXPECT_GE(t.step_s, t.comm_exposed_s);
  }
  const Tensor& p = eng.gathered_params().master();
  const char* b = static_cast<const char*>(p.data);
  r.params.assign(b, b + p.bytes());
  return r;
}

}  // namespace

TEST(OverlapBitwise, EqualsTheUnoverlappedEngineOnEveryLayout) {
  const char* layouts[] = {
      "dp = 4\n",
      "dp = 4\nzero_stage = 1\nmicro_batches = 2\n",
      "dp = 2\ntp = 2\nmicro_batches = 2\n",
      "dp = 2\ntp = 2\nsequence_parallel = true\nzero_stage = 1\n",
      "dp = 2\npp = 2\nmicro_batches = 2\n",
      "dp = 2\npp = 2\nvirtual_stages = 2\nmicro_batches = 4\nzero_stage = 1\n",
      "dp = 2\npp = 2\nmicro_batches = 2\nzero_stage = 2\n",
  };
  for (const char* arch : {"gpt2", "llama"})
    for (const char* par : layouts) {
      SCOPED_TRACE(std::string(arch) + ": " + par);
      const Trained off = train(layout_config(arch, par, false));
      const Trained on = train(layout_config(arch, par, true));
      ASSERT_EQ(on.losses.size(), off.losses.size());
      for (size_t i = 0; i < on.losses.size(); ++i) {
        EXPECT_EQ(on.losses[i], off.losses[i]) << "step " << i;
        EXPECT_EQ(on.norms[i], off.norms[i]) << "step " << i;
      }
      ASSERT_EQ(on.params.size(), off.params.size());
      EXPECT_EQ(std::memcmp(on.params.data(), off.params.data(), on.params.size()), 0)
          << "parameters differ";
      EXPECT_GT(on.total_s, 0.0);
      EXPECT_GE(on.total_s, on.exposed_s * 0.999);
    }
}
