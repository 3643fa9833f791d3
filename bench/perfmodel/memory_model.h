#pragma once
// Memory of one rank under a Plan, in bytes, by the engine's own arithmetic:
//   parameters, gradients, AdamW moments (f32 master): the rank's parameters from the
//     pipeline split and tensor-parallel slabs (pipeline_chunks, rank_params,
//     shard_params_tp), sharded by ZeRO as engine.h describes — the numbers of the start-up
//     memory table (EngineMemory) —, plus the bf16 compute copy on CUDA;
//   transient: the ZeRO-2/3 units path's just-in-time unit (its store, gathered group,
//     gradient accumulation);
//   activations: per micro-batch and chunk, the block buffers the recompute mode keeps
//     (model/block.h's block_keeps) and the chunk's input, head and loss buffers
//     (model/transformer.h), times the micro-batches the pipeline order keeps in flight per
//     chunk (+1 slot for an input receive posted ahead); plus one block's shared buffers per
//     chunk under recomputation;
//   workspace: one chunk's backward scratch per chunk.
// Activations are in the compute dtype (bf16 on CUDA, f32 on the host), statistics in f32.
// Not counted: CUDA context, library workspaces, NCCL buffers, allocator slack — the caller
// adds a reserve (docs/scaling.md says which).
#include <cstdint>
#include <span>
#include <vector>

#include "model/param_layout.h"

#include "bench/perfmodel/plan.h"
#include "core/tensor.h"

namespace llmpi::perf {

struct RankMemory {
  double params = 0, grads = 0, optimizer = 0;  // EngineMemory's three
  double compute_copy = 0;                      // bf16 weights (CUDA, one-store path)
  double transient = 0;                         // ZeRO-2/3 unit peak
  double activations = 0, workspace = 0;
  int64_t rank_params = 0;  // parameters of the rank's (tp-sharded) chunks, before ZeRO
  double total() const {
    return params + grads + optimizer + compute_copy + transient + activations + workspace;
  }
};

// Parameters of a rank's chunks after tensor parallelism (tp rank 0): Σ over chunks of
// layers × one layer's slab + the embedding / head where the chunk has them — the numel of
// rank_params + shard_params_tp, counted from three small parameter lists.
int64_t chunk_params_local(const ModelConfig& m, const Plan& p, std::span<const StageRange> chunks);

// The ZeRO-2/3 units of the engine's units path (pp = 1): unit k = layer k (with the
// embedding on unit 0, the head on unit L-1), its tp-local parameters `unit[k]`, the group it
// owns `group[k]` (its parameters not owned by an earlier unit; a tied head belongs to unit
// 0) and the groups it reads.
struct UnitSizes {
  std::vector<int64_t> unit, group;
  std::vector<std::vector<int64_t>> reads;
};
UnitSizes unit_sizes(const ModelConfig& m, const Plan& p);

// Rank (tp 0, dp dp-1 — the largest ZeRO shard —, pipeline rank pp_rank).
RankMemory rank_memory(const ModelConfig& m, const Plan& p, Device dev, int64_t pp_rank);
// The largest total over the pipeline ranks.
RankMemory peak_rank_memory(const ModelConfig& m, const Plan& p, Device dev);

// Bytes of one micro-batch's activations of a chunk (layers [first, end), with embedding /
// head as flagged), and of its workspace, as the model allocates them.
double chunk_activation_bytes(const ModelConfig& m, const Plan& p, Device dev, int64_t layers,
                              bool embedding, bool head);
double chunk_shared_bytes(const ModelConfig& m, const Plan& p, Device dev);
double chunk_workspace_bytes(const ModelConfig& m, const Plan& p, Device dev, int64_t layers,
                             bool head);

}  // namespace llmpi::perf
