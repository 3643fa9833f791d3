// Memory estimate from the config (parallel/memory_estimate.h), issue #13 item 5: a model
// that cannot fit is refused before anything is allocated, with the estimate, the memory
// available and the keys that drive it (n_layer = 2,000,000 allocated for 90 s and ended
// in "internal error: std::bad_alloc"). The closed form matches the parameter list, and
// `llmpi train` refuses such a config at once (exit 2).
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "config/config.h"
#include "core/error.h"
#include "data/token_shard.h"
#include "model/param_layout.h"
#include "parallel/memory_estimate.h"
#include "llmpi_binary.h"
#include "test_model_util.h"

using namespace llmpi;
namespace fs = std::filesystem;

namespace {

Config tiny(int64_t n_layer, int64_t d_model = 16, int64_t vocab = 37) {
  return parse_config(llmpi::testing::tiny_config_toml(Arch::gpt2, n_layer, d_model, vocab),
                      "tiny.toml");
}

std::string refusal(const Config& c, const Layout& lay, double available) {
  try {
    check_memory_estimate(c, lay, available, "of test memory");
  } catch (const UserError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(MemoryEstimate, ClosedFormMatchesTheParameterList) {
  const Config c = tiny(2);
  int64_t n = 0;
  for (const ParamInfo& p : transformer_params(c.model, StageRange::full(c.model)))
    n += p.global_shape.numel();
  Layout lay;
  MemoryEstimate e = estimate_memory(c, lay);
  EXPECT_EQ(e.total_params, double(n));
  EXPECT_EQ(e.params, 4.0 * double(n));
  EXPECT_EQ(e.grads, 4.0 * double(n));
  EXPECT_EQ(e.optimizer, 8.0 * double(n));
  EXPECT_EQ(e.activations, 4.0 * (2.0 * 8 * 37 + 8.0 * 16 * 2));  // B·T = 1·8
  lay.tp = 2;
  lay.dp = 4;
  lay.zero_stage = 3;
  e = estimate_memory(c, lay);
  EXPECT_EQ(e.params, 4.0 * double(n) / 8);
  EXPECT_EQ(e.optimizer, 8.0 * double(n) / 8);
  EXPECT_EQ(refusal(c, Layout{}, 1e9), "");
}

TEST(MemoryEstimate, HugeModelsAreRefusedWithTheirKeys) {
  struct Case {
    Config cfg;
    const char* key;
  };
  const Case cases[] = {{tiny(2000000), "model.n_layer = 2000000"},
                        {tiny(2, 1 << 20), "model.d_model = 1048576"},
                        {tiny(2, 16, 4000000000), "model.vocab_size = 4000000000"}};
  for (const Case& c : cases) {
    const std::string m = refusal(c.cfg, Layout{}, 64.0 * (1 << 30));
    EXPECT_NE(m.find("tiny.toml: the model does not fit: about "), std::string::npos) << m;
    EXPECT_NE(m.find("64 GiB of test memory is available"), std::string::npos) << m;
    EXPECT_NE(m.find(c.key), std::string::npos) << m;
    EXPECT_NE(m.find("parallel.zero_stage"), std::string::npos) << m;
  }
}

// The whole command: refused before the model is built, on the host's real memory.
TEST(MemoryEstimate, TrainRefusesAtStartUp) {
  const fs::path dir = fs::temp_directory_path() / ("llmpi_mem_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  std::vector<uint32_t> ids(64, 1);
  write_token_shard((dir / "x.bin").string(), ids, 37);
  std::string toml = llmpi::testing::tiny_config_toml(Arch::gpt2, 2000000, 768);
  toml.replace(toml.find("\"x.bin\""), 7, "\"" + (dir / "x.bin").string() + "\"");
  toml += "[run]\ndir = \"" + (dir / "run").string() + "\"\n";
  std::ofstream(dir / "big.toml") << toml;
  const auto t0 = std::chrono::steady_clock::now();
  const auto [rc, out] = llmpi::testing::run_llmpi("train " + (dir / "big.toml").string());
  EXPECT_EQ(rc, 2) << out;
  EXPECT_NE(out.find("the model does not fit"), std::string::npos) << out;
  EXPECT_NE(out.find("model.n_layer = 2000000"), std::string::npos) << out;
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 20.0);
  fs::remove_all(dir);
}
