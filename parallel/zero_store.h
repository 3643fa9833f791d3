#pragma once
// ZeroStore: ZeRO stages 0 and 1, and 2 with pp > 1, over one ParamStore that holds all of
// this rank's pipeline chunks (their tp-local slabs) packed flat, so that a dp shard is an
// offset range (ShardRange, zero_shard.h). It owns the store, the PipelineStage that runs
// the chunk models over it, the AdamW state, and the dp collectives of the stage:
//   ZeRO 0: every rank keeps full moments; the gradients are all-reduced over dp in buckets.
//   ZeRO 1: AdamW holds moments for this rank's shard only, which is all it needs reduced:
//     gradients are reduced into the shard's range of the gradient buffer on its owner (not
//     all-reduced: half the traffic), and after the update the parameters are all-gathered.
//   ZeRO 2 with pp > 1: as 1; the full gradient buffer stays the pipeline's accumulation
//     buffer (persistent, counted in the memory report).
// The dp reduction runs through a GradReducer (grad_reducer.h): buckets of the flat gradient
// buffer started during the backward as soon as final (parallel.overlap_grad_reduce), all
// complete when forward_backward returns. ZeRO 1/2 reduce each bucket's part of a shard to
// its owner in place, so the shard range of the gradient buffer holds the reduced sum.
#include <memory>
#include <vector>

#include "parallel/grad_reducer.h"
#include "parallel/pipeline_stage.h"
#include "parallel/zero_path.h"
#include "parallel/zero_shard.h"

namespace llmpi {

class ZeroStore final : public ZeroPath {
 public:
  // chunks: this rank's pipeline chunks. Allocates and initializes everything.
  ZeroStore(const PathContext& ctx, std::vector<StageRange> chunks);

  double forward_backward(const HostBatch& batch, double scale) override;
  OwnedState owned() const override;
  void update(double lr, double clip_scale) override;
  LossSum forward_only(const HostBatch& batch) override;
  const ParamStore& gathered_params() override { return *store_; }
  CheckpointSlabs checkpoint_slabs(StateStaging& staging) override;
  void after_load() override;
  AdamW& optimizer() override { return *opt_; }
  EngineMemory memory() const override { return mem_; }
  void set_adapters_enabled(bool on) override { stage_->set_adapters_enabled(on); }
  const StepGraphs* graphs() const override { return stage_->graphs(); }

 private:
  bool sharded() const { return shard_.parts > 1; }

  const PathContext& ctx_;
  std::unique_ptr<ParamStore> store_;
  std::unique_ptr<PipelineStage> stage_;
  ShardRange shard_;  // this rank's optimizer range of store_ (ZeRO 1/2 over dp; else all)
  std::unique_ptr<AdamW> opt_;
  std::unique_ptr<GradReducer> reducer_;  // dp > 1 only
  EngineMemory mem_;
};

}  // namespace llmpi
