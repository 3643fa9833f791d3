// ZeRO 3 prefetch on tp2·dp2 (gpt2, 3 layers, tied embeddings): every unit's parameter
// gathers are posted one unit ahead, so they are in flight while the previous unit computes.
// The topology's collective observer records each operation; a "window" is one group gather
// from its posting (iall_gather on dp) to its wait. Units read groups {0}, {1}, {2, 0} (the
// tied head reads the embedding's group); the schedule gathers units 0 1 2 | 1 0, so a step
// posts 6 group gathers. Prefetched, every window but the first (unit 0, nothing runs before
// it) spans a unit's compute, seen as the tp all-reduces of its blocks, and the two backward
// gathers (units 1 and 0) span the reduce-scatter of the unit after them. Gathering just in
// time (post, then wait at once) leaves every window empty: the test fails without prefetch.
// With 3 micro-batches, unit 0 stays gathered from one micro-batch's backward to the next
// one's forward and unit 1's gather is posted during unit 0's backward: 6 + 5 + 5 gathers, and
// only the step's very first one has nothing to overlap (gathering unit 0 again for each
// micro-batch would make 18, two of them bare).
// The step's results are checked against one rank by train_dp and train_tp_pp.
#include <gtest/gtest.h>
#include <mpi.h>

#include <cstring>
#include <deque>
#include <sstream>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "config/config.h"
#include "parallel/collective_observer.h"
#include "parallel/engine.h"
#include "parallel/topology.h"

using namespace llmpi;

namespace {

// Windows of the dp group's gathers and what ran inside them.
class GatherWindows final : public CollectiveObserver {
 public:
  struct Window {
    bool tp = false;              // a tp collective ran while it was in flight
    bool reduce_scatter = false;  // a dp reduce-scatter ran while it was in flight
  };
  std::vector<Window> closed;
  int unmatched_waits = 0;

  void enter(const CollectiveCall& c) override {
    const std::string op = c.op, group = c.group;
    if (group == "dp" && op == "iall_gather") {
      open_.push_back(Window{});
    } else if (group == "dp" && op == "wait (iall_gather)") {
      if (open_.empty()) {
        ++unmatched_waits;
        return;
      }
      closed.push_back(open_.front());  // gathers complete in posting order
      open_.pop_front();
    } else {
      for (Window& w : open_) {
        w.tp = w.tp || group == "tp";
        w.reduce_scatter = w.reduce_scatter || (group == "dp" && op == "reduce_scatter");
      }
    }
  }
  void leave() override {}
  void enqueued(const CollectiveCall&, std::shared_ptr<Completion>) override {}
  size_t still_open() const { return open_.size(); }

 private:
  std::deque<Window> open_;
};

Config prefetch_config(int micro_batches = 1) {
  std::ostringstream t;
  t << "[model]\narch = \"gpt2\"\nvocab_size = 64\nn_layer = 3\nn_head = 4\nd_model = 32\n"
    << "max_seq_len = 16\n[train]\nsteps = 1\nbatch_size = 2\nseq_len = 16\n"
    << "[data]\ntrain = \"unused.bin\"\n[parallel]\ntp = 2\ndp = 2\nzero_stage = 3\n"
    << "micro_batches = " << micro_batches << "\n";
  return parse_config(t.str(), "zero3_prefetch.toml");
}

// One step of the prefetch config with `micro_batches` on 4 ranks; the dp gathers' windows,
// each posted gather waited for once.
GatherWindows step_windows(int micro_batches) {
  int world = 0;
  MPI_Comm_size(MPI_COMM_WORLD, &world);
  EXPECT_EQ(world, 4) << "run on 4 ranks";
  const Config cfg = prefetch_config(micro_batches);
  EXPECT_TRUE(cfg.model.tied_embeddings);
  Topology topo(cfg, MPI_COMM_WORLD);
  auto be = make_host_backend();
  ParallelEngine eng(cfg, topo, *be);
  const int n = 32 * micro_batches;  // B 2 × T 16 per micro-batch
  std::vector<int32_t> ids(static_cast<size_t>(n)), targets(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    ids[size_t(i)] = (i * 7 + topo.dp_rank()) % 64;
    targets[size_t(i)] = (i * 5 + 3) % 64;
  }
  GatherWindows windows;
  topo.set_observer(&windows);
  eng.step(ids, targets, 1e-3);
  topo.set_observer(nullptr);
  EXPECT_EQ(windows.unmatched_waits, 0);
  EXPECT_EQ(windows.still_open(), 0u);
  return windows;
}

}  // namespace

TEST(Zero3Prefetch, GathersAreInFlightWhileThePreviousUnitComputes) {
  const GatherWindows windows = step_windows(1);
  ASSERT_EQ(windows.closed.size(), 6u) << "gathers of units 0 1 2 (two groups) 1 0";
  int with_tp = 0, with_rs = 0;
  for (const GatherWindows::Window& w : windows.closed) {
    with_tp += w.tp;
    with_rs += w.reduce_scatter;
  }
  EXPECT_FALSE(windows.closed[0].tp) << "unit 0's forward gather has nothing to overlap";
  EXPECT_EQ(with_tp, 5) << "every later gather overlaps a unit's compute";
  EXPECT_EQ(with_rs, 2) << "the backward gathers of units 1 and 0 overlap a reduce-scatter";
  EXPECT_TRUE(windows.closed[4].reduce_scatter && windows.closed[5].reduce_scatter);
}

TEST(Zero3Prefetch, UnitZeroStaysGatheredAcrossMicroBatches) {
  const GatherWindows windows = step_windows(3);
  ASSERT_EQ(windows.closed.size(), 16u)
      << "micro-batch 0 gathers units 0 1 2 (two groups) 1 0; the next two reuse unit 0";
  EXPECT_FALSE(windows.closed[0].tp) << "the step's first gather has nothing to overlap";
  for (size_t i = 1; i < windows.closed.size(); ++i)
    EXPECT_TRUE(windows.closed[i].tp) << "gather " << i << " overlaps no compute";
  // Micro-batches 1 and 2 start with unit 1's gather (windows 6 and 11), posted during the
  // previous micro-batch's unit-0 backward: its reduce-scatter runs inside the window.
  EXPECT_TRUE(windows.closed[6].reduce_scatter);
  EXPECT_TRUE(windows.closed[11].reduce_scatter);
}
