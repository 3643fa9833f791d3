// Tensor-parallel parameter slabs without MPI: shard_params_tp for every tp rank of a group
// in one process — slab shapes and starts from the closed forms (heads, MLP width, balanced
// vocab rows, replicated kv heads), replica flags such that the non-replica slabs of a group
// cover every global element exactly once, clear errors for unsplittable models, and the
// layout check accepting n_kv_head | tp (kv replication).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "config/config.h"
#include "model/param_layout.h"
#include "parallel/tensor_parallel.h"
#include "parallel/topology.h"
#include "parallel/vocab_parallel.h"
#include "test_model_util.h"

namespace llmpi {
namespace {

using testing::tiny_config;

const ParamInfo& find(const std::vector<ParamInfo>& ps, const std::string& name) {
  for (const ParamInfo& p : ps)
    if (p.name == name) return p;
  throw std::runtime_error("no parameter " + name);
}

// Calls f(global row-major index) for every element of p's slab.
template <class F>
void for_each_global(const ParamInfo& p, F&& f) {
  const int nd = p.global_shape.ndim;
  std::array<int64_t, Shape::kMaxDims> idx{};
  for (int64_t i = 0; i < p.numel(); ++i) {
    int64_t g = 0;
    for (int d = 0; d < nd; ++d) g = g * p.global_shape[d] + idx[d] + p.local_start[d];
    f(g);
    for (int d = nd - 1; d >= 0; --d) {
      if (++idx[d] < p.local_shape[d]) break;
      idx[d] = 0;
    }
  }
}

TEST(TensorParallelShard, VocabRangeIsBalancedAndCovers) {
  for (int64_t V : {37, 64, 50257})
    for (int p : {1, 2, 3, 4, 8}) {
      int64_t next = 0;
      for (int r = 0; r < p; ++r) {
        const VocabRange v = vocab_range(V, p, r);
        EXPECT_EQ(v.begin, next);
        EXPECT_TRUE(v.size() == V / p || v.size() == V / p + 1) << V << " " << p << " " << r;
        next = v.end;
      }
      EXPECT_EQ(next, V);
    }
}

TEST(TensorParallelShard, LlamaTp4ReplicatesEachKvHeadOnTwoRanks) {
  ModelConfig c = tiny_config(Arch::llama);  // Hq = 4, Hkv = 2, D = 4, C = 16, F = 32, V = 37
  const int64_t D = c.head_dim(), C = c.d_model, F = c.d_ff;
  const auto full = transformer_params(c, StageRange::full(c));
  for (int r = 0; r < 4; ++r) {
    SCOPED_TRACE(r);
    const auto ps = shard_params_tp(c, full, 4, r);
    ASSERT_EQ(ps.size(), full.size());
    const ParamInfo& q = find(ps, "layers.1.attn.q.weight");
    EXPECT_EQ(q.local_shape, (Shape{D, C}));
    EXPECT_EQ(q.local_start[0], r * D);
    EXPECT_FALSE(q.replica);
    for (const char* kv : {"layers.1.attn.k.weight", "layers.1.attn.v.weight"}) {
      const ParamInfo& k = find(ps, kv);
      EXPECT_EQ(k.local_shape, (Shape{D, C})) << kv;
      EXPECT_EQ(k.local_start[0], (r / 2) * D) << kv;  // query head r reads kv head r / 2
      EXPECT_EQ(k.replica, r % 2 == 1) << kv;
    }
    const ParamInfo& o = find(ps, "layers.0.attn.out.weight");
    EXPECT_EQ(o.local_shape, (Shape{C, D}));
    EXPECT_EQ(o.local_start[0], 0);
    EXPECT_EQ(o.local_start[1], r * D);
    for (const char* col : {"layers.0.mlp.gate.weight", "layers.0.mlp.up.weight"}) {
      EXPECT_EQ(find(ps, col).local_shape, (Shape{F / 4, C})) << col;
      EXPECT_EQ(find(ps, col).local_start[0], r * F / 4) << col;
    }
    EXPECT_EQ(find(ps, "layers.0.mlp.down.weight").local_shape, (Shape{C, F / 4}));
    EXPECT_EQ(find(ps, "layers.0.mlp.down.weight").local_start[1], r * F / 4);
    const VocabRange v = vocab_range(c.vocab_size, 4, r);
    for (const char* vocab : {"embed.tokens", "head.weight"}) {
      EXPECT_EQ(find(ps, vocab).local_shape, (Shape{v.size(), C})) << vocab;
      EXPECT_EQ(find(ps, vocab).local_start[0], v.begin) << vocab;
      EXPECT_FALSE(find(ps, vocab).replica) << vocab;
    }
    for (const char* rep : {"layers.0.attn_norm.weight", "final_norm.weight"}) {
      EXPECT_EQ(find(ps, rep).local_shape, (Shape{C})) << rep;
      EXPECT_EQ(find(ps, rep).replica, r != 0) << rep;
    }
  }
}

TEST(TensorParallelShard, Gpt2RowParallelBiasesAndPositionsAreReplicated) {
  ModelConfig c = tiny_config(Arch::gpt2);
  const auto full = transformer_params(c, StageRange::full(c));
  for (int r = 0; r < 2; ++r) {
    const auto ps = shard_params_tp(c, full, 2, r);
    for (const char* rep : {"embed.positions", "layers.0.attn.out.bias", "layers.1.mlp.down.bias",
                            "layers.0.mlp_norm.bias"}) {
      EXPECT_EQ(find(ps, rep).local_shape, find(full, rep).global_shape) << rep;
      EXPECT_EQ(find(ps, rep).replica, r == 1) << rep;
    }
    // Column-parallel biases follow their weight rows.
    EXPECT_EQ(find(ps, "layers.0.attn.q.bias").local_shape, (Shape{c.d_model / 2}));
    EXPECT_EQ(find(ps, "layers.0.attn.q.bias").local_start[0], r * c.d_model / 2);
    EXPECT_EQ(find(ps, "layers.0.mlp.up.bias").local_start[0], r * c.d_ff / 2);
  }
}

// For every parameter: the non-replica slabs of the group's ranks tile the global tensor,
// and every element is held by some rank.
TEST(TensorParallelShard, NonReplicaSlabsCoverEachElementOnce) {
  for (Arch arch : {Arch::gpt2, Arch::llama})
    for (int p : {1, 2, 4}) {
      const ModelConfig c = tiny_config(arch);
      for (const StageRange& range :
           {StageRange::full(c), StageRange{1, 2, false, true}, StageRange{0, 1, true, false}}) {
        const auto full = transformer_params(c, range);
        std::vector<std::vector<ParamInfo>> shards;
        for (int r = 0; r < p; ++r) shards.push_back(shard_params_tp(c, full, p, r));
        for (size_t k = 0; k < full.size(); ++k) {
          std::vector<int> owned(static_cast<size_t>(full[k].global_shape.numel()), 0);
          std::vector<int> held(owned.size(), 0);
          for (int r = 0; r < p; ++r) {
            const ParamInfo& q = shards[static_cast<size_t>(r)][k];
            ASSERT_EQ(q.name, full[k].name);
            for_each_global(q, [&](int64_t g) {
              held[static_cast<size_t>(g)] += 1;
              if (!q.replica) owned[static_cast<size_t>(g)] += 1;
            });
          }
          int bad = 0;
          for (size_t i = 0; i < owned.size(); ++i) bad += owned[i] != 1 || held[i] < 1;
          EXPECT_EQ(bad, 0) << arch_name(arch) << " tp=" << p << " " << full[k].name;
        }
      }
    }
}

TEST(TensorParallelShard, UnsplittableModelsAreUserErrors) {
  ModelConfig c = tiny_config(Arch::llama);
  c.n_head = 6;
  c.n_kv_head = 3;
  c.d_model = 24;
  const auto full = transformer_params(c, StageRange::full(c));
  try {
    shard_params_tp(c, full, 2, 0);
    ADD_FAILURE() << "no UserError";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("model.n_kv_head = 3 and parallel.tp = 2"),
              std::string::npos)
        << e.what();
  }
  ModelConfig f = tiny_config(Arch::gpt2);
  f.d_ff = 34;
  try {
    shard_params_tp(f, transformer_params(f, StageRange::full(f)), 4, 0);
    ADD_FAILURE() << "no UserError";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("model.d_ff = 34"), std::string::npos) << e.what();
  }
  ModelConfig v = tiny_config(Arch::gpt2);
  v.vocab_size = 3;
  EXPECT_THROW(shard_params_tp(v, transformer_params(v, StageRange::full(v)), 4, 1), UserError);
}

TEST(TensorParallelShard, LayoutAcceptsKvHeadsDividingTp) {
  Config cfg;
  cfg.model = tiny_config(Arch::llama);  // Hkv = 2
  cfg.train.batch_size = 2;
  cfg.train.seq_len = 8;
  cfg.parallel.tp = 4;
  EXPECT_EQ(validate_layout(cfg, 4).find("n_kv_head"), std::string::npos)
      << validate_layout(cfg, 4);
  cfg.model.n_head = 6;  // Hkv = 2 with tp = 4: fine for kv, but 4 ∤ 6 heads
  cfg.model.d_model = 24;
  EXPECT_NE(validate_layout(cfg, 4).find("model.n_head"), std::string::npos);
}

TEST(TensorParallelShard, ConfigAcceptsTpAMultipleOfKvHeads) {
  const std::string text =
      "[model]\narch = \"llama\"\nvocab_size = 64\nn_layer = 2\nn_head = 4\nn_kv_head = 2\n"
      "d_model = 32\nd_ff = 64\nmax_seq_len = 16\n[train]\nsteps = 20\nlr = 1e-3\nbatch_size = 2\nseq_len = 16\n"
      "[data]\ntrain = \"x.bin\"\n[parallel]\ntp = 4\nsequence_parallel = true\n";
  const Config c = parse_config(text, "tp4_kv2.toml");
  EXPECT_EQ(c.parallel.tp, 4);
  EXPECT_EQ(c.model.kv_heads(), 2);
  EXPECT_EQ(validate_layout(c, 4), "");
}

TEST(TensorParallelShard, EveryParameterHasARule) {
  for (Arch arch : {Arch::gpt2, Arch::llama}) {
    ModelConfig c = tiny_config(arch);
    c.tied_embeddings = !c.tied_embeddings;  // both head variants
    for (const ModelConfig& m : {tiny_config(arch), c})
      for (const ParamInfo& p : transformer_params(m, StageRange::full(m)))
        EXPECT_NO_THROW(tp_split_of(p.name)) << p.name;
  }
  EXPECT_EQ(tp_split_of("layers.3.attn.k.bias"), TpSplit::kv_rows);
  EXPECT_EQ(tp_split_of("layers.3.mlp.down.bias"), TpSplit::output_bias);
  EXPECT_EQ(tp_split_of("final_norm.weight"), TpSplit::row_region);
  EXPECT_THROW(tp_split_of("layers.0.attn.mystery"), InternalError);
}

}  // namespace
}  // namespace llmpi
