#pragma once
// Pipeline order: the sequence of forward and backward passes one pp rank runs in a step,
// as a pure function (no MPI, no model), so that its properties are tested on their own.
//
// 1F1B (PipeDream-Flush, Narayanan et al. 2021), pp stages, m micro-batches, rank r:
//   warm-up   min(pp - r - 1, m) forwards
//   steady    (forward of the next micro-batch, backward of the oldest) while forwards remain
//   cool-down the remaining backwards
// so rank r holds at most pp - r micro-batches' activations at once (≤ pp), against m for
// GPipe's all-forwards-then-all-backwards.
// Interleaved 1F1B (Megatron-LM), v virtual stages (chunks) per rank, m % pp == 0: the
// m·v forward passes of a rank are ordered in groups of pp micro-batches, cycling over the
// chunks: forward k runs chunk (k / pp) % v on micro-batch (k / (pp·v))·pp + k % pp;
// backward k runs chunk v - 1 - (k / pp) % v on the same micro-batch formula. Warm-up is
// (pp - r - 1)·2 + (v - 1)·pp forwards (capped at m·v), then 1F1B, then cool-down. With
// v = 1 both formulas reduce to plain 1F1B.
#include <cstdint>
#include <string>
#include <vector>

namespace llmpi {

enum class PipeOp : uint8_t { forward, backward };

struct PipelineStep {
  PipeOp op = PipeOp::forward;
  int64_t micro = 0;  // micro-batch index in [0, m)
  int64_t chunk = 0;  // LOCAL chunk index in [0, v); global chunk = rank + chunk · pp

  bool operator==(const PipelineStep&) const = default;
};

// The passes rank `pp_rank` of `pp` runs for `micro_batches` micro-batches and
// `virtual_stages` chunks per rank (1 = plain 1F1B). Every (micro, chunk) appears once as
// a forward and once as a backward. LLMPI_CHECKs micro_batches % pp == 0 when
// virtual_stages > 1 (the config guarantees it).
std::vector<PipelineStep> pipeline_order(int64_t pp, int64_t pp_rank, int64_t micro_batches,
                                         int64_t virtual_stages);

// Number of forward passes before the first backward of rank `pp_rank`.
int64_t pipeline_warmup(int64_t pp, int64_t pp_rank, int64_t micro_batches, int64_t virtual_stages);

// The most (micro, chunk) activations alive at once along `order` (a forward allocates one,
// its backward frees it).
int64_t max_in_flight(const std::vector<PipelineStep>& order);

// "F0.1 F1.1 B0.1 …" (F/B, micro.chunk), for test messages and debugging.
std::string order_str(const std::vector<PipelineStep>& order);

}  // namespace llmpi
