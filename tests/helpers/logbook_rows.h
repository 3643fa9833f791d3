#pragma once
// Synthetic logbook rows whose every value is a closed-form function of the step, shared by
// the kill -9 writer (logbook_writer_child.cpp) and the tests that read its file back.
#include <cmath>

#include "io/journal.h"
#include "io/logbook_schema.h"

namespace llmpi::testing {

inline LogbookSchema synthetic_schema() { return {{"embed.tokens", "layers.0.mlp.up.weight", "final_norm.weight"}, 2}; }

inline StepMetrics synthetic_step(int64_t s) {
  StepMetrics m;
  m.step = s;
  m.tokens_seen = s * 1024;
  m.wall_unix = 1.7e9 + double(s);
  m.loss = 4.0 / (1.0 + 0.01 * double(s));
  m.lr = 1e-3 * double(s % 7);
  m.grad_norm = 0.5 + 0.001 * double(s);
  m.clipped = s % 3 == 0;
  m.skipped = s % 11 == 0;
  m.tokens_per_s = 1000.0 + double(s);
  m.time_step_s = 0.01 * double(s % 5 + 1);
  m.time_comm_s = 0.001 * double(s % 5);
  if (s % 10 == 0) m.val_loss = m.loss + 0.1;
  return m;
}

inline LayerStats synthetic_layers(int64_t s) {
  LayerStats l;
  l.step = s;
  l.param_norm = {double(s), double(s) + 0.5, 1.0};
  l.grad_norm = {0.1 * double(s), 0.2, 0.3};
  l.update_ratio = {1e-3, 2e-3, 3e-3};
  l.activation_rms = {1.0 + double(s), 2.0};
  return l;
}

inline Event synthetic_event(int64_t s) {
  return make_event(EventType::checkpoint_saved, s,
                    {{"path", "checkpoints/step_" + std::to_string(s) + ".h5"},
                     {"size_bytes", 1000 * s}, {"write_s", 0.5}, {"write_gbps", 0.002 * double(s)},
                     {"stall_s", 0.001}});
}

}  // namespace llmpi::testing
