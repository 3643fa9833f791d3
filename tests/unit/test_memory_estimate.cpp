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
#include "backend/backend.h"
#include "model/param_layout.h"
#include "model/param_store.h"
#include "model/transformer.h"
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
                        {tiny(2, 16, 2000000000), "model.vocab_size = 2000000000"}};
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

// The device estimate's activations are the model's own allocations, in closed form: every
// buffer a micro-batch keeps under each recompute mode, for both architectures
// (bench/perfmodel/memory_model.h counts the same for layout search).
TEST(MemoryEstimate, ActivationsAreTheModelsAllocations) {
  auto be = make_host_backend();
  for (Arch arch : {Arch::gpt2, Arch::llama})
    for (Recompute rc : {Recompute::none, Recompute::selective, Recompute::full}) {
      ModelConfig m = llmpi::testing::tiny_config(arch);
      m.recompute = rc;
      ParamStore store(*be, transformer_params(m, StageRange::full(m)), DType::f32);
      Transformer model(m, StageRange::full(m), store);
      const Activations a = model.alloc_activations(*be, 2, 8);
      EXPECT_EQ(activation_bytes_estimate(m, Layout{}, 2, 8, DType::f32, m.n_layer, true, true),
                double(activation_bytes(a)))
          << arch_name(arch) << " " << recompute_name(rc);
    }
}

TEST(MemoryEstimate, DeviceEstimateCoversStateActivationsAndWorkspace) {
  Config c = tiny(4);
  const MemoryEstimate host = estimate_memory(c, Layout{});
  const double P = host.total_params;
  MemoryEstimate e = estimate_device_memory(c, Layout{});
  EXPECT_EQ(e.params, 4.0 * P + 2.0 * P);  // f32 master + bf16 compute copy
  EXPECT_EQ(e.grads, 4.0 * P);
  EXPECT_EQ(e.optimizer, 8.0 * P);
  const double one = activation_bytes_estimate(c.model, Layout{}, c.train.batch_size,
                                               c.train.seq_len, DType::bf16, 4, true, true);
  EXPECT_EQ(e.activations, one);  // no pipeline: one micro-batch's buffers, reused
  EXPECT_GT(e.workspace, kDeviceReserveBytes);
  EXPECT_EQ(e.total(), e.params + e.grads + e.optimizer + e.activations + e.workspace);

  // pp = 2 with 4 micro-batches: 1F1B keeps min(4, 2) micro-batches in flight, of 2 layers.
  Layout pp;
  pp.pp = 2;
  pp.micro_batches = 4;
  e = estimate_device_memory(c, pp);
  EXPECT_EQ(e.activations, 2.0 * activation_bytes_estimate(c.model, pp, c.train.batch_size,
                                                           c.train.seq_len, DType::bf16, 2, true,
                                                           false));
  EXPECT_EQ(e.params, 6.0 * P / 2);

  // Refused against a device's free memory, naming every part and the keys.
  const std::string m = [&] {
    try {
      check_memory_estimate(c, Layout{}, estimate_device_memory(c, Layout{}), 64.0 * (1 << 20),
                            "of test device memory free");
    } catch (const UserError& err) {
      return std::string(err.what());
    }
    return std::string();
  }();
  EXPECT_NE(m.find("the model does not fit"), std::string::npos) << m;
  EXPECT_NE(m.find("workspace 768 MiB"), std::string::npos) << m;
  EXPECT_NE(m.find("64 MiB of test device memory free is available"), std::string::npos) << m;
  EXPECT_EQ(refusal(c, Layout{}, 1e12), "");
}
