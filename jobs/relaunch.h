#pragma once
// What a relaunch may change. A run directory resumed with a config that differs from the one
// its checkpoint was saved with is compared key by key (the schema table, config/
// config_schema.h):
//   declared safe  train: lr, min_lr, warmup_steps, decay, decay_steps, weight_decay, beta1,
//                  beta2, eps, grad_clip, steps, batch_size (the global batch rule still
//                  applies: jobs/resume.h), log_every, eval_every, eval_batches, recompute;
//                  model.init_std and train.init_from (used by a fresh start only); data.train (the files may
//                  move; llmpi cannot tell whether they still hold the same tokens), data.val,
//                  data.tokenizer; every key of [parallel] (layout), [checkpoint], [run],
//                  [watchdog] and [logbook] → accepted, and journaled as one `config_change`
//                  event (emitted on every rank, after the resume event)
//   anything else  the model (its shape and function: every other [model] key), the data
//                  order (train.seed, train.seq_len), keys of sections not listed → refused
//                  before anything is loaded, naming each key with its saved and new values
#include <string>
#include <string_view>
#include <vector>

#include <optional>

#include "config/config.h"
#include "jobs/run_events.h"

namespace llmpi {

struct ConfigDelta {
  std::string key, before, after;  // "train.lr", "0.003", "0.001"
};

struct RelaunchDiff {
  std::vector<ConfigDelta> accepted, refused;
  std::string unchecked;  // why the saved config could not be compared ("" when it was)
};

bool is_declared_safe(std::string_view key);

// Every key whose value differs, sorted into accepted and refused.
RelaunchDiff compare_configs(const Config& saved, const Config& now);

// "train.lr 0.003 → 0.00225 (× 0.75), checkpoint.every 500 → 100": each key's saved and new
// value, and for two non-zero floats their ratio (what LOGBOOK.md's lineage and the
// config_change event say; the one description of a relaunch's changes).
std::string describe(const std::vector<ConfigDelta>& deltas);

// Compares the config recorded in a checkpoint (saved_toml; `checkpoint` names the file in
// messages) with this run's. A recorded config that is missing or does not parse (another
// tool's file) cannot be compared: nothing is refused, and `unchecked` says why.
RelaunchDiff relaunch_diff(const std::string& checkpoint, const std::string& saved_toml,
                           const Config& now);
// UserError naming every refused key of d, each with its saved and new value and the reason.
void refuse_unsafe_changes(const std::string& checkpoint, const RelaunchDiff& d, const Config& now);
// The config_change event of d's accepted keys at `step` (or of its `unchecked` reason);
// nullopt when nothing changed.
std::optional<RunEvent> config_change_event(const std::string& checkpoint, const RelaunchDiff& d,
                                            int64_t step);

}  // namespace llmpi
