#pragma once
// LogbookObserver: the logbook's journal is a RunObserver (jobs/run_events.h) — every event of
// the run directory and the trainer (run_start, resume, checkpoint_saved, loss_spike, rollback,
// run_end, and whatever kind is added there: signal, requeue, watchdog, ...) becomes a journal
// event of the same name in logbook.h5 and LOGBOOK.md. Nothing else writes the journal.
//   details: each value is read as JSON when it parses (numbers, arrays, quoted strings),
//     otherwise kept as a string;
//   run_start gains the config hash, git revision, version, layout, world size and hosts;
//     resume the layout; checkpoint_saved size_bytes, write_s, write_gbps and the stall;
//     run_end its status ("finished" or "stopped"); watchdog (a hang report of an earlier
//     launch) the event's rank and host, those of the rank that hung;
// Events that arrive before the logbook is open (the resume precedes run()) wait in a queue
// and are written once attach() is called. Only world rank 0's recorder writes.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "config/config.h"
#include "jobs/run_events.h"
#include "train/logbook_recorder.h"

namespace llmpi {

class LogbookObserver : public RunObserver {
 public:
  // layout: the run's layout as LOGBOOK.md writes it; world_size: its ranks.
  LogbookObserver(const Config& cfg, std::string layout, int world_size);

  void on_event(const RunEvent& e) override;
  // From now on events go to `recorder` (not owned; detach() before it dies); the queued ones
  // first.
  void attach(LogbookRecorder& recorder);
  void detach() { recorder_ = nullptr; }
  // The stall training saw for the checkpoint of `step` (joined to its checkpoint_saved).
  void note_stall(int64_t step, double seconds) { stalls_[step] = seconds; }

  // The journal event of a RunEvent (enriched as above).
  Event translate(const RunEvent& e) const;

 private:
  std::string config_text_, layout_, hosts_;
  int world_size_ = 1;
  LogbookRecorder* recorder_ = nullptr;
  std::vector<Event> queued_;
  std::map<int64_t, double> stalls_;
};

// A RunEvent detail holding `v` as JSON text (the observer reads it back exactly).
std::pair<std::string, std::string> json_detail(const std::string& key, const nlohmann::json& v);

}  // namespace llmpi
