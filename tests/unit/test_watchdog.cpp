// The hang watchdog (jobs/watchdog.h): its limits per phase (floors, learned from observed
// times), the report of a rank stuck in a collective, and the hang report files that the next
// launch journals. The end of a real job by the watchdog runs on the Slurm cluster
// (tests/slurm/) and under mpiexec (tests/e2e/watchdog_hang.sh).
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

#include "jobs/watchdog.h"

using namespace llmpi;
namespace fs = std::filesystem;

TEST(Watchdog, LimitsAreFloorsThatGrowWithObservedTimes) {
  WatchdogSection w;
  w.startup_timeout = 100;
  w.step_timeout = 5;
  w.save_timeout = 20;
  w.factor = 10;
  EXPECT_EQ(watchdog_limit(w, Phase::startup, 1000), 100);
  EXPECT_EQ(watchdog_limit(w, Phase::step, 0), 5);
  EXPECT_EQ(watchdog_limit(w, Phase::step, 0.2), 5);
  EXPECT_EQ(watchdog_limit(w, Phase::step, 2), 20);
  EXPECT_EQ(watchdog_limit(w, Phase::eval, 3), 30);
  EXPECT_EQ(watchdog_limit(w, Phase::save, 1), 20);
  EXPECT_EQ(watchdog_limit(w, Phase::save, 4), 40);
  EXPECT_EQ(watchdog_limit(w, Phase::idle, 4), 0);
}

TEST(Watchdog, ReportsARankStuckInACollective) {
  WatchdogSection w;
  w.step_timeout = 0.3;
  w.factor = 1;
  Progress p(/*rank=*/0);
  std::mutex mu;
  std::vector<HangReport> reports;
  {
    Watchdog dog(w, p, 3, "/nonexistent", [&](const HangReport& r) {
      std::lock_guard<std::mutex> l(mu);
      reports.push_back(r);
    });
    p.begin(Phase::step, 7);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    p.begin(Phase::step, 8);  // progress: a new step
    p.enter({"all_reduce", "dp", 4096, 16384});
    for (int i = 0; i < 500; ++i) {  // fires once, soon after 0.3 s (at most 5 s on a busy machine)
      {
        std::lock_guard<std::mutex> l(mu);
        if (!reports.empty()) break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));  // and only once
  }
  ASSERT_EQ(reports.size(), 1u);
  const HangReport& r = reports[0];
  EXPECT_EQ(r.rank, 3);
  EXPECT_EQ(r.step, 8);
  EXPECT_EQ(r.phase, Phase::step);
  EXPECT_GT(r.stalled_s, 0.3);
  EXPECT_LT(r.stalled_s, 5.0);
  EXPECT_EQ(r.op, "all_reduce");
  EXPECT_EQ(r.group, "dp");
  EXPECT_EQ(r.elements, 4096);
  const std::string m = r.message();
  EXPECT_NE(m.find("rank 3"), std::string::npos) << m;
  EXPECT_NE(m.find("at step 8, phase step (limit 0.3 s)"), std::string::npos) << m;
  EXPECT_NE(m.find("waiting in all_reduce over the dp group (4096 elements, 16.0 KiB)"), std::string::npos) << m;
  EXPECT_NE(m.find("exit 79"), std::string::npos) << m;
  EXPECT_EQ(p.longest(Phase::step) > 0.09, true);
}

TEST(Watchdog, QuietWhileProgressIsMadeAndWhenDisabled) {
  WatchdogSection w;
  w.step_timeout = 1.0;
  w.factor = 1;
  std::atomic<int> fired{0};
  Progress p(0);
  {
    Watchdog dog(w, p, 0, "/nonexistent", [&](const HangReport&) { ++fired; });
    for (int s = 1; s <= 8; ++s) {
      p.begin(Phase::step, s);
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    p.begin(Phase::idle, 8);  // no limit when idle
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  EXPECT_EQ(fired.load(), 0);
  w.enabled = false;
  {
    Watchdog dog(w, p, 0, "/nonexistent", [&](const HangReport&) { ++fired; });
    p.begin(Phase::step, 9);
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  EXPECT_EQ(fired.load(), 0);
}

// A phase of many small units (rank 0's eval-prompt tokens) advances per unit: timed per unit,
// not as a whole; a rank waiting for such a peer is not timed, and is timed afresh after.
TEST(Watchdog, AdvancingAndWaitingForAPeerAreNotHangs) {
  WatchdogSection w;
  w.step_timeout = 0.4;
  w.factor = 1;
  std::atomic<int> fired{0};
  std::atomic<double> stalled{0.0};
  Progress working(0), waiting(1);
  {
    Watchdog dog0(w, working, 0, "/nonexistent", [&](const HangReport&) { ++fired; });
    Watchdog dog1(w, waiting, 1, "/nonexistent", [&](const HangReport& r) {
      stalled = r.stalled_s;
      ++fired;
    });
    working.begin(Phase::eval, 3);
    waiting.begin(Phase::eval, 3);
    waiting.waiting_for_peer(true);
    for (int token = 0; token < 15; ++token) {  // 1.5 s of eval, 0.1 s per unit
      working.advance();
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    EXPECT_EQ(fired.load(), 0);
    EXPECT_GT(working.snapshot().phase_s, 1.4);  // the phase itself still counts from begin()
    EXPECT_LT(working.snapshot().stalled_s, 0.4);
    working.begin(Phase::idle, 3);
    waiting.waiting_for_peer(false);  // timed again, from now: fires after 0.4 s, not at once
    std::this_thread::sleep_for(std::chrono::milliseconds(150));
    EXPECT_EQ(fired.load(), 0);
    for (int i = 0; i < 500 && fired.load() == 0; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    EXPECT_EQ(fired.load(), 1);
    EXPECT_GT(stalled.load(), 0.4);
    EXPECT_LT(stalled.load(), 1.4);  // since the wait ended, not since the phase began
  }
  EXPECT_GT(working.longest(Phase::eval), 1.4);
}

TEST(Watchdog, HangReportsBecomeJournalEvents) {
  const fs::path dir = fs::temp_directory_path() / ("llmpi_hangs_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir / "hangs");
  HangReport r;
  r.rank = 1;
  r.host = "node7";
  r.step = 12;
  r.phase = Phase::save;
  r.op = "all_reduce";
  r.group = "world";
  r.stalled_s = 61;
  r.limit_s = 60;
  std::ofstream(dir / "hangs/rank-00001.json") << r.to_json().dump();
  std::ofstream(dir / "hangs/rank-00002.json") << "{not json";
  const std::vector<RunEvent> events = take_hang_reports(dir.string());
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].kind, RunEventKind::watchdog);
  EXPECT_EQ(events[0].step, 12);
  EXPECT_EQ(events[0].line,
            "the watchdog ended an earlier launch: rank 1 on node7 hung 61 s at step 12, phase "
            "checkpoint save, waiting in all_reduce over world");
  auto detail = [&](const RunEvent& e, const std::string& k) {
    for (const auto& [key, v] : e.details)
      if (key == k) return v;
    return std::string("(none)");
  };
  EXPECT_EQ(detail(events[0], "rank"), "1");
  EXPECT_EQ(detail(events[0], "phase"), "checkpoint save");
  EXPECT_EQ(detail(events[0], "collective"), "all_reduce");
  EXPECT_EQ(detail(events[1], "error"), "unreadable hang report");
  EXPECT_TRUE(take_hang_reports(dir.string()).empty());  // taken: removed
  fs::remove_all(dir);
}

TEST(Watchdog, TestHookIsCheckedAndOffByDefault) {
  ::setenv("LLMPI_TEST_HANG", "rank=one", 1);
  EXPECT_THROW(Progress(0), UserError);
  ::unsetenv("LLMPI_TEST_HANG");
  Progress p(0);
  p.begin(Phase::step, 1);
  p.enter({"barrier", "world", 0, 0});  // returns: no hook
  p.leave();
  EXPECT_EQ(p.snapshot().op, nullptr);
}
