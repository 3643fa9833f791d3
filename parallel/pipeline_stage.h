#pragma once
// PipelineStage: this rank's model chunks — the pipeline split's output: one chunk, or
// virtual_stages chunks with pp > 1 — each a Transformer bound to one shared ParamStore
// (tensor-parallel hooks installed before its activations are allocated), and how a step
// runs them: the pipeline schedule (pp > 1, parallel/pipeline.h: 1F1B or interleaved;
// activations and their gradients move over the pp group) or, with pp = 1, each
// micro-batch's forward, loss and backward in turn. After the backward of every
// micro-batch, the partial gradients of tp-replicated parameters are summed over the tp
// group and, with pp > 1 and tied embeddings, the two copies of embed.tokens over the
// embedding group — so the store holds this rank's complete gradients, before any dp
// reduction (the ZeRO path's). Each model reports its block outputs to the context's
// observer; a step laps the context's clock after each forward and backward phase. With
// ctx.graphs (pp = 1), the passes are replayed from recordings where they can be
// (parallel/step_graphs.h).
#include <memory>
#include <span>
#include <vector>

#include "parallel/pipeline.h"
#include "parallel/step_graphs.h"
#include "parallel/zero_path.h"

namespace llmpi {

class PipelineStage {
 public:
  // chunks: this rank's (pipeline_chunks); store: their parameters (rank_params, tp-local).
  PipelineStage(const PathContext& ctx, std::vector<StageRange> chunks, ParamStore& store);
  PipelineStage(const PipelineStage&) = delete;
  PipelineStage& operator=(const PipelineStage&) = delete;

  // Forward and backward of the step's M micro-batches (host i32 [M·B·T]); gradients
  // ACCUMULATE into the store. Returns this rank's loss sum (pp > 1: the head chunk's).
  // Document starts (batch.doc_start) only with pp = 1.
  double train(const HostBatch& batch, double scale);
  // Forward only of one micro-batch (host i32 [B·T]); the loss of this rank's head chunk.
  LossSum evaluate(const HostBatch& batch);
  // The clock phase of the backward passes: backward, or with pp > 1 the interleaved schedule.
  StepPhase backward_phase() const { return schedule_ ? StepPhase::schedule : StepPhase::backward; }
  // Installs the listener of every chunk's gradient writes (not owned; nullptr: none).
  void set_grad_listener(GradListener* l) {
    for (auto& m : models_) m->set_grad_listener(l);
  }
  void set_adapters_enabled(bool on);
  // The pp = 1 stage's passes, recorded where ctx.graphs allows; null with pp > 1.
  const StepGraphs* graphs() const { return graphs_.get(); }

 private:
  const PathContext& ctx_;
  ParamStore& store_;
  std::vector<StageRange> chunks_;
  std::vector<std::unique_ptr<Transformer>> models_;
  std::vector<std::vector<Activations>> acts_;  // per chunk: its slot pool (pp = 1: one slot)
  std::vector<Workspace> ws_;
  std::vector<PipelineChunk> pipe_;             // points into models_, acts_, ws_
  std::unique_ptr<PipelineSchedule> schedule_;  // pp > 1 only
  MicroBatch batch_;                            // pp = 1
  std::unique_ptr<StepGraphs> graphs_;          // pp = 1
};

}  // namespace llmpi
