// The Trainer's checkpoints (see trainer.h): resuming from one (the spike policy's state and
// the configuration changes of a relaunch come with it), saving one with the data mapping
// and the run state, and the rollback to the newest checkpoint before a spike:
//   a rolled-back step s with checkpoint c: checkpoints after c are deleted (they hold the
//   skipped data's updates), `latest` names c, the state is reloaded, the detector's window
//   is c's, the next segment starts, rollbacks.json records the skipped steps (a requeue
//   before the next checkpoint keeps them), and training goes on at c + 1.
#include <chrono>
#include <cstdio>
#include <filesystem>

#include "core/agreement.h"
#include "jobs/checkpoint_dir.h"
#include "jobs/relaunch.h"
#include "train/logbook_observer.h"
#include "train/lora_setup.h"
#include "train/spike_policy.h"
#include "train/trainer.h"

namespace llmpi {

using Clock = std::chrono::steady_clock;

ResumePoint Trainer::resume(const std::string& path) {
  // The metadata first (cheap, read by every rank on its own): a checkpoint that cannot
  // continue this run's data order is refused before anything is loaded. Agreed: a rank that
  // cannot read it (a path that is another file, or none, on its node) stops every rank here.
  const CheckpointMeta stored = agreed(comm_, [&] {
    CheckpointMeta m = read_checkpoint_meta(path);
    check_resumable(path, m, cfg_, layout_.global_samples());
    return m;
  });
  prepare_lora_resume(path, stored, cfg_, *engine_, comm_);  // the base the adapters sit beside
  const CheckpointMeta m = engine_->load_state(path);
  start_step_ = m.step;
  last_saved_step_ = m.step;
  resumed_run_ = m.run;  // the spike policy's state (restored when the logbook starts)
  saved_steps_.clear();
  for (const CheckpointFile& f : list_checkpoints(run_dir_.dir()))
    if (f.step <= m.step) saved_steps_.insert(f.step);
  resumed_from_ = path;
  RunEvent e = resume_event(path, m, cfg_.train.steps);
  e.details.push_back(json_detail("saved_layout", layout_text(m.layout)));
  run_dir_.emit(std::move(e));
  if (auto change = config_change_event(path, relaunch_diff(path, m.config_toml, cfg_), m.step))
    run_dir_.emit(std::move(*change));
  ResumePoint p;
  p.path = path;
  p.step = m.step;
  p.tokens_seen = m.tokens_seen;
  return p;
}

std::optional<ResumePoint> Trainer::resume_latest() {
  const Discovery d = run_dir_.find_resume_checkpoint();
  if (!d.found) return std::nullopt;
  ResumePoint p = resume(d.found->path);
  p.rejected = d.rejected;
  return p;
}

void Trainer::save_checkpoint(AsyncCheckpointer& saver, int64_t step) {
  const int64_t G = layout_.global_samples();
  CheckpointMeta meta;
  meta.step = step;
  meta.tokens_seen = step * G * cfg_.train.seq_len;
  meta.config_toml = cfg_.source_text;
  meta.layout = topo_.layout();
  if (auto t = train_data_.tokenizer()) meta.tokenizer = t->str();
  meta.optimizer = engine_->optimizer_meta();
  stamp_lora_base(meta, cfg_, *engine_);
  meta.run = guard_->policy().save(guard_->segment());
  saved_steps_.insert(step);
  DataMeta& d = meta.data;
  d.seed = cfg_.train.seed;
  d.samples_consumed = step * G;
  d.global_batch = G;
  for (int64_t s = last_saved_step_ + 1; s <= step; ++s) {
    d.steps.push_back(s);
    const std::vector<int64_t> idx = rows_.step_samples(s - 1, layout_);  // 0-based step
    d.step_samples.insert(d.step_samples.end(), idx.begin(), idx.end());
  }
  const std::string path = run_dir_.checkpoint_path(step);
  const auto t0 = Clock::now();
  // The previous save first, agreed: its commit (`latest`, retention) ran on rank 0 alone and
  // may have failed there alone — before this save's collective write begins on any rank.
  agreed(comm_, [&] { saver.wait(); });
  saver.save(path, engine_->checkpoint_slabs(), meta, [this, step, t0] {
    // On the writer thread, once the file is complete and verified: `latest`, retention.
    run_dir_.commit_checkpoint(step, cfg_.checkpoint,
                               std::chrono::duration<double>(Clock::now() - t0).count());
  });
  last_saved_step_ = step;
  const AsyncSaveStats st = saver.stats();
  char line[256];
  std::snprintf(line, sizeof line, "checkpoint step %lld -> %s | stall %.1f ms (%s)",
                (long long)step, path.c_str(), st.last_stall_s * 1e3,
                saver.is_async() ? "snapshot; written in the background" : "synchronous write");
  report(line);
}

int64_t Trainer::checkpoint_before(int64_t step) const {
  auto it = saved_steps_.lower_bound(step);
  return it == saved_steps_.begin() ? -1 : *std::prev(it);
}

int64_t Trainer::roll_back(AsyncCheckpointer* saver, int64_t step) {
  const int64_t c = checkpoint_before(step);
  LLMPI_CHECK(c >= 0, "rollback at step ", step, " without a checkpoint before it");
  if (saver) agreed(comm_, [&] { saver->wait(); });  // it may still be written; no HDF5 meanwhile
  run_dir_.deliver_events();  // its checkpoint_saved belongs to the segment that wrote it
  const std::vector<int64_t> window = guard_->policy().skip_window(step, c);
  const std::string path = run_dir_.checkpoint_path(c);
  std::vector<int64_t> samples;  // the global sample indices whose data is skipped
  for (int64_t s : window) {
    const std::vector<int64_t> idx = rows_.step_samples(s - 1, layout_);  // 0-based step
    samples.insert(samples.end(), idx.begin(), idx.end());
  }
  run_dir_.emit({RunEventKind::rollback, step,
                 "rolled back from step " + std::to_string(step) + " to " + path + "; the data of steps " +
                     std::to_string(window.front()) + ".." + std::to_string(window.back()) + " is skipped",
                 {json_detail("to_step", c), json_detail("checkpoint", path),
                  json_detail("skip_first", window.front()), json_detail("skip_last", window.back()),
                  json_detail("samples", samples.size()), json_detail("sample_indices", samples)}});
  // Checkpoints after c hold the skipped data's updates: a resume must start from c. Rank 0
  // deletes them and points `latest` at c; a failure there is every rank's.
  agreed(comm_, [&] {
    if (rank_ != 0) return;
    for (auto it = saved_steps_.upper_bound(c); it != saved_steps_.end(); ++it) {
      std::error_code ec;
      std::filesystem::remove(run_dir_.checkpoint_path(*it), ec);
      if (ec)
        user_error(run_dir_.checkpoint_path(*it), ": cannot delete it after a rollback to step ", c,
                   ": ", ec.message());
    }
    write_latest(run_dir_.dir(), c);
  });
  saved_steps_.erase(saved_steps_.upper_bound(c), saved_steps_.end());
  const CheckpointMeta m = engine_->load_state(path);  // collective
  guard_->policy().restore_window(m.run);
  guard_->recorder().next_segment();
  agreed(comm_, [&] {  // rank 0 writes it; its failure is every rank's
    if (rank_ == 0) write_rollback_record(run_dir_.dir(), guard_->policy().save(guard_->segment()));
  });
  run_dir_.emit({RunEventKind::resume, c, "", {json_detail("path", path), json_detail("reason", "rollback"),
                                                json_detail("saved_layout", layout_text(m.layout))}});
  last_saved_step_ = c;
  return c;
}

}  // namespace llmpi
