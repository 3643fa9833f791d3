#pragma once
// Logbook: a run's logbook as training writes it (one process: world rank 0). Per-step
// metrics, per-layer statistics and journal events are buffered in memory; flush() appends
// them to <run_dir>/logbook.h5 (io/logbook_file.h: SWMR, so a kill -9 loses only what was not
// flushed) and, when events arrived, rewrites <run_dir>/LOGBOOK.md (io/logbook_markdown.h)
// through a temporary file and a rename.
// Opening never throws for the file's state — a logbook problem never stops training:
//   missing → created;  cleanly closed → reopened for appending;
//   left open by a killed writer → its readable contents are copied into a fresh file that
//     replaces it (logbook.h5.tmp, then rename);
//   unreadable, or written for another model → moved aside to logbook.h5.damaged-<unix time>,
//     and a fresh logbook starts with a logbook_reset event saying why.
// After an I/O error while writing, the logbook reports it once and disables itself.
// Segments: this process appends as segment max(1 + the largest segment in the file,
// min_segment); 0 for a fresh run. Every row and event it is given gets that segment.
// Threads: add_* may be called from any thread (the checkpoint thread's completion callbacks);
// flush() only from the thread that makes the HDF5 calls, and never while a checkpoint is
// written in the background (Debian's HDF5 is not thread-safe).
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "io/journal.h"
#include "io/logbook_file.h"
#include "io/logbook_markdown.h"
#include "io/logbook_schema.h"

namespace llmpi {

class Logbook {
 public:
  using Report = std::function<void(const std::string&)>;

  Logbook(const std::string& run_dir, const LogbookSchema& schema, int64_t min_segment,
          Report report);
  ~Logbook();  // flushes what is pending (errors reported, never thrown)
  Logbook(const Logbook&) = delete;
  Logbook& operator=(const Logbook&) = delete;

  int64_t segment() const { return segment_; }
  // Starts the next segment (after a rollback): later rows and events carry it.
  void begin_segment();
  bool enabled() const;
  const std::string& path() const { return path_; }

  void add_step(StepMetrics m);
  void add_layers(LayerStats s);
  // Fills in the segment (when -1) and the host (when empty) before queuing.
  void add_event(Event e);
  bool has_pending() const;
  bool has_pending_events() const;

  // Appends what is pending, makes it durable, re-renders LOGBOOK.md if events arrived.
  void flush();

  // Every event so far, previous segments' included, in order.
  std::vector<Event> events() const;
  // The largest step recorded in earlier segments (0 if none): where the previous launch got.
  int64_t previous_last_step() const { return previous_last_step_; }

 private:
  void open(const LogbookSchema& schema);
  void write_markdown();
  void disable(const std::string& why);

  std::string run_dir_, path_, md_path_;
  Report report_;
  std::atomic<int64_t> segment_{0};
  int64_t previous_last_step_ = 0;
  std::unique_ptr<LogbookFile> file_;  // null when disabled

  mutable std::mutex mu_;  // guards everything below
  std::vector<StepMetrics> pending_steps_;
  std::vector<LayerStats> pending_layers_;
  std::vector<Event> pending_events_;
  std::vector<Event> events_;          // written ones (all segments)
  std::vector<SegmentSummary> segments_;  // step ranges per segment (LOGBOOK.md)
};

}  // namespace llmpi
