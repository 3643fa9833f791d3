#include "train/logbook_recorder.h"

#include <unistd.h>

#include <cstdio>
#include <map>

#include "parallel/communicator.h"

namespace llmpi {

namespace {

// Every rank's host name, as "a ×2, b ×2" in rank order of first appearance (collective).
std::string gather_hosts(MPI_Comm comm) {
  char name[64] = {};
  gethostname(name, sizeof name - 1);
  int size = 1, rank = 0;
  check_mpi(MPI_Comm_size(comm, &size), "MPI_Comm_size");
  check_mpi(MPI_Comm_rank(comm, &rank), "MPI_Comm_rank");
  std::vector<char> all(size_t(size) * sizeof name);
  check_mpi(MPI_Allgather(name, sizeof name, MPI_CHAR, all.data(), sizeof name, MPI_CHAR, comm), "MPI_Allgather");
  std::vector<std::string> order;
  std::map<std::string, int> count;
  for (int r = 0; r < size; ++r) {
    const std::string h(all.data() + size_t(r) * sizeof name);
    if (count[h]++ == 0) order.push_back(h);
  }
  std::string s;
  for (const std::string& h : order) s += (s.empty() ? "" : ", ") + h + " ×" + std::to_string(count[h]);
  return s;
}

}  // namespace

std::string text_hash(const std::string& text) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : text) {
    h ^= c;
    h *= 1099511628211ull;
  }
  char buf[20];
  std::snprintf(buf, sizeof buf, "%016llx", (unsigned long long)h);
  return buf;
}

LogbookRecorder::LogbookRecorder(const Config& cfg, const LogbookSchema& schema, int64_t min_segment,
                                 MPI_Comm comm, std::ostream& out)
    : segment_(min_segment), enabled_(cfg.logbook.enabled), flush_every_s_(cfg.logbook.flush_every_s), last_flush_(std::chrono::steady_clock::now()) {
  int rank = 0;
  check_mpi(MPI_Comm_rank(comm, &rank), "MPI_Comm_rank");
  hosts_ = gather_hosts(comm);
  if (rank == 0 && cfg.logbook.enabled) {
    book_ = std::make_unique<Logbook>(cfg.run.dir, schema, min_segment,
                                      [&out](const std::string& line) { out << line << "\n" << std::flush; });
    segment_ = book_->segment();
  }
  check_mpi(MPI_Bcast(&segment_, 1, MPI_INT64_T, 0, comm), "MPI_Bcast");
}

LogbookRecorder::~LogbookRecorder() = default;  // the Logbook flushes what is left

void LogbookRecorder::next_segment() {
  ++segment_;
  if (book_) book_->begin_segment();
}

void LogbookRecorder::event(Event e) {
  if (!book_) return;
  e.segment = segment_;
  book_->add_event(std::move(e));
}

void LogbookRecorder::step(const StepMetrics& m) {
  if (book_) book_->add_step(m);
}

void LogbookRecorder::layers(const LayerStats& s) {
  if (book_) book_->add_layers(s);
}

void LogbookRecorder::maybe_flush(bool hdf5_busy, bool force) {
  if (!book_ || hdf5_busy) return;
  const auto now = std::chrono::steady_clock::now();
  const bool due = std::chrono::duration<double>(now - last_flush_).count() >= flush_every_s_;
  if (!force && !due && !book_->has_pending_events()) return;  // events are written promptly
  book_->flush();
  last_flush_ = now;
}

}  // namespace llmpi
