#pragma once
// ZeroPath: the last step of the engine's composition (parallel/engine.h). After the pipeline
// split and the tensor-parallel setup, the engine hands this rank's model to the path of its
// ZeRO stage, which owns the parameters, gradients and AdamW state in the layout that stage
// needs — memory is allocated here, after sharding — and the collectives that move them:
//   ZeroStore (zero_store.h)  ZeRO 0, 1, and 2 with pp > 1: one ParamStore for the rank's
//                             pipeline chunks, gradients all-reduced or reduce-scattered
//   ZeroUnits (zero_units.h)  ZeRO 2 and 3 with pp = 1: a chain of just-in-time units over
//                             1/dp shards of the parameters
// A path issues every collective through the GroupCollectives of its PathContext (tp, dp,
// pp, embedding groups): that one object sees all of a step's communication. It laps the
// step's StepClock at the end of each forward and backward phase, and installs the context's
// BlockObserver on every model it builds (the just-in-time units too).
#include <cstdint>
#include <span>
#include <vector>

#include "backend/backend.h"
#include "config/config.h"
#include "io/checkpoint.h"
#include "model/param_store.h"
#include "model/transformer.h"
#include "optim/adamw.h"
#include "parallel/checkpoint_slabs.h"
#include "parallel/group_collectives.h"
#include "parallel/memory_report.h"
#include "parallel/step_clock.h"
#include "parallel/step_graphs.h"
#include "parallel/tensor_parallel.h"
#include "parallel/topology.h"

namespace llmpi {

// What a path is built from (all owned by the engine, which outlives the path).
struct PathContext {
  const Config& cfg;
  Topology& topo;
  Backend& be;
  GroupCollectives& groups;
  TensorParallel* tp;  // null when tp == 1
  DType master;        // master weights, gradients and moments (train.master_dtype)
  int64_t B, T, M;     // micro-batch rows and length; micro-batches per step and dp rank
  StepClock& clock;         // the step's time split
  BlockObserver* blocks;    // every model's block-output observer (null: none)
  // LoRA's frozen base (parallel/lora_base.h), or null: the path's store then holds the
  // adapters only, and its models bind both (make_stage_model).
  const ParamStore* base = nullptr;
  // Whether the pp = 1 stage replays its micro-batches' passes from recordings
  // (parallel/step_graphs.h; the engine's decision from train.cuda_graphs).
  bool graphs = false;
};

// What this rank holds of a path's state. Its gradient norm reads the gradients of `store` in
// [grad_begin, grad_end) (its dp shard under ZeRO 1-3, all of them under ZeRO 0), tp replicas
// (ParamInfo::replica) excluded. Over the world, every element of the model is counted once
// where count_params (its weight) and once where count_grads (its gradient): replicas over dp
// are counted by dp rank 0 only.
struct OwnedState {
  const ParamStore* store = nullptr;
  int64_t grad_begin = 0, grad_end = 0;
  bool count_params = true, count_grads = true;
};

// A host i32 array as a Tensor (the step's token ids and targets, read only).
inline Tensor host_i32(const int32_t* p, int64_t n) {
  return Tensor{const_cast<int32_t*>(p), Shape{n}, DType::i32, Device::host};
}

// A step's (or one evaluation batch's) host arrays, i32 [M·B·T] each: token ids, targets and
// the rows' document starts (packed fine-tuning rows; empty: one document per row).
// token_scale: f64 [M·B·T] per-token loss scales replacing the uniform scale of a step (DPO),
// or empty. token_losses: where an evaluation puts its per-token losses [B·T] (the head
// stage's; left alone elsewhere), or null.
struct HostBatch {
  std::span<const int32_t> ids, targets, doc_start;
  std::span<const double> token_scale = {};
  std::vector<double>* token_losses = nullptr;
};

// One micro-batch's token ids and targets on the backend, i32 [B·T], and its document starts
// on the host (a view of the step's array; empty when there are none).
struct MicroBatch {
  Buffer ids, targets;
  std::span<const int32_t> docs;
  MicroBatch(Backend& be, int64_t rows);
  // Micro-batch m of the step's host arrays.
  void load(Backend& be, const HostBatch& h, int64_t m);
};

inline MicroBatch::MicroBatch(Backend& be, int64_t rows)
    : ids(be.alloc(Shape{rows}, DType::i32)), targets(be.alloc(Shape{rows}, DType::i32)) {}

inline void MicroBatch::load(Backend& be, const HostBatch& h, int64_t m) {
  const int64_t n = ids.tensor().numel();
  be.copy(ids, host_i32(h.ids.data() + m * n, n));
  be.copy(targets, host_i32(h.targets.data() + m * n, n));
  docs = h.doc_start.empty() ? std::span<const int32_t>{} : h.doc_start.subspan(size_t(m * n), size_t(n));
}

// model.set_documents(a, docs) (model/transformer.h) — skipped while a has none and none are
// given (pre-training: nothing to set, no synchronization).
inline void set_documents(Backend& be, const Transformer& model, Activations& a,
                          std::span<const int32_t> docs) {
  if (docs.empty() && a.doc_start.tensor().empty()) return;
  model.set_documents(be, a, docs);
}

class ZeroPath {
 public:
  virtual ~ZeroPath() = default;

  // Forward and backward of the step's M micro-batches (HostBatch): gradients summed
  // over the tp ranks that share a parameter and over dp as this ZeRO stage keeps them.
  // scale: the uniform per-token loss scale (batch.token_scale, when given, replaces it).
  // Returns this rank's loss sum (pp > 1: its head chunk's;
  // 0 on other stages).
  virtual double forward_backward(const HostBatch& batch, double scale) = 0;
  // This rank's parameters and gradients (see OwnedState): after forward_backward, its
  // gradients are reduced; after update, its weights are the updated ones.
  virtual OwnedState owned() const = 0;
  // AdamW at rate lr with the clip's gradient scale, then the copies derived from the
  // parameters (all-gathered shards, compute weights).
  virtual void update(double lr, double clip_scale) = 0;
  // Forward only of one micro-batch (host i32 [B·T]): this rank's loss (pp > 1: its head
  // chunk's; {0, 0} on other stages).
  virtual LossSum forward_only(const HostBatch& batch) = 0;
  // The rank's tp-local parameter slabs with every dp shard gathered.
  virtual const ParamStore& gathered_params() = 0;
  // This rank's state as slabs (parallel/checkpoint_slabs.h), viewed through `staging`.
  virtual CheckpointSlabs checkpoint_slabs(StateStaging& staging) = 0;
  // After a load into checkpoint_slabs: the derived copies brought up to date.
  virtual void after_load() = 0;
  virtual AdamW& optimizer() = 0;
  virtual EngineMemory memory() const = 0;
  // LoRA: whether every model of the path runs its adapters (Transformer::set_adapters_enabled).
  virtual void set_adapters_enabled(bool on) = 0;
  // The pp = 1 stage's passes (recorded where PathContext::graphs allows), or null.
  virtual const StepGraphs* graphs() const { return nullptr; }
};

}  // namespace llmpi
