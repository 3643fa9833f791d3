// DPO with LoRA on the host backend: the reference model is the frozen base, i.e. the engine
// with its adapters disabled. Its cached log-probs equal those of a full-model DPO run from the
// same (seeded) base; after the adapters have trained, a resumed run without the cache
// recomputes them with the adapters disabled and gets the same values (with the adapters on
// they would differ: the resumed steps' rewards are not 0); the cache is keyed on the base,
// so another base makes it stale.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <sstream>

#include "backend/backend.h"
#include "config/config.h"
#include "data/token_dataset.h"
#include "train/dpo_objective.h"
#include "train/reference_logprobs.h"
#include "train/trainer.h"
#include "dpo_fixtures.h"

using namespace llmpi;
using namespace llmpi::testing;
namespace fs = std::filesystem;

namespace {

const std::string kLora =
    "[lora]\nrank = 4\nalpha = 8\n"
    "target_modules = [\"q\", \"k\", \"v\", \"o\", \"gate\", \"up\", \"down\", \"head\"]\n";

// f32 on the host (checkpoints hold f32 state); the adapters' effect is far above this.
constexpr double kTol = 1e-6;

Config config(const fs::path& d, const std::string& run, int64_t steps, bool lora,
              const std::string& extra = "") {
  return dpo_config(d, run, steps, (lora ? kLora : std::string()) + extra);
}

// The cached reference sums of both splits of `c`'s run (its own key: reference model, data).
std::vector<ReferenceSplit> cached(const Config& c, Backend& be, std::string& why) {
  const TokenDataset train({c.data.train}, 64), val({c.data.val}, 64);
  const StepRows rows(c, train), val_rows(c, val);
  Topology topo(c, MPI_COMM_SELF);
  ParallelEngine engine(c, topo, be);
  const std::vector<ReferenceSplit> want = DpoObjective(c, engine, topo, rows, &val_rows).wanted_splits();
  return read_reference_cache(reference_cache_path(c.run.dir), want, why).value_or(
      std::vector<ReferenceSplit>{});
}

void expect_same_logprobs(const std::vector<ReferenceSplit>& a, const std::vector<ReferenceSplit>& b) {
  ASSERT_EQ(a.size(), 2u);
  ASSERT_EQ(b.size(), 2u);
  for (size_t s = 0; s < 2; ++s) {
    ASSERT_EQ(a[s].logprobs.size(), b[s].logprobs.size()) << a[s].name;
    for (size_t i = 0; i < a[s].logprobs.size(); ++i)
      EXPECT_NEAR(a[s].logprobs[i], b[s].logprobs[i], kTol * std::max(1.0, std::abs(a[s].logprobs[i])))
          << a[s].name << " pair " << i / 2 << (i % 2 ? " rejected" : " chosen");
  }
}

bool has(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

}  // namespace

TEST(LoraDpo, ReferenceIsTheBaseWithAdaptersDisabled) {
  const fs::path d = dpo_temp_dir("lora_ref");
  write_pairs(d / "train.bin", 8, 5);
  write_pairs(d / "val.bin", 4, 29);
  auto be = make_host_backend();
  std::string why;
  // The full model's DPO: its reference is the seeded model itself.
  {
    std::ostringstream log;
    Trainer t(config(d, "full", 1, false), *be, MPI_COMM_SELF, log);
    t.run(RunOptions{.write_model = false, .checkpoints = false});
  }
  const std::vector<ReferenceSplit> full = cached(config(d, "full", 1, false), *be, why);
  ASSERT_EQ(why, "");
  // LoRA beside the same seeded base: 4 steps (checkpoints at 2 and 4), the adapters train.
  TrainSummary first;
  {
    std::ostringstream log;
    Trainer t(config(d, "lora", 4, true), *be, MPI_COMM_SELF, log);
    first = t.run(RunOptions{.write_model = false, .checkpoints = true});
    EXPECT_TRUE(has(log.str(), "reference log-probs: the LoRA base with its adapters disabled"))
        << log.str();
  }
  ASSERT_EQ(first.steps.size(), 4u);
  EXPECT_NEAR(first.steps[0].loss, std::log(2.0), 1e-6);  // B = 0: the policy is the base
  const std::vector<ReferenceSplit> lora = cached(config(d, "lora", 4, true), *be, why);
  ASSERT_EQ(why, "");
  EXPECT_TRUE(has(lora[0].key.reference, "LoRA base seed ")) << lora[0].key.reference;
  expect_same_logprobs(full, lora);
  // Resumed at step 4 without its cache: recomputed from the base (adapters disabled), not
  // refused, and the same values, although the adapters now move the policy off the base.
  fs::remove(reference_cache_path((d / "lora").string()));
  {
    std::ostringstream log;
    Trainer t(config(d, "lora", 6, true), *be, MPI_COMM_SELF, log);
    ASSERT_TRUE(t.resume_latest().has_value());
    const TrainSummary resumed = t.run(RunOptions{.write_model = false, .checkpoints = false});
    EXPECT_TRUE(has(log.str(), "reference log-probs: written to")) << log.str();
    ASSERT_EQ(resumed.steps.size(), 2u);
    EXPECT_GT(std::abs(resumed.steps[0].chosen_reward), 1e-4) << log.str();
    EXPECT_GT(std::abs(resumed.steps[0].reward_margin), 1e-4) << log.str();
  }
  expect_same_logprobs(full, cached(config(d, "lora", 6, true), *be, why));
  EXPECT_EQ(why, "");
  // Another base (seed 7): the cache of seed 1234's base is stale, and recomputed.
  fs::create_directories(d / "other");
  fs::copy_file(reference_cache_path((d / "lora").string()), reference_cache_path((d / "other").string()));
  {
    Config c = config(d, "other", 1, true);
    c.train.seed = 7;
    std::ostringstream log;
    Trainer t(c, *be, MPI_COMM_SELF, log);
    t.run(RunOptions{.write_model = false, .checkpoints = false});
    EXPECT_TRUE(has(log.str(), "recomputing: the cache is stale (its reference model is \"LoRA "
                               "base seed 1234 (checksum 0x")) << log.str();
    EXPECT_TRUE(has(log.str(), "this run's is \"LoRA base seed 7 (checksum 0x")) << log.str();
  }
  fs::remove_all(d);
}
