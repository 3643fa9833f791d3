// Stopping a run early (jobs/): deadline parsing and the stop rule, telling a time limit from a
// preemption, the stop signals (a first one is recorded, a second exits at once), the
// relaunch rules (declared-safe changes accepted and journaled, the rest refused by name),
// and the run directory lock (a live holder refuses, a dead one is taken over).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "config/config.h"
#include "core/error.h"
#include "jobs/deadline.h"
#include "jobs/exit_codes.h"
#include "jobs/relaunch.h"
#include "jobs/run_lock.h"
#include "jobs/stop_signals.h"

using namespace llmpi;
namespace fs = std::filesystem;

namespace {

const char* kMiniConfig = R"(
[model]
vocab_size = 64
n_layer = 2
n_head = 2
d_model = 16
max_seq_len = 16
[train]
steps = 10
batch_size = 2
seq_len = 16
[data]
train = "x.bin"
)";

Config mini(const std::vector<std::string>& overrides = {}) {
  return parse_config(kMiniConfig, "mini.toml", overrides);
}

template <class F>
std::string user_error_of(F&& f) {
  try {
    f();
  } catch (const UserError& e) {
    return e.what();
  }
  return "";
}

fs::path temp_dir(const std::string& name) {
  const fs::path d = fs::temp_directory_path() / ("llmpi_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

}  // namespace

TEST(Deadline, ParsesTimesAndDurations) {
  EXPECT_EQ(parse_deadline("", 1000.0), std::nullopt);
  EXPECT_EQ(parse_deadline("45s", 1000.0), 1045.0);
  EXPECT_EQ(parse_deadline("90m", 1000.0), 1000.0 + 5400);
  EXPECT_EQ(parse_deadline("2h", 1000.0), 1000.0 + 7200);
  EXPECT_EQ(parse_deadline("1d", 0.0), 86400.0);
  EXPECT_EQ(parse_deadline("1:30:00", 0.0), 5400.0);
  const auto t = parse_local_time("2031-03-04T05:06:07");
  ASSERT_TRUE(t.has_value());
  const std::time_t tt = std::time_t(*t);
  std::tm tm{};
  localtime_r(&tt, &tm);
  EXPECT_EQ(tm.tm_year + 1900, 2031);
  EXPECT_EQ(tm.tm_mon, 2);
  EXPECT_EQ(tm.tm_mday, 4);
  EXPECT_EQ(tm.tm_hour, 5);
  EXPECT_EQ(tm.tm_min, 6);
  EXPECT_EQ(tm.tm_sec, 7);
  EXPECT_EQ(parse_deadline("2031-03-04T05:06", 0.0), *t - 7);
  for (const char* bad : {"soon", "0s", "-5m", "1:2", "2031-13-01T00:00", "2031-03-04 05:06", "5x"})
    EXPECT_NE(user_error_of([&] { parse_deadline(bad, 0.0); }).find("run.deadline"), std::string::npos) << bad;
}

TEST(Deadline, StopsWhenAStepAndTwoSavesNoLongerFit) {
  const Deadline none = earliest_deadline(std::nullopt, std::nullopt, "");
  EXPECT_FALSE(none);
  const Deadline d = earliest_deadline(1000.0, 900.0, "42");
  EXPECT_EQ(d.at_unix, 900.0);
  EXPECT_TRUE(d.slurm);
  EXPECT_EQ(d.source, "Slurm job 42 end time");
  EXPECT_FALSE(earliest_deadline(800.0, 900.0, "42").slurm);
  StopBudget b;
  b.longest_step_s = 10;
  b.save_s = 20;
  b.margin_s = 30;
  EXPECT_EQ(b.need(), 80.0);
  EXPECT_FALSE(must_stop_for(d, 819.0, b));
  EXPECT_TRUE(must_stop_for(d, 820.0, b));
  EXPECT_FALSE(must_stop_for(none, 1e12, b));
  EXPECT_EQ(estimated_save_s(10), 1.0);
  EXPECT_EQ(estimated_save_s(5'000'000'000), 10.0);
  // A signal 180 s (the script's margin) + up to Slurm's 60 s resolution before the end is the
  // time limit; earlier, or with no Slurm end time, it is a preemption.
  EXPECT_TRUE(signal_is_timeout(d, 900.0 - 240, 180));
  EXPECT_FALSE(signal_is_timeout(d, 900.0 - 400, 180));
  EXPECT_FALSE(signal_is_timeout(earliest_deadline(800.0, std::nullopt, ""), 799.0, 180));
}

TEST(StopSignals, FirstIsRecordedSecondExitsAtOnce) {
  {
    StopSignals s("USR2");
    EXPECT_EQ(s.pending(), 0);
    ::raise(SIGUSR2);
    EXPECT_EQ(s.pending(), SIGUSR2);
    EXPECT_GT(s.received_at(), 1e9);
    s.clear();
    ::raise(SIGTERM);  // always caught, whatever the configured one
    EXPECT_EQ(s.pending(), SIGTERM);
    s.clear();
  }
  // Uninstalled: the previous disposition is back (ignored here, so the process survives).
  struct sigaction ign {}, old {};
  ign.sa_handler = SIG_IGN;
  sigaction(SIGUSR2, &ign, &old);
  {
    StopSignals s("USR2");
  }
  ::raise(SIGUSR2);
  sigaction(SIGUSR2, &old, nullptr);
  EXPECT_EQ(parse_stop_signal("sigusr1", "--signal"), "USR1");
  EXPECT_NE(user_error_of([] { parse_stop_signal("HUP", "--signal"); }).find("--signal"), std::string::npos);
  // A second signal ends the process at once with 128 + its number (Ctrl-C twice).
  EXPECT_EXIT(
      {
        StopSignals s("USR1");
        ::raise(SIGINT);
        ::raise(SIGINT);
        std::this_thread::sleep_for(std::chrono::seconds(5));
        std::_Exit(0);
      },
      ::testing::ExitedWithCode(kExitSignalBase + SIGINT), "second stop signal");
}

TEST(Relaunch, AcceptsDeclaredSafeChangesAndNamesTheOthers) {
  const Config saved = mini();
  EXPECT_TRUE(compare_configs(saved, mini()).accepted.empty());
  const RelaunchDiff ok = compare_configs(
      saved, mini({"train.lr=1e-3", "train.steps=20", "checkpoint.every=5", "parallel.dp=2",
                   "run.deadline=2h", "watchdog.step_timeout=60"}));
  EXPECT_TRUE(ok.refused.empty());
  ASSERT_EQ(ok.accepted.size(), 6u);
  EXPECT_EQ(describe({ok.accepted[0]}), "train.steps 10 → 20");
  // Two non-zero floats also give their ratio (LOGBOOK.md's "lr × 0.75"); integers, zeros
  // and other values only their two texts.
  EXPECT_EQ(describe({{"train.lr", "0.0004", "0.0003"}, {"train.weight_decay", "0.0", "0.1"},
                      {"data.val", "a.bin", "b.bin"}}),
            "train.lr 0.0004 → 0.0003 (× 0.75), train.weight_decay 0.0 → 0.1, data.val a.bin → b.bin");
  const RelaunchDiff bad = compare_configs(saved, mini({"model.d_model=32", "train.seed=7", "train.lr=1e-3"}));
  ASSERT_EQ(bad.refused.size(), 3u);  // d_ff follows d_model (derived): a change as well
  EXPECT_EQ(bad.refused[0].key, "model.d_model");
  EXPECT_EQ(bad.refused[1].key, "model.d_ff");
  EXPECT_EQ(bad.refused[2].key, "train.seed");
  EXPECT_EQ(bad.accepted.size(), 1u);
  EXPECT_TRUE(is_declared_safe("logbook.spike_window"));
  EXPECT_FALSE(is_declared_safe("lora.rank"));
  EXPECT_TRUE(is_declared_safe("data.train"));  // files move; journaled
  EXPECT_FALSE(is_declared_safe("train.seq_len"));

  const std::string saved_toml = to_toml(saved);
  const Config bigger = mini({"model.d_model=32", "model.n_layer=3"});
  const std::string msg = user_error_of(
      [&] { refuse_unsafe_changes("ck.h5", relaunch_diff("ck.h5", saved_toml, bigger), bigger); });
  EXPECT_NE(msg.find("model.d_model: 16 in the checkpoint, 32 now (the model)"), std::string::npos) << msg;
  EXPECT_NE(msg.find("model.n_layer: 2 in the checkpoint, 3 now"), std::string::npos) << msg;
  const std::optional<RunEvent> e =
      config_change_event("ck.h5", relaunch_diff("ck.h5", saved_toml, mini({"train.lr=1e-3"})), 5);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->kind, RunEventKind::config_change);
  EXPECT_EQ(e->step, 5);
  EXPECT_EQ(e->line, "config changed since ck.h5: train.lr 3e-4 → 0.001 (× 3.333)");
  const std::vector<std::pair<std::string, std::string>> want = {
      {"checkpoint", "ck.h5"}, {"keys", "train.lr"}, {"summary", "train.lr 3e-4 → 0.001 (× 3.333)"},
      {"train.lr.before", "3e-4"}, {"train.lr.after", "0.001"}};
  EXPECT_EQ(e->details, want);
  EXPECT_FALSE(config_change_event("ck.h5", relaunch_diff("ck.h5", saved_toml, mini()), 5));
  // Nothing recorded, or another tool's config: not compared, and the event says so.
  EXPECT_TRUE(relaunch_diff("ck.h5", "", bigger).refused.empty());
  const RelaunchDiff odd = relaunch_diff("ck.h5", "[model\n", bigger);
  EXPECT_TRUE(odd.refused.empty());
  EXPECT_NE(odd.unchecked.find("does not parse"), std::string::npos) << odd.unchecked;
  EXPECT_NE(config_change_event("ck.h5", odd, 5)->line.find("was not checked"), std::string::npos);
}

TEST(RunLock, RefusesALiveHolderAndTakesOverADeadOne) {
  const fs::path dir = temp_dir("runlock");
  // A live holder in another process: refused, naming its pid and host.
  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  const pid_t child = ::fork();
  if (child == 0) {
    RunLock held(dir.string());
    (void)!::write(ready[1], "x", 1);
    for (;;) ::pause();
  }
  char c;
  ASSERT_EQ(::read(ready[0], &c, 1), 1);
  const std::string msg = user_error_of([&] { RunLock again(dir.string()); });
  EXPECT_NE(msg.find("is in use by pid " + std::to_string(child)), std::string::npos) << msg;
  // The holder dies (kill -9): its lock is stale and taken over, with a note.
  ::kill(child, SIGKILL);
  ::waitpid(child, nullptr, 0);
  std::string note;
  {
    RunLock mine(dir.string(), [&](const std::string& s) { note = s; });
    EXPECT_NE(note.find("took over a stale lock of pid " + std::to_string(child)), std::string::npos) << note;
    std::ifstream in(mine.path());
    std::string text((std::istreambuf_iterator<char>(in)), {});
    EXPECT_NE(text.find("\"pid\":" + std::to_string(::getpid())), std::string::npos) << text;
  }
  EXPECT_FALSE(fs::exists(dir / "lock"));  // released
  // A holder recorded by a dead process without any flock (a file system without locks, or a
  // lock manager that kept it): the liveness rules call it gone.
  nlohmann::json ghost = lock_holder_self();
  ghost["pid"] = child;  // reaped above
  EXPECT_NE(holder_is_gone(ghost).find("no longer exists"), std::string::npos);
  EXPECT_EQ(holder_is_gone(lock_holder_self()), "");  // this process is alive
  ::close(ready[0]);
  ::close(ready[1]);
  fs::remove_all(dir);
}
