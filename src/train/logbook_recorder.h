#pragma once
// LogbookRecorder: the training side of the logbook (io/logbook.h). World rank 0 owns the
// Logbook and writes it; every rank knows the segment number (the constructor is collective:
// rank 0 opens the logbook, the segment is broadcast) and the hosts of the job. Flushes happen
// when logbook.flush_every_s has passed or events are waiting, and never while a checkpoint is
// written in the background (no concurrent HDF5 calls). With [logbook] enabled = false
// nothing is written and every call is cheap.
#include <mpi.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "config/config.h"
#include "io/logbook.h"

namespace llmpi {

class LogbookRecorder {
 public:
  // Collective over comm. min_segment: 1 + the segment of the checkpoint resumed from (0 for
  // a fresh run) — the checkpoints are the source of truth when the logbook was lost.
  LogbookRecorder(const Config& cfg, const LogbookSchema& schema, int64_t min_segment, MPI_Comm comm,
                  std::ostream& out);
  ~LogbookRecorder();

  bool writes() const { return book_ != nullptr; }  // this rank writes the logbook
  bool writes_anywhere() const { return enabled_; }  // [logbook] enabled (alike on all ranks)
  int64_t segment() const { return segment_; }
  // "node1 ×4, node2 ×4": the job's hosts with their rank counts (gathered at construction).
  const std::string& hosts() const { return hosts_; }
  // Starts the next segment on every rank (not collective: every rank calls it alike).
  void next_segment();

  // Rank 0 records; other ranks ignore. event() may be called from any thread.
  void event(Event e);
  void step(const StepMetrics& m);
  void layers(const LayerStats& s);

  // Rank 0: writes what is pending when due, when events wait, or when `force` — unless
  // `hdf5_busy` (then at a later call).
  void maybe_flush(bool hdf5_busy, bool force = false);

 private:
  std::unique_ptr<Logbook> book_;
  int64_t segment_ = 0;
  bool enabled_ = true;
  double flush_every_s_ = 5.0;
  std::chrono::steady_clock::time_point last_flush_;
  std::string hosts_;
};

// FNV-1a 64-bit of a text as 16 hex digits: the config hash of run_start events.
std::string text_hash(const std::string& text);

}  // namespace llmpi
