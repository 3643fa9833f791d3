#pragma once
// The events of a run's life that jobs/ reports — signal, timeout, requeue, watchdog,
// config_change — handed to one sink that the caller provides. The logbook's journal
// (<run.dir>/logbook.h5, issue "logbook") is meant to be that sink: it maps `type` to its
// event type of the same name and stores step, rank, host and details as they are.
// Until it is connected, the trainer's sink prints each event as one line
// "journal: <type> step <s> {json details}" on rank 0's output (train.log).
// A sink is called on the rank that made the event, from the main thread, never from a
// signal handler or the watchdog thread (the watchdog leaves hang reports on disk instead:
// jobs/watchdog.h).
#include <cstdint>
#include <functional>
#include <string>

#include <nlohmann/json.hpp>

namespace llmpi {

struct JobEvent {
  std::string type;       // "signal", "timeout", "requeue", "watchdog", "config_change"
  int64_t step = -1;      // the step it concerns; -1 = none
  int64_t rank = -1;      // the rank it concerns; -1 = the job as a whole
  std::string host;       // may be empty
  double time_unix = 0.0; // when it happened (0: the sink stamps it)
  nlohmann::json details = nlohmann::json::object();
};

using JobEventSink = std::function<void(const JobEvent&)>;

// "journal: signal step 12 {"signal":"USR1",...}" — the interim text form.
std::string journal_line(const JobEvent& e);

}  // namespace llmpi
