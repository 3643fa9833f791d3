// The layout rules (config/layout_rules.h) as a table: layouts × model shapes, each case
// checked by the three places that report the rules — the config checks (parse_config), the
// topology (validate_layout) and the tensor-parallel install (check_tensor_parallel, then
// shard_params_tp on every tp rank) — which must accept and refuse exactly the same cases,
// and exactly those that the rules written out below (the specification, independent of the
// code) accept. Named cases pin the answers the issue asked about: kv heads replicated when
// n_kv_head < tp, sequence parallelism needing only batch_size · seq_len (not seq_len) to
// split, train.lr > 0.
#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <vector>

#include "config/config.h"
#include "config/layout_rules.h"
#include "core/error.h"
#include "model/param_layout.h"
#include "parallel/tensor_parallel.h"
#include "parallel/topology.h"

using namespace llmpi;

namespace {

struct ModelShape {
  const char* arch;
  int64_t vocab, n_layer, n_head, n_kv_head, d_model, d_ff;
};

struct Case {
  ModelShape m;
  int64_t tp = 1, pp = 1, dp = 1, zero = 0, virtual_stages = 1, micro = 1;
  bool sp = false;
  int64_t batch = 2, seq_len = 16;
  std::vector<int64_t> stage_layers;
};

std::string describe(const Case& c) {
  std::ostringstream s;
  s << c.m.arch << " V" << c.m.vocab << " L" << c.m.n_layer << " H" << c.m.n_head << "/"
    << c.m.n_kv_head << " F" << c.m.d_ff << " | tp" << c.tp << " pp" << c.pp << " dp" << c.dp
    << " zero" << c.zero << " v" << c.virtual_stages << " M" << c.micro << (c.sp ? " sp" : "")
    << " B" << c.batch << " T" << c.seq_len << " stage_layers[" << c.stage_layers.size() << "]";
  return s.str();
}

std::string toml(const Case& c) {
  std::ostringstream t;
  t << "[model]\narch = \"" << c.m.arch << "\"\nvocab_size = " << c.m.vocab
    << "\nn_layer = " << c.m.n_layer << "\nn_head = " << c.m.n_head << "\nn_kv_head = "
    << c.m.n_kv_head << "\nd_model = " << c.m.d_model << "\nd_ff = " << c.m.d_ff
    << "\nmax_seq_len = 16\n[train]\nsteps = 10\nbatch_size = " << c.batch
    << "\nseq_len = " << c.seq_len << "\n[data]\ntrain = \"x.bin\"\n[parallel]\ntp = " << c.tp
    << "\npp = " << c.pp << "\ndp = " << c.dp << "\nzero_stage = " << c.zero
    << "\nvirtual_stages = " << c.virtual_stages << "\nmicro_batches = " << c.micro
    << "\nsequence_parallel = " << (c.sp ? "true" : "false") << "\n";
  if (!c.stage_layers.empty()) {
    t << "stage_layers = [";
    for (size_t i = 0; i < c.stage_layers.size(); ++i) t << (i ? ", " : "") << c.stage_layers[i];
    t << "]\n";
  }
  return t.str();
}

// The same case as a hand-built Config (for the topology, which also sees refused configs).
Config config_of(const Case& c) {
  Config k;
  k.source_path = "case.toml";
  k.model.arch = std::string(c.m.arch) == "llama" ? Arch::llama : Arch::gpt2;
  k.model.vocab_size = c.m.vocab;
  k.model.n_layer = c.m.n_layer;
  k.model.n_head = c.m.n_head;
  k.model.n_kv_head = c.m.n_kv_head;
  k.model.d_model = c.m.d_model;
  k.model.d_ff = c.m.d_ff;
  k.model.max_seq_len = 16;
  k.train.batch_size = c.batch;
  k.train.seq_len = c.seq_len;
  k.parallel.tp = c.tp;
  k.parallel.pp = c.pp;
  k.parallel.dp = c.dp;
  k.parallel.zero_stage = int(c.zero);
  k.parallel.virtual_stages = c.virtual_stages;
  k.parallel.micro_batches = c.micro;
  k.parallel.sequence_parallel = c.sp;
  k.parallel.stage_layers = c.stage_layers;
  return k;
}

// ---- the three reporters ------------------------------------------------------------------

bool config_accepts(const Case& c, std::string& why) {
  try {
    parse_config(toml(c), "case.toml");
    return true;
  } catch (const UserError& e) {
    why = e.what();
    return false;
  }
}

bool topology_accepts(const Case& c, std::string& why) {
  why = validate_layout(config_of(c), int(c.tp * c.pp * c.dp));
  return why.empty();
}

bool install_accepts(const Case& c, std::string& why) {
  const ModelConfig m = config_of(c).model;
  try {
    check_tensor_parallel(m, int(c.tp), c.sp, c.batch * c.seq_len);
    const std::vector<ParamInfo> full = transformer_params(m, StageRange::full(m));
    for (int r = 0; r < c.tp; ++r) shard_params_tp(m, full, int(c.tp), r);
    return true;
  } catch (const UserError& e) {
    why = e.what();
    return false;
  }
}

// ---- the specification ------------------------------------------------------------------

bool tp_rules_hold(const Case& c) {
  const ModelShape& m = c.m;
  return m.n_head % c.tp == 0 && (m.n_kv_head % c.tp == 0 || c.tp % m.n_kv_head == 0) &&
         m.d_ff % c.tp == 0 && c.tp <= m.vocab &&
         (!c.sp || (c.tp > 1 && (c.batch * c.seq_len) % c.tp == 0));
}

bool pipeline_rules_hold(const Case& c) {
  const int64_t chunks = c.pp * c.virtual_stages;
  int64_t sum = 0;
  for (int64_t n : c.stage_layers) sum += n;
  return chunks <= c.m.n_layer && (c.virtual_stages == 1 || c.pp > 1) &&
         (c.virtual_stages == 1 || c.micro % c.pp == 0) && !(c.zero == 3 && c.pp > 1) &&
         (c.stage_layers.empty() ||
          (int64_t(c.stage_layers.size()) == chunks && sum == c.m.n_layer));
}

const ModelShape kGpt2{"gpt2", 64, 2, 4, 4, 32, 128};
const ModelShape kGqa{"llama", 64, 2, 8, 2, 64, 96};       // 2 kv heads for 8 query heads
const ModelShape kMqa{"llama", 64, 2, 6, 1, 48, 72};       // one kv head
const ModelShape kOdd{"llama", 5, 2, 6, 3, 48, 40};        // 3 kv heads, d_ff 40, vocabulary 5

}  // namespace

// Tensor and sequence parallelism: all three reporters see these rules.
TEST(LayoutRules, TensorParallelTableAgreesInAllThreePlaces) {
  int cases = 0, accepted = 0;
  for (const ModelShape& m : {kGpt2, kGqa, kMqa, kOdd})
    for (int64_t tp : {1, 2, 3, 4, 6, 8})
      for (bool sp : {false, true})
        for (auto [B, T] : std::vector<std::pair<int64_t, int64_t>>{{2, 16}, {2, 15}, {1, 15}, {3, 6}}) {
          Case c{.m = m, .tp = tp, .sp = sp, .batch = B, .seq_len = T};
          const bool want = tp_rules_hold(c);
          std::string wc, wt, wi;
          EXPECT_EQ(config_accepts(c, wc), want) << describe(c) << "\n" << wc;
          EXPECT_EQ(topology_accepts(c, wt), want) << describe(c) << "\n" << wt;
          EXPECT_EQ(install_accepts(c, wi), want) << describe(c) << "\n" << wi;
          ++cases;
          accepted += want;
        }
  EXPECT_EQ(cases, 192);
  EXPECT_GT(accepted, 20);  // the table holds both verdicts in number
  EXPECT_LT(accepted, 150);
}

// Pipeline and ZeRO rules: the config and the topology report them; the tensor-parallel
// install does not see them (tp = 1 here, and it accepts every case).
TEST(LayoutRules, PipelineAndZeroTableAgreesInConfigAndTopology) {
  int cases = 0, accepted = 0;
  for (int64_t L : {2, 4, 5})
    for (int64_t pp : {1, 2, 3})
      for (int64_t v : {1, 2})
        for (int64_t micro : {1, 2, 3, 4})
          for (int64_t zero : {0, 2, 3})
            for (const std::vector<int64_t>& sl :
                 std::vector<std::vector<int64_t>>{{}, {1, 1}, {2, 2}, {1, 2, 1}, {1, 1, 1, 1}}) {
              ModelShape m = kGpt2;
              m.n_layer = L;
              Case c{.m = m, .pp = pp, .dp = 2, .zero = zero, .virtual_stages = v,
                     .micro = micro, .stage_layers = sl};
              const bool want = pipeline_rules_hold(c);
              std::string wc, wt, wi;
              EXPECT_EQ(config_accepts(c, wc), want) << describe(c) << "\n" << wc;
              EXPECT_EQ(topology_accepts(c, wt), want) << describe(c) << "\n" << wt;
              EXPECT_TRUE(install_accepts(c, wi)) << describe(c) << "\n" << wi;
              ++cases;
              accepted += want;
            }
  EXPECT_EQ(cases, 1080);
  EXPECT_GT(accepted, 100);
  EXPECT_LT(accepted, 900);
}

// The job's size is known only at start-up: the config accepts any product, the topology
// refuses a product that is not the number of ranks.
TEST(LayoutRules, WorldSizeIsTheTopologysAlone) {
  const Case c{.m = kGpt2, .tp = 2, .pp = 2, .dp = 2};
  std::string why;
  EXPECT_TRUE(config_accepts(c, why)) << why;
  EXPECT_EQ(validate_layout(config_of(c), 8), "");
  const std::string e = validate_layout(config_of(c), 6);
  EXPECT_NE(e.find("but the job has 6 ranks"), std::string::npos) << e;
  EXPECT_EQ(broken_layout_rules(LayoutFacts::of(config_of(c), 6)),
            std::vector<LayoutRule>{LayoutRule::world_size});
}

// The answers to the disagreements the rules resolve, as literal cases.
TEST(LayoutRules, NamedCases) {
  std::string why;
  // Sequence parallelism splits the B·T token rows, not each sequence: seq_len 15 over tp 2
  // with 2 sequences (30 rows) is fine (trained in TrainTpPp2.SequenceParallelSplitsRows…),
  // one sequence of 15 is not.
  Case rows{.m = kGpt2, .tp = 2, .sp = true, .batch = 2, .seq_len = 15};
  EXPECT_TRUE(config_accepts(rows, why)) << why;
  EXPECT_TRUE(topology_accepts(rows, why)) << why;
  EXPECT_TRUE(install_accepts(rows, why)) << why;
  rows.batch = 1;
  EXPECT_FALSE(config_accepts(rows, why));
  EXPECT_NE(why.find("parallel.sequence_parallel"), std::string::npos) << why;
  EXPECT_NE(why.find("15 token rows, not divisible by parallel.tp = 2"), std::string::npos) << why;
  EXPECT_FALSE(topology_accepts(rows, why));
  EXPECT_FALSE(install_accepts(rows, why));
  EXPECT_NE(why.find("the 15 token rows of a micro-batch"), std::string::npos) << why;

  // tp = 4 with 2 kv heads: each kv head replicated on 2 ranks; tp = 3 divides neither.
  Case kv{.m = kGqa, .tp = 4};
  EXPECT_TRUE(config_accepts(kv, why)) << why;
  EXPECT_TRUE(topology_accepts(kv, why)) << why;
  EXPECT_TRUE(install_accepts(kv, why)) << why;
  kv.m.n_head = 6;
  kv.m.d_model = 48;
  kv.m.d_ff = 96;
  kv.tp = 3;  // 3 | 6 heads and 96, but 2 kv heads and 3 divide neither way
  EXPECT_FALSE(config_accepts(kv, why));
  EXPECT_NE(why.find("does not divide model.n_kv_head = 2"), std::string::npos) << why;

  // A vocabulary smaller than tp cannot give every rank a slab.
  Case vocab{.m = kOdd, .tp = 6};
  vocab.m.d_ff = 48;
  EXPECT_FALSE(config_accepts(vocab, why));
  EXPECT_NE(why.find("6 exceeds model.vocab_size = 5"), std::string::npos) << why;
  EXPECT_FALSE(topology_accepts(vocab, why));
  EXPECT_FALSE(install_accepts(vocab, why));

  // ZeRO-3 under a pipeline is now refused at load as well as at start-up.
  const Case z3{.m = kGpt2, .pp = 2, .zero = 3};
  EXPECT_FALSE(config_accepts(z3, why));
  EXPECT_NE(why.find("key 'parallel.zero_stage': 3 with parallel.pp = 2"), std::string::npos) << why;

  // train.lr: > 0, decided by the schema alone.
  Case lr{.m = kGpt2};
  std::string text = toml(lr) + "";
  text.replace(text.find("[train]\n"), 8, "[train]\nlr = 0\n");
  try {
    parse_config(text, "lr.toml");
    ADD_FAILURE() << "lr = 0 accepted";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("key 'train.lr': 0.0 is out of range; expected a finite number > 0"),
              std::string::npos)
        << e.what();
  }
}
