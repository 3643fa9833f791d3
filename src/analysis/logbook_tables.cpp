#include "analysis/logbook_tables.h"

#include <cmath>

#include "io/logbook_markdown.h"

namespace llmpi {

namespace {

nlohmann::json number(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(); }

}  // namespace

Table steps_table(const std::vector<StepMetrics>& steps) {
  Table t{"steps", "one row per trained step as logbook.h5 records it (redone steps: one row per segment)", {}, {}};
  for (const StepField& f : step_fields()) t.columns.emplace_back(f.name);
  for (const StepMetrics& m : steps) {
    std::vector<Cell> row;
    for (const StepField& f : step_fields())
      row.push_back(std::visit(
          [&](auto member) -> Cell {
            using T = std::remove_cvref_t<decltype(m.*member)>;
            if constexpr (std::is_same_v<T, int64_t>) return int64_t(m.*member);
            else return double(m.*member);
          },
          f.member));
    t.add(std::move(row));
  }
  return t;
}

Table events_table(const std::vector<Event>& events) {
  Table t{"events", "one row per journal event",
          {"time_unix", "time_utc", "segment", "step", "rank", "host", "type", "sentence", "details_json"}, {}};
  for (const Event& e : events)
    t.add({e.time_unix, utc_time_text(e.time_unix), e.segment, e.step, e.rank, e.host, e.type,
           render_sentence(e), e.details.dump()});
  return t;
}

Table layer_stats_table(const LogbookContents& lb) {
  Table t{"layer_stats", "one row per (step, statistic, tensor or block) of /layers in logbook.h5",
          {"step", "segment", "stat", "column", "value"}, {}};
  for (const LayerStats& r : lb.layers)
    for (const LayerStatField& f : layer_stat_fields()) {
      const std::vector<double>& v = r.*(f.member);
      for (size_t k = 0; k < v.size(); ++k)
        t.add({r.step, r.segment, std::string(f.name),
               f.per_block ? "block " + std::to_string(k) : lb.schema.params[k], v[k]});
    }
  return t;
}

void write_jsonl(const LogbookContents& lb, std::ostream& out) {
  out << nlohmann::json{{"record", "schema"}, {"params", lb.schema.params}, {"blocks", lb.schema.blocks}}.dump()
      << "\n";
  for (const StepMetrics& m : lb.steps) {
    nlohmann::json j = {{"record", "step"}};
    for (const StepField& f : step_fields())
      std::visit(
          [&](auto member) {
            using T = std::remove_cvref_t<decltype(m.*member)>;
            if constexpr (std::is_same_v<T, int64_t>) j[std::string(f.name)] = m.*member;
            else j[std::string(f.name)] = number(m.*member);
          },
          f.member);
    out << j.dump() << "\n";
  }
  for (const LayerStats& r : lb.layers) {
    nlohmann::json j = {{"record", "layers"}, {"step", r.step}, {"segment", r.segment}};
    for (const LayerStatField& f : layer_stat_fields()) {
      nlohmann::json a = nlohmann::json::array();
      for (double v : r.*(f.member)) a.push_back(number(v));
      j[std::string(f.name)] = a;
    }
    out << j.dump() << "\n";
  }
  for (const Event& e : lb.events)
    out << nlohmann::json{{"record", "event"}, {"time_unix", e.time_unix}, {"time_utc", utc_time_text(e.time_unix)},
                          {"segment", e.segment}, {"step", e.step}, {"rank", e.rank}, {"host", e.host},
                          {"type", e.type}, {"sentence", render_sentence(e)}, {"details", e.details}}
               .dump()
        << "\n";
}

}  // namespace llmpi
