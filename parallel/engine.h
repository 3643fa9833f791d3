#pragma once
// ParallelEngine: the one place where parallelism is applied to a model, as ordered steps
// (DESIGN.md, torchtitan's `parallelize`), each owned by a file named for it:
//   1. pipeline split        parallel/pipeline_split.h   the chunks of this rank
//   2. tensor (+sequence)    parallel/tensor_parallel.h  the checks, the hooks every model
//      parallel                                          gets before its activations
//      LoRA's frozen base    parallel/lora_base.h        [lora] rank > 0: the base slabs of
//                                                        the rank's chunks, outside ZeRO
//   3. recomputation         in the model (train.recompute → ModelConfig::recompute)
//   4. ZeRO sharding         parallel/zero_path.h        the path that owns parameters,
//                            (zero_store.h, zero_units.h) gradients and AdamW state, and
//                                                        allocates them after sharding
// Then one training step in two halves: compute() (the loss scale from the step's counted
// targets, the path's forward/backward and gradient reduction, the global gradient norm),
// and apply() (clip and update), between which a caller may decide to skip the update.
// Around it: evaluation (parallel/evaluation.cpp), the checkpoint slabs of the rank's state
// (parallel/checkpoint_slabs.h), the memory report (parallel/memory_report.h) and the
// logbook's per-layer statistics (parallel/engine_stats.cpp).
// Collectives: every collective of a step goes through one GroupCollectives (tp, dp, pp,
// embedding groups), built first; on the host it clocks them, and the step's StepClock
// (parallel/step_clock.h) splits its time into phases and exposed communication.
// Semantics: the loss is the global mean over the step (Σ token losses / Σ counted targets
// over micro-batches and dp ranks); the gradient norm is the single-rank norm (replicas
// counted once). docs/parallelism.md gives the formulas.
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "config/config.h"
#include "io/checkpoint.h"
#include "io/logbook_schema.h"
#include "io/model_file.h"
#include "model/param_store.h"
#include "model/transformer.h"
#include "parallel/activation_stats.h"
#include "parallel/checkpoint_slabs.h"
#include "parallel/group_collectives.h"
#include "parallel/lora_base.h"
#include "parallel/memory_estimate.h"
#include "parallel/memory_report.h"
#include "parallel/step_clock.h"
#include "parallel/tensor_parallel.h"
#include "parallel/topology.h"
#include "parallel/zero_path.h"

namespace llmpi {

struct StepStats {
  double loss = 0.0;       // global mean loss of the step (nats/token)
  int64_t counted = 0;     // counted targets of the step, all ranks
  double grad_norm = 0.0;  // global L2 norm before clipping
  bool finite = true;      // loss and gradient norm are finite (the same on every rank)
  bool clipped = false;    // the gradient norm exceeded train.grad_clip
  bool applied = true;     // false: no update (non-finite, or the caller chose to skip)
  // The step's time split on this rank (parallel/step_clock.h): phases, exposed and total
  // communication; step_s is the engine's own wall time (compute() and apply()).
  StepTimes times;
};

class ParallelEngine {
 public:
  // Collective over the topology's world. Throws UserError (identically on every rank)
  // when the layout needs a feature this build lacks.
  ParallelEngine(const Config& cfg, Topology& topo, Backend& be);
  ~ParallelEngine();
  ParallelEngine(const ParallelEngine&) = delete;
  ParallelEngine& operator=(const ParallelEngine&) = delete;

  // One optimizer step. ids, targets: host i32 [M · B·T], this dp rank's micro-batches
  // (BatchLoader order). lr: this step's learning rate. doc_start: host i32 [M · B·T], the
  // rows' document starts (packed fine-tuning rows, core/documents.h), or empty for one
  // document per row. token_scale: host f64 [M · B·T], d(loss)/d(cross-entropy) of each
  // token (DPO, train/dpo_objective.h), or empty for the mean over the step's counted
  // targets; StepStats::loss is then Σ scale·cross-entropy (the caller reports its own loss).
  // = compute(), then apply() if finite.
  StepStats step(std::span<const int32_t> ids, std::span<const int32_t> targets, double lr,
                 std::span<const int32_t> doc_start = {},
                 std::span<const double> token_scale = {});
  // The two halves, for a caller that decides between them (the spike policy): compute()
  // runs forward, backward, the gradient reduction and the global norm (applied = false);
  // apply() clips and updates with that norm (adds its time to `s`, sets applied). Skipping
  // apply() leaves the weights as they were. poison_grad (a test hook): this rank's gradient
  // gets a NaN after the reduction, so only its own norm is non-finite.
  StepStats compute(std::span<const int32_t> ids, std::span<const int32_t> targets,
                    std::span<const int32_t> doc_start = {},
                    std::span<const double> token_scale = {}, bool poison_grad = false);
  void apply(StepStats& s, double lr);

  // Per-layer statistics (engine_stats.cpp): arm before compute(); after apply() (or after a
  // compute() not applied, `applied` false) layer_stats() returns them for that step.
  // Collective over the world; layout-independent (every element counted once). Columns:
  // global_param_names() and the model's blocks. step and segment are left 0.
  void arm_layer_stats();
  LayerStats layer_stats(bool applied);
  std::vector<std::string> global_param_names() const;

  // Forward only on one micro-batch of B rows (every dp rank may pass the same batch).
  // token_losses (optional): the per-token cross-entropy [B·T] (0 where ignored), on every
  // rank (summed over the pp group).
  LossSum eval(std::span<const int32_t> ids, std::span<const int32_t> targets,
               std::span<const int32_t> doc_start = {},
               std::vector<double>* token_losses = nullptr);

  // This rank's parameters with every dp shard gathered (the tp-local slabs of its stage).
  // ZeRO 0/1: the live store; ZeRO 2/3: a copy, valid until the next call.
  const ParamStore& gathered_params() { return path_->gathered_params(); }
  // Collective over the world: writes the model file (dp rank 0 of each slab writes).
  void save(const std::string& path, const ModelFileMeta& meta);

  // This rank's checkpoint state (parallel/checkpoint_slabs.h): params, AdamW m and v as
  // slabs of the global tensors. Views of the live buffers on the host backend; on a device,
  // of host staging copies taken by this call. Valid until the next step(),
  // checkpoint_slabs() or load_state().
  CheckpointSlabs checkpoint_slabs();
  // Collective over the world: fills parameters and moments from checkpoint `path` (saved
  // under any layout; UserError for a missing, corrupt or mismatched file), brings derived
  // copies up to date (ZeRO-2 full parameters, compute weights) and sets the AdamW step
  // count. Returns the file's metadata.
  CheckpointMeta load_state(const std::string& path);
  // Collective over the world: `fill` writes this rank's parameter slabs (the `params` of
  // checkpoint_slabs(): global name, shape and the box or flat range held here), then derived
  // copies are brought up to date as load_state does. Optimizer state and step count are left
  // as they are. Used to start a run from a model's weights ([train] init_from).
  void load_params(const std::function<void(std::vector<TensorSlab>&)>& fill);
  // LoRA ([lora] rank > 0; UserError otherwise): collective over the world, `fill` writes the
  // f32 values of this rank's base slabs (global names and boxes, as load_params), which
  // replace the frozen base; its checksum is recomputed (FrozenBase::load).
  void load_base(const std::function<void(std::vector<TensorSlab>&)>& fill);
  // LoRA: off, every forward and backward (step, eval) runs the base model alone — the adapters
  // neither act nor get gradients — until switched on again (DPO's reference pass: the base
  // with adapters disabled). No effect without adapters. Every rank must set it alike.
  void set_adapters_enabled(bool on) { path_->set_adapters_enabled(on); }
  // The frozen base (null without LoRA).
  const FrozenBase* frozen_base() const { return base_.get(); }
  // The optimizer's checkpoint attributes (step count and hyper-parameters).
  OptimizerMeta optimizer_meta() const;

  EngineMemory memory() const;
  // One line per rank "rank | tp dp pp | params | grads | optimizer | transient" (MiB),
  // collected over the world; the text is complete on world rank 0.
  std::string memory_table() { return llmpi::memory_table(memory(), topo_); }
  // The start-up estimate per rank (parallel/memory_estimate.h), checked before allocating.
  const MemoryEstimate& memory_estimate() const { return estimate_; }

  // The model's parameters (with LoRA: the base's), and those that train (the adapters').
  int64_t global_param_count() const { return global_params_; }
  int64_t trainable_param_count() const { return trainable_params_; }
  int zero_stage() const { return zero_; }
  // How this run's steps use CUDA graphs ([train] cuda_graphs, parallel/step_graphs.h), as
  // the run's start-up line says it; and the passes replayed so far.
  std::string graphs_summary() const;
  int64_t graph_replays() const;
  Topology& topology() { return topo_; }

 private:
  // The global squared gradient norm: the path's owned gradients, summed over the groups.
  double grad_sum_squares();
  void poison_grad();         // test hook: a NaN in the first gradient this rank's norm reads
  void snapshot_for_update(); // armed steps: before_update_ ← the owned master weights
  // After the slabs of checkpoint_slabs() were filled: staged values back to the device,
  // then the path's derived copies (ZeRO-2 full parameters, compute weights).
  void loaded_slabs();

  Config cfg_;
  Topology& topo_;
  Backend& be_;
  MemoryEstimate estimate_;
  int zero_ = 0;
  int64_t B_ = 1, T_ = 1, M_ = 1;
  int64_t global_params_ = 0, trainable_params_ = 0;
  std::unique_ptr<GroupCollectives> groups_;  // built first; destroyed after every user below
  std::unique_ptr<TensorParallel> tp_;        // tp > 1 only
  std::unique_ptr<FrozenBase> base_;          // LoRA only
  std::unique_ptr<StepClock> clock_;          // the split of the step in progress
  std::unique_ptr<ActivationStats> activations_;  // the block observer of every model
  std::unique_ptr<PathContext> ctx_;          // what the path is built from (outlives it)
  std::unique_ptr<ZeroPath> path_;
  StateStaging staging_;                      // device state staged for checkpoints
  std::string graphs_blocker_;  // step_graphs_blocker's reason ("" where graphs can run)
  double clip_scale_ = 1.0;  // of the last compute()
  bool stats_armed_ = false;
  Buffer before_update_;     // armed steps: the owned master weights before apply()
};

}  // namespace llmpi
