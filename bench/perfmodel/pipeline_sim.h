#pragma once
// The time of a pipeline's forward and backward passes, by replaying the engine's own
// schedule (parallel/pipeline_order.h: 1F1B, or interleaved 1F1B with v chunks per rank) as
// a discrete-event simulation: every rank runs its passes in its order; the forward of global
// chunk g waits for chunk g-1's forward of the same micro-batch plus one message, the
// backward of g for chunk g+1's backward plus one message. No pass is preempted.
// Closed forms for uniform chunks (each forward f, backward b, free messages) — what the
// simulation must reproduce (tests/unit/test_perfmodel.cpp):
//   1F1B         makespan = (m + p - 1)·(f + b)             bubble fraction (p-1)/m
//   interleaved  makespan = (m + (p - 1)/v)·v·(f + b)       bubble fraction (p-1)/(v·m)
// where f, b are per chunk and a rank does v chunks per micro-batch (Narayanan et al. 2021).
#include <cstdint>
#include <vector>

namespace llmpi::perf {

struct PipeTimes {
  // fwd[r][j], bwd[r][j]: seconds of one micro-batch's forward/backward of rank r's local
  // chunk j (global chunk r + j·pp).
  std::vector<std::vector<double>> fwd, bwd;
  double message_s = 0;  // one activation or gradient message between neighbouring chunks
};

struct PipeResult {
  double makespan = 0;          // first pass start → last pass end, over all ranks
  std::vector<double> finish;   // per rank: when its last pass ends
  std::vector<double> busy;     // per rank: Σ of its pass times
};

PipeResult simulate_pipeline(int64_t pp, int64_t virtual_stages, int64_t micro_batches,
                             const PipeTimes& t);

double bubble_fraction_1f1b(int64_t pp, int64_t micro_batches);
double bubble_fraction_interleaved(int64_t pp, int64_t virtual_stages, int64_t micro_batches);

}  // namespace llmpi::perf
