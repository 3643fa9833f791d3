#pragma once
// Cross-key consistency of a configuration whose keys are each already in range:
//   model:    n_head | d_model; n_kv_head | n_head; gpt2 has n_kv_head == n_head; llama has an
//             even head_dim (RoPE rotates pairs);
//   train:    seq_len <= max_seq_len; min_lr <= lr; warmup_steps <= steps (and <= decay_steps);
//   parallel: tp divides n_head, n_kv_head and d_ff; pp * virtual_stages <= n_layer;
//             sequence_parallel needs tp > 1 and tp | seq_len; virtual_stages > 1 needs pp > 1
//             and pp | micro_batches;
//   checkpoint: keep_every is a multiple of every;
//   logbook:  spike_warmup <= spike_window; nonfinite_action is not "log".
// The world size (tp * pp * dp == ranks) is not checked here: the topology does it at start-up.
#include "config/config.h"
#include "config/diagnostics.h"

namespace llmpi::config {

// Adds one error per violated rule to `d`, located at the key the rule is about.
void check_consistency(const Config& c, const Origins& o, Diagnostics& d);

}  // namespace llmpi::config
