#pragma once
// The step-time model: the time of one optimizer step of the engine under a Plan, from a
// one-rank OpProfile (compute) and a CommCost (collectives), following what the engine does
// today (parallel/engine.cpp; nothing overlapped) or, with Options::overlap, what issue 16's
// part 2 aims at (dp reduction under the last backward, ZeRO-3 gathers prefetched).
//   compute of a pass = Σ profile rows × work(plan shape)/work(profile shape) (op_profile.h):
//     blocks per layer × the chunk's layers, + embedding on the first chunk, + final norm,
//     head and loss on the last; recomputation adds the forward part it rebuilds (full: the
//     block forward but the MLP-down GEMM and its residual add; selective: both norms and
//     the MLP activation); tensor-parallel collectives of each block, embedding and head
//     are added to the pass (they block it).
//   pipeline = simulate_pipeline over the engine's order, one message per chunk boundary.
//   after it, per rank: tp gradient sync, tied-embedding sync, dp gradient reduction (ZeRO 0:
//     all-reduce in 2^18-element buckets; ZeRO 1: reduce of each shard to its owner), the
//     scalar all-reduces (counts, loss, squared norms), zero_grads/clip/AdamW over the
//     parameters the rank holds/owns, ZeRO-1's parameter all-gather.
//   host overhead: the profiled step's wall time not spent in ops (bookkeeping, fences), once
//     per micro-batch — it is not split by tp or pp.
//   oversubscribed host (more ranks than ModelOptions::host_cores): every part × ranks/cores.
//   ZeRO 2/3 (units path, pp = 1): per micro-batch and unit, the just-in-time store (zero
//     filled, params copied in), ZeRO-3's all-gathers (forward, and backward but the last
//     unit), the gradient accumulation and reduce-scatter; ZeRO 2's all-gather after the step.
// The result splits the step into these parts; tokens/s and MFU follow from the plan.
#include <cstdint>
#include <string>

#include "bench/perfmodel/comm_model.h"
#include "bench/perfmodel/memory_model.h"
#include "bench/perfmodel/op_profile.h"
#include "bench/perfmodel/plan.h"

namespace llmpi::perf {

struct ModelOptions {
  Device device = Device::host;  // activation dtype (bf16 on CUDA) and compute copies
  double peak_flops = 0;         // per rank, for MFU (0: no MFU)
  bool overlap = false;          // part 2's overlap of dp/ZeRO communication with compute
  // Pipeline messages staged through host memory (StagedP2p on CUDA): bytes/s of each of
  // the device→host and host→device copies; 0 = not staged (host runs, direct p2p).
  double staging_bytes_per_s = 0;
  // Host ranks time-sharing fewer cores (an oversubscribed test machine): with more ranks
  // than cores every rank stays runnable (MPI waits by polling), so each gets cores/ranks of
  // a core and the step stretches by ranks/cores. 0: a core per rank (no stretch).
  int host_cores = 0;
};

struct StepPrediction {
  double total_s = 0;
  double pipeline_s = 0;    // forward/backward of every micro-batch, bubbles and messages included
  double compute_s = 0;     // busiest rank: its passes' compute, no communication
  double tp_comm_s = 0;     // busiest rank: tensor-parallel collectives inside its passes
  double bubble_s = 0;      // pipeline_s - that rank's passes (idle + messages)
  double dp_comm_s = 0;     // exposed gradient reduction and ZeRO gathers/scatters
  double zero_copy_s = 0;   // ZeRO 2/3 unit stores (fills, copies)
  double optimizer_s = 0;   // zero_grads, squared norm, AdamW
  double other_comm_s = 0;  // scalar all-reduces, tp gradient sync, tied-embedding sync
  double overhead_s = 0;    // host time of the profiled step outside its ops, per micro-batch
  double time_share = 1;    // ranks / host cores when oversubscribed (every part above includes it)
  double tokens_per_s = 0;
  double mfu = 0;           // model FLOPs / (ranks · peak); 0 without a peak
  RankMemory memory;        // the largest rank
  std::string str() const;  // one line: total and the parts in ms
};

StepPrediction predict_step(const ModelConfig& m, const Plan& p, const OpProfile& prof,
                            const CommCost& comm, const ModelOptions& o);

// Compute of one micro-batch's passes at the plan's shape (no communication), per layer and
// for the embedding/head ends; exposed for tests and the profile report.
struct PassTimes {
  double block_fwd = 0, block_bwd = 0;  // one layer
  double recompute = 0;                 // one layer, added to its backward
  double embed_fwd = 0, embed_bwd = 0;  // includes the micro-batch's input copies
  double head_fwd = 0, head_bwd = 0;    // final norm, head, loss
};
PassTimes pass_times(const ModelConfig& m, const Plan& p, const OpProfile& prof);

}  // namespace llmpi::perf
