// The event journal: one table row per type, sentences filled from details (units by key
// suffix, optional [groups]), unknown types from newer writers, config diffs and layouts.
#include <gtest/gtest.h>

#include <set>

#include "core/error.h"
#include "io/journal.h"

using namespace llmpi;

TEST(Journal, EveryTypeHasAUniqueShortNameAndASentence) {
  std::set<std::string> names;
  for (const EventTypeInfo& t : event_types()) {
    EXPECT_TRUE(names.insert(std::string(t.name)).second) << t.name;
    EXPECT_LE(t.name.size(), 32u) << t.name;  // the file stores names in 32 bytes
    EXPECT_FALSE(t.sentence.empty()) << t.name;
    EXPECT_EQ(find_event_type(t.name), t.type);
    EXPECT_EQ(event_name(t.type), t.name);
  }
  for (const char* required : {"run_start", "resume", "config_change", "checkpoint_saved",
                               "checkpoint_rejected", "loss_spike", "step_skipped", "nonfinite",
                               "rollback", "signal", "failure", "run_end"})
    EXPECT_TRUE(find_event_type(required).has_value()) << required;
  EXPECT_FALSE(find_event_type("no_such_type").has_value());
}

TEST(Journal, SentencesFormatUnitsAndOptionalGroups) {
  Event e = make_event(EventType::checkpoint_saved, 500,
                       {{"path", "checkpoints/step_00000500.h5"}, {"size_bytes", 12345678},
                        {"write_s", 0.25}, {"write_gbps", 0.0494}, {"stall_s", 0.0031}});
  EXPECT_GT(e.time_unix, 1.6e9);
  EXPECT_EQ(render_sentence(e),
            "checkpoint checkpoints/step_00000500.h5 saved: 12.3 MB in 0.25 s (0.0494 GB/s), "
            "training stalled 0.0031 s");
  // Optional group printed only when its keys are present; a missing plain key prints "?".
  Event s = make_event(EventType::signal, 77, {{"signal", "SIGUSR1"}});
  EXPECT_EQ(render_sentence(s), "signal SIGUSR1 received");
  s.details["action"] = "checkpoint and exit";
  EXPECT_EQ(render_sentence(s), "signal SIGUSR1 received: checkpoint and exit");
  Event f = make_event(EventType::failure, 3, {});
  EXPECT_EQ(render_sentence(f), "failure: ?");
  // {step} falls back to the event's step.
  Event k = make_event(EventType::step_skipped, 42, {{"reason", "non-finite gradient"}});
  EXPECT_EQ(render_sentence(k), "update of step 42 not applied: non-finite gradient");
  // A type from a newer writer is kept and printed generically.
  Event u;
  u.type = "requeue_v2";
  u.details = {{"job", 17}, {"wait_s", 1.5}};
  EXPECT_EQ(render_sentence(u), "requeue_v2: job 17, wait_s 1.5 s");
}

TEST(Journal, LayoutText) {
  auto layout = [](int tp, int pp, int dp, int zero) {
    Layout l;
    l.tp = tp, l.pp = pp, l.dp = dp, l.zero_stage = zero;
    return l;
  };
  EXPECT_EQ(layout_text(layout(2, 1, 4, 1)), "tp2·dp4, ZeRO 1");
  EXPECT_EQ(layout_text(layout(1, 1, 1, 0)), "1 rank");
  EXPECT_EQ(layout_text(layout(2, 2, 2, 3)), "tp2·pp2·dp2, ZeRO 3");
}
