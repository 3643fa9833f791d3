#include "io/journal.h"

#include <chrono>
#include <cmath>
#include <cstdio>

#include "core/error.h"

namespace llmpi {

const std::vector<EventTypeInfo>& event_types() {
  static const std::vector<EventTypeInfo> kTypes = {
#define LLMPI_EVENT_ROW(name, severity, sentence) \
  {EventType::name, #name, Severity::severity, sentence},
      LLMPI_JOURNAL_EVENTS(LLMPI_EVENT_ROW)
#undef LLMPI_EVENT_ROW
  };
  return kTypes;
}

std::string_view event_name(EventType t) { return event_types()[size_t(t)].name; }

std::optional<EventType> find_event_type(std::string_view name) {
  for (const EventTypeInfo& i : event_types())
    if (i.name == name) return i.type;
  return std::nullopt;
}

std::string_view severity_name(Severity s) {
  switch (s) {
    case Severity::info: return "info";
    case Severity::notice: return "notice";
    case Severity::warning: return "warning";
    case Severity::error: return "error";
  }
  return "?";
}

Event make_event(EventType t, int64_t step, nlohmann::json details) {
  Event e;
  e.type = std::string(event_name(t));
  e.time_unix = std::chrono::duration<double>(
                    std::chrono::system_clock::now().time_since_epoch()).count();
  e.step = step;
  e.details = details.is_object() ? std::move(details) : nlohmann::json::object();
  return e;
}

namespace {

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

std::string number_text(double v, int digits) {
  if (!std::isfinite(v)) return std::isnan(v) ? "nan" : (v > 0 ? "inf" : "-inf");
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*g", digits, v);
  return buf;
}

std::string bytes_text(double b) {
  const char* units[] = {"B", "KB", "MB", "GB", "TB", "PB"};
  int u = 0;
  while (std::fabs(b) >= 1000.0 && u < 5) {
    b /= 1000.0;
    ++u;
  }
  char buf[64];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.3g %s", b, units[u]);
  return buf;
}

}  // namespace

std::string format_detail(std::string_view key, const nlohmann::json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_boolean()) return v.get<bool>() ? "yes" : "no";
  if (v.is_number_integer() && !ends_with(key, "_bytes")) return std::to_string(v.get<int64_t>());
  if (v.is_number_unsigned() && !ends_with(key, "_bytes")) return std::to_string(v.get<uint64_t>());
  if (v.is_number()) {
    const double d = v.get<double>();
    if (ends_with(key, "_bytes")) return bytes_text(d);
    if (ends_with(key, "_gbps")) return number_text(d, 3) + " GB/s";
    if (ends_with(key, "_s")) return number_text(d, 3) + " s";
    return number_text(d, 5);
  }
  if (v.is_array()) {
    std::string s;
    for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + format_detail("", v[i]);
    return s;
  }
  if (v.is_null()) return "none";
  return v.dump();
}

namespace {

// Fills `tmpl` from the event; returns false when a {key} is missing (and `strict`).
bool fill(std::string_view tmpl, const Event& e, bool strict, std::string& out) {
  size_t i = 0;
  while (i < tmpl.size()) {
    const char c = tmpl[i];
    if (c == '[') {
      int depth = 1;
      size_t j = i + 1;
      for (; j < tmpl.size() && depth > 0; ++j) depth += tmpl[j] == '[' ? 1 : tmpl[j] == ']' ? -1 : 0;
      std::string part;
      if (fill(tmpl.substr(i + 1, j - i - 2), e, /*strict=*/true, part)) out += part;
      i = j;
    } else if (c == '{') {
      const size_t j = tmpl.find('}', i);
      if (j == std::string_view::npos) {
        out += tmpl.substr(i);
        break;
      }
      const std::string key(tmpl.substr(i + 1, j - i - 1));
      if (e.details.contains(key)) {
        out += format_detail(key, e.details[key]);
      } else if (key == "step" && e.step >= 0) {
        out += std::to_string(e.step);
      } else {
        if (strict) return false;
        out += "?";
      }
      i = j + 1;
    } else {
      out += c;
      ++i;
    }
  }
  return true;
}

}  // namespace

std::string render_sentence(const Event& e) {
  if (const auto t = find_event_type(e.type)) {
    std::string out;
    fill(event_types()[size_t(*t)].sentence, e, /*strict=*/false, out);
    return out;
  }
  std::string out = e.type;
  if (!e.details.empty()) {
    out += ":";
    bool first = true;
    for (const auto& [k, v] : e.details.items()) {
      out += (first ? " " : ", ") + k + " " + format_detail(k, v);
      first = false;
    }
  }
  return out;
}

std::string layout_text(const Layout& l) {
  std::string s;
  const std::pair<const char*, int> degrees[] = {{"tp", l.tp}, {"pp", l.pp}, {"dp", l.dp}};
  for (const auto& [name, n] : degrees)
    if (n > 1) s += (s.empty() ? "" : "·") + std::string(name) + std::to_string(n);
  if (s.empty()) s = "1 rank";
  if (l.zero_stage > 0) s += ", ZeRO " + std::to_string(l.zero_stage);
  return s;
}

}  // namespace llmpi
