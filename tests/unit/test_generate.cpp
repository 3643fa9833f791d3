// Generator (train/generate.h): GenerateOptions::stop, asked before each token, ends a
// generation between two tokens with the tokens generated so far — the prefix of the
// generation without it — and marks it interrupted; a stop that never says yes changes nothing.
#include <gtest/gtest.h>

#include <memory>

#include "data/tokenizer.h"
#include "model/param_layout.h"
#include "model/transformer.h"
#include "train/generate.h"
#include "test_model_util.h"

using namespace llmpi;
using namespace llmpi::testing;

namespace {

struct GeneratorFixture {
  ModelConfig cfg = tiny_config(Arch::llama);  // V = 37, max T = 8: the window slides
  std::unique_ptr<Backend> be = make_host_backend();
  std::unique_ptr<ParamStore> store;
  std::unique_ptr<Transformer> model;
  Tokenizer tok;  // 257 ids, end-of-text 256: beyond V, so every generation runs to max_new

  GeneratorFixture() {
    store = std::make_unique<ParamStore>(*be, transformer_params(cfg, StageRange::full(cfg)),
                                         DType::f64);
    randomize_params(*be, *store, 5);
    model = std::make_unique<Transformer>(cfg, StageRange::full(cfg), *store);
  }
  Generation run(const GenerateOptions& o) {
    Generator gen(*be, *model, cfg.max_seq_len);
    return gen.run(tok, {tok.eot_id(), 3, 4}, o);
  }
};

}  // namespace

TEST(Generate, StopEndsTheGenerationBetweenTokens) {
  GeneratorFixture f;
  GenerateOptions o;
  o.max_new = 20;
  o.sampling.temperature = 0.8;  // sampled: the prefix must come from the same draws
  o.key = 11;
  const Generation plain = f.run(o);
  ASSERT_EQ(plain.ids.size(), 20u);
  EXPECT_FALSE(plain.interrupted);

  int asked = 0;
  o.stop = [&] { return ++asked > 7; };  // yes before the 8th token
  const Generation cut = f.run(o);
  EXPECT_TRUE(cut.interrupted);
  EXPECT_EQ(asked, 8);
  EXPECT_EQ(cut.ids, std::vector<uint32_t>(plain.ids.begin(), plain.ids.begin() + 7));
  EXPECT_EQ(cut.text, f.tok.decode(cut.ids));

  asked = 0;
  o.stop = [&] { return ++asked < 0; };  // asked before every token, never yes
  const Generation asked_only = f.run(o);
  EXPECT_EQ(asked, 20);
  EXPECT_FALSE(asked_only.interrupted);
  EXPECT_EQ(asked_only.ids, plain.ids);

  o.stop = [] { return true; };  // a stop already pending: nothing generated
  const Generation none = f.run(o);
  EXPECT_TRUE(none.interrupted);
  EXPECT_TRUE(none.ids.empty());
  EXPECT_EQ(none.text, "");
}
