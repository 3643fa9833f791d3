#pragma once
// Resuming a run: what may change between the saved run and this one, in one place, and the
// resume event. A checkpoint continues the data order exactly only when train.seed and the
// global batch (train.batch_size × parallel.micro_batches × parallel.dp samples per step) are
// those it was saved with; its step must lie in 0..train.steps and its data position be
// step × global batch. Everything else may change: the parallel layout (tp, pp, dp, ZeRO
// stage, micro-batching within the same global batch), the learning-rate schedule, the
// checkpoint policy, the run length — the declared-safe keys of jobs/relaunch.h, which also
// refuses a changed model and journals the accepted changes (config_change).
#include <cstdint>
#include <string>
#include <vector>

#include "config/config.h"
#include "io/checkpoint.h"
#include "jobs/run_events.h"

namespace llmpi {

// Where a run resumed from.
struct ResumePoint {
  std::string path;
  int64_t step = 0;
  int64_t tokens_seen = 0;
  std::vector<std::string> rejected;  // newer checkpoints that failed verification
};

// UserError naming `path`, the key and both values when `saved` (the checkpoint's metadata)
// cannot continue the run of `cfg`, whose global batch is `global_batch` samples, or when cfg
// changes a key that a relaunch may not change (jobs/relaunch.h).
void check_resumable(const std::string& path, const CheckpointMeta& saved, const Config& cfg,
                     int64_t global_batch);

// The resume event: "resuming from <path> at step S of N, T tokens seen, optimizer step K
// (saved under tp.. pp.. dp.. ZeRO .., R ranks)".
RunEvent resume_event(const std::string& path, const CheckpointMeta& loaded, int64_t total_steps);

}  // namespace llmpi
