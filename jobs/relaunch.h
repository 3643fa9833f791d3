#pragma once
// What a relaunch may change. A run directory resumed with a config that differs from the one
// its checkpoint was saved with is compared key by key (the schema table, config/
// config_schema.h):
//   declared safe  train: lr, min_lr, warmup_steps, decay, decay_steps, weight_decay, beta1,
//                  beta2, eps, grad_clip, steps, batch_size (the global batch rule still
//                  applies: jobs/ resume), log_every, eval_every, eval_batches, recompute;
//                  model.init_std (used at initialization only); data.val, data.tokenizer;
//                  every key of [parallel] (layout), [checkpoint], [run], [watchdog] and
//                  [logbook] → accepted, and journaled as one `config_change` event
//   anything else  the model (its shape and function: every other [model] key), the data
//                  order (train.seed, train.seq_len, data.train), keys of sections not listed
//                  → refused, naming each key with its saved and new values
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "jobs/job_events.h"

namespace llmpi {

struct ConfigDelta {
  std::string key, before, after;  // "train.lr", "0.003", "0.001"
};

struct RelaunchDiff {
  std::vector<ConfigDelta> accepted, refused;
};

bool is_declared_safe(std::string_view key);

// Every key whose value differs, sorted into accepted and refused.
RelaunchDiff compare_configs(const Config& saved, const Config& now);

// "train.lr 0.003 → 0.001, checkpoint.every 500 → 100"
std::string describe(const std::vector<ConfigDelta>& deltas);

// The check at resume: parses the checkpoint's recorded config (saved_toml; `checkpoint` names
// it in messages), throws UserError naming every refused key, and returns the `config_change`
// event for the accepted ones (type empty when nothing changed).
JobEvent check_relaunch(const std::string& checkpoint, const std::string& saved_toml,
                        const Config& now, int64_t step);

}  // namespace llmpi
