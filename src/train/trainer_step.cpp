// The Trainer's step with the logbook (see trainer.h): one step between the engine's
// compute() and apply(), where the spike policy decides (train/step_guard.h); the rollback to
// the newest checkpoint before a spike; the step's row in the logbook.
//   a rolled-back step s with checkpoint c: checkpoints after c are deleted (they hold the
//   skipped data's updates), `latest` names c, the state is reloaded, the detector's window
//   is c's, the next segment starts, rollbacks.json records the skipped steps (a requeue
//   before the next checkpoint keeps them), and training goes on at c + 1.
#include <chrono>
#include <filesystem>

#include "jobs/checkpoint_dir.h"
#include "train/logbook_observer.h"
#include "train/spike_policy.h"
#include "train/trainer.h"

namespace llmpi {

using Clock = std::chrono::steady_clock;

Trainer::StepRun Trainer::train_step(int64_t step) {
  StepRun o;
  StepRecord& r = o.r;
  r.step = step;
  r.lr = schedule_.at(step);
  SpikePolicy& policy = guard_->policy();
  if (policy.data_skipped(step)) {  // a rollback dropped this step's data: no forward at all
    r.loss = r.grad_norm = kNotMeasured;
    r.skipped = true;
    r.action = StepAction::skip_data;
    o.s.finite = false;
    return o;
  }
  const auto t0 = Clock::now();
  const int64_t N = cfg_.train.batch_size * cfg_.train.seq_len;
  for (int64_t m = 0; m < layout_.micro_batches; ++m)
    loader_.fill(step - 1, m, topo_.dp_rank(), layout_, host_ids_.data() + m * N,
                 host_targets_.data() + m * N);
  o.data_s = std::chrono::duration<double>(Clock::now() - t0).count();
  const bool stats = guard_->layer_stats_due(step);
  if (stats) engine_->arm_layer_stats();
  o.s = engine_->compute(host_ids_, host_targets_, guard_->poison_gradient(step));
  auto since = [](Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); };
  auto lb = Clock::now();  // the logbook's own time: agreement, decision, statistics, events
  const int64_t peak = be_.peak_bytes();
  const AgreedVerdict a = guard_->agree(step, o.s.loss, o.s.grad_norm, peak >= 0 ? double(peak) : kNotMeasured);
  o.peak_bytes = a.peak_bytes;
  const StepDecision d = policy.decide(step, a.verdict, checkpoint_before(step));
  logbook_s_ += since(lb);
  if (d.action == StepAction::apply || d.action == StepAction::log_spike) engine_->apply(o.s, r.lr);
  lb = Clock::now();
  if (stats) {
    LayerStats ls = engine_->layer_stats(o.s.applied);  // collective
    ls.step = step;
    ls.segment = guard_->segment();
    guard_->recorder().layers(ls);
    o.layers = std::move(ls);
  }
  policy.completed(step, d, o.s.loss, o.s.grad_norm);
  guard_->journal(run_dir_, step, a, d, o.s.grad_norm);
  logbook_s_ += since(lb);
  r.loss = o.s.loss;
  r.grad_norm = o.s.grad_norm;
  r.skipped = !o.s.applied;  // the weights are kept; the step counter still advances
  r.action = d.action;
  o.r.spike = a.verdict.spike;
  o.r.loss_z = a.verdict.loss_z;
  o.r.grad_z = a.verdict.grad_z;
  return o;
}

int64_t Trainer::checkpoint_before(int64_t step) const {
  auto it = saved_steps_.lower_bound(step);
  return it == saved_steps_.begin() ? -1 : *std::prev(it);
}

int64_t Trainer::roll_back(AsyncCheckpointer* saver, int64_t step) {
  const int64_t c = checkpoint_before(step);
  LLMPI_CHECK(c >= 0, "rollback at step ", step, " without a checkpoint before it");
  if (saver) saver->wait();  // the checkpoint may still be written; no HDF5 while it is
  run_dir_.deliver_events();  // its checkpoint_saved belongs to the segment that wrote it
  const std::vector<int64_t> window = guard_->policy().skip_window(step, c);
  const std::string path = run_dir_.checkpoint_path(c);
  std::vector<int64_t> samples;  // the global sample indices whose data is skipped
  for (int64_t s : window) {
    const std::vector<int64_t> idx = loader_.step_samples(s - 1, layout_);  // 0-based step
    samples.insert(samples.end(), idx.begin(), idx.end());
  }
  run_dir_.emit({RunEventKind::rollback, step,
                 "rolled back from step " + std::to_string(step) + " to " + path + "; the data of steps " +
                     std::to_string(window.front()) + ".." + std::to_string(window.back()) + " is skipped",
                 {json_detail("to_step", c), json_detail("checkpoint", path),
                  json_detail("skip_first", window.front()), json_detail("skip_last", window.back()),
                  json_detail("samples", samples.size()), json_detail("sample_indices", samples)}});
  // Checkpoints after c hold the skipped data's updates: a resume must start from c.
  for (auto it = saved_steps_.upper_bound(c); it != saved_steps_.end();) {
    if (rank_ == 0) std::filesystem::remove(run_dir_.checkpoint_path(*it));
    it = saved_steps_.erase(it);
  }
  if (rank_ == 0) write_latest(run_dir_.dir(), c);
  const CheckpointMeta m = engine_->load_state(path);  // collective
  guard_->policy().restore_window(m.run);
  guard_->recorder().next_segment();
  if (rank_ == 0) write_rollback_record(run_dir_.dir(), guard_->policy().save(guard_->segment()));
  run_dir_.emit({RunEventKind::resume, c, "", {json_detail("path", path), json_detail("reason", "rollback"),
                                                json_detail("saved_layout", layout_text(m.layout))}});
  last_saved_step_ = c;
  return c;
}

void Trainer::record_step(const StepRun& o, double step_s, double stall_s, double val_loss) {
  if (!guard_->recorder().writes()) return;
  const StepRecord& r = o.r;
  StepMetrics m;
  m.step = r.step;
  m.segment = guard_->segment();
  m.tokens_seen = r.step * layout_.global_samples() * cfg_.train.seq_len;
  m.wall_unix = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  m.loss = r.loss;
  m.val_loss = val_loss;
  m.lr = r.lr;
  m.grad_norm = r.grad_norm;
  m.clipped = o.s.clipped && o.s.applied;
  m.skipped = r.skipped;
  m.spike = r.spike;
  m.loss_z = r.loss_z;
  m.grad_z = r.grad_z;
  m.tokens_per_s = step_s > 0 ? double(layout_.global_samples() * cfg_.train.seq_len) / step_s : 0.0;
  m.peak_memory_bytes = o.peak_bytes;
  m.time_step_s = step_s;
  m.time_data_s = o.data_s;
  m.time_forward_s = o.s.times.forward_s;
  m.time_backward_s = o.s.times.backward_s;
  m.time_optimizer_s = o.s.times.optimizer_s;
  m.time_comm_s = o.s.times.comm_s;
  m.time_checkpoint_s = stall_s;
  guard_->recorder().step(m);
}

}  // namespace llmpi
