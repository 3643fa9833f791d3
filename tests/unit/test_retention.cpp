// Checkpoint schedule and retention rules (pure functions), and the deleter on real files.
#include <gtest/gtest.h>

#include <fstream>

#include "jobs/checkpoint_dir.h"
#include "jobs/retention.h"
#include "test_checkpoint_util.h"

using namespace llmpi;
namespace fs = std::filesystem;

TEST(Retention, SaveSteps) {
  CheckpointSection c;
  c.every = 100;
  std::vector<int64_t> saved;
  for (int64_t s = 0; s <= 1000; ++s)
    if (is_save_step(c, s, 950)) saved.push_back(s);
  EXPECT_EQ(saved, (std::vector<int64_t>{100, 200, 300, 400, 500, 600, 700, 800, 900, 950,
                                         1000}));
  c.log_spaced = true;
  saved.clear();
  for (int64_t s = 0; s <= 1000; ++s)
    if (is_save_step(c, s, 1000)) saved.push_back(s);
  EXPECT_EQ(saved, (std::vector<int64_t>{1, 2, 4, 8, 16, 32, 64, 100, 128, 200, 256, 300, 400,
                                         500, 512, 600, 700, 800, 900, 1000}));
  c.every = 0;  // only the log-spaced steps and the end
  EXPECT_TRUE(is_save_step(c, 512, 3000));
  EXPECT_FALSE(is_save_step(c, 1024, 3000));
  EXPECT_TRUE(is_save_step(c, 3000, 3000));
  EXPECT_FALSE(is_save_step(c, 0, 3000));
}

TEST(Retention, KeepLastKeepEveryLogSpacedAndNewestValid) {
  CheckpointSection c;
  c.every = 10;
  c.keep_last = 2;
  c.keep_every = 50;
  std::vector<int64_t> existing;
  for (int64_t s = 10; s <= 120; s += 10) existing.push_back(s);
  // Keep 50, 100 (permanent), 120, 110 (newest two regular); delete the rest.
  EXPECT_EQ(steps_to_delete(c, existing, 120),
            (std::vector<int64_t>{10, 20, 30, 40, 60, 70, 80, 90}));
  // If 120 and 110 are corrupt, the newest valid one (90) survives retention as well.
  EXPECT_EQ(steps_to_delete(c, existing, 90), (std::vector<int64_t>{10, 20, 30, 40, 60, 70, 80}));
  // Log-spaced early checkpoints are permanent.
  c.log_spaced = true;
  c.keep_every = 0;
  c.keep_last = 1;
  EXPECT_EQ(steps_to_delete(c, {1, 2, 3, 4, 8, 10, 16, 20, 30}, 30),
            (std::vector<int64_t>{3, 10, 20}));
  // keep_last counts regular checkpoints only; duplicates and order do not matter.
  c.log_spaced = false;
  c.keep_last = 3;
  EXPECT_EQ(steps_to_delete(c, {40, 10, 30, 20, 30}, -1), (std::vector<int64_t>{10}));
  EXPECT_TRUE(steps_to_delete(c, {}, -1).empty());
}

TEST(Retention, NeverDeletesTheNewestValidCheckpoint) {
  // Property over many settings: the newest valid step is never in the deletion list, and
  // every permanent step survives.
  for (int64_t keep_last = 1; keep_last <= 4; ++keep_last)
    for (int64_t keep_every : {0, 20, 30})
      for (bool log : {false, true}) {
        CheckpointSection c;
        c.every = 10;
        c.keep_last = keep_last;
        c.keep_every = keep_every;
        c.log_spaced = log;
        std::vector<int64_t> existing = {1, 2, 4, 8};
        for (int64_t s = 10; s <= 200; s += 10) existing.push_back(s);
        for (int64_t newest : existing) {
          const auto del = steps_to_delete(c, existing, newest);
          EXPECT_EQ(std::count(del.begin(), del.end(), newest), 0);
          for (int64_t s : del) EXPECT_FALSE(is_permanent_step(c, s));
          EXPECT_EQ(int64_t(existing.size() - del.size()) >= keep_last, true);
        }
      }
}

TEST(Retention, ApplyDeletesFilesAndUpdatesLatest) {
  const fs::path run = llmpi::testing::ckpt_temp_dir("retention");
  fs::create_directories(checkpoints_dir(run.string()));
  CheckpointSection c;
  c.every = 10;
  c.keep_last = 2;
  c.keep_every = 30;
  for (int64_t s = 10; s <= 70; s += 10) {
    std::ofstream(checkpoint_path(run.string(), s)) << "x";
    commit_checkpoint(run.string(), s, c);
  }
  std::vector<int64_t> left;
  for (const CheckpointFile& f : list_checkpoints(run.string())) left.push_back(f.step);
  EXPECT_EQ(left, (std::vector<int64_t>{30, 50, 60, 70}));  // 30, 60 permanent; 50, 70 last
  EXPECT_EQ(read_latest(run.string()).value(), "step_00000070.h5");
  fs::remove_all(run);
}
