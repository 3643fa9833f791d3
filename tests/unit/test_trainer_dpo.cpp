// [train] objective = "dpo" through the Trainer on the host backend: the first step's loss is
// log 2 (policy = reference), the loss falls and the held-out reward accuracy rises; the
// reference log-prob cache is written once, reused on resume (which continues bit for bit),
// and a stale cache is recomputed on a fresh start and refused on a resume; DPO on data that
// is not preference pairs fails with the file named. And [eval] prompts: greedy generations
// printed at every validation, pre-training included. A stop request (a signal) cuts the
// reference pass, the DPO validation and the prompts short; without one, a run control changes
// no result.
#include <gtest/gtest.h>
#include <signal.h>

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
#include "jobs/run_control.h"
#include "jobs/stop_signals.h"
#include "train/dpo_objective.h"
#include "train/reference_logprobs.h"
#include "train/trainer.h"
#include "dpo_fixtures.h"

using namespace llmpi;
using namespace llmpi::testing;
namespace fs = std::filesystem;

namespace {

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

// A run control over one process (its events go to `dir`) whose stop signal, USR2, the test
// raises itself.
struct Control {
  StopSignals signals{"USR2"};
  RunControl control;
  Control(const Config& c, RunDirectory& dir) : control(c, MPI_COMM_SELF, 0, signals, dir) {}
  ~Control() { signals.clear(); }
};

}  // namespace

TEST(TrainerDpo, LossStartsAtLog2FallsAndHeldOutAccuracyRises) {
  const fs::path d = dpo_temp_dir("learn");
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
  const fs::path d = dpo_temp_dir("cache");
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
      EXPECT_TRUE(has(e.what(), "this run continues from step 4,")) << e.what();  // read "step 1"
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
  const fs::path d = dpo_temp_dir("bad");
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
  const fs::path d = dpo_temp_dir("prompts");
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

// SIGUSR2 pending before run(): the reference pass stops at its first batch, nothing is cached
// and no step runs; the run reports a stop after step 0 (exit 75), nothing saved.
TEST(TrainerDpo, StopRequestCutsTheReferencePassShort) {
  const fs::path d = dpo_temp_dir("stop_ref");
  write_pairs(d / "train.bin", 8, 5);
  write_pairs(d / "val.bin", 4, 29);
  const Config c = dpo_config(d, "run", 4);
  auto be = make_host_backend();
  std::ostringstream log;
  Trainer t(c, *be, MPI_COMM_SELF, log);
  Control ctl(c, t.run_directory());
  ::raise(SIGUSR2);
  RunOptions o{.write_model = false, .checkpoints = true};
  o.control = &ctl.control;
  const TrainSummary s = t.run(o);
  EXPECT_EQ(s.stopped.kind, StopKind::preemption);
  EXPECT_EQ(RunControl::exit_code(s.stopped), 75);
  EXPECT_EQ(s.last_step, 0);
  EXPECT_TRUE(s.steps.empty());
  EXPECT_FALSE(fs::exists(reference_cache_path(c.run.dir)));
  EXPECT_TRUE(has(log.str(), "reference log-probs (train): cut short by a stop request (nothing cached)"))
      << log.str();
  EXPECT_FALSE(has(log.str(), "reference log-probs (val)")) << log.str();
  EXPECT_TRUE(has(log.str(), "stopping after step 0 (before this launch's first step, during the DPO "
                             "reference pass): SIGUSR2 (preemption); nothing new to save, exit 75"))
      << log.str();
  EXPECT_FALSE(fs::exists(fs::path(c.run.dir) / "checkpoints" / "step_00000000.h5"));
  fs::remove_all(d);
}

// DpoObjective with a run control and no stop: the reference sums and the held-out metrics of
// the pass without one, exactly; with a stop requested, the validation returns nothing.
TEST(TrainerDpo, StopRequestCutsTheValidationShortAndNoStopChangesNothing) {
  const fs::path d = dpo_temp_dir("stop_val");
  write_pairs(d / "train.bin", 8, 5);
  write_pairs(d / "val.bin", 6, 29);
  const Config c = dpo_config(d, "run", 1), c2 = dpo_config(d, "run2", 1);
  const TokenDataset train({(d / "train.bin").string()}, 64), val({(d / "val.bin").string()}, 64);
  const StepRows rows(c, train), val_rows(c, val);
  auto be = make_host_backend();
  Topology topo(c, MPI_COMM_SELF);
  ParallelEngine engine(c, topo, *be);
  DpoObjective dpo(c, engine, topo, rows, &val_rows);
  auto quiet = [](const std::string&) {};
  fs::create_directories(c.run.dir);
  fs::create_directories(c2.run.dir);
  ASSERT_TRUE(dpo.prepare(reference_cache_path(c.run.dir), 0, quiet));
  const DpoSums plain = *dpo.validate();
  std::ostringstream log;
  RunDirectory dir(c.run.dir, MPI_COMM_SELF, log);
  Control ctl(c, dir);
  ASSERT_TRUE(dpo.prepare(reference_cache_path(c2.run.dir), 0, quiet, &ctl.control));
  std::string why;
  const std::vector<ReferenceSplit> want = dpo.wanted_splits();
  expect_same_logprobs(*read_reference_cache(reference_cache_path(c.run.dir), want, why),
                       *read_reference_cache(reference_cache_path(c2.run.dir), want, why), 0.0);
  const std::optional<DpoSums> asked = dpo.validate(&ctl.control);
  ASSERT_TRUE(asked.has_value());
  EXPECT_EQ(asked->pairs, 6);
  EXPECT_EQ(asked->loss, plain.loss);
  EXPECT_EQ(asked->margin, plain.margin);
  EXPECT_EQ(asked->correct, plain.correct);
  ::raise(SIGUSR2);
  EXPECT_FALSE(dpo.validate(&ctl.control).has_value());
  fs::remove_all(d);
}

// The eval prompts with a stop request pending: cut short at the first prompt (nothing recorded),
// one step trains and the run stops after it (exit 75); with no stop, the generations of a run
// without a control.
TEST(TrainerEvalPrompts, StopRequestCutsThePromptsShort) {
  const fs::path d = dpo_temp_dir("stop_prompts");
  Tokenizer().save((d / "tok.bpe").string());
  std::vector<uint32_t> toks;
  for (int i = 0; i < 3000; ++i) toks.push_back(uint32_t("abcd"[i % 4]));
  write_token_shard((d / "train.bin").string(), toks, 257);
  auto config = [&](const std::string& run) {
    std::ostringstream t;
    t << "[model]\nvocab_size = 257\nn_layer = 1\nn_head = 2\nd_model = 16\nmax_seq_len = 16\n"
      << "[train]\nsteps = 4\nbatch_size = 4\nseq_len = 16\nlr = 2e-2\neval_every = 2\n"
      << "log_every = 100\n[data]\ntrain = \"" << (d / "train.bin").string() << "\"\ntokenizer = \""
      << (d / "tok.bpe").string() << "\"\n[run]\ndir = \"" << (d / run).string()
      << "\"\n[eval]\nprompts = [\"abca\", \"bc\"]\nmax_new_tokens = 6\n";
    return parse_config(t.str(), "prompts.toml");
  };
  auto be = make_host_backend();
  TrainSummary plain;
  {
    std::ostringstream log;
    Trainer t(config("plain"), *be, MPI_COMM_SELF, log);
    plain = t.run(RunOptions{.write_model = false, .checkpoints = false});
  }
  ASSERT_EQ(plain.eval_generations.size(), 3u);  // steps 0, 2, 4
  {
    const Config c = config("asked");
    std::ostringstream log;
    Trainer t(c, *be, MPI_COMM_SELF, log);
    Control ctl(c, t.run_directory());
    RunOptions o{.write_model = false, .checkpoints = false};
    o.control = &ctl.control;
    const TrainSummary s = t.run(o);
    EXPECT_FALSE(s.stopped);
    EXPECT_EQ(s.eval_generations, plain.eval_generations);
  }
  const Config c = config("stopped");
  std::ostringstream log;
  Trainer t(c, *be, MPI_COMM_SELF, log);
  Control ctl(c, t.run_directory());
  ::raise(SIGUSR2);
  RunOptions o{.write_model = false, .checkpoints = true};
  o.control = &ctl.control;
  const TrainSummary s = t.run(o);
  EXPECT_EQ(RunControl::exit_code(s.stopped), 75);
  EXPECT_EQ(s.last_step, 1);
  EXPECT_TRUE(s.eval_generations.empty());
  EXPECT_TRUE(has(log.str(), "prompt step 0 | cut short by a stop request (no generation recorded)"))
      << log.str();
  EXPECT_FALSE(has(log.str(), "prompt step 0 | abca ->")) << log.str();
  EXPECT_TRUE(has(log.str(), "stopping after step 1: SIGUSR2 (preemption)")) << log.str();
  fs::remove_all(d);
}
