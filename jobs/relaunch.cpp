#include "jobs/relaunch.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <optional>

#include "config/config_schema.h"
#include "core/error.h"

namespace llmpi {
namespace {

// Keys whose change is safe one by one; whole sections below.
constexpr std::array<std::string_view, 21> kSafeKeys = {
    "train.lr",          "train.min_lr",     "train.warmup_steps", "train.decay",
    "train.decay_steps", "train.weight_decay", "train.beta1",      "train.beta2",
    "train.eps",         "train.grad_clip",  "train.steps",        "train.batch_size",
    "train.log_every",   "train.eval_every", "train.eval_batches", "train.recompute",
    "train.init_from",   "model.init_std",   "data.train",         "data.val",
    "data.tokenizer"};
constexpr std::array<std::string_view, 5> kSafeSections = {"parallel", "checkpoint", "run",
                                                           "watchdog", "logbook"};

std::string why_refused(const std::string& key) {
  if (key.rfind("model.", 0) == 0) return "the model";
  if (key == "train.seed" || key == "train.seq_len") return "the data order";
  return "not declared safe to change";
}

// A float in TOML's spelling ("0.0003", "3e-4"), not an integer or another type.
std::optional<double> as_float(const std::string& s) {
  if (s.find_first_of(".eE") == std::string::npos) return std::nullopt;
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  if (end == s.c_str() || *end != '\0' || !std::isfinite(v)) return std::nullopt;
  return v;
}

}  // namespace

bool is_declared_safe(std::string_view key) {
  if (std::find(kSafeKeys.begin(), kSafeKeys.end(), key) != kSafeKeys.end()) return true;
  const size_t dot = key.find('.');
  const std::string_view section = key.substr(0, dot);
  return dot != std::string_view::npos &&
         std::find(kSafeSections.begin(), kSafeSections.end(), section) != kSafeSections.end();
}

RelaunchDiff compare_configs(const Config& saved, const Config& now) {
  RelaunchDiff d;
  for (const config::ConfigKey& k : config::config_keys()) {
    ConfigDelta delta{k.path(), config::value_text(saved, k), config::value_text(now, k)};
    if (delta.before == delta.after) continue;
    (is_declared_safe(delta.key) ? d.accepted : d.refused).push_back(std::move(delta));
  }
  return d;
}

std::string describe(const std::vector<ConfigDelta>& deltas) {
  std::string s;
  for (const ConfigDelta& d : deltas) {
    s += (s.empty() ? "" : ", ") + d.key + " " + d.before + " → " + d.after;
    const auto x = as_float(d.before), y = as_float(d.after);
    if (x && y && *x != 0.0) {
      char ratio[32];
      std::snprintf(ratio, sizeof ratio, " (× %.4g)", *y / *x);
      s += ratio;
    }
  }
  return s;
}

RelaunchDiff relaunch_diff(const std::string& checkpoint, const std::string& saved_toml,
                           const Config& now) {
  RelaunchDiff d;
  if (saved_toml.empty()) {
    d.unchecked = "it records no config";
    return d;
  }
  try {
    return compare_configs(parse_config(saved_toml, checkpoint + " (its recorded config)"), now);
  } catch (const UserError& e) {
    const std::string why = e.what();
    d.unchecked = "its recorded config does not parse (" + why.substr(0, why.find('\n')) + ")";
  }
  return d;
}

void refuse_unsafe_changes(const std::string& checkpoint, const RelaunchDiff& d, const Config& now) {
  if (d.refused.empty()) return;
  std::string keys;
  for (const ConfigDelta& r : d.refused)
    keys += "\n  " + r.key + ": " + r.before + " in the checkpoint, " + r.after + " now (" +
            why_refused(r.key) + ")";
  user_error("a relaunch of ", now.run.dir, " may not change these keys of the run saved in ",
             checkpoint, ":", keys,
             "\nRestore them, or train a new run (another run.dir, or --no-resume).");
}

std::optional<RunEvent> config_change_event(const std::string& checkpoint, const RelaunchDiff& d,
                                            int64_t step) {
  RunEvent e;
  e.kind = RunEventKind::config_change;
  e.step = step;
  if (!d.unchecked.empty()) {
    e.line = "what this relaunch changes was not checked: " + checkpoint + ": " + d.unchecked;
    e.details = {{"checkpoint", checkpoint}, {"unchecked", d.unchecked}};
    return e;
  }
  if (d.accepted.empty()) return std::nullopt;
  e.line = "config changed since " + checkpoint + ": " + describe(d.accepted);
  std::string keys;
  for (const ConfigDelta& a : d.accepted) keys += (keys.empty() ? "" : ",") + a.key;
  e.details = {{"checkpoint", checkpoint}, {"keys", keys}, {"summary", describe(d.accepted)}};
  for (const ConfigDelta& a : d.accepted) {
    e.details.emplace_back(a.key + ".before", a.before);
    e.details.emplace_back(a.key + ".after", a.after);
  }
  return e;
}

}  // namespace llmpi
