#pragma once
// ParallelEngine: the one place where parallelism is applied to a model, in DESIGN.md's
// order — pipeline split → tensor (+sequence) parallel → activation recomputation (in the
// model, train.recompute) → ZeRO sharding — and memory is allocated only after sharding. It owns this
// rank's parameters, gradients, optimizer state, activations and workspace, and runs one
// training step: the rank's micro-batches forward and backward, the gradient reduction of
// its ZeRO stage, the global gradient norm and clip, and the AdamW update.
//   ZeRO 0: one ParamStore (all of the rank's pipeline chunks); gradients all-reduced over
//     dp in buckets.
//   ZeRO 1: as 0, but AdamW holds moments for this rank's shard only, which is all it
//     needs reduced: gradients are reduce-scattered into the shard's range of the full
//     gradient buffer (not all-reduced; half the traffic), then parameters all-gathered.
//   ZeRO 2 with pp > 1: as 1 (gradients reduce-scattered; the store's full gradient
//     buffer stays the pipeline's accumulation buffer: persistent, documented).
//   ZeRO 2/3 with pp = 1: the model runs as a chain of units (embedding + layer 0, layer 1, …, last layer
//     + head), each a Transformer over a transient ParamStore built just in time; each unit's
//     gradients are reduce-scattered into the persistent 1/dp gradient shard right after its
//     backward and the unit is freed. ZeRO 2 keeps full parameters (copied into the unit);
//     ZeRO 3 keeps only the shard and all-gathers each unit for forward and again for backward.
// Semantics: the loss is the global mean over the step (Σ token losses / Σ counted targets
// over micro-batches and dp ranks); the gradient norm is the single-rank norm (replicas
// counted once). docs/parallelism.md gives the formulas.
// Checkpoints: checkpoint_slabs() describes the rank's params and AdamW moments as slabs of
// the global tensors (boxes of its tp-local slabs; flat ranges of them for ZeRO-sharded
// state), so a file saved under one layout loads under any other (load_state).
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "config/config.h"
#include "io/checkpoint.h"
#include "io/model_file.h"
#include "model/param_store.h"
#include "model/transformer.h"
#include "optim/adamw.h"
#include "io/logbook_schema.h"
#include "parallel/activation_stats.h"
#include "parallel/group_collectives.h"
#include "parallel/pipeline.h"
#include "parallel/tensor_parallel.h"
#include "parallel/topology.h"
#include "parallel/zero_shard.h"

namespace llmpi {

// Bytes this rank holds persistently per kind, and the peak of its transient buffers.
struct EngineMemory {
  int64_t params = 0;     // master parameters (full, or the ZeRO-3 shard)
  int64_t grads = 0;      // gradients kept across the step (full, or the ZeRO-2/3 shard)
  int64_t optimizer = 0;  // AdamW moments m and v
  int64_t transient = 0;  // peak of just-in-time unit buffers (ZeRO 2/3), 0 otherwise
};

// Seconds of one step on this rank, the device synchronized at each boundary. forward and
// backward: the micro-batches' passes (tensor-parallel collectives inside them included);
// with pp > 1 the schedule interleaves them, so forward holds the whole schedule and backward
// is NaN. comm: the exposed data-parallel reductions (gradient all-reduce or reduce-scatter,
// the ZeRO-1 parameter all-gather, the scalar reductions), none of it hidden by compute; on
// the ZeRO 2/3 units path the per-unit gathers and reduce-scatters are inside forward/backward.
// optimizer: clip and AdamW (ZeRO 2 refresh of full parameters included).
struct StepTimes {
  double forward_s = 0.0, backward_s = 0.0, comm_s = 0.0, optimizer_s = 0.0;
};

struct StepStats {
  double loss = 0.0;       // global mean loss of the step (nats/token)
  int64_t counted = 0;     // counted targets of the step, all ranks
  double grad_norm = 0.0;  // global L2 norm before clipping
  bool finite = true;      // loss and gradient norm are finite (the same on every rank)
  bool clipped = false;    // the gradient norm exceeded train.grad_clip
  bool applied = true;     // false: no update (non-finite, or the caller chose to skip)
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
  // (BatchLoader order). lr: this step's learning rate. = compute(), then apply() if finite.
  StepStats step(std::span<const int32_t> ids, std::span<const int32_t> targets, double lr);
  // The two halves, for a caller that decides between them (the spike policy): compute()
  // runs forward, backward, the gradient reduction and the global norm (applied = false);
  // apply() clips and updates with that norm (adds its time to `s`, sets applied). Skipping
  // apply() leaves the weights as they were. poison_grad (a test hook): this rank's gradient
  // gets a NaN after the reduction, so only its own norm is non-finite.
  StepStats compute(std::span<const int32_t> ids, std::span<const int32_t> targets,
                    bool poison_grad = false);
  void apply(StepStats& s, double lr);

  // Per-layer statistics (engine_stats.cpp): arm before compute(); after apply() (or after a
  // compute() not applied, `applied` false) layer_stats() returns them for that step.
  // Collective over the world; layout-independent (every element counted once). Columns:
  // global_param_names() and the model's blocks. step and segment are left 0.
  void arm_layer_stats();
  LayerStats layer_stats(bool applied);
  std::vector<std::string> global_param_names() const;

  // Forward only on one micro-batch of B rows (every dp rank may pass the same batch).
  LossSum eval(std::span<const int32_t> ids, std::span<const int32_t> targets);

  // This rank's parameters with every dp shard gathered (the tp-local slabs of its stage).
  // ZeRO 0/1: the live store; ZeRO 2/3: a copy, valid until the next call.
  const ParamStore& gathered_params();
  // Collective over the world: writes the model file (dp rank 0 of each slab writes).
  void save(const std::string& path, const ModelFileMeta& meta);

  // This rank's checkpoint state (io/checkpoint.h): params, AdamW m and v as slabs of the
  // global tensors. Parameters: the box of each tp-local slab of the rank's stage (owned by
  // dp rank 0 where parameters are replicated over dp), or under ZeRO 2/3 (pp = 1) the flat
  // range of the rank's shard. Moments: the flat range of the rank's optimizer shard (the
  // whole box without ZeRO, owned by dp rank 0). Replicas (tp copies, tied head) are never
  // owners. Views of the live buffers on the host backend; on a device, of host staging
  // copies taken by this call. Valid until the next step(), checkpoint_slabs() or load_state().
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
  // The optimizer's checkpoint attributes (step count and hyper-parameters).
  OptimizerMeta optimizer_meta() const;

  EngineMemory memory() const { return mem_; }
  // One line per rank "rank | tp dp pp | params | grads | optimizer | transient" (MiB),
  // collected over the world; the text is complete on world rank 0.
  std::string memory_table();

  int64_t global_param_count() const { return global_params_; }
  int zero_stage() const { return zero_; }
  Topology& topology() { return topo_; }

 private:
  struct Unit;
  struct Owned;
  struct Live;

  void build_full();
  void build_units();
  std::vector<ParamInfo> local_params(const StageRange& r) const;

  // One-store path (ZeRO 0/1, and 2 with pp > 1): forward/backward of every micro-batch.
  double run_store(std::span<const int32_t> ids, std::span<const int32_t> targets, double scale,
                   StepTimes& times);
  // ZeRO 2/3 path.
  Live gather_unit(size_t u);
  void scatter_unit_grads(size_t u, const ParamStore& s);
  double micro_units(const Tensor& ids, const Tensor& targets, double scale, StepTimes& times);
  Buffer transient(Shape s);
  void release(Buffer& b);

  double grad_sum_squares();
  void poison_grad();                 // test hook: a NaN in this rank's owned gradient
  const ParamStore& stats_store() const;  // where layer_stats() reads
  void snapshot_for_update();         // armed steps: before_update_ ← the master weights
  void refresh_full_params();  // ZeRO 2 units path: o.full ← the gathered shards
  void loaded_slabs();  // after slabs of checkpoint_slabs() were filled: staging → device, derived copies
  // A host f32 view of a flat state buffer for checkpoint slabs: the buffer itself on the
  // host, else a staging copy (ckpt_staging_[i] mirrors ckpt_staged_[i]).
  float* host_state(const Tensor& flat);
  void load_micro(std::span<const int32_t> ids, std::span<const int32_t> targets, int64_t m);

  Config cfg_;
  Topology& topo_;
  Backend& be_;
  std::unique_ptr<GroupCollectives> groups_;  // built first; destroyed after every user below
  int zero_ = 0;
  DType master_ = DType::f32;  // master weights, gradients, moments (config train.master_dtype)
  int64_t B_ = 1, T_ = 1, M_ = 1;
  int64_t global_params_ = 0;
  EngineMemory mem_;
  int64_t transient_live_ = 0;

  bool units_path() const { return zero_ >= 2 && topo_.layout().pp == 1; }

  std::unique_ptr<TensorParallel> tp_;  // tp > 1 only

  // One-store path: the rank's chunks (pipeline split), their store and models.
  std::vector<StageRange> chunks_;
  std::unique_ptr<ParamStore> store_;
  std::vector<std::unique_ptr<Transformer>> models_;
  std::vector<std::vector<Activations>> chunk_acts_;  // pp = 1: one slot
  std::vector<Workspace> chunk_ws_;
  std::vector<PipelineChunk> pipe_;
  std::unique_ptr<PipelineSchedule> schedule_;  // pp > 1 only
  ShardRange shard_;  // ZeRO 1/2: this rank's optimizer range of store_

  // ZeRO 2/3: units, owned flat groups and the shard store (pieces of parameters).
  std::vector<Unit> units_;
  std::vector<Owned> owned_;
  std::unique_ptr<ParamStore> shard_store_;
  std::unique_ptr<ParamStore> gathered_;
  Buffer dgrad_;  // [N, C] gradient passed from a unit to the one before it

  std::unique_ptr<AdamW> opt_;
  Workspace ws_;  // units path
  Buffer ids_, targets_;  // i32 [B·T]
  std::vector<std::vector<float>> ckpt_staging_;  // device state staged for checkpoints
  std::vector<Tensor> ckpt_staged_;               // the device buffers they mirror
  std::unique_ptr<ActivationStats> activations_;  // the block observer of every model
  bool stats_armed_ = false;
  double clip_scale_ = 1.0;  // of the last compute()
  Buffer before_update_;     // armed steps: the master weights before apply()
};

}  // namespace llmpi
