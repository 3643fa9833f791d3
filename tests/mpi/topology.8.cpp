// Topology on 8 ranks, tp=2 × pp=2 × dp=2: each group's communicator holds exactly the
// world ranks computed in closed form from rank = (pp_i·2 + dp_i)·2 + tp_i, in coordinate
// order, and agrees with the pure Layout::groups; the members of a group agree on
// reductions of their rank ids; neighbouring pipeline stages exchange activations.
#include <gtest/gtest.h>

#include <vector>

#include "config/config.h"
#include "parallel/topology.h"

namespace llmpi {
namespace {

Config tp2_pp2_dp2() {
  Config c;
  c.source_path = "tp2_pp2_dp2.toml";
  c.model.n_layer = 4;
  c.model.n_head = 4;
  c.model.n_kv_head = 2;
  c.model.d_model = 16;
  c.model.d_ff = 64;
  c.parallel.tp = 2;
  c.parallel.pp = 2;
  c.parallel.dp = 2;
  return c;
}

// World ranks of the group's members, in group-rank order (all-gather of world ranks).
std::vector<int> members(Collectives& group, int world_rank) {
  std::vector<int32_t> all(group.size(), -1);
  int32_t me = world_rank;
  group.all_gather(Tensor{all.data(), Shape{group.size()}, DType::i32, Device::host},
                   Tensor{&me, Shape{1}, DType::i32, Device::host});
  return std::vector<int>(all.begin(), all.end());
}

TEST(TopologyOn8, GroupsHoldTheRanksOfTheClosedForm) {
  Topology topo(tp2_pp2_dp2());
  const int r = topo.rank();
  ASSERT_EQ(topo.world_size(), 8);
  const int t = r % 2, d = (r / 2) % 2, p = r / 4;
  EXPECT_EQ(topo.coord(), (Coord{t, d, p}));

  EXPECT_EQ(members(topo.tp(), r), (std::vector<int>{4 * p + 2 * d, 4 * p + 2 * d + 1}));
  EXPECT_EQ(members(topo.dp(), r), (std::vector<int>{4 * p + t, 4 * p + 2 + t}));
  EXPECT_EQ(members(topo.pp(), r), (std::vector<int>{2 * d + t, 4 + 2 * d + t}));
  ASSERT_TRUE(topo.in_embedding_group());  // pp = 2: every stage is first or last
  EXPECT_EQ(members(topo.embedding(), r), (std::vector<int>{2 * d + t, 4 + 2 * d + t}));
  EXPECT_EQ(members(topo.world(), r), (std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7}));

  // The communicators realize the pure arithmetic.
  const Layout& l = topo.layout();
  for (Axis a : {Axis::tp, Axis::dp, Axis::pp}) {
    const std::vector<int> mine =
        members(a == Axis::tp ? topo.tp() : a == Axis::dp ? topo.dp() : topo.pp(), r);
    bool found = false;
    for (const auto& g : l.groups(a))
      if (g == mine) {
        found = true;
        EXPECT_EQ(g[topo.communicator(a).rank()], r) << axis_name(a);
      }
    EXPECT_TRUE(found) << axis_name(a);
  }
  EXPECT_EQ(topo.describe(), "rank " + std::to_string(r) + " of 8: tp " + std::to_string(t) +
                                 "/2, dp " + std::to_string(d) + "/2, pp " + std::to_string(p) +
                                 "/2");
}

TEST(TopologyOn8, EveryTpRankAgreesOnTheSumOfRankIds) {
  Topology topo(tp2_pp2_dp2());
  const int r = topo.rank();
  const int first = r - r % 2;
  EXPECT_EQ(topo.tp().all_reduce_value(r), first + first + 1);
  EXPECT_EQ(topo.tp().all_reduce_value(r, ReduceOp::max), first + 1);
  EXPECT_EQ(topo.dp().all_reduce_value(r), 2 * (r % 2 + 4 * (r / 4)) + 2);
  EXPECT_EQ(topo.pp().all_reduce_value(r), 2 * (r % 4) + 4);
  EXPECT_EQ(topo.world().all_reduce_value(r), 28);
}

TEST(TopologyOn8, PipelineNeighboursExchangeActivations) {
  Topology topo(tp2_pp2_dp2());
  Collectives& pp = topo.pp();
  std::vector<float> act(5), grad(5);
  if (topo.first_stage()) {
    for (int i = 0; i < 5; ++i) act[i] = float(topo.rank() * 10 + i);
    pp.send(Tensor{act.data(), Shape{5}, DType::f32, Device::host}, 1);
    pp.recv(Tensor{grad.data(), Shape{5}, DType::f32, Device::host}, 1);
    for (int i = 0; i < 5; ++i) EXPECT_EQ(grad[i], -float((topo.rank() + 4) * 10 + i));
  } else {
    ASSERT_TRUE(topo.last_stage());
    pp.recv(Tensor{act.data(), Shape{5}, DType::f32, Device::host}, 0);
    for (int i = 0; i < 5; ++i) EXPECT_EQ(act[i], float((topo.rank() - 4) * 10 + i));
    for (int i = 0; i < 5; ++i) grad[i] = -float(topo.rank() * 10 + i);
    pp.send(Tensor{grad.data(), Shape{5}, DType::f32, Device::host}, 0);
  }
}

}  // namespace
}  // namespace llmpi
