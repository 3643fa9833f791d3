#include "io/logbook.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <optional>

#include "core/error.h"

namespace llmpi {

namespace fs = std::filesystem;

namespace {

std::string this_host() {
  char buf[256] = {};
  if (gethostname(buf, sizeof buf - 1) != 0) return "";
  return buf;
}

double now_unix() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace

Logbook::Logbook(const std::string& run_dir, const LogbookSchema& schema, int64_t min_segment,
                 Report report)
    : run_dir_(run_dir),
      path_((fs::path(run_dir) / "logbook.h5").string()),
      md_path_((fs::path(run_dir) / "LOGBOOK.md").string()),
      report_(std::move(report)),
      segment_(std::max<int64_t>(min_segment, 0)) {
  try {
    open(schema);
  } catch (const std::exception& e) {
    disable(std::string("cannot be opened or created: ") + e.what());
  }
}

Logbook::~Logbook() {
  try {
    flush();
  } catch (...) {
    // flush() reports and disables; nothing may escape a destructor.
  }
}

void Logbook::open(const LogbookSchema& schema) {
  std::string reset_reason, moved_to;
  std::optional<LogbookContents> old;  // what a damaged logbook still holds, carried over
  if (fs::exists(fs::symlink_status(path_))) {
    try {
      old = read_logbook_file(path_);
      if (!old->unreadable.empty()) {
        // Appending or rewriting in place would lose the tables it cannot read: keep the file.
        std::string tables;
        for (const std::string& t : old->unreadable) tables += (tables.empty() ? "" : ", ") + t;
        reset_reason = "has tables this llmpi cannot read (" + tables + ")";
        for (const std::string& n : old->notes) reset_reason += "; " + n;
        if (!(old->schema == schema)) old->layers.clear();
      } else if (!(old->schema == schema)) {
        reset_reason = "was written for another model (" + std::to_string(old->schema.params.size()) +
                       " parameter tensors, this run has " + std::to_string(schema.params.size()) + ")";
        old.reset();
      }
    } catch (const UserError& e) {
      reset_reason = std::string("could not be read (") + e.what() + ")";
    }
    if (old) {
      for (const std::string& n : old->notes) report_("logbook " + path_ + ": " + n);
      for (const StepMetrics& s : old->steps) {
        segment_ = std::max<int64_t>(segment_, s.segment + 1);
        previous_last_step_ = std::max(previous_last_step_, s.step);
      }
      for (const Event& e : old->events) segment_ = std::max<int64_t>(segment_, e.segment + 1);
      segments_ = summarize_segments(old->steps, old->events);
    }
    if (old && reset_reason.empty()) {
      try {
        file_ = std::make_unique<LogbookFile>(LogbookFile::open_append(path_, schema));
      } catch (const UserError& e) {
        // Left open by a killed writer, or not appendable as it is: everything the reader
        // got is kept in a fresh file (only incomplete rows are left behind).
        report_(std::string("logbook ") + e.what() + "; rewriting its " +
                std::to_string(old->steps.size()) + " step rows and " +
                std::to_string(old->events.size()) + " events into a fresh file");
        file_ = std::make_unique<LogbookFile>(LogbookFile::create(path_, schema, &*old));
      }
      events_ = std::move(old->events);
      return;
    }
    moved_to = path_ + ".damaged-" + std::to_string(int64_t(now_unix()));
    for (int k = 2; fs::exists(fs::symlink_status(moved_to)); ++k)  // never over an earlier one
      moved_to = path_ + ".damaged-" + std::to_string(int64_t(now_unix())) + "-" + std::to_string(k);
    fs::rename(path_, moved_to);
    report_("logbook " + path_ + " " + reset_reason + "; moved to " + moved_to + " and a new logbook started" +
            (old ? " with what could be read of it" : "") + " (the checkpoints are unaffected)");
  }
  file_ = std::make_unique<LogbookFile>(LogbookFile::create(path_, schema, old ? &*old : nullptr));
  if (old) events_ = std::move(old->events);
  if (!reset_reason.empty()) {
    Event e = make_event(EventType::logbook_reset, -1,
                         {{"reason", reset_reason}, {"moved_to", moved_to}});
    add_event(std::move(e));
  }
}

void Logbook::begin_segment() { ++segment_; }

bool Logbook::enabled() const {
  std::lock_guard<std::mutex> lock(mu_);
  return file_ != nullptr;
}

void Logbook::disable(const std::string& why) {
  report_("logbook " + path_ + " " + why + "; training continues without a logbook");
  std::lock_guard<std::mutex> lock(mu_);
  file_.reset();
  pending_steps_.clear();
  pending_layers_.clear();
  pending_events_.clear();
}

void Logbook::add_step(StepMetrics m) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!file_) return;
  m.segment = segment_;
  pending_steps_.push_back(m);
}

void Logbook::add_layers(LayerStats s) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!file_) return;
  s.segment = segment_;
  pending_layers_.push_back(std::move(s));
}

void Logbook::add_event(Event e) {
  if (e.segment < 0) e.segment = segment_;
  if (e.host.empty()) e.host = this_host();
  std::lock_guard<std::mutex> lock(mu_);
  if (!file_) return;
  pending_events_.push_back(std::move(e));
}

bool Logbook::has_pending() const {
  std::lock_guard<std::mutex> lock(mu_);
  return !pending_steps_.empty() || !pending_layers_.empty() || !pending_events_.empty();
}

bool Logbook::has_pending_events() const {
  std::lock_guard<std::mutex> lock(mu_);
  return !pending_events_.empty();
}

std::vector<Event> Logbook::events() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<Event> all = events_;
  all.insert(all.end(), pending_events_.begin(), pending_events_.end());
  return all;
}

void Logbook::flush() {
  std::vector<StepMetrics> steps;
  std::vector<LayerStats> layers;
  std::vector<Event> events;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!file_) return;
    steps.swap(pending_steps_);
    layers.swap(pending_layers_);
    events.swap(pending_events_);
  }
  if (steps.empty() && layers.empty() && events.empty()) return;
  try {
    file_->append_steps(steps);
    file_->append_layers(layers);
    file_->append_events(events);
    file_->flush();
  } catch (const std::exception& e) {
    disable(std::string("could not be written (") + e.what() + ")");
    return;
  }
  for (const StepMetrics& s : steps) add_to_summary(segments_, s.segment, s.step);
  if (events.empty()) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    events_.insert(events_.end(), events.begin(), events.end());
  }
  write_markdown();
}

void Logbook::write_markdown() {
  std::vector<Event> all;
  {
    std::lock_guard<std::mutex> lock(mu_);
    all = events_;
  }
  std::vector<SegmentSummary> segs = segments_;
  for (const Event& e : all)
    if (e.segment >= 0) note_segment(segs, e.segment);
  const std::string tmp = md_path_ + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << render_logbook_markdown(run_dir_, all, segs);
    if (!out) {
      report_("cannot write " + tmp + "; LOGBOOK.md not updated");
      return;
    }
  }
  std::error_code ec;
  fs::rename(tmp, md_path_, ec);
  if (ec) report_("cannot rename " + tmp + " to " + md_path_ + ": " + ec.message());
}

}  // namespace llmpi
