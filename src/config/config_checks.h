#pragma once
// Cross-key consistency of a configuration whose keys are each already in range:
//   model:    n_head | d_model; n_kv_head | n_head; gpt2 has n_kv_head == n_head; llama has an
//             even head_dim (RoPE rotates pairs);
//   train:    seq_len <= max_seq_len; min_lr <= lr; warmup_steps <= steps (and <= decay_steps);
//   parallel: every layout rule of config/layout_rules.h but the job's size, each reported
//             at its key (tp against the heads, kv heads, d_ff and vocabulary; sequence
//             parallelism; virtual stages and micro-batches; chunks and stage_layers against
//             n_layer; ZeRO-3 without a pipeline);
//   checkpoint: keep_every is a multiple of every;
//   lora:     a [lora] section has its rank; with rank > 0, target_modules are known module
//             names (gate only for llama), each once; dropout is 0; tp = pp = 1, no ZeRO-3.
//   logbook:  spike_warmup <= spike_window; nonfinite_action is not "log".
//   dpo:      a [dpo] section only with objective = "dpo"; label_smoothing only with the
//             sigmoid loss; no adapters yet;
//   eval:     prompts non-empty, with data.tokenizer, under tp = pp = 1.
// The world size (tp * pp * dp == ranks) is not known here: the topology checks it at start-up.
#include "config/config.h"
#include "config/diagnostics.h"

namespace llmpi::config {

// Adds one error per violated rule to `d`, located at the key the rule is about.
void check_consistency(const Config& c, const Origins& o, Diagnostics& d);

}  // namespace llmpi::config
