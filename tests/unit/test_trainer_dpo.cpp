// [train] objective = "dpo" through the Trainer on the host backend: the first step's loss is
// log 2 (policy = reference), the loss falls and the held-out reward accuracy rises; the
// reference log-prob cache is written once, reused on resume (which continues bit for bit),
// and a stale cache is recomputed on a fresh start and refused on a resume; DPO on data that
// is not preference pairs fails with the file named. And [eval] prompts: greedy generations
// printed at every validation, pre-training included.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <sstream>
#include <unistd.h>

#include "backend/backend.h"
#include "config/config.h"
#include "core/error.h"
#include "data/token_dataset.h"
#include "data/token_shard.h"
#include "data/tokenizer.h"
#include "train/dpo_objective.h"
#include "train/reference_logprobs.h"
#include "train/trainer.h"

using namespace llmpi;
namespace fs = std::filesystem;

namespace {

fs::path temp_dir(const std::string& name) {
  const fs::path d = fs::temp_directory_path() / ("llmpi_dpo_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

// `pairs` preference pairs: a prompt of 3 tokens, then an answer of 3 or 4 tokens (masked
// in); the chosen answer continues the prompt's arithmetic pattern, the rejected one does not.
void write_pairs(const fs::path& file, int pairs, uint32_t seed, bool odd_document = false) {
  TokenShardWriter w(file.string(), 2, ShardContent::documents_with_mask);
  uint32_t t = seed;
  for (int p = 0; p < pairs; ++p) {
    std::vector<uint32_t> prompt;
    for (int i = 0; i < 3; ++i) prompt.push_back(t = (t * 7 + 3) % 61);
    for (int chosen = 1; chosen >= 0; --chosen) {
      std::vector<uint32_t> ids = prompt;
      std::vector<uint8_t> mask(3, 0);
      uint32_t a = prompt.back();
      for (int i = 0; i < 3 + p % 2; ++i) {
        a = chosen ? (a + 2) % 61 : (a * 13 + 5 + uint32_t(i)) % 61;
        ids.push_back(a);
        mask.push_back(1);
      }
      w.append_document(ids, mask);
    }
  }
  if (odd_document) w.append_document(std::vector<uint32_t>{1, 2, 3}, std::vector<uint8_t>{0, 1, 1});
  w.commit();
}

Config dpo_config(const fs::path& d, const std::string& run, int64_t steps, const std::string& extra = "") {
  std::ostringstream t;
  t << "[model]\narch = \"llama\"\nvocab_size = 64\nn_layer = 2\nn_head = 4\nn_kv_head = 2\n"
    << "d_ff = 64\nd_model = 32\nmax_seq_len = 16\n"
    << "[train]\nobjective = \"dpo\"\nsteps = " << steps << "\nbatch_size = 2\nseq_len = 16\n"
    << "lr = 1e-2\nwarmup_steps = 0\nlog_every = 1\neval_batches = 1\neval_every = 0\n"
    << "[data]\ntrain = \"" << (d / "train.bin").string() << "\"\nval = \""
    << (d / "val.bin").string() << "\"\n[checkpoint]\nevery = 2\n[run]\ndir = \""
    << (d / run).string() << "\"\n[dpo]\nbeta = 0.5\n" << extra;
  return parse_config(t.str(), "dpo.toml");
}

std::string run_error(const Config& c) {
  auto be = make_host_backend();
  std::ostringstream log;
  try {
    Trainer t(c, *be, MPI_COMM_SELF, log);
    t.run(RunOptions{.write_model = false, .checkpoints = false});
  } catch (const UserError& e) {
    return e.what();
  }
  return "no error";
}

bool has(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

}  // namespace

TEST(TrainerDpo, LossStartsAtLog2FallsAndHeldOutAccuracyRises) {
  const fs::path d = temp_dir("learn");
  write_pairs(d / "train.bin", 12, 5);
  write_pairs(d / "val.bin", 6, 29);
  Config c = dpo_config(d, "run", 30);
  c.train.master_dtype = DType::f64;
  auto be = make_host_backend();
  std::ostringstream log;
  Trainer t(c, *be, MPI_COMM_SELF, log);
  const TrainSummary s = t.run(RunOptions{.write_model = false, .checkpoints = false});
  // Step 1: the policy is the reference, so every margin is 0 and L = log 2 exactly.
  ASSERT_EQ(s.steps.size(), 30u);
  EXPECT_NEAR(s.steps[0].loss, std::log(2.0), 1e-12);
  EXPECT_NEAR(s.steps[0].reward_margin, 0.0, 1e-12);
  EXPECT_TRUE(s.steps[0].dpo);
  double last = 0;
  for (size_t i = 25; i < 30; ++i) last += s.steps[i].loss / 5;
  EXPECT_LT(last, 0.5 * std::log(2.0)) << log.str();
  ASSERT_EQ(s.val_dpo.size(), 2u);  // step 0 and the end
  EXPECT_EQ(s.val_dpo[0].second.pairs, 6);
  EXPECT_NEAR(s.val_dpo[0].second.mean_loss(), std::log(2.0), 1e-12);
  EXPECT_GT(s.val_dpo[1].second.accuracy(), s.val_dpo[0].second.accuracy()) << log.str();
  EXPECT_GT(s.val_dpo[1].second.mean_margin(), 0.0) << log.str();
  EXPECT_TRUE(has(log.str(), "rewards chosen")) << log.str();
  EXPECT_TRUE(has(log.str(), "(6 pairs)")) << log.str();
  fs::remove_all(d);
}

TEST(TrainerDpo, ReferenceCacheWrittenOnceReusedOnResumeAndStaleDetected) {
  const fs::path d = temp_dir("cache");
  write_pairs(d / "train.bin", 8, 5);
  write_pairs(d / "val.bin", 4, 29);
  auto be = make_host_backend();
  const std::string cache = reference_cache_path((d / "run").string());
  // Interrupted after step 2 (a checkpoint), then resumed to step 4.
  {
    std::ostringstream log;
    Trainer t(dpo_config(d, "run", 4), *be, MPI_COMM_SELF, log);
    t.run(RunOptions{.write_model = false, .checkpoints = true, .stop_after = 2});
    EXPECT_TRUE(has(log.str(), "reference log-probs: written to " + cache)) << log.str();
  }
  ASSERT_TRUE(fs::exists(cache));
  const auto written = fs::last_write_time(cache);
  TrainSummary resumed;
  {
    std::ostringstream log;
    Trainer t(dpo_config(d, "run", 4), *be, MPI_COMM_SELF, log);
    ASSERT_TRUE(t.resume_latest().has_value());
    resumed = t.run(RunOptions{.write_model = false, .checkpoints = true});
    EXPECT_TRUE(has(log.str(), "reference log-probs: reusing " + cache)) << log.str();
    EXPECT_FALSE(has(log.str(), "written to")) << log.str();
  }
  EXPECT_EQ(fs::last_write_time(cache), written);
  // The uninterrupted run: the resumed steps are bit for bit its steps 3 and 4.
  {
    std::ostringstream log;
    Trainer t(dpo_config(d, "whole", 4), *be, MPI_COMM_SELF, log);
    const TrainSummary whole = t.run(RunOptions{.write_model = false, .checkpoints = false});
    ASSERT_EQ(resumed.steps.size(), 2u);
    EXPECT_EQ(resumed.steps[0].loss, whole.steps[2].loss);
    EXPECT_EQ(resumed.steps[1].loss, whole.steps[3].loss);
    EXPECT_EQ(resumed.steps[1].reward_accuracy, whole.steps[3].reward_accuracy);
  }
  // The cache's identity no longer matches the data (as if train.bin had been replaced).
  std::string why;
  const Config c = dpo_config(d, "run", 6);
  const TokenDataset train({(d / "train.bin").string()}, 64), val({(d / "val.bin").string()}, 64);
  const StepRows rows(c, train), val_rows(c, val);
  std::vector<ReferenceSplit> splits = *read_reference_cache(
      cache, [&] {
        Topology topo(c, MPI_COMM_SELF);
        ParallelEngine engine(c, topo, *be);
        return DpoObjective(c, engine, topo, rows, &val_rows).wanted_splits();
      }(), why);
  ASSERT_EQ(why, "");
  splits[0].key.data_hash ^= 1;
  write_reference_cache(cache, splits);
  {
    std::ostringstream log;
    Trainer t(c, *be, MPI_COMM_SELF, log);
    ASSERT_TRUE(t.resume_latest().has_value());
    try {
      t.run(RunOptions{.write_model = false, .checkpoints = false});
      ADD_FAILURE() << "a stale cache was used on resume";
    } catch (const UserError& e) {
      EXPECT_TRUE(has(e.what(), cache + ": the DPO reference log-probs cannot be used (train data: "))
          << e.what();
      EXPECT_TRUE(has(e.what(), "--no-resume")) << e.what();
    }
  }
  // A fresh start recomputes it, saying why.
  fs::create_directories(d / "fresh");
  fs::copy_file(cache, reference_cache_path((d / "fresh").string()));
  {
    std::ostringstream log;
    Trainer t(dpo_config(d, "fresh", 1), *be, MPI_COMM_SELF, log);
    t.run(RunOptions{.write_model = false, .checkpoints = false});
    EXPECT_TRUE(has(log.str(), "reference log-probs: recomputing: the cache is stale (train data: "))
        << log.str();
  }
  EXPECT_EQ(read_reference_cache(reference_cache_path((d / "fresh").string()), splits, why),
            std::nullopt);  // rewritten with the true hash, so the doctored key no longer matches
  fs::remove_all(d);
}

TEST(TrainerDpo, DataThatIsNotPreferencePairs) {
  const fs::path d = temp_dir("bad");
  write_pairs(d / "val.bin", 2, 29);
  write_token_shard((d / "train.bin").string(), std::vector<uint32_t>(100, 3), 64);
  const std::string plain = run_error(dpo_config(d, "run", 1));
  EXPECT_TRUE(has(plain, (d / "train.bin").string())) << plain;
  EXPECT_TRUE(has(plain, "not fine-tuning data")) << plain;
  fs::remove(d / "train.bin");
  write_pairs(d / "train.bin", 3, 5, /*odd_document=*/true);
  const std::string odd = run_error(dpo_config(d, "run", 1));
  EXPECT_TRUE(has(odd, "7 documents, not whole preference pairs")) << odd;
  fs::remove_all(d);
}

// [eval] prompts in pre-training: every validation prints each prompt's greedy continuation,
// the same text a second identical run prints (greedy and seeded), and the summary has them.
TEST(TrainerEvalPrompts, GreedyGenerationsAtEveryValidation) {
  const fs::path d = temp_dir("prompts");
  Tokenizer().save((d / "tok.bpe").string());
  std::vector<uint32_t> toks;
  for (int i = 0; i < 3000; ++i) toks.push_back(uint32_t("abcd"[i % 4]));
  write_token_shard((d / "train.bin").string(), toks, 257);
  std::ostringstream t;
  t << "[model]\nvocab_size = 257\nn_layer = 1\nn_head = 2\nd_model = 16\nmax_seq_len = 16\n"
    << "[train]\nsteps = 60\nbatch_size = 4\nseq_len = 16\nlr = 2e-2\neval_every = 30\n"
    << "log_every = 100\n[data]\ntrain = \"" << (d / "train.bin").string() << "\"\ntokenizer = \""
    << (d / "tok.bpe").string() << "\"\n[run]\ndir = \"" << (d / "run").string()
    << "\"\n[eval]\nprompts = [\"abca\", \"bc\"]\nmax_new_tokens = 6\n";
  const Config c = parse_config(t.str(), "prompts.toml");
  auto be = make_host_backend();
  std::vector<std::pair<int64_t, std::vector<std::string>>> first;
  for (int pass = 0; pass < 2; ++pass) {
    std::ostringstream log;
    Trainer tr(c, *be, MPI_COMM_SELF, log);
    const TrainSummary s = tr.run(RunOptions{.write_model = false, .checkpoints = false});
    ASSERT_EQ(s.eval_generations.size(), 3u);  // steps 0, 30, 60
    EXPECT_EQ(s.eval_generations[1].first, 30);
    ASSERT_EQ(s.eval_generations[2].second.size(), 2u);
    // Trained on "abcd" repeated: after "abca" comes "bcdabc", after "bc" "dabcda".
    EXPECT_EQ(s.eval_generations[2].second[0], "bcdabc") << log.str();
    EXPECT_EQ(s.eval_generations[2].second[1], "dabcda") << log.str();
    EXPECT_TRUE(has(log.str(), "prompt step 60 | abca -> bcdabc")) << log.str();
    EXPECT_TRUE(has(log.str(), "prompt step 0 | bc -> ")) << log.str();
    if (pass == 0) first = s.eval_generations;
    else EXPECT_EQ(s.eval_generations, first);
  }
  fs::remove_all(d);
}
