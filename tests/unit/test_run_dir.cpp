// The run directory's life (jobs/run_dir.h) seen by an observer: the events of resuming
// (temporaries removed, newer files rejected), begin (snapshot, directories, run_start),
// commits from the checkpoint writer's thread (queued until delivered on the training
// thread; `latest`, retention deletions), end; the console lines on the given stream. And
// what may change on resume (jobs/resume.h): each refusal names the key and both values.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "config/config.h"
#include "core/error.h"
#include "jobs/resume.h"
#include "jobs/run_dir.h"
#include "test_checkpoint_util.h"

using namespace llmpi;
using namespace llmpi::testing;
namespace fs = std::filesystem;

namespace {

struct Recorder : RunObserver {
  std::vector<RunEvent> events;
  std::vector<std::thread::id> threads;
  void on_event(const RunEvent& e) override {
    events.push_back(e);
    threads.push_back(std::this_thread::get_id());
  }
  std::vector<std::string> kinds() const {
    std::vector<std::string> out;
    for (const RunEvent& e : events) out.push_back(event_name(e.kind));
    return out;
  }
};

std::string detail_of(const RunEvent& e, const std::string& key) {
  for (const auto& [k, v] : e.details)
    if (k == key) return v;
  return "(none)";
}

Config small_config(const fs::path& run) {
  return parse_config("[model]\nvocab_size = 64\nn_layer = 1\nn_head = 2\nd_model = 16\n"
                      "max_seq_len = 8\n[train]\nsteps = 40\nbatch_size = 4\nseq_len = 8\n"
                      "warmup_steps = 1\nseed = 1234\n[data]\ntrain = \"x.bin\"\n[run]\ndir = \"" +
                          run.string() + "\"\n",
                      "run_dir_test.toml");
}

}  // namespace

TEST(RunDirectory, LifecycleEventsInOrder) {
  const fs::path run = ckpt_temp_dir("run_dir");
  fs::create_directories(checkpoints_dir(run.string()));
  WholeState w = whole_state();
  for (int64_t step : {10, 20})
    save_checkpoint(checkpoint_path(run.string(), step), MPI_COMM_NULL, w.slabs, ckpt_meta(step));
  fs::resize_file(checkpoint_path(run.string(), 20), 3000);  // a killed write
  std::ofstream(checkpoint_path(run.string(), 30) + ".tmp") << "an interrupted save";

  std::ostringstream out;
  RunDirectory dir(run.string(), MPI_COMM_NULL, out);
  Recorder rec;
  dir.add_observer(rec);
  const Discovery d = dir.find_resume_checkpoint();
  ASSERT_TRUE(d.found.has_value());
  EXPECT_EQ(d.found->step, 10);
  EXPECT_EQ(rec.kinds(), (std::vector<std::string>{"temporary_removed", "checkpoint_rejected"}));
  EXPECT_EQ(detail_of(rec.events[1], "path"), checkpoint_path(run.string(), 20));
  EXPECT_EQ(rec.events[1].step, 20);
  EXPECT_FALSE(fs::exists(checkpoint_path(run.string(), 30) + ".tmp"));
  EXPECT_NE(out.str().find("removed "), std::string::npos) << out.str();
  EXPECT_NE(out.str().find("step_00000020.h5 rejected: "), std::string::npos) << out.str();

  const Config cfg = small_config(run);
  dir.begin(cfg, 10, /*checkpoints=*/true, d.found->path);
  ASSERT_EQ(rec.events.size(), 3u);
  EXPECT_EQ(rec.kinds().back(), "run_start");
  EXPECT_EQ(detail_of(rec.events[2], "resumed_from"), d.found->path);
  EXPECT_EQ(rec.events[2].step, 10);
  std::ifstream snap(run / "config.toml");
  std::stringstream text;
  text << snap.rdbuf();
  EXPECT_EQ(text.str(), cfg.source_text);

  // A save completes on the writer thread: its events wait for the training thread.
  save_checkpoint(checkpoint_path(run.string(), 40), MPI_COMM_NULL, w.slabs, ckpt_meta(40));
  CheckpointSection keep_one;
  keep_one.keep_last = 1;
  std::thread writer([&] { dir.commit_checkpoint(40, keep_one, 0.25); });
  writer.join();
  EXPECT_EQ(rec.events.size(), 3u) << "delivered on the writer thread";
  EXPECT_EQ(read_latest(run.string()).value_or(""), checkpoint_filename(40));
  dir.deliver_events();
  EXPECT_EQ(rec.kinds(), (std::vector<std::string>{"temporary_removed", "checkpoint_rejected",
                                                   "run_start", "checkpoint_saved",
                                                   "checkpoint_deleted", "checkpoint_deleted"}));
  for (std::thread::id t : rec.threads) EXPECT_EQ(t, std::this_thread::get_id());
  EXPECT_EQ(detail_of(rec.events[3], "bytes"),
            std::to_string(fs::file_size(checkpoint_path(run.string(), 40))));
  EXPECT_EQ(detail_of(rec.events[3], "seconds"), std::to_string(0.25));
  EXPECT_EQ(rec.events[4].step, 10);  // retention keeps only the newest
  EXPECT_EQ(rec.events[5].step, 20);
  EXPECT_EQ(list_checkpoints(run.string()).size(), 1u);

  dir.end(40, true);
  EXPECT_EQ(rec.kinds().back(), "run_end");
  EXPECT_EQ(detail_of(rec.events.back(), "completed"), "1");
  fs::remove_all(run);
}

TEST(RunDirectory, EveryEventKindHasItsName) {
  EXPECT_STREQ(event_name(RunEventKind::run_start), "run_start");
  EXPECT_STREQ(event_name(RunEventKind::checkpoint_saved), "checkpoint_saved");
  EXPECT_STREQ(event_name(RunEventKind::run_end), "run_end");
}

TEST(ResumePolicy, CheckResumableNamesWhatDiffers) {
  const fs::path run = ckpt_temp_dir("resumable");
  const Config cfg = small_config(run);  // seed 1234, 40 steps
  const CheckpointMeta ok = ckpt_meta(10);  // seed 1234, global batch 4
  EXPECT_NO_THROW(check_resumable("c.h5", ok, cfg, 4));
  auto message = [&](CheckpointMeta m, int64_t global_batch) {
    try {
      check_resumable("c.h5", m, cfg, global_batch);
    } catch (const UserError& e) {
      return std::string(e.what());
    }
    return std::string("(accepted)");
  };
  CheckpointMeta seed = ok;
  seed.data.seed = 7;
  EXPECT_NE(message(seed, 4).find("c.h5: saved with train.seed = 7 but the config has 1234"),
            std::string::npos);
  EXPECT_NE(message(ok, 6).find("global batch of 4 samples per step but the config gives 6"),
            std::string::npos);
  CheckpointMeta late = ckpt_meta(50);
  EXPECT_NE(message(late, 4).find("step 50 is outside 0..train.steps = 40"), std::string::npos);
  CheckpointMeta moved = ok;
  moved.data.samples_consumed = 41;
  EXPECT_NE(message(moved, 4).find("data position 41"), std::string::npos);
}
