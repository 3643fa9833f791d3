#include "io/logbook_markdown.h"

#include <algorithm>
#include <cmath>
#include <ctime>

namespace llmpi {

std::string utc_time_text(double t) {
  const std::time_t s = std::time_t(std::floor(t));
  std::tm tm{};
  gmtime_r(&s, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
  return buf;
}

namespace {
SegmentSummary& segment_entry(std::vector<SegmentSummary>& v, int64_t segment) {
  auto it = std::lower_bound(v.begin(), v.end(), segment,
                             [](const SegmentSummary& g, int64_t s) { return g.segment < s; });
  if (it == v.end() || it->segment != segment) it = v.insert(it, SegmentSummary{segment, 0, 0, 0});
  return *it;
}
}  // namespace

void add_to_summary(std::vector<SegmentSummary>& segments, int64_t segment, int64_t step) {
  SegmentSummary& g = segment_entry(segments, segment);
  if (g.rows == 0 || step < g.first_step) g.first_step = step;
  g.last_step = std::max(g.last_step, step);
  ++g.rows;
}

void note_segment(std::vector<SegmentSummary>& segments, int64_t segment) {
  segment_entry(segments, segment);
}

std::vector<SegmentSummary> summarize_segments(const std::vector<StepMetrics>& steps,
                                               const std::vector<Event>& events) {
  std::vector<SegmentSummary> out;
  for (const StepMetrics& s : steps) add_to_summary(out, s.segment, s.step);
  for (const Event& e : events)
    if (e.segment >= 0) segment_entry(out, e.segment);
  return out;
}

namespace {

std::string detail(const Event& e, const char* key) {
  return e.details.contains(key) ? format_detail(key, e.details[key]) : "?";
}

std::string segment_line(const SegmentSummary& g, const std::vector<Event>& events) {
  std::string start, changes, rollbacks, end;
  for (const Event& e : events) {
    if (e.segment != g.segment) continue;
    if (e.type == "run_start" && start.empty()) {
      start = "started at step " + std::to_string(std::max<int64_t>(e.step, 0)) + " on " + detail(e, "layout");
    } else if (e.type == "resume" && start.empty()) {
      start = "resumed from step " + detail(e, "from_step") + " on " + detail(e, "layout");
    } else if (e.type == "config_change") {
      changes += ", " + detail(e, "summary");
    } else if (e.type == "rollback") {
      rollbacks += "; rolled back at step " + std::to_string(e.step) + " to step " + detail(e, "to_step");
    } else if (e.type == "run_end") {
      end = "; ended at step " + std::to_string(e.step) + ": " + detail(e, "status");
    } else if (e.type == "failure" && end.empty()) {
      end = "; failed at step " + std::to_string(e.step) + ": " + detail(e, "message");
    }
  }
  if (start.empty()) start = "no start record";
  std::string line = "segment " + std::to_string(g.segment) + ": " + start + changes;
  if (g.rows > 0)
    line += "; trained steps " + std::to_string(g.first_step) + "–" + std::to_string(g.last_step);
  line += rollbacks;
  line += end.empty() ? "; no end record (killed, or still running)" : end;
  return line;
}

const char* severity_mark(const Event& e) {
  const auto t = find_event_type(e.type);
  if (!t) return "";
  switch (event_types()[size_t(*t)].severity) {
    case Severity::warning: return "⚠ ";
    case Severity::error: return "✖ ";
    default: return "";
  }
}

}  // namespace

std::vector<std::string> lineage_lines(const std::vector<Event>& events,
                                       const std::vector<SegmentSummary>& segments) {
  std::vector<std::string> out;
  for (const SegmentSummary& g : segments) out.push_back(segment_line(g, events));
  return out;
}

std::string render_logbook_markdown(const std::string& title, const std::vector<Event>& events,
                                    const std::vector<SegmentSummary>& segments) {
  std::string md = "# Logbook: " + title + "\n\n";
  md += "Written by llmpi from `logbook.h5` (the data: per-step metrics, per-layer statistics and "
        "this journal) and rewritten as events arrive. Times are UTC.\n\n";
  md += "## Lineage\n\n";
  if (segments.empty()) md += "Nothing trained yet.\n";
  for (const std::string& l : lineage_lines(events, segments)) md += "- " + l + "\n";
  md += "\n## Chronicle\n";
  std::string day;
  for (const Event& e : events) {
    const std::string when = utc_time_text(e.time_unix);
    if (when.substr(0, 10) != day) {
      day = when.substr(0, 10);
      md += "\n### " + day + "\n\n";
    }
    md += "- " + std::string(severity_mark(e)) + "`" + when.substr(11) + "` segment " +
          std::to_string(e.segment);
    if (e.step >= 0) md += ", step " + std::to_string(e.step);
    if (e.rank >= 0) md += ", rank " + std::to_string(e.rank) + (e.host.empty() ? "" : " (" + e.host + ")");
    md += " — **" + e.type + "**: " + render_sentence(e) + "\n";
  }
  if (events.empty()) md += "\nNo events yet.\n";
  return md;
}

}  // namespace llmpi
