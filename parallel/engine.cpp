// ParallelEngine (see engine.h): the composition in its documented order, and one step.
#include "parallel/engine.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "model/dtypes.h"
#include "model/param_layout.h"
#include "optim/grad_clip.h"
#include "parallel/memory_estimate.h"
#include "parallel/pipeline_split.h"
#include "parallel/zero_store.h"
#include "parallel/zero_units.h"

namespace llmpi {

ParallelEngine::ParallelEngine(const Config& cfg, Topology& topo, Backend& be)
    : cfg_(cfg), topo_(topo), be_(be), zero_(cfg.parallel.zero_stage), B_(cfg.train.batch_size),
      T_(cfg.train.seq_len), M_(cfg.parallel.micro_batches) {
  // Before anything is allocated (parallel/memory_estimate.h); kept for the end-of-run line.
  estimate_ = check_memory_fits(cfg, topo, be);
  const Layout& lay = topo.layout();
  const DType master = cfg.train.master_dtype;  // master weights, gradients, moments
  LLMPI_CHECK(master == DType::f32 || (master == DType::f64 && be.device() == Device::host),
              "master dtype ", dtype_name(master), " on ", be.device() == Device::host ? "host" : "cuda",
              ": f32, or f64 on the host backend");
  LLMPI_CHECK(zero_ >= 0 && zero_ <= 3, "zero_stage ", zero_);
  for (const ParamInfo& p : transformer_params(cfg.model, StageRange::full(cfg.model)))
    global_params_ += p.global_shape.numel();
  trainable_params_ = global_params_;
  if (cfg.lora.enabled()) {
    trainable_params_ = 0;
    for (const ParamInfo& p : adapter_params(cfg.model, cfg.lora.spec(), StageRange::full(cfg.model)))
      trainable_params_ += p.global_shape.numel();
  }
  // The collectives of each group for this backend's tensors (NCCL on CUDA), built before
  // anything that communicates: every collective of a step goes through them.
  groups_ = std::make_unique<GroupCollectives>(topo, be);

  // 1. Pipeline split: this rank's chunks (one, or virtual_stages of them with pp > 1).
  std::vector<StageRange> chunks = lay.pp > 1
                                       ? pipeline_chunks(cfg.model, cfg.parallel, topo.pp_rank())
                                       : std::vector<StageRange>{StageRange::full(cfg.model)};

  // 2. Tensor (+sequence) parallel: the install's check of the layout rules, then the hooks
  //    that every model of the path gets before its activations are allocated.
  if (lay.tp > 1) {
    check_tensor_parallel(cfg.model, lay.tp, cfg.parallel.sequence_parallel, B_ * T_);
    tp_ = std::make_unique<TensorParallel>(groups_->tp(), cfg.parallel.sequence_parallel);
  }

  //    With LoRA, the frozen base of the rank's chunks (tp-local slabs, seeded until
  //    load_base): the ZeRO path below then owns only the adapters.
  if (cfg.lora.enabled()) base_ = std::make_unique<FrozenBase>(cfg, topo, be, chunks, master);

  // 3. Activation recomputation (train.recompute → ModelConfig::recompute) lives in the
  //    model: each Transformer rebuilds a block's dropped activations right before its
  //    backward, in buffers shared by its blocks and micro-batches.

  // 4. ZeRO sharding: the path of this stage owns parameters, gradients and AdamW state and
  //    allocates them now, after sharding — with activations and workspaces. Every model it
  //    builds reports its block outputs to the logbook's activation statistics (rows held
  //    by several tp ranks, without sequence parallelism, are counted by tp rank 0).
  //    With one rank on a device, the pp = 1 stage replays its passes from recordings
  //    (train.cuda_graphs; the rule in parallel/step_graphs.h).
  graphs_blocker_ = step_graphs_blocker(cfg, lay, be);
  if (cfg.train.cuda_graphs == CudaGraphs::on && !graphs_blocker_.empty())
    user_error("[train] cuda_graphs = \"on\": ", graphs_blocker_,
               " (\"auto\" uses CUDA graphs only where they can run)");
  const bool graphs = cfg.train.cuda_graphs != CudaGraphs::off && graphs_blocker_.empty();
  clock_ = std::make_unique<StepClock>(be_, *groups_);
  const bool rows_split = lay.tp > 1 && cfg.parallel.sequence_parallel;
  activations_ = std::make_unique<ActivationStats>(cfg.model.n_layer, rows_split || topo.tp_rank() == 0);
  ctx_ = std::make_unique<PathContext>(PathContext{cfg_, topo_, be_, *groups_, tp_.get(), master,
                                                   B_, T_, M_, *clock_, activations_.get(),
                                                   base_ ? &base_->store() : nullptr, graphs});
  if (zero_ >= 2 && lay.pp == 1)
    path_ = std::make_unique<ZeroUnits>(*ctx_);
  else
    path_ = std::make_unique<ZeroStore>(*ctx_, std::move(chunks));
}

ParallelEngine::~ParallelEngine() = default;

double ParallelEngine::grad_sum_squares() {
  const Layout& lay = topo_.layout();
  const OwnedState o = path_->owned();
  std::vector<Tensor> gs;
  for (const ParamInfo& p : o.store->params()) {
    const int64_t b = std::max(o.grad_begin, p.offset), e = std::min(o.grad_end, p.offset + p.numel());
    if (!p.replica && b < e) gs.push_back(flat_view(o.store->grads(), b, e - b));
  }
  double sq = local_sum_squares(be_, gs);
  // Sharded gradients (ZeRO 1–3) are disjoint over dp; all-reduced ones (ZeRO 0) identical.
  if (zero_ >= 1 && lay.dp > 1) sq = groups_->dp().all_reduce_value(sq);
  if (lay.tp > 1) sq = groups_->tp().all_reduce_value(sq);
  if (lay.pp > 1) sq = groups_->pp().all_reduce_value(sq);
  return sq;
}

StepStats ParallelEngine::step(std::span<const int32_t> ids, std::span<const int32_t> targets,
                               double lr, std::span<const int32_t> doc_start,
                               std::span<const double> token_scale) {
  StepStats s = compute(ids, targets, doc_start, token_scale);
  if (s.finite) apply(s, lr);
  return s;
}

StepStats ParallelEngine::compute(std::span<const int32_t> ids, std::span<const int32_t> targets,
                                  std::span<const int32_t> doc_start,
                                  std::span<const double> token_scale, bool poison) {
  const int64_t N = B_ * T_;
  LLMPI_CHECK(int64_t(ids.size()) == M_ * N && ids.size() == targets.size(), "step: ",
              ids.size(), " ids and ", targets.size(), " targets for M·B·T = ", M_ * N);
  LLMPI_CHECK(doc_start.empty() || doc_start.size() == ids.size(), "step: ", doc_start.size(),
              " document starts for ", ids.size(), " ids");
  LLMPI_CHECK(token_scale.empty() || token_scale.size() == ids.size(), "step: ",
              token_scale.size(), " token scales for ", ids.size(), " ids");
  const Layout& lay = topo_.layout();
  Collectives& dp = groups_->dp();
  const bool multi = lay.dp > 1;
  clock_->start();
  // The loss scale needs the step's counted targets over every dp rank before any backward.
  int64_t counted = 0;
  for (int32_t t : targets) counted += t >= 0;
  if (multi) counted = int64_t(dp.all_reduce_value(double(counted)));  // exact below 2^53
  LLMPI_CHECK(counted > 0, "a training step without any counted target");
  const double scale = 1.0 / double(counted);

  double loss_sum =
      path_->forward_backward({ids, targets, doc_start, token_scale}, scale);  // laps fwd, bwd
  if (poison) poison_grad();
  if (lay.pp > 1) loss_sum = groups_->pp().all_reduce_value(loss_sum);
  if (multi) loss_sum = dp.all_reduce_value(loss_sum);

  StepStats r;
  r.counted = counted;
  r.loss = loss_sum / double(counted);
  const ClipResult clip = clip_from_sum_squares(grad_sum_squares(), cfg_.train.grad_clip);
  r.grad_norm = clip.norm;
  r.finite = clip.finite && std::isfinite(r.loss);  // the same on every rank: both are global
  r.clipped = r.finite && clip.scale < 1.0;
  r.applied = false;
  clip_scale_ = clip.scale;
  clock_->lap(StepPhase::optimizer);  // the norm and the clip's decision
  r.times = clock_->times();
  return r;
}

void ParallelEngine::apply(StepStats& r, double lr) {
  LLMPI_CHECK(r.finite, "apply() after a step whose loss or gradient is not finite");
  clock_->resume();
  snapshot_for_update();
  path_->update(lr, clip_scale_);
  clock_->lap(StepPhase::optimizer);
  r.times = clock_->times();
  r.applied = true;
}

std::string ParallelEngine::graphs_summary() const {
  if (cfg_.train.cuda_graphs == CudaGraphs::off) return "off ([train] cuda_graphs = \"off\")";
  if (!graphs_blocker_.empty()) return "off (" + graphs_blocker_ + ")";
  return "on: each micro-batch's forward and backward replayed from a recording once they "
         "have run op by op";
}

int64_t ParallelEngine::graph_replays() const {
  const StepGraphs* g = path_->graphs();
  return g ? g->replays() : 0;
}

void ParallelEngine::poison_grad() {
  const OwnedState o = path_->owned();
  if (o.grad_end > o.grad_begin) be_.fill(flat_view(o.store->grads(), o.grad_begin, 1), std::nan(""));
}

void ParallelEngine::save(const std::string& path, const ModelFileMeta& meta) {
  const ParamStore& s = gathered_params();
  save_model_file(path, topo_.world_communicator().get(), be_, s, meta, topo_.dp_rank() == 0);
}

CheckpointSlabs ParallelEngine::checkpoint_slabs() {
  staging_.clear();
  CheckpointSlabs out = path_->checkpoint_slabs(staging_);
  be_.synchronize();  // staging copies complete
  return out;
}

OptimizerMeta ParallelEngine::optimizer_meta() const {
  const AdamW& opt = path_->optimizer();
  const AdamWOptions& o = opt.options();
  OptimizerMeta m;
  m.step_count = opt.step_count();
  m.beta1 = o.beta1;
  m.beta2 = o.beta2;
  m.eps = o.eps;
  m.weight_decay = o.weight_decay;
  return m;
}

CheckpointMeta ParallelEngine::load_state(const std::string& path) {
  CheckpointSlabs slabs = checkpoint_slabs();
  const CheckpointMeta meta = load_checkpoint(path, topo_.world_communicator().get(), slabs);
  loaded_slabs();
  path_->optimizer().set_step_count(meta.optimizer.step_count);
  be_.synchronize();
  return meta;
}

void ParallelEngine::load_params(const std::function<void(std::vector<TensorSlab>&)>& fill) {
  CheckpointSlabs slabs = checkpoint_slabs();
  fill(slabs.params);
  loaded_slabs();
}

EngineMemory ParallelEngine::memory() const {
  EngineMemory m = path_->memory();
  if (base_) m.frozen = base_->bytes();
  return m;
}

void ParallelEngine::load_base(const std::function<void(std::vector<TensorSlab>&)>& fill) {
  if (!base_) user_error("a frozen base is loaded only with [lora] rank > 0");
  base_->load(fill);
}

void ParallelEngine::loaded_slabs() {
  staging_.write_back(be_);  // device state: staged values back
  be_.synchronize();
  path_->after_load();
}

}  // namespace llmpi
