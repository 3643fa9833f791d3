// This rank's pipeline stage: its chunk models and how a step runs them (see
// pipeline_stage.h).
#include "parallel/pipeline_stage.h"

#include "parallel/lora_base.h"

namespace llmpi {

PipelineStage::PipelineStage(const PathContext& ctx, std::vector<StageRange> chunks,
                             ParamStore& store)
    : ctx_(ctx), store_(store), chunks_(std::move(chunks)), batch_(ctx.be, ctx.B * ctx.T) {
  const Layout& lay = ctx.topo.layout();
  acts_.resize(chunks_.size());
  ws_.reserve(chunks_.size());  // pipe_ points into it
  for (size_t j = 0; j < chunks_.size(); ++j) {
    models_.push_back(make_stage_model(ctx.cfg, chunks_[j], ctx.base, store_));
    models_.back()->set_block_observer(ctx.blocks);
    if (ctx.tp) ctx.tp->install(*models_.back());
    if (lay.pp == 1) acts_[j].push_back(models_.back()->alloc_activations(ctx.be, ctx.B, ctx.T));
    ws_.push_back(models_.back()->alloc_workspace(ctx.be, ctx.B, ctx.T));
    pipe_.push_back({models_[j].get(), &store_, &acts_[j], &ws_[j]});
  }
  if (lay.pp > 1)
    schedule_ = std::make_unique<PipelineSchedule>(ctx.groups.pp(), ctx.cfg.parallel,
                                                   ctx.topo.pp_rank(), ctx.B, ctx.T);
  else
    graphs_ = std::make_unique<StepGraphs>(ctx.be);
}

void PipelineStage::set_adapters_enabled(bool on) {
  // Recorded passes ran the adapters as they were: a switch drops them.
  if (graphs_ && on != models_[0]->adapters_enabled()) graphs_->reset();
  for (auto& m : models_) m->set_adapters_enabled(on);
}

double PipelineStage::train(const HostBatch& batch, double scale) {
  Backend& be = ctx_.be;
  const std::span<const int32_t> ids = batch.ids, targets = batch.targets;
  double sum = 0.0;
  if (schedule_) {
    const int64_t N = ctx_.B * ctx_.T;
    const LossSum l = schedule_->run(
        be, pipe_,
        [&](int64_t m, const Tensor& i, const Tensor& t) {
          be.copy(i, host_i32(ids.data() + m * N, N));
          be.copy(t, host_i32(targets.data() + m * N, N));
        },
        LossScale{scale, batch.token_scale}, batch.doc_start);
    sum = l.sum;  // this rank's head chunk only; summed over pp by the engine
    ctx_.clock.lap(StepPhase::schedule);
  } else {
    const Transformer& model = *models_[0];
    Activations& a = acts_[0][0];
    // Recorded passes read fixed buffers and one uniform scale (parallel/step_graphs.h).
    const bool replayable = ctx_.graphs && batch.doc_start.empty() && batch.token_scale.empty() &&
                            !(ctx_.blocks && ctx_.blocks->observing());
    for (int64_t m = 0; m < ctx_.M; ++m) {
      batch_.load(be, batch, m);
      set_documents(be, model, a, batch_.docs);
      const LossScale s = LossScale{scale, batch.token_scale}.of_micro(m, ctx_.B * ctx_.T);
      graphs_->forward(replayable, [&] { model.forward(be, a, batch_.ids); });
      sum += model.loss(be, a, batch_.targets).sum;
      ctx_.clock.lap(StepPhase::forward);
      graphs_->backward(replayable, s.uniform, [&] {
        model.backward_loss(be, a, ws_[0], batch_.ids, batch_.targets, s);
      });
      ctx_.clock.lap(StepPhase::backward);
    }
  }
  if (ctx_.tp) ctx_.tp->sync_grads(be, store_);
  // (A frozen base's tied embedding has no gradient to sum.)
  if (ctx_.topo.layout().pp > 1 && ctx_.cfg.model.tied_embeddings && !ctx_.base &&
      ctx_.topo.in_embedding_group())
    sync_tied_embedding(be, ctx_.groups.embedding(), pipe_);
  return sum;
}

LossSum PipelineStage::evaluate(const HostBatch& batch) {
  Backend& be = ctx_.be;
  const std::span<const int32_t> ids = batch.ids, targets = batch.targets;
  if (schedule_) {
    const int64_t N = ctx_.B * ctx_.T;
    return schedule_->forward_only(
        be, pipe_,
        [&](int64_t, const Tensor& i, const Tensor& t) {
          be.copy(i, host_i32(ids.data(), N));
          be.copy(t, host_i32(targets.data(), N));
        },
        1, batch.doc_start, batch.token_losses);
  }
  batch_.load(be, batch, 0);
  set_documents(be, *models_[0], acts_[0][0], batch_.docs);
  models_[0]->forward(be, acts_[0][0], batch_.ids);
  return models_[0]->loss(be, acts_[0][0], batch_.targets, batch.token_losses);
}

}  // namespace llmpi
