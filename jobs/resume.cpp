// What may change on resume, and the resume event (see resume.h).
#include "jobs/resume.h"

#include "core/error.h"
#include "jobs/relaunch.h"

namespace llmpi {

void check_resumable(const std::string& path, const CheckpointMeta& saved, const Config& cfg,
                     int64_t global_batch) {
  const int64_t G = global_batch;
  if (saved.data.seed != cfg.train.seed)
    user_error(path, ": saved with train.seed = ", saved.data.seed, " but the config has ",
               cfg.train.seed, "; resuming needs the same seed (the data order depends on it)");
  if (saved.data.global_batch != G)
    user_error(path, ": saved with a global batch of ", saved.data.global_batch,
               " samples per step but the config gives ", G,
               " (train.batch_size x parallel.micro_batches x parallel.dp); keep the product "
               "equal to continue the same data order");
  if (saved.step < 0 || saved.step > cfg.train.steps)
    user_error(path, ": step ", saved.step, " is outside 0..train.steps = ", cfg.train.steps);
  if (saved.data.samples_consumed != saved.step * G)
    user_error(path, ": data position ", saved.data.samples_consumed, " samples is not step ",
               saved.step, " x global batch ", G);
  refuse_unsafe_changes(path, relaunch_diff(path, saved.config_toml, cfg), cfg);
}

RunEvent resume_event(const std::string& path, const CheckpointMeta& m, int64_t total_steps) {
  const Layout& l = m.layout;  // read by name (io/file_meta.h)
  const std::string layout = " (saved under tp" + std::to_string(l.tp) + " pp" +
                             std::to_string(l.pp) + " dp" + std::to_string(l.dp) + " ZeRO " +
                             std::to_string(l.zero_stage) + ", " +
                             std::to_string(l.world_size()) +
                             (l.world_size() == 1 ? " rank)" : " ranks)");
  RunEvent e;
  e.kind = RunEventKind::resume;
  e.step = m.step;
  e.line = "resuming from " + path + " at step " + std::to_string(m.step) + " of " +
           std::to_string(total_steps) + ", " + std::to_string(m.tokens_seen) +
           " tokens seen, optimizer step " + std::to_string(m.optimizer.step_count) + layout;
  e.details = {{"path", path},
               {"step", std::to_string(m.step)},
               {"tokens_seen", std::to_string(m.tokens_seen)}};
  return e;
}

}  // namespace llmpi
