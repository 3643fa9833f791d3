// Pipeline parallelism without MPI: the balanced split (optimal against brute force, layers
// conserved, earlier chunks lighter on ties), the interleaved chunk assignment, the
// configured split (parallel.stage_layers: parsing, round trip, malformed values), the
// replica flag of a tied head copy, and the 1F1B / interleaved orders: every pass once,
// forward before backward, the in-flight bound, and a cross-rank simulation of the
// dependencies showing that every schedule runs to completion (no deadlock).
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <limits>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "config/config.h"
#include "core/error.h"
#include "parallel/pipeline_order.h"
#include "parallel/pipeline_split.h"

using namespace llmpi;

namespace {

double chunk_cost(const std::vector<int64_t>& layers, size_t k, SplitCost c) {
  return static_cast<double>(layers[k]) + (k == 0 ? c.embedding : 0.0) +
         (k + 1 == layers.size() ? c.head : 0.0);
}
double max_cost(const std::vector<int64_t>& layers, SplitCost c) {
  double m = 0;
  for (size_t k = 0; k < layers.size(); ++k) m = std::max(m, chunk_cost(layers, k, c));
  return m;
}

// The least max chunk cost over every split of L layers into K chunks of >= 1 (brute force).
double brute_force_optimum(int64_t L, int64_t K, SplitCost c) {
  double best = std::numeric_limits<double>::infinity();
  std::vector<int64_t> layers;
  std::function<void(int64_t)> rec = [&](int64_t left) {
    if (static_cast<int64_t>(layers.size()) == K - 1) {
      if (left < 1) return;
      layers.push_back(left);
      best = std::min(best, max_cost(layers, c));
      layers.pop_back();
      return;
    }
    for (int64_t n = 1; n <= left - (K - 1 - static_cast<int64_t>(layers.size())); ++n) {
      layers.push_back(n);
      rec(left - n);
      layers.pop_back();
    }
  };
  rec(L);
  return best;
}

ModelConfig model(Arch arch, int64_t n_layer) {
  ModelConfig m;
  m.arch = arch;
  m.vocab_size = 37;
  m.n_layer = n_layer;
  m.n_head = 4;
  m.n_kv_head = arch == Arch::gpt2 ? 4 : 2;
  m.d_model = 16;
  m.d_ff = 32;
  m.max_seq_len = 8;
  m.tied_embeddings = arch == Arch::gpt2;
  return m;
}

ParallelSection par(int64_t pp, int64_t v = 1, std::vector<int64_t> layers = {}) {
  ParallelSection p;
  p.pp = pp;
  p.virtual_stages = v;
  p.micro_batches = 2 * pp;
  p.stage_layers = std::move(layers);
  return p;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const UserError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(PipelineSplit, BalancedIsOptimalAndConservesLayers) {
  for (SplitCost c : {SplitCost{}, SplitCost{0, 0}, SplitCost{0.5, 2.5}, SplitCost{3, 1}})
    for (int64_t L = 1; L <= 12; ++L)
      for (int64_t K = 1; K <= L; ++K) {
        SCOPED_TRACE(::testing::Message() << "L=" << L << " K=" << K << " cost "
                                          << c.embedding << "/" << c.head);
        const std::vector<int64_t> s = balanced_stage_layers(L, K, c);
        ASSERT_EQ(static_cast<int64_t>(s.size()), K);
        int64_t sum = 0;
        for (int64_t n : s) {
          EXPECT_GE(n, 1);
          sum += n;
        }
        EXPECT_EQ(sum, L);
        EXPECT_NEAR(max_cost(s, c), brute_force_optimum(L, K, c), 1e-12);
      }
}

TEST(PipelineSplit, CountsEmbeddingAndHead) {
  // 4 layers + embedding + head over 2 stages: 2 | 2 (cost 3 each).
  EXPECT_EQ(balanced_stage_layers(4, 2), (std::vector<int64_t>{2, 2}));
  // 6 layers over 4 chunks: the end chunks carry the embedding and the head, so the middle
  // ones take more layers: costs 2 | 2 | 2 | 2.
  EXPECT_EQ(balanced_stage_layers(6, 4), (std::vector<int64_t>{1, 2, 2, 1}));
  // Without the cost of embedding and head the plain even split comes back.
  EXPECT_EQ(balanced_stage_layers(6, 3, SplitCost{0, 0}), (std::vector<int64_t>{2, 2, 2}));
  // A tie (cost 2 | 3 or 3 | 2) gives the first stage (more micro-batches in flight) less.
  EXPECT_EQ(balanced_stage_layers(3, 2), (std::vector<int64_t>{1, 2}));
  // An expensive head (a large vocabulary) moves layers towards the first stage.
  EXPECT_EQ(balanced_stage_layers(8, 2, SplitCost{0, 4}), (std::vector<int64_t>{6, 2}));
}

TEST(PipelineSplit, FewerLayersThanChunksIsAUserError) {
  const std::string msg = error_of([] { balanced_stage_layers(2, 3); });
  EXPECT_NE(msg.find("3 chunks"), std::string::npos) << msg;
  EXPECT_NE(msg.find("model.n_layer = 2"), std::string::npos) << msg;
}

TEST(PipelineSplit, InterleavedChunksOfEachRank) {
  const ModelConfig m = model(Arch::gpt2, 8);
  // pp=2, v=2 → 4 global chunks; rank 0 holds chunks 0 and 2, rank 1 chunks 1 and 3.
  // Balanced with embedding and head at 1 layer each: costs ≤ 3 and the least Σ cost² (26)
  // with the fewest layers early: 1 | 2 | 3 | 2 layers (costs 2, 2, 3, 3).
  EXPECT_EQ(stage_layers(m, par(2, 2)), (std::vector<int64_t>{1, 2, 3, 2}));
  const auto r0 = pipeline_chunks(m, par(2, 2), 0), r1 = pipeline_chunks(m, par(2, 2), 1);
  ASSERT_EQ(r0.size(), 2u);
  ASSERT_EQ(r1.size(), 2u);
  auto same = [](const StageRange& a, const StageRange& b) {
    return a.first_layer == b.first_layer && a.end_layer == b.end_layer &&
           a.embedding == b.embedding && a.head == b.head;
  };
  EXPECT_TRUE(same(r0[0], StageRange{0, 1, true, false}));
  EXPECT_TRUE(same(r0[1], StageRange{3, 6, false, false}));
  EXPECT_TRUE(same(r1[0], StageRange{1, 3, false, false}));
  EXPECT_TRUE(same(r1[1], StageRange{6, 8, false, true}));
  EXPECT_EQ(global_chunk(2, 1, 1), 3);
  // Every layer is held by exactly one chunk of one rank, for several layouts.
  for (int64_t pp : {1, 2, 3, 4})
    for (int64_t v : {1, 2}) {
      if (pp * v > m.n_layer || (v > 1 && pp == 1)) continue;
      std::vector<int> held(static_cast<size_t>(m.n_layer), 0);
      int embeddings = 0, heads = 0;
      for (int r = 0; r < pp; ++r)
        for (const StageRange& s : pipeline_chunks(m, par(pp, v), r)) {
          for (int64_t l = s.first_layer; l < s.end_layer; ++l) ++held[static_cast<size_t>(l)];
          embeddings += s.embedding;
          heads += s.head;
          EXPECT_GE(s.n_layers(), 1);
        }
      EXPECT_EQ(std::count(held.begin(), held.end(), 1), m.n_layer) << pp << "×" << v;
      EXPECT_EQ(embeddings, 1);
      EXPECT_EQ(heads, 1);
    }
}

TEST(PipelineSplit, ConfiguredSplit) {
  const ModelConfig m = model(Arch::llama, 5);
  const auto r0 = pipeline_chunks(m, par(2, 1, {4, 1}), 0);
  const auto r1 = pipeline_chunks(m, par(2, 1, {4, 1}), 1);
  EXPECT_EQ(r0[0].end_layer, 4);
  EXPECT_EQ(r1[0].first_layer, 4);
  EXPECT_EQ(r1[0].end_layer, 5);
  std::string msg = error_of([&] { pipeline_chunks(m, par(2, 1, {2, 2}), 0); });
  EXPECT_NE(msg.find("parallel.stage_layers = [2, 2] sums to 4"), std::string::npos) << msg;
  msg = error_of([&] { pipeline_chunks(m, par(2, 1, {1, 1, 3}), 0); });
  EXPECT_NE(msg.find("has 3 entries"), std::string::npos) << msg;
  msg = error_of([&] { pipeline_chunks(m, par(2, 1, {5, 0}), 0); });
  EXPECT_NE(msg.find("at least one layer"), std::string::npos) << msg;
}

TEST(PipelineSplit, TiedHeadCopyIsAReplica) {
  for (Arch arch : {Arch::gpt2, Arch::llama}) {
    const ModelConfig m = model(arch, 4);
    const auto first = chunk_params(m, {0, 2, true, false});
    const auto last = chunk_params(m, {2, 4, false, true});
    const auto whole = chunk_params(m, StageRange::full(m));
    auto find = [](const std::vector<ParamInfo>& ps, const std::string& n) -> const ParamInfo* {
      for (const ParamInfo& p : ps)
        if (p.name == n) return &p;
      return nullptr;
    };
    ASSERT_NE(find(first, "embed.tokens"), nullptr);
    EXPECT_FALSE(find(first, "embed.tokens")->replica);
    EXPECT_FALSE(find(whole, "embed.tokens")->replica);
    if (arch == Arch::gpt2) {
      ASSERT_NE(find(last, "embed.tokens"), nullptr);
      EXPECT_TRUE(find(last, "embed.tokens")->replica);
    } else {
      EXPECT_EQ(find(last, "embed.tokens"), nullptr);
      ASSERT_NE(find(last, "head.weight"), nullptr);
      EXPECT_FALSE(find(last, "head.weight")->replica);
    }
    for (const auto* ps : {&first, &last})
      for (const ParamInfo& p : *ps)
        if (p.name != "embed.tokens") {
          EXPECT_FALSE(p.replica) << p.name;
        }
  }
}

// ---- parallel.stage_layers in the configuration -------------------------------------------

namespace {

const char* const kConfig =
    "[model]\nvocab_size = 64\nn_layer = 4\nn_head = 4\nd_model = 32\nmax_seq_len = 16\n"
    "[train]\nsteps = 2\nbatch_size = 2\nseq_len = 16\n"
    "[data]\ntrain = \"x.bin\"\n"
    "[parallel]\npp = 2\n";

std::string config_error(const std::vector<std::string>& sets) {
  return error_of([&] { parse_config(kConfig, "pp.toml", sets); });
}

}  // namespace

TEST(PipelineSplitConfig, ParsesAndRoundTrips) {
  const Config c = parse_config(kConfig, "pp.toml", {"parallel.stage_layers=[3, 1]"});
  EXPECT_EQ(c.parallel.stage_layers, (std::vector<int64_t>{3, 1}));
  EXPECT_NE(c.source_text.find("stage_layers = [3, 1]"), std::string::npos) << c.source_text;
  EXPECT_EQ(parse_config(c.source_text, "back.toml").parallel, c.parallel);
  const Config d = parse_config(kConfig, "pp.toml");
  EXPECT_TRUE(d.parallel.stage_layers.empty());
  EXPECT_EQ(parse_config(d.source_text, "back.toml").parallel, d.parallel);
  EXPECT_EQ(pipeline_chunks(c.model, c.parallel, 1)[0].first_layer, 3);
}

TEST(PipelineSplitConfig, MalformedValuesNameTheKey) {
  struct Case {
    std::string set, expected;
  };
  const Case cases[] = {
      {"parallel.stage_layers=3",
       "key 'parallel.stage_layers': 3 is an integer; expected an array of integers >= 1"},
      {"parallel.stage_layers=[3, \"x\"]",
       "key 'parallel.stage_layers': element 1: \"x\" is a string; expected an array of "
       "integers >= 1"},
      {"parallel.stage_layers=[4, 0]",
       "key 'parallel.stage_layers': element 1: 0 is out of range"},
      {"parallel.stage_layers=[1, 1, 2]",
       "key 'parallel.stage_layers': 3 entries for pp * virtual_stages = 2 * 1 = 2 pipeline "
       "chunks"},
      {"parallel.stage_layers=[2, 3]",
       "key 'parallel.stage_layers': the layer counts sum to 5, not model.n_layer = 4"},
  };
  for (const Case& c : cases) {
    const std::string msg = config_error({c.set});
    EXPECT_NE(msg.find("--set " + c.set), std::string::npos) << msg;
    EXPECT_NE(msg.find(c.expected), std::string::npos) << "message:\n" << msg << "\nlacks:\n"
                                                       << c.expected;
  }
}

// ---- schedule order -----------------------------------------------------------------------

namespace {

struct Layout {
  int64_t pp, m, v;
};

std::vector<Layout> layouts() {
  std::vector<Layout> out;
  for (int64_t pp : {1, 2, 3, 4})
    for (int64_t m : {1, 2, 3, 4, 6, 8, 12})
      for (int64_t v : {1, 2, 3})
        if (v == 1 || (pp > 1 && m % pp == 0)) out.push_back({pp, m, v});
  return out;
}

}  // namespace

TEST(PipelineOrder, EveryPassOnceForwardBeforeBackward) {
  for (const Layout& l : layouts())
    for (int64_t r = 0; r < l.pp; ++r) {
      const auto order = pipeline_order(l.pp, r, l.m, l.v);
      SCOPED_TRACE(::testing::Message() << "pp=" << l.pp << " m=" << l.m << " v=" << l.v
                                        << " rank " << r << ": " << order_str(order));
      ASSERT_EQ(static_cast<int64_t>(order.size()), 2 * l.m * l.v);
      std::set<std::pair<int64_t, int64_t>> forwarded, backwarded;
      for (const PipelineStep& s : order) {
        ASSERT_TRUE(0 <= s.micro && s.micro < l.m && 0 <= s.chunk && s.chunk < l.v);
        const std::pair<int64_t, int64_t> key{s.micro, s.chunk};
        if (s.op == PipeOp::forward) {
          EXPECT_TRUE(forwarded.insert(key).second) << "forward twice";
        } else {
          EXPECT_TRUE(forwarded.count(key)) << "backward before forward";
          EXPECT_TRUE(backwarded.insert(key).second) << "backward twice";
        }
      }
      EXPECT_EQ(static_cast<int64_t>(backwarded.size()), l.m * l.v);
      // Each chunk sees its micro-batches in increasing order, forward and backward (the
      // point-to-point messages rely on it).
      std::map<std::pair<int64_t, PipeOp>, int64_t> last;
      for (const PipelineStep& s : order) {
        auto [it, fresh] = last.try_emplace({s.chunk, s.op}, s.micro);
        if (!fresh) {
          EXPECT_GT(s.micro, it->second);
          it->second = s.micro;
        }
      }
    }
}

TEST(PipelineOrder, OneFOneBHoldsAtMostPpMicroBatches) {
  for (int64_t pp : {1, 2, 4, 8})
    for (int64_t m : {1, 3, 8, 16})
      for (int64_t r = 0; r < pp; ++r) {
        const auto order = pipeline_order(pp, r, m, 1);
        // Stage r holds pp - r (first stage: pp), against m for all-forward-then-backward.
        EXPECT_EQ(max_in_flight(order), std::min(pp - r, m)) << pp << " " << m << " " << r;
        EXPECT_LE(max_in_flight(order), pp);
        EXPECT_EQ(pipeline_warmup(pp, r, m, 1), std::min(pp - r - 1, m));
      }
  // The exact 1F1B order of the last and the first of 4 stages with 4 micro-batches.
  EXPECT_EQ(order_str(pipeline_order(4, 3, 4, 1)), "F0.0 B0.0 F1.0 B1.0 F2.0 B2.0 F3.0 B3.0");
  EXPECT_EQ(order_str(pipeline_order(4, 0, 4, 1)), "F0.0 F1.0 F2.0 F3.0 B0.0 B1.0 B2.0 B3.0");
  EXPECT_EQ(order_str(pipeline_order(4, 1, 6, 1)),
            "F0.0 F1.0 F2.0 B0.0 F3.0 B1.0 F4.0 B2.0 F5.0 B3.0 B4.0 B5.0");
}

TEST(PipelineOrder, InterleavedOrderAndBound) {
  // pp=2, v=2, m=4, rank 0: warm-up (2-0-1)·2 + (2-1)·2 = 4 forwards over chunks 0,0,1,1.
  EXPECT_EQ(order_str(pipeline_order(2, 0, 4, 2)),
            "F0.0 F1.0 F0.1 F1.1 F2.0 B0.1 F3.0 B1.1 F2.1 B0.0 F3.1 B1.0 B2.1 B3.1 B2.0 B3.0");
  for (const Layout& l : layouts())
    for (int64_t r = 0; r < l.pp; ++r) {
      const int64_t warmup = pipeline_warmup(l.pp, r, l.m, l.v);
      EXPECT_EQ(max_in_flight(pipeline_order(l.pp, r, l.m, l.v)),
                std::min(warmup + 1, l.m * l.v));
    }
}

// Runs every rank's order against the data dependencies of the pipeline: forward (i, g)
// needs forward (i, g-1); backward (i, g) needs backward (i, g+1) (g = global chunk). Each
// rank executes its passes strictly in order, blocking on a missing input — as the MPI
// schedule does. All ranks must finish (no cyclic wait).
TEST(PipelineOrder, AllRanksTogetherNeverDeadlock) {
  for (const Layout& l : layouts()) {
    SCOPED_TRACE(::testing::Message() << "pp=" << l.pp << " m=" << l.m << " v=" << l.v);
    const int64_t K = l.pp * l.v;
    std::vector<std::vector<PipelineStep>> orders;
    for (int64_t r = 0; r < l.pp; ++r) orders.push_back(pipeline_order(l.pp, r, l.m, l.v));
    std::set<std::tuple<PipeOp, int64_t, int64_t>> done;  // (op, micro, global chunk)
    std::vector<size_t> pc(static_cast<size_t>(l.pp), 0);
    bool progress = true;
    while (progress) {
      progress = false;
      for (int64_t r = 0; r < l.pp; ++r) {
        auto& i = pc[static_cast<size_t>(r)];
        if (i == orders[static_cast<size_t>(r)].size()) continue;
        const PipelineStep& s = orders[static_cast<size_t>(r)][i];
        const int64_t g = global_chunk(l.pp, r, s.chunk);
        const bool ready = s.op == PipeOp::forward
                               ? g == 0 || done.count({PipeOp::forward, s.micro, g - 1})
                               : g == K - 1 || done.count({PipeOp::backward, s.micro, g + 1});
        if (!ready) continue;
        done.insert({s.op, s.micro, g});
        ++i;
        progress = true;
      }
    }
    for (int64_t r = 0; r < l.pp; ++r)
      EXPECT_EQ(pc[static_cast<size_t>(r)], orders[static_cast<size_t>(r)].size())
          << "rank " << r << " stuck at pass " << pc[static_cast<size_t>(r)] << " of "
          << order_str(orders[static_cast<size_t>(r)]);
  }
}

TEST(PipelineSplit, RankParamsOfInterleavedChunks) {
  const ModelConfig m = model(Arch::gpt2, 8);
  // Rank 1 of pp=2, v=2 holds chunks 1 and 3 (the head, with the tied copy as a replica).
  const auto ranges = pipeline_chunks(m, par(2, 2), 1);
  const std::vector<ParamInfo> ps = rank_params(m, ranges);
  size_t expected = 0;
  for (const StageRange& r : ranges) expected += chunk_params(m, r).size();
  EXPECT_EQ(ps.size(), expected);
  std::set<std::string> names;
  for (const ParamInfo& p : ps) {
    EXPECT_TRUE(names.insert(p.name).second) << p.name;
    EXPECT_EQ(p.replica, p.name == "embed.tokens") << p.name;
  }
  EXPECT_TRUE(names.count("layers.1.attn.q.weight"));
  EXPECT_TRUE(names.count("layers.7.mlp.down.weight"));
  EXPECT_FALSE(names.count("layers.3.attn.q.weight"));  // chunk 2, on rank 0
  EXPECT_TRUE(names.count("final_norm.weight"));
}
