#pragma once
// logbook.h5 on disk (spec: docs/logbook-format.md). Every table is a set of 1-D (or [n, K])
// extendible, chunked datasets appended row by row; the file is written in HDF5's
// single-writer/multiple-reader mode (SWMR, file format 1.10), whose ordered metadata flushes
// keep the file consistent at every instant: a writer killed with kill -9 loses the rows
// since its last flush() and nothing else, and readers (llmpi analyze/logbook, h5py with
// swmr=True) may open it while training runs.
//   /steps/<field>       [n]     one per StepField (int64 or float64), attrs units, description
//   /layers/params       [P]     fixed-length strings: the parameter names (columns)
//   /layers/step, segment [m]    int64
//   /layers/<stat>       [m, P] or [m, L] float64, one per LayerStatField; /layers attr blocks = L
//   /journal/time_unix, step, segment, rank, details_offset, details_length   [e]
//   /journal/type [e] S32, /journal/host [e] S64, /journal/details [bytes] uint8 (JSON texts)
// A file left open by a killed writer carries HDF5's "open for writing" mark: only SWMR
// readers open it; open_append fails on it and the caller rewrites it (io/logbook.h). A new
// file is built under another name and renamed into place, complete.
// Readers accept the longest consistent prefix of every table (columns of unequal length
// after a crash, unwritten rows) and say what they dropped.
#include <memory>
#include <string>
#include <vector>

#include "io/journal.h"
#include "io/logbook_schema.h"

namespace llmpi {

inline constexpr int64_t kLogbookFormatVersion = 1;

struct LogbookContents {
  LogbookSchema schema;
  std::vector<StepMetrics> steps;
  std::vector<LayerStats> layers;
  std::vector<Event> events;
  double created_unix = 0.0;
  std::string llmpi_version, git_revision;
  std::vector<std::string> notes;  // what the reader dropped or could not read, and why
  std::vector<std::string> unreadable;  // tables ("steps", "layers", "journal") it could not read
};

// Serial reader: opens in SWMR-read mode (works on live, cleanly closed and crashed files).
// UserError naming the file when it is not an llmpi logbook at all (missing, not HDF5, wrong
// format attribute, newer version); partial damage is reported in `notes`.
LogbookContents read_logbook_file(const std::string& path);

// An open logbook.h5 being appended to (serial: one process, world rank 0).
class LogbookFile {
 public:
  // Creates (replacing) `path` with every dataset for `schema` and the rows of `initial`
  // (a killed writer's salvaged contents), then reopens it for appending. Atomic: the file is
  // built as path + ".new" and renamed, so `path` is never a half-created logbook.
  static LogbookFile create(const std::string& path, const LogbookSchema& schema,
                            const LogbookContents* initial = nullptr);
  // Reopens a cleanly closed logbook for appending. UserError when it cannot be opened for
  // writing (a crashed writer's mark, damage), its schema differs from `schema`, or a table
  // is not as this llmpi writes it (another type or shape, not extendible, columns of
  // unequal length): then nothing was written.
  static LogbookFile open_append(const std::string& path, const LogbookSchema& schema);

  LogbookFile(LogbookFile&&) noexcept;
  LogbookFile& operator=(LogbookFile&&) noexcept;
  ~LogbookFile();

  void append_steps(const std::vector<StepMetrics>& rows);
  void append_layers(const std::vector<LayerStats>& rows);
  void append_events(const std::vector<Event>& events);
  // Makes everything appended so far durable in the file (H5Fflush).
  void flush();
  const std::string& path() const;

 private:
  struct Impl;
  explicit LogbookFile(std::unique_ptr<Impl> impl);
  static void create_structure(Impl& impl);  // every group, table and attribute
  std::unique_ptr<Impl> impl_;
};

}  // namespace llmpi
