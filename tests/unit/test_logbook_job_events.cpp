// Slurm's job events in the logbook (issue 12's events, issue 11's journal): a launch that is a
// requeued Slurm job (SLURM_RESTART_COUNT > 0) and the hang report an earlier launch's
// watchdog left in <run.dir>/hangs/ are journaled in logbook.h5 and LOGBOOK.md — in the new
// segment, before its resume, the watchdog event carrying the hung rank and host — through the
// whole `llmpi train` command. No Slurm is needed: its variables are set by hand (a job id
// that is not a number, so that no squeue is asked for the job's end time).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "corpus_util.h"
#include "io/logbook_file.h"
#include "llmpi_binary.h"

using namespace llmpi;
namespace fs = std::filesystem;

namespace {

std::string config_text(const fs::path& d) {
  return "[model]\narch = \"gpt2\"\nvocab_size = 64\nn_layer = 1\nn_head = 2\nd_model = 16\n"
         "max_seq_len = 16\n[train]\nsteps = 2\nbatch_size = 2\nseq_len = 16\nlr = 1e-2\n"
         "log_every = 100\n[data]\ntrain = \"" + (d / "train.bin").string() +
         "\"\n[checkpoint]\nevery = 2\n[run]\ndir = \"" + (d / "run").string() + "\"\n";
}

// The index of the first event of `type` in segment `segment`, or -1.
int find_event(const LogbookContents& c, const std::string& type, int64_t segment) {
  for (size_t i = 0; i < c.events.size(); ++i)
    if (c.events[i].type == type && c.events[i].segment == segment) return int(i);
  return -1;
}

}  // namespace

TEST(LogbookJobEvents, RequeueAndHangReportOfAnEarlierLaunchReachTheJournal) {
  const fs::path d = llmpi::testing::learnable_corpus("logbook_job_events", 3, 2000);
  std::ofstream(d / "c.toml") << config_text(d);
  const std::string train = std::string(LLMPI_BINARY_PATH) + " train " + (d / "c.toml").string();
  auto [rc, out] = llmpi::testing::run_shell(train + " 2>&1");
  ASSERT_EQ(rc, 0) << out;

  // What the watchdog of a hung launch leaves (jobs/watchdog.h: HangReport::to_json).
  const fs::path run = d / "run";
  fs::create_directories(run / "hangs");
  std::ofstream(run / "hangs" / "rank-00001.json")
      << R"({"rank": 1, "host": "node-b", "pid": 77, "step": 3, "phase": "step", "stalled_s": 61.5,)"
      << R"( "limit_s": 60, "time_unix": 1700000000.0, "collective": "all_reduce", "group": "dp",)"
      << R"( "elements": 1024, "in_collective_s": 61.0, "slurm_job": "llmpi-test"})" << "\n";
  std::tie(rc, out) = llmpi::testing::run_shell(
      "SLURM_JOB_ID=llmpi-test SLURM_RESTART_COUNT=1 " + train + " --set train.steps=4 2>&1");
  ASSERT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("requeued Slurm job llmpi-test: restart 1"), std::string::npos) << out;
  EXPECT_FALSE(fs::exists(run / "hangs" / "rank-00001.json")) << "the report is taken once";

  const LogbookContents c = read_logbook_file((run / "logbook.h5").string());
  const int requeue = find_event(c, "requeue", 1), hang = find_event(c, "watchdog", 1),
            resume = find_event(c, "resume", 1);
  ASSERT_GE(requeue, 0) << "no requeue event in segment 1";
  ASSERT_GE(hang, 0) << "no watchdog event in segment 1";
  ASSERT_GE(resume, 0) << "no resume event in segment 1";
  EXPECT_LT(requeue, resume);
  EXPECT_LT(hang, resume);
  EXPECT_EQ(find_event(c, "requeue", 0), -1) << "the first launch was no requeue";
  const Event& q = c.events[size_t(requeue)];
  EXPECT_EQ(q.details.value("slurm_job", std::string()), "llmpi-test");
  EXPECT_EQ(q.details.value("restart_count", int64_t{0}), 1);
  const Event& h = c.events[size_t(hang)];
  EXPECT_EQ(h.step, 3);
  EXPECT_EQ(h.rank, 1);
  EXPECT_EQ(h.host, "node-b");
  EXPECT_EQ(h.details.value("collective", std::string()), "all_reduce");
  EXPECT_EQ(h.details.value("group", std::string()), "dp");

  std::stringstream md;
  md << std::ifstream(run / "LOGBOOK.md").rdbuf();
  EXPECT_NE(md.str().find("requeued as Slurm job llmpi-test (restart 1)"), std::string::npos) << md.str();
  EXPECT_NE(md.str().find("the watchdog ended an earlier launch: rank 1 on node-b hung"),
            std::string::npos)
      << md.str();
  fs::remove_all(d);
}
