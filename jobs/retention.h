#pragma once
// Checkpoint schedule and retention, LLM360/Pythia style, as pure functions of the
// [checkpoint] section (tested without files):
//   save at step s  ⇔  s == last_step, or every > 0 and s % every == 0,
//                       or log_spaced and s ∈ {1, 2, 4, …, 512}
//   permanent       ⇔  keep_every > 0 and s % keep_every == 0, or a log-spaced step
//   retained        ⇔  permanent, or among the keep_last newest regular (non-permanent)
//                       checkpoints, or the newest valid checkpoint (never deleted; when
//                       regular it counts as one of the keep_last)
#include <cstdint>
#include <string>
#include <vector>

#include "config/config.h"

namespace llmpi {

inline constexpr int64_t kLogSpacedLast = 512;

bool is_log_spaced_step(int64_t step);  // 1, 2, 4, ..., 512
bool is_save_step(const CheckpointSection& c, int64_t step, int64_t last_step);
bool is_permanent_step(const CheckpointSection& c, int64_t step);

// The steps among `existing` (any order, duplicates ignored) whose checkpoints retention
// deletes, ascending. newest_valid (or -1 for none) is never among them.
std::vector<int64_t> steps_to_delete(const CheckpointSection& c, std::vector<int64_t> existing,
                                     int64_t newest_valid);

// Applies retention to <run_dir>/checkpoints: deletes the files of steps_to_delete. Serial
// (call on one rank). Returns the deleted paths. A failed removal is a UserError.
std::vector<std::string> apply_retention(const std::string& run_dir, const CheckpointSection& c,
                                         int64_t newest_valid);

// After a successful save of `step` (serial, one rank): updates `latest` (checkpoint_dir.h),
// then applies retention with `step` as the newest valid checkpoint. Returns the deleted paths.
std::vector<std::string> commit_checkpoint(const std::string& run_dir, int64_t step,
                                           const CheckpointSection& c);

}  // namespace llmpi
