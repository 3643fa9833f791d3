// Checkpointed training on one rank: periodic saves through the Trainer, exact resume (K
// steps + save + resume + K steps ≡ 2K steps, bit for bit: losses, parameters and the data
// mapping recorded in the checkpoints), on the one-store path (ZeRO 0) and the unit-chain
// path (ZeRO 3, dp 1), retention of the saved files, fallback from a corrupt or truncated
// newest checkpoint, removal of interrupted saves, and refusal of a checkpoint whose data
// order cannot continue (another global batch or seed).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "backend/backend.h"
#include "corpus_util.h"
#include "config/config.h"
#include "core/error.h"
#include "core/rng.h"
#include "data/token_shard.h"
#include "io/checkpoint.h"
#include "jobs/checkpoint_dir.h"
#include "jobs/run_dir.h"
#include "train/trainer.h"

using namespace llmpi;
namespace fs = std::filesystem;

namespace {

fs::path resume_corpus(const std::string& name) {
  return llmpi::testing::learnable_corpus("resume_" + name, 9, 6000);
}

struct Case {
  std::string arch = "gpt2";
  int steps = 12, every = 6, keep_last = 3, keep_every = 0;
  int batch = 2, micro = 2, zero = 0;
  uint64_t seed = 1234;
  std::string run = "run";
};

Config case_config(const fs::path& d, const Case& c) {
  std::ostringstream t;
  t << "[model]\narch = \"" << c.arch << "\"\nvocab_size = 64\nn_layer = 2\nn_head = 4\n"
    << (c.arch == "llama" ? "n_kv_head = 2\nd_ff = 64\n" : "") << "d_model = 32\nmax_seq_len = 16\n"
    << "[train]\nsteps = " << c.steps << "\nbatch_size = " << c.batch
    << "\nseq_len = 16\nlr = 1e-2\nmin_lr = 1e-3\nwarmup_steps = 3\nlog_every = 100\nseed = "
    << c.seed << "\n[data]\ntrain = \"" << (d / "train.bin").string() << "\"\n[parallel]\n"
    << "micro_batches = " << c.micro << "\nzero_stage = " << c.zero << "\n[checkpoint]\nevery = "
    << c.every << "\nkeep_last = " << c.keep_last << "\nkeep_every = " << c.keep_every
    << "\n[run]\ndir = \"" << (d / c.run).string() << "\"\n";
  return parse_config(t.str(), "resume_case.toml");
}

RunOptions no_model(int64_t stop_after = -1) {
  RunOptions o;
  o.write_model = false;
  o.stop_after = stop_after;
  return o;
}

std::vector<float> master_copy(Trainer& tr) {
  const Tensor& m = tr.params().master();
  return std::vector<float>(m.ptr<float>(), m.ptr<float>() + m.numel());
}

std::vector<int64_t> steps_on_disk(const fs::path& run) {
  std::vector<int64_t> s;
  for (const CheckpointFile& f : list_checkpoints(run.string())) s.push_back(f.step);
  return s;
}

// Trains 6 steps with checkpoints at 2, 4 and 6 in <d>/run; returns the case.
Case six_steps_saved_every_two(const fs::path& d, Backend& be) {
  Case c;
  c.steps = 6;
  c.every = 2;
  std::ostringstream log;
  Trainer t(case_config(d, c), be, MPI_COMM_SELF, log);
  t.run(no_model());
  EXPECT_EQ(steps_on_disk(d / "run"), (std::vector<int64_t>{2, 4, 6}));
  return c;
}

// Straight 2K steps vs K steps, a new trainer resuming from run.dir, K more steps.
void expect_bitwise_resume(Case c) {
  const fs::path d = resume_corpus(c.arch + "_z" + std::to_string(c.zero));
  auto be = make_host_backend();
  std::ostringstream log;
  c.run = "straight";
  Trainer straight(case_config(d, c), *be, MPI_COMM_SELF, log);
  const TrainSummary full = straight.run(no_model());
  c.run = "split";
  TrainSummary first, second;
  {
    Trainer a(case_config(d, c), *be, MPI_COMM_SELF, log);
    first = a.run(no_model(c.every));
    EXPECT_EQ(steps_on_disk(d / "split"), std::vector<int64_t>{c.every});
  }
  std::ostringstream rlog;
  Trainer b(case_config(d, c), *be, MPI_COMM_SELF, rlog);
  const std::optional<ResumePoint> p = b.resume_latest();
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->step, c.every);
  EXPECT_EQ(p->tokens_seen, int64_t(c.every) * c.batch * c.micro * 16);
  EXPECT_NE(rlog.str().find("resuming from " + p->path + " at step " + std::to_string(c.every)),
            std::string::npos)
      << rlog.str();
  second = b.run(no_model());

  ASSERT_EQ(full.steps.size(), size_t(c.steps));
  ASSERT_EQ(first.steps.size() + second.steps.size(), size_t(c.steps));
  for (size_t i = 0; i < full.steps.size(); ++i) {
    const StepRecord& r = i < first.steps.size() ? first.steps[i] : second.steps[i - first.steps.size()];
    EXPECT_EQ(r.step, full.steps[i].step);
    EXPECT_EQ(r.loss, full.steps[i].loss) << "step " << i + 1;
    EXPECT_EQ(r.grad_norm, full.steps[i].grad_norm) << "step " << i + 1;
  }
  const std::vector<float> w0 = master_copy(straight), w1 = master_copy(b);
  ASSERT_EQ(w0.size(), w1.size());
  for (size_t i = 0; i < w0.size(); ++i) ASSERT_EQ(w0[i], w1[i]) << "parameter element " << i;

  // The final checkpoints hold the same state and the same data mapping (steps K+1..2K).
  const CheckpointMeta ma = read_checkpoint_meta(checkpoint_path((d / "straight").string(), c.steps));
  const CheckpointMeta mb = read_checkpoint_meta(checkpoint_path((d / "split").string(), c.steps));
  EXPECT_EQ(mb.optimizer.step_count, c.steps);
  EXPECT_EQ(mb.data.samples_consumed, ma.data.samples_consumed);
  EXPECT_EQ(mb.data.steps, ma.data.steps);
  ASSERT_EQ(mb.data.steps.size(), size_t(c.steps - c.every));
  EXPECT_EQ(mb.data.steps.front(), c.every + 1);
  EXPECT_EQ(mb.data.step_samples, ma.data.step_samples);
  EXPECT_EQ(mb.data.step_samples.size(), mb.data.steps.size() * size_t(c.batch * c.micro));
  fs::remove_all(d);
}

}  // namespace

TEST(Resume, BitwiseGpt2OneStore) { expect_bitwise_resume(Case{}); }

TEST(Resume, BitwiseLlamaZero3Units) {
  Case c;
  c.arch = "llama";
  c.zero = 3;  // the unit-chain path, its shard store holding every parameter on one rank
  expect_bitwise_resume(c);
}

TEST(Resume, RetentionAndLatestDuringTraining) {
  const fs::path d = resume_corpus("retention");
  auto be = make_host_backend();
  std::ostringstream log;
  Case c;
  c.steps = 10;
  c.every = 2;
  c.keep_last = 2;
  c.keep_every = 4;
  Trainer t(case_config(d, c), *be, MPI_COMM_SELF, log);
  t.run(no_model());
  // Saved at 2, 4, 6, 8, 10; 4 and 8 are permanent; the newest 2 regular ones are 6, 10.
  EXPECT_EQ(steps_on_disk(d / "run"), (std::vector<int64_t>{4, 6, 8, 10}));
  EXPECT_EQ(read_latest((d / "run").string()).value_or(""), checkpoint_filename(10));
  // One "checkpoint step" line per save, each with its stall.
  size_t lines = 0;
  for (size_t at = log.str().find("checkpoint step"); at != std::string::npos;
       at = log.str().find("checkpoint step", at + 1))
    ++lines;
  EXPECT_EQ(lines, 5u);
  EXPECT_NE(log.str().find("stall"), std::string::npos);
  // The data mapping of each kept checkpoint covers the steps since the one saved before it.
  const CheckpointMeta m6 = read_checkpoint_meta(checkpoint_path((d / "run").string(), 6));
  EXPECT_EQ(m6.data.steps, (std::vector<int64_t>{5, 6}));
  EXPECT_EQ(m6.data.samples_consumed, 6 * c.batch * c.micro);
  fs::remove_all(d);
}

TEST(Resume, FallsBackFromCorruptAndTruncatedNewest) {
  const fs::path d = resume_corpus("fallback");
  auto be = make_host_backend();
  std::ostringstream log;
  const Case c = six_steps_saved_every_two(d, *be);
  const std::string run = (d / "run").string();
  {  // Newest: a flipped byte in the middle. Next: truncated to half.
    std::fstream f(checkpoint_path(run, 6), std::ios::in | std::ios::out | std::ios::binary);
    const auto size = fs::file_size(checkpoint_path(run, 6));
    f.seekg(std::streamoff(size / 2));
    char b = 0;
    f.read(&b, 1);
    b = char(b ^ 0x5a);
    f.seekp(std::streamoff(size / 2));
    f.write(&b, 1);
  }
  fs::resize_file(checkpoint_path(run, 4), fs::file_size(checkpoint_path(run, 4)) / 2);
  std::ofstream(checkpoint_path(run, 8) + ".tmp") << "an interrupted save";

  std::ostringstream rlog;
  Trainer t(case_config(d, c), *be, MPI_COMM_SELF, rlog);
  const std::optional<ResumePoint> p = t.resume_latest();
  ASSERT_TRUE(p.has_value()) << rlog.str();
  EXPECT_EQ(p->step, 2);
  EXPECT_EQ(p->rejected.size(), 2u);
  EXPECT_FALSE(fs::exists(checkpoint_path(run, 8) + ".tmp"));
  const std::string out = rlog.str();
  EXPECT_NE(out.find(checkpoint_filename(6)), std::string::npos) << out;
  EXPECT_NE(out.find(checkpoint_filename(4)), std::string::npos) << out;
  EXPECT_NE(out.find("resuming from " + checkpoint_path(run, 2)), std::string::npos) << out;
  // It continues from step 3 and saves over the rejected files.
  const TrainSummary s = t.run(no_model());
  ASSERT_EQ(s.steps.size(), 4u);
  EXPECT_EQ(s.steps.front().step, 3);
  EXPECT_EQ(verify_checkpoint(checkpoint_path(run, 6), MPI_COMM_NULL), "");
  // An explicit file that is invalid is an error, not a fallback.
  fs::resize_file(checkpoint_path(run, 6), 1000);
  Trainer u(case_config(d, c), *be, MPI_COMM_SELF, rlog);
  EXPECT_THROW(u.resume(checkpoint_path(run, 6)), UserError);
  fs::remove_all(d);
}

// Issue #13 item 3: when every checkpoint is damaged (truncated, or only its integrity
// header), training started again from step 0, exited 0 and overwrote them. Now it stops
// with each file and why; --no-resume moves them aside and never overwrites them.
TEST(Resume, EveryCheckpointDamagedStopsUnlessNoResumeMovesThemAside) {
  const fs::path d = resume_corpus("all_damaged");
  auto be = make_host_backend();
  std::ostringstream log;
  const Case c = six_steps_saved_every_two(d, *be);
  const std::string run = (d / "run").string();
  fs::resize_file(checkpoint_path(run, 6), fs::file_size(checkpoint_path(run, 6)) / 2);
  fs::resize_file(checkpoint_path(run, 4), 100);
  {  // Step 2: only the header's digest changes; the tensors are intact.
    std::fstream f(checkpoint_path(run, 2), std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(32);
    f.write("\x01\x02\x03\x04", 4);
  }
  Trainer t(case_config(d, c), *be, MPI_COMM_SELF, log);
  try {
    t.resume_latest();
    FAIL() << "started again over three damaged checkpoints";
  } catch (const UserError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("holds 3 checkpoint(s) and none of them loads"), std::string::npos) << m;
    for (int s : {2, 4, 6})
      EXPECT_NE(m.find(checkpoint_path(run, s) + " rejected: "), std::string::npos) << m;
    EXPECT_NE(m.find("--no-resume"), std::string::npos) << m;
  }
  EXPECT_EQ(steps_on_disk(d / "run"), (std::vector<int64_t>{2, 4, 6}));  // untouched

  // --no-resume: moved aside, then a fresh run saves its own files beside them.
  std::ostringstream rlog;
  RunDirectory rd(run, MPI_COMM_SELF, rlog);
  const std::vector<std::string> moved = rd.set_aside_unreadable();
  ASSERT_EQ(moved.size(), 3u) << rlog.str();
  EXPECT_EQ(moved[0], checkpoint_path(run, 2) + ".unreadable");
  EXPECT_NE(rlog.str().find("moved aside to " + checkpoint_path(run, 6) + ".unreadable"),
            std::string::npos) << rlog.str();
  EXPECT_TRUE(steps_on_disk(d / "run").empty());
  const auto size4 = fs::file_size(checkpoint_path(run, 4) + ".unreadable");
  Trainer fresh(case_config(d, c), *be, MPI_COMM_SELF, log);
  fresh.run(no_model());
  EXPECT_EQ(steps_on_disk(d / "run"), (std::vector<int64_t>{2, 4, 6}));
  EXPECT_EQ(fs::file_size(checkpoint_path(run, 4) + ".unreadable"), size4);
  fs::remove_all(d);
}

TEST(Resume, RefusesAnotherGlobalBatchOrSeedAndAcceptsTheSameSplitDifferently) {
  const fs::path d = resume_corpus("refuse");
  auto be = make_host_backend();
  std::ostringstream log;
  Case c;
  c.steps = 4;
  c.every = 2;
  {
    Trainer t(case_config(d, c), *be, MPI_COMM_SELF, log);
    t.run(no_model(2));
  }
  const std::string ckpt = checkpoint_path((d / "run").string(), 2);
  Case other = c;
  other.micro = 3;  // G = 6 instead of 4
  Trainer g(case_config(d, other), *be, MPI_COMM_SELF, log);
  try {
    g.resume(ckpt);
    ADD_FAILURE() << "a different global batch was accepted";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("global batch"), std::string::npos) << e.what();
  }
  other = c;
  other.seed = 99;
  Trainer s(case_config(d, other), *be, MPI_COMM_SELF, log);
  EXPECT_THROW(s.resume(ckpt), UserError);
  // B = 4 × 1 micro-batch has the same global batch: it resumes and continues at step 3.
  other = c;
  other.batch = 4;
  other.micro = 1;
  Trainer ok(case_config(d, other), *be, MPI_COMM_SELF, log);
  EXPECT_EQ(ok.resume(ckpt).step, 2);
  const TrainSummary r = ok.run(no_model());
  ASSERT_EQ(r.steps.size(), 2u);
  EXPECT_EQ(r.steps.front().step, 3);
  EXPECT_TRUE(std::isfinite(r.steps.back().loss));
  fs::remove_all(d);
}
