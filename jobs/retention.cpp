// Checkpoint schedule and retention (see retention.h); retention acts on the files that
// checkpoint_dir.h names and lists.
#include "jobs/retention.h"

#include <algorithm>
#include <filesystem>
#include <set>

#include "core/error.h"
#include "jobs/checkpoint_dir.h"

namespace llmpi {

bool is_log_spaced_step(int64_t step) {
  return step >= 1 && step <= kLogSpacedLast && (step & (step - 1)) == 0;
}

bool is_save_step(const CheckpointSection& c, int64_t step, int64_t last_step) {
  if (step < 1) return false;
  if (step == last_step) return true;
  if (c.every > 0 && step % c.every == 0) return true;
  return c.log_spaced && is_log_spaced_step(step);
}

bool is_permanent_step(const CheckpointSection& c, int64_t step) {
  if (c.keep_every > 0 && step > 0 && step % c.keep_every == 0) return true;
  return c.log_spaced && is_log_spaced_step(step);
}

std::vector<int64_t> steps_to_delete(const CheckpointSection& c, std::vector<int64_t> existing,
                                     int64_t newest_valid) {
  std::sort(existing.begin(), existing.end());
  existing.erase(std::unique(existing.begin(), existing.end()), existing.end());
  std::vector<int64_t> out;
  int64_t regular_kept = 0;
  for (auto it = existing.rbegin(); it != existing.rend(); ++it) {  // newest first
    const int64_t s = *it;
    if (is_permanent_step(c, s)) continue;
    if (s == newest_valid || regular_kept < c.keep_last) {  // the newest valid one counts
      ++regular_kept;
      continue;
    }
    out.push_back(s);
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::string> apply_retention(const std::string& run_dir, const CheckpointSection& c,
                                         int64_t newest_valid) {
  std::vector<int64_t> steps;
  for (const CheckpointFile& f : list_checkpoints(run_dir)) steps.push_back(f.step);
  std::vector<std::string> deleted;
  for (int64_t s : steps_to_delete(c, steps, newest_valid)) {
    const std::string p = checkpoint_path(run_dir, s);
    std::error_code ec;
    std::filesystem::remove(p, ec);
    if (ec) user_error(p, ": cannot delete (checkpoint retention): ", ec.message());
    deleted.push_back(p);
  }
  return deleted;
}

std::vector<std::string> commit_checkpoint(const std::string& run_dir, int64_t step,
                                           const CheckpointSection& c) {
  write_latest(run_dir, step);
  return apply_retention(run_dir, c, step);
}

}  // namespace llmpi
