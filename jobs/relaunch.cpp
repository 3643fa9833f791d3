#include "jobs/relaunch.h"

#include <algorithm>
#include <array>

#include "config/config_schema.h"
#include "core/error.h"

namespace llmpi {
namespace {

// Keys whose change is safe one by one; whole sections below.
constexpr std::array<std::string_view, 19> kSafeKeys = {
    "train.lr",          "train.min_lr",     "train.warmup_steps", "train.decay",
    "train.decay_steps", "train.weight_decay", "train.beta1",      "train.beta2",
    "train.eps",         "train.grad_clip",  "train.steps",        "train.batch_size",
    "train.log_every",   "train.eval_every", "train.eval_batches", "train.recompute",
    "model.init_std",    "data.val",         "data.tokenizer"};
constexpr std::array<std::string_view, 5> kSafeSections = {"parallel", "checkpoint", "run",
                                                           "watchdog", "logbook"};

std::string why_refused(const std::string& key) {
  if (key.rfind("model.", 0) == 0) return "the model";
  if (key == "train.seed" || key == "train.seq_len" || key == "data.train") return "the data order";
  return "not declared safe to change";
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
  for (const ConfigDelta& d : deltas) s += (s.empty() ? "" : ", ") + d.key + " " + d.before + " → " + d.after;
  return s;
}

JobEvent check_relaunch(const std::string& checkpoint, const std::string& saved_toml,
                        const Config& now, int64_t step) {
  Config saved;
  try {
    saved = parse_config(saved_toml, checkpoint + " (its recorded config)");
  } catch (const UserError& e) {
    user_error(checkpoint, ": the config recorded in it cannot be read (", e.what(),
               "); cannot tell what this relaunch changes");
  }
  const RelaunchDiff d = compare_configs(saved, now);
  if (!d.refused.empty()) {
    std::string keys;
    for (const ConfigDelta& r : d.refused)
      keys += "\n  " + r.key + ": " + r.before + " in the checkpoint, " + r.after + " now (" +
              why_refused(r.key) + ")";
    user_error("a relaunch of ", now.run.dir, " may not change these keys of the run saved in ",
               checkpoint, ":", keys,
               "\nRestore them, or train a new run (another run.dir, or --no-resume).");
  }
  JobEvent e;
  if (d.accepted.empty()) return e;
  e.type = "config_change";
  e.step = step;
  nlohmann::json changes = nlohmann::json::array();
  for (const ConfigDelta& a : d.accepted)
    changes.push_back({{"key", a.key}, {"before", a.before}, {"after", a.after}});
  e.details = {{"checkpoint", checkpoint}, {"changes", changes}, {"summary", describe(d.accepted)}};
  return e;
}

}  // namespace llmpi
