#include "train/logbook_observer.h"

#include <algorithm>
#include <chrono>

#include "core/version.h"

namespace llmpi {

std::pair<std::string, std::string> json_detail(const std::string& key, const nlohmann::json& v) {
  return {key, v.dump()};
}

LogbookObserver::LogbookObserver(const Config& cfg, std::string layout, int world_size)
    : config_text_(cfg.source_text), layout_(std::move(layout)), world_size_(world_size) {}

Event LogbookObserver::translate(const RunEvent& r) const {
  Event e;
  e.type = event_name(r.kind);
  e.step = r.step;
  e.time_unix = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  for (const auto& [k, v] : r.details) {
    nlohmann::json j = nlohmann::json::parse(v, nullptr, /*allow_exceptions=*/false);
    if (!v.empty()) e.details[k] = j.is_discarded() ? nlohmann::json(v) : j;  // "": not known
  }
  auto& d = e.details;
  switch (r.kind) {
    case RunEventKind::run_start:
      d["config_hash"] = text_hash(config_text_);
      d["config"] = config_text_;
      d["git_revision"] = kGitRevision;
      d["llmpi_version"] = kVersion;
      d["layout"] = layout_;
      d["world_size"] = world_size_;
      if (recorder_) d["hosts"] = recorder_->hosts();
      break;
    case RunEventKind::resume:
      if (d.contains("path") && !d.contains("checkpoint")) d["checkpoint"] = d["path"];
      d["from_step"] = r.step;
      d["layout"] = layout_;
      d["world_size"] = world_size_;
      if (!d.contains("reason")) d["reason"] = "relaunch";
      break;
    case RunEventKind::checkpoint_saved: {
      if (d.contains("bytes") && d["bytes"].is_number()) d["size_bytes"] = d["bytes"];
      if (d.contains("seconds") && d["seconds"].is_number()) {
        d["write_s"] = d["seconds"];
        const double s = d["seconds"].get<double>();
        if (d.contains("size_bytes") && s > 0) d["write_gbps"] = d["size_bytes"].get<double>() / s / 1e9;
      }
      if (auto it = stalls_.find(r.step); it != stalls_.end()) d["stall_s"] = it->second;
      break;
    }
    case RunEventKind::checkpoint_rejected:
      if (d.contains("message")) d["reason"] = d["message"];
      break;
    case RunEventKind::config_change:  // "keys" and "<key>.before/after" → a list of changes
      if (d.contains("keys") && d["keys"].is_string()) {
        nlohmann::json changes = nlohmann::json::array();
        const std::string keys = d["keys"].get<std::string>();
        for (size_t at = 0; at <= keys.size();) {
          const size_t end = std::min(keys.find(',', at), keys.size());
          const std::string k = keys.substr(at, end - at);
          at = end + 1;
          if (k.empty()) continue;
          changes.push_back({{"key", k}, {"before", d.value(k + ".before", nlohmann::json())},
                             {"after", d.value(k + ".after", nlohmann::json())}});
          d.erase(k + ".before");
          d.erase(k + ".after");
        }
        d["changes"] = std::move(changes);
      }
      break;
    case RunEventKind::watchdog:  // the hung rank of an earlier launch, and its host
      if (d.contains("rank") && d["rank"].is_number_integer()) e.rank = d["rank"].get<int64_t>();
      if (d.contains("host") && d["host"].is_string()) e.host = d["host"].get<std::string>();
      break;
    case RunEventKind::run_end:
      d["status"] = d.value("completed", nlohmann::json(0)) == nlohmann::json(1) ? "finished" : "stopped";
      break;
    default:
      break;
  }
  return e;
}

void LogbookObserver::on_event(const RunEvent& r) {
  Event e = translate(r);
  if (recorder_)
    recorder_->event(std::move(e));
  else
    queued_.push_back(std::move(e));
}

void LogbookObserver::attach(LogbookRecorder& recorder) {
  recorder_ = &recorder;
  for (Event& e : queued_) {
    if (e.type == "run_start") e.details["hosts"] = recorder.hosts();
    recorder.event(std::move(e));
  }
  queued_.clear();
}

}  // namespace llmpi
