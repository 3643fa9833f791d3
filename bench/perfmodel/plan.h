#pragma once
// Plan: one parallel layout of a training step — the knobs the performance model predicts
// for and the projection searches over — and its translation into the engine's Config, so
// that the model uses the engine's own rules: validate_layout (parallel/topology.h), the
// pipeline split and chunk parameters (parallel/pipeline_split.h), the tensor-parallel
// slabs (parallel/tensor_parallel.h) and the ZeRO shard ranges (parallel/zero_shard.h).
#include <cstdint>
#include <string>

#include "config/config.h"
#include "model/model_config.h"
#include "model/model_flops.h"  // model_flops_per_token, MFU's numerator

namespace llmpi::perf {

struct Plan {
  int64_t tp = 1, pp = 1, dp = 1;
  int zero = 0;                  // ZeRO stage 0..3
  int64_t micro_batches = 1;     // M per dp rank and step
  int64_t batch = 1;             // B: sequences per micro-batch
  int64_t seq_len = 1;           // T
  int64_t virtual_stages = 1;    // v (interleaved 1F1B when > 1)
  bool sp = false;               // sequence parallelism
  Recompute recompute = Recompute::none;

  int64_t world() const { return tp * pp * dp; }
  int64_t global_sequences() const { return batch * micro_batches * dp; }
  // The engine's ZeRO-2/3 path: just-in-time units, no pipeline (engine.h).
  bool units_path() const { return zero >= 2 && pp == 1; }
  // "tp2 pp2 dp1 z1 M4 B1 v1 sp rc=full"
  std::string str() const;
};

// The engine's Config for `model` under plan `p` (train.batch_size, seq_len, parallel.*,
// model.recompute).
Config plan_config(const ModelConfig& model, const Plan& p);

// validate_layout's problems (src/config/layout_rules.h decides them; empty when the engine
// accepts the plan), plus a sequence longer than model.max_seq_len (a config check).
std::string plan_problems(const ModelConfig& model, const Plan& p);

}  // namespace llmpi::perf
