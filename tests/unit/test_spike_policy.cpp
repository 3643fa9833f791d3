// SpikePolicy: the action for each verdict and setting, the data window a rollback skips, the
// cap on skips/rollbacks without progress, and its state across a checkpoint and the run
// directory's rollback record (a resume makes the uninterrupted run's decisions).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "train/spike_policy.h"

using namespace llmpi;
namespace fs = std::filesystem;

namespace {
SpikeVerdict spike() { return {true, false, 9.0, 0.0}; }
SpikeVerdict nonfinite() { return {true, true, std::nan(""), std::nan("")}; }
SpikeVerdict clean() { return {}; }
LogbookSection settings(SpikeAction on_spike, SpikeAction on_nonfinite, int64_t cap = 5) {
  LogbookSection l;
  l.spike_action = on_spike;
  l.nonfinite_action = on_nonfinite;
  l.rollback_skip_steps = 10;
  l.max_consecutive = cap;
  return l;
}
}  // namespace

TEST(SpikePolicy, ActionsFollowTheSettings) {
  SpikePolicy p(settings(SpikeAction::rollback, SpikeAction::skip));
  EXPECT_EQ(p.decide(10, clean(), 5).action, StepAction::apply);
  EXPECT_EQ(p.decide(11, nonfinite(), 5).action, StepAction::skip);
  EXPECT_EQ(p.decide(12, spike(), 5).action, StepAction::rollback);
  const StepDecision none = p.decide(13, spike(), -1);  // nothing to roll back to
  EXPECT_EQ(none.action, StepAction::skip);
  EXPECT_NE(none.reason.find("no checkpoint before it"), std::string::npos);
  SpikePolicy logging(settings(SpikeAction::log, SpikeAction::rollback));
  EXPECT_EQ(logging.decide(10, spike(), 5).action, StepAction::log_spike);
  EXPECT_EQ(logging.decide(11, nonfinite(), 5).action, StepAction::rollback);
  EXPECT_EQ(logging.consecutive(), 1);  // logging a spike is not an action
}

TEST(SpikePolicy, RollbackSkipsTheWindowEndingAtTheSpike) {
  SpikePolicy p(settings(SpikeAction::rollback, SpikeAction::skip));
  EXPECT_EQ(p.skip_window(130, 100), (std::vector<int64_t>{121, 122, 123, 124, 125, 126, 127, 128, 129, 130}));
  EXPECT_EQ(p.skip_window(130, 127), (std::vector<int64_t>{128, 129, 130}));  // not before the checkpoint
  EXPECT_TRUE(p.data_skipped(121));
  EXPECT_FALSE(p.data_skipped(120));
  EXPECT_FALSE(p.data_skipped(131));
}

TEST(SpikePolicy, CapEndsARunThatMakesNoProgress) {
  // Skips in a row: the sixth is one too many.
  SpikePolicy p(settings(SpikeAction::skip, SpikeAction::skip, 5));
  for (int64_t s = 1; s <= 5; ++s) p.decide(s, spike(), -1);
  EXPECT_THROW(p.decide(6, spike(), -1), UserError);
  // A clean step beyond the furthest one restarts the count.
  SpikePolicy q(settings(SpikeAction::skip, SpikeAction::skip, 2));
  q.decide(10, spike(), -1);
  q.decide(11, spike(), -1);
  q.completed(12, {}, 3.0, 1.0);
  EXPECT_EQ(q.consecutive(), 0);
  // Rollbacks that keep finding spikes while replaying old steps do not restart it.
  SpikePolicy r(settings(SpikeAction::rollback, SpikeAction::skip, 2));
  r.decide(130, spike(), 100);
  r.skip_window(130, 100);
  for (int64_t s = 101; s <= 115; ++s) r.completed(s, {}, 3.0, 1.0);  // replay: not progress
  EXPECT_EQ(r.consecutive(), 1);
  r.decide(116, spike(), 100);
  try {
    r.decide(117, spike(), 100);
    ADD_FAILURE() << "a third action without progress was allowed";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("logbook.max_consecutive = 2"), std::string::npos) << e.what();
  }
}

TEST(SpikePolicy, StateSurvivesACheckpointAndTheRollbackRecord) {
  LogbookSection cfg = settings(SpikeAction::rollback, SpikeAction::skip);
  cfg.spike_warmup = 3;
  SpikePolicy a(cfg);
  for (int64_t s = 1; s <= 100; ++s) a.completed(s, {}, 3.0 + 0.01 * (s % 3), 1.0);
  const RunState at100 = a.save(0);  // the checkpoint of step 100
  a.decide(130, spike(), 100);
  a.skip_window(130, 100);
  a.restore_window(at100);
  const RunState record = a.save(1);  // what the rollback writes to rollbacks.json
  // Killed before the next checkpoint: the resume from step 100 knows the skipped window and
  // the counters from the record, and the detector window from the checkpoint.
  SpikePolicy b(cfg);
  b.restore(at100, record);
  EXPECT_EQ(b.skipped_steps(), a.skipped_steps());
  EXPECT_EQ(b.consecutive(), 1);
  EXPECT_EQ(b.save(1).spike_loss_history, a.save(1).spike_loss_history);
  EXPECT_EQ(b.check(3.5, 1.0).loss_z, a.check(3.5, 1.0).loss_z);
  // Round trip of the record through the run directory.
  const fs::path dir = fs::temp_directory_path() / ("llmpi_spike_policy_" + std::to_string(getpid()));
  fs::create_directories(dir);
  EXPECT_FALSE(read_rollback_record(dir.string()).has_value());
  write_rollback_record(dir.string(), record);
  const auto back = read_rollback_record(dir.string());
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->skipped_steps, record.skipped_steps);
  EXPECT_EQ(back->furthest_step, 130);
  std::ofstream(dir / "rollbacks.json", std::ios::trunc) << "{\"segment\": 1}";
  EXPECT_THROW(read_rollback_record(dir.string()), UserError);
  remove_rollback_record(dir.string());
  EXPECT_FALSE(read_rollback_record(dir.string()).has_value());
  fs::remove_all(dir);
}
