// The Trainer's step with the logbook (see trainer.h): one step between the engine's
// compute() and apply(), where the spike policy decides (train/step_guard.h), the per-layer
// statistics of the steps that take them, and the step's row in the logbook (the engine's
// time split, parallel/step_clock.h). The rollback itself is trainer_checkpoints.cpp's.
#include <chrono>
#include <optional>

#include "train/dpo_objective.h"
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
    o.s.times.comm_measured = true;  // nothing ran: every time is 0
    return o;
  }
  const auto t0 = Clock::now();
  std::optional<DpoBatch> dpo;  // objective = "dpo": rows, token scales and the pairs' sums
  if (dpo_) {
    dpo = dpo_->stage(step - 1, layout_);  // collective; includes the policy's forward passes
  } else {
    const int64_t N = cfg_.train.batch_size * cfg_.train.seq_len;
    for (int64_t m = 0; m < layout_.micro_batches; ++m)
      rows_.fill(step - 1, m, topo_.dp_rank(), layout_, host_ids_.data() + m * N,
                 host_targets_.data() + m * N,
                 host_docs_.data() + (host_docs_.empty() ? 0 : m * N));
  }
  o.data_s = std::chrono::duration<double>(Clock::now() - t0).count();
  const bool stats = guard_->layer_stats_due(step);
  if (stats) engine_->arm_layer_stats();
  const bool poison = guard_->poison_gradient(step);
  if (dpo) {
    o.s = engine_->compute(dpo->ids, dpo->targets, dpo->docs, dpo->scales, poison);
    o.s.loss = dpo->sums.mean_loss();  // the step's loss is the DPO loss (spikes judge it)
    r.dpo = true;
    r.chosen_reward = dpo->sums.mean_chosen_reward();
    r.rejected_reward = dpo->sums.mean_rejected_reward();
    r.reward_margin = dpo->sums.mean_margin();
    r.reward_accuracy = dpo->sums.accuracy();
  } else {
    o.s = engine_->compute(host_ids_, host_targets_, host_docs_, {}, poison);
  }
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
  r.times = o.s.times;
  r.action = d.action;
  o.r.spike = a.verdict.spike;
  o.r.loss_z = a.verdict.loss_z;
  o.r.grad_z = a.verdict.grad_z;
  return o;
}

void Trainer::record_step(const StepRun& o, double train_s, double step_s, double stall_s,
                          double val_loss) {
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
  // A step whose data a rollback skipped trains no token: 0 tokens/s, MFU 0. MFU is not
  // measured (NaN) where the device's peak FLOP/s is unknown (Backend::peak_flops: the host).
  const bool trained = r.action != StepAction::skip_data;
  m.tokens_per_s =
      trained && train_s > 0 ? double(layout_.global_samples() * cfg_.train.seq_len) / train_s : 0.0;
  if (const double peak = be_.peak_flops(); peak > 0)
    m.mfu = m.tokens_per_s * flops_per_token_ /
            (double(topo_.world_size()) * peak);
  m.peak_memory_bytes = o.peak_bytes;
  m.time_step_s = step_s;
  m.time_data_s = o.data_s;
  const StepTimes& t = o.s.times;
  m.time_forward_s = t.forward_s;
  m.time_backward_s = t.backward_s;
  m.time_optimizer_s = t.optimizer_s;
  m.time_comm_s = t.comm_measured ? t.comm_exposed_s : kNotMeasured;  // device: not measured
  m.time_checkpoint_s = stall_s;
  if (r.dpo) {
    m.dpo_chosen_reward = r.chosen_reward;
    m.dpo_rejected_reward = r.rejected_reward;
    m.dpo_reward_margin = r.reward_margin;
    m.dpo_reward_accuracy = r.reward_accuracy;
  }
  guard_->recorder().step(m);
}

}  // namespace llmpi
