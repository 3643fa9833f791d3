// Pure topology arithmetic (no communicators): rank groups of the grid, rank ↔ coordinate
// round trips, and every validation rule of the parallel layout with its message.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "config/config.h"
#include "config/layout_rules.h"
#include "parallel/topology.h"

namespace llmpi {
namespace {

using Groups = std::vector<std::vector<int>>;

TEST(TopologyGroups, SixteenRankExampleOfTheHeader) {
  const Layout l{/*tp=*/4, /*dp=*/2, /*pp=*/2};
  EXPECT_EQ(l.groups(Axis::tp),
            (Groups{{0, 1, 2, 3}, {4, 5, 6, 7}, {8, 9, 10, 11}, {12, 13, 14, 15}}));
  EXPECT_EQ(l.groups(Axis::dp),
            (Groups{{0, 4}, {1, 5}, {2, 6}, {3, 7}, {8, 12}, {9, 13}, {10, 14}, {11, 15}}));
  EXPECT_EQ(l.groups(Axis::pp),
            (Groups{{0, 8}, {1, 9}, {2, 10}, {3, 11}, {4, 12}, {5, 13}, {6, 14}, {7, 15}}));
  EXPECT_EQ(l.embedding_groups(), l.groups(Axis::pp));  // pp = 2: first and last stage
  const std::vector<int> shape = l.shape();
  const int dp_tp[] = {2, 1};  // axis order does not matter
  EXPECT_EQ(rank_groups(shape, dp_tp),
            (Groups{{0, 1, 2, 3, 4, 5, 6, 7}, {8, 9, 10, 11, 12, 13, 14, 15}}));
  const int all[] = {0, 1, 2};
  EXPECT_EQ(rank_groups(shape, all).size(), 1u);
  EXPECT_EQ(rank_groups(shape, std::span<const int>()).size(), 16u);  // singletons
}

TEST(TopologyGroups, EmbeddingGroupsTakeFirstAndLastStage) {
  const Layout l{/*tp=*/2, /*dp=*/1, /*pp=*/4};  // rank = pp_i·2 + tp_i
  EXPECT_EQ(l.embedding_groups(), (Groups{{0, 6}, {1, 7}}));
  const Layout flat{/*tp=*/2, /*dp=*/3, /*pp=*/1};
  EXPECT_EQ(flat.embedding_groups(), (Groups{{0}, {1}, {2}, {3}, {4}, {5}}));
}

// For many shapes: each axis's groups partition the ranks; within a group exactly that
// axis's coordinate varies and equals the member's index; coord_of ∘ rank_of = identity.
TEST(TopologyGroups, GroupsPartitionTheGridAlongEachAxis) {
  for (int tp : {1, 2, 3, 4})
    for (int dp : {1, 2, 5})
      for (int pp : {1, 3, 4}) {
        const Layout l{tp, dp, pp};
        const int n = l.world_size();
        for (int r = 0; r < n; ++r) {
          const Coord c = l.coord_of(r);
          ASSERT_TRUE(c.tp >= 0 && c.tp < tp && c.dp >= 0 && c.dp < dp && c.pp >= 0 && c.pp < pp);
          ASSERT_EQ(l.rank_of(c), r);
          ASSERT_EQ(r, (c.pp * dp + c.dp) * tp + c.tp);
        }
        for (Axis a : {Axis::tp, Axis::dp, Axis::pp}) {
          const Groups g = l.groups(a);
          const int extent = a == Axis::tp ? tp : a == Axis::dp ? dp : pp;
          ASSERT_EQ(static_cast<int>(g.size()), n / extent) << axis_name(a);
          std::set<int> seen;
          for (const auto& group : g) {
            ASSERT_EQ(static_cast<int>(group.size()), extent);
            ASSERT_TRUE(std::is_sorted(group.begin(), group.end()));
            for (int i = 0; i < extent; ++i) {
              const Coord c0 = l.coord_of(group[0]), ci = l.coord_of(group[i]);
              const int along = a == Axis::tp ? ci.tp : a == Axis::dp ? ci.dp : ci.pp;
              ASSERT_EQ(along, i) << axis_name(a) << " group member " << i;
              Coord same = ci;  // equal to the first member except along the axis
              (a == Axis::tp ? same.tp : a == Axis::dp ? same.dp : same.pp) = 0;
              ASSERT_EQ(same, c0);
              seen.insert(group[i]);
            }
          }
          ASSERT_EQ(static_cast<int>(seen.size()), n);
        }
      }
}

TEST(TopologyGroups, GeneralGridOfFourAxes) {
  const std::vector<int> shape = {2, 3, 1, 2};  // 12 ranks
  const Groups g = rank_groups(shape, 1);
  EXPECT_EQ(g, (Groups{{0, 2, 4}, {1, 3, 5}, {6, 8, 10}, {7, 9, 11}}));
  const int axes[] = {0, 3};
  EXPECT_EQ(rank_groups(shape, axes), (Groups{{0, 1, 6, 7}, {2, 3, 8, 9}, {4, 5, 10, 11}}));
  const int repeated[] = {1, 1};
  EXPECT_THROW(rank_groups(shape, repeated), InternalError);
  EXPECT_THROW(rank_groups(shape, 4), InternalError);
}

// ---- validation ---------------------------------------------------------------------------

Config valid_config() {
  Config c;
  c.source_path = "layout.toml";
  c.model.n_layer = 8;
  c.model.n_head = 8;
  c.model.n_kv_head = 4;
  c.model.d_model = 64;
  c.model.d_ff = 256;
  c.train.batch_size = 2;
  c.train.seq_len = 16;
  c.parallel.tp = 2;
  c.parallel.pp = 2;
  c.parallel.dp = 2;
  return c;
}

bool contains(const std::string& text, const std::string& fragment) {
  return text.find(fragment) != std::string::npos;
}

TEST(TopologyValidation, AValidLayoutHasNoProblems) {
  Config c = valid_config();
  EXPECT_EQ(validate_layout(c, 8), "");
  c.parallel.sequence_parallel = true;
  c.parallel.zero_stage = 2;
  c.parallel.virtual_stages = 4;  // 2 × 4 = 8 chunks of one layer each
  c.parallel.micro_batches = 2;   // interleaving runs micro-batches in groups of pp
  EXPECT_EQ(validate_layout(c, 8), "");
}

TEST(TopologyValidation, ProductMustEqualWorldSizeAndTheMessageListsEveryDegree) {
  Config c = valid_config();
  c.parallel.dp = 1;
  const std::string e = validate_layout(c, 8);
  EXPECT_TRUE(contains(e, "tp=2 × pp=2 × dp=1 = 4, but the job has 8 ranks")) << e;
  EXPECT_TRUE(contains(e, "set dp=2")) << e;  // the degree that would fit
  c.parallel.dp = 2;
  const std::string odd = validate_layout(c, 6);
  EXPECT_TRUE(contains(odd, "tp=2 × pp=2 × dp=2 = 8, but the job has 6 ranks")) << odd;
  EXPECT_FALSE(contains(odd, "set dp=")) << odd;  // 6 is no multiple of tp·pp = 4
}

TEST(TopologyValidation, TpMustDivideHeadsAndHiddenWidth) {
  Config c = valid_config();
  c.parallel.tp = 3;
  c.parallel.dp = 1;
  c.model.n_head = 12;  // divisible by 3
  c.model.n_kv_head = 4;
  c.model.d_ff = 300;
  std::string e = validate_layout(c, 6);
  EXPECT_EQ(e.find("model.n_head"), std::string::npos) << e;
  EXPECT_TRUE(contains(e, "parallel.tp = 3 does not divide model.n_kv_head = 4")) << e;
  EXPECT_EQ(e.find("model.d_ff"), std::string::npos) << e;
  c.model.n_head = 8;
  c.model.d_ff = 256;
  e = validate_layout(c, 6);
  EXPECT_TRUE(contains(e, "parallel.tp = 3 does not divide model.n_head = 8")) << e;
  EXPECT_TRUE(contains(e, "parallel.tp = 3 does not divide model.d_ff = 256")) << e;
}

TEST(TopologyValidation, PipelineChunksNeedALayerEach) {
  Config c = valid_config();
  c.parallel.virtual_stages = 5;
  const std::string e = validate_layout(c, 8);
  EXPECT_TRUE(contains(e, "parallel.pp × parallel.virtual_stages = 2 × 5 = 10 model chunks, "
                          "but model.n_layer = 8"))
      << e;
}

TEST(TopologyValidation, ZeroStage3WithPipelineIsRefusedWithTheReason) {
  Config c = valid_config();
  c.parallel.zero_stage = 3;
  const std::string e = validate_layout(c, 8);
  EXPECT_TRUE(contains(e, "parallel.zero_stage = 3 with parallel.pp = 2 is not supported")) << e;
  EXPECT_TRUE(contains(e, "micro-batch")) << e;  // the reason is given
  c.parallel.pp = 1;
  c.parallel.dp = 4;
  EXPECT_EQ(validate_layout(c, 8), "");  // ZeRO-3 without pipeline is fine
}

TEST(TopologyValidation, SequenceParallelNeedsTensorParallelAndEvenRows) {
  Config c = valid_config();
  c.parallel.sequence_parallel = true;
  c.parallel.tp = 1;
  c.parallel.dp = 4;
  std::string e = validate_layout(c, 8);
  EXPECT_TRUE(contains(e, "parallel.sequence_parallel = true needs parallel.tp > 1")) << e;
  c.parallel.tp = 2;
  c.parallel.dp = 2;
  c.train.batch_size = 3;
  c.train.seq_len = 5;
  e = validate_layout(c, 8);
  EXPECT_TRUE(contains(e, "3 × 5 = 15 token rows are not divisible by parallel.tp = 2")) << e;
}

TEST(TopologyValidation, EveryProblemIsReportedOnItsOwnLine) {
  Config c = valid_config();
  c.parallel.tp = 3;           // divides neither n_head = 8 nor d_ff = 256 nor n_kv_head = 4
  c.parallel.zero_stage = 3;   // with pp = 2
  c.parallel.sequence_parallel = true;  // 2 · 16 = 32 rows, not divisible by 3
  const std::string e = validate_layout(c, 8);
  EXPECT_EQ(std::count(e.begin(), e.end(), '\n'), 6) << e;  // product, 3 × divide, zero, rows
}

TEST(TopologyValidation, DegreesOutOfRangeAreNamed) {
  Config c = valid_config();
  c.parallel.dp = 0;
  c.parallel.zero_stage = 7;
  const std::string e = validate_layout(c, 8);
  EXPECT_TRUE(contains(e, "parallel.dp = 0: expected an integer in [1, ")) << e;
  EXPECT_TRUE(contains(e, "parallel.zero_stage = 7: expected 0, 1, 2 or 3")) << e;
}

TEST(TopologyLayout, DescribesItselfAndBuildsFromTheConfig) {
  const Config c = valid_config();
  const Layout l = layout_of(c.parallel);
  EXPECT_EQ(l.world_size(), 8);
  EXPECT_EQ(l.str(), "tp=2 × pp=2 × dp=2");
  EXPECT_EQ(l.coord_of(5), (Coord{1, 0, 1}));
}

}  // namespace
}  // namespace llmpi
