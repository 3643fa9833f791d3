// ZeRO 0/1 (and 2 with pp > 1) over one ParamStore (see zero_store.h).
#include "parallel/zero_store.h"

#include <algorithm>

#include "model/dtypes.h"
#include "optim/grad_clip.h"
#include "parallel/pipeline_split.h"

namespace llmpi {

ZeroStore::ZeroStore(const PathContext& ctx, std::vector<StageRange> chunks) : ctx_(ctx) {
  const Layout& lay = ctx.topo.layout();
  std::vector<ParamInfo> ps = rank_params(ctx.cfg.model, chunks);
  if (ctx.tp) ps = shard_params_tp(ctx.cfg.model, std::move(ps), lay.tp, ctx.topo.tp_rank());
  store_ = std::make_unique<ParamStore>(ctx.be, std::move(ps), ctx.master);
  store_->init(ctx.be, ctx.cfg.train.seed);
  stage_ = std::make_unique<PipelineStage>(ctx, std::move(chunks), *store_);
  const bool sharded = ctx.cfg.parallel.zero_stage >= 1 && lay.dp > 1;
  shard_ = ShardRange::of(store_->numel(), sharded ? lay.dp : 1, sharded ? ctx.topo.dp_rank() : 0);
  opt_ = std::make_unique<AdamW>(ctx.be, *store_, AdamWOptions::from(ctx.cfg.train),
                                 shard_.begin(), shard_.end());
  const int64_t f = int64_t(dtype_size(ctx.master));
  mem_.params = store_->numel() * f;
  mem_.grads = store_->numel() * f;  // ZeRO 2 with pp: the accumulation buffer is full
  mem_.optimizer = 2 * shard_.size() * f;
  if (lay.dp > 1) {
    const bool tied_pp = lay.pp > 1 && ctx.cfg.model.tied_embeddings;
    TensorParallel* tp = ctx.tp;
    const ParallelSection& par = ctx.cfg.parallel;
    reducer_ = std::make_unique<GradReducer>(
        ctx.be, ctx.groups.dp(), *store_, shard_, ctx.M, par.grad_bucket_elems, par.overlap_grad_reduce,
        [&](const ParamInfo& q) { return (tp && tp->syncs_grad(q)) || (tied_pp && q.name == "embed.tokens"); });
    stage_->set_grad_listener(reducer_.get());
  }
}

double ZeroStore::forward_backward(const HostBatch& batch, double scale) {
  store_->zero_grads(ctx_.be);
  if (reducer_) reducer_->begin_step();
  const double sum = stage_->train(batch, scale);
  ctx_.be.synchronize();
  if (reducer_) reducer_->finish();
  ctx_.clock.lap(stage_->backward_phase());  // the reduction's tail: its waits are exposed comm
  return sum;
}

OwnedState ZeroStore::owned() const {
  // The whole store, or (reduce-scattered) only the shard range. Weights are replicated over
  // dp after the update, and unsharded gradients after the all-reduce: dp rank 0 counts them.
  const bool first = ctx_.topo.dp_rank() == 0;
  OwnedState o;
  o.store = store_.get();
  o.grad_begin = sharded() ? shard_.begin() : 0;
  o.grad_end = sharded() ? shard_.end() : store_->numel();
  o.count_params = first;
  o.count_grads = sharded() || first;
  return o;
}

void ZeroStore::update(double lr, double clip_scale) {
  Backend& be = ctx_.be;
  opt_->step(be, lr, clip_scale);
  be.synchronize();
  if (!sharded()) return;
  all_gather_shard(be, ctx_.groups.dp(), shard_, store_->master(),
                   flat_view(store_->master(), shard_.begin(), shard_.size()));
  // AdamW refreshed the compute copy of its own shard only; convert the whole store (the
  // shard's 1/dp again: one cheap pass, kept as the GPU runs validated it).
  store_->refresh_compute(be);
}

LossSum ZeroStore::forward_only(const HostBatch& batch) {
  return stage_->evaluate(batch);
}

CheckpointSlabs ZeroStore::checkpoint_slabs(StateStaging& staging) {
  Backend& be = ctx_.be;
  float* master = staging.view(be, store_->master());
  float* m = staging.view(be, opt_->m());
  float* v = staging.view(be, opt_->v());
  return store_slabs(*store_, shard_, master, m, v, ctx_.topo.dp_rank() == 0);
}

void ZeroStore::after_load() { store_->refresh_compute(ctx_.be); }

}  // namespace llmpi
