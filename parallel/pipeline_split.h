#pragma once
// Pipeline split: which layers each pipeline chunk holds. The model's n_layer blocks are cut
// into K = pp · virtual_stages contiguous global chunks (chunk 0 also holds the embedding,
// chunk K-1 the final norm + head + loss); rank r of the pp group holds the chunks
//     r, r + pp, r + 2·pp, …, r + (v-1)·pp        (v = virtual_stages; v = 1: chunk r only)
// which is the interleaved assignment of Megatron-LM (Narayanan et al. 2021).
// Cost model of the default (balanced) split: every block costs 1, the embedding
// `embedding_cost` and the head `head_cost` layer-equivalents (default 1 each); the split
// minimizes the most expensive chunk, every chunk holding at least one block. Among the
// optimal splits it gives EARLIER chunks fewer blocks: under 1F1B an earlier stage keeps
// more micro-batches in flight (pp - r), so lighter early stages also even out memory.
// A configured split (parallel.stage_layers: blocks per global chunk) replaces it.
#include <cstdint>
#include <span>
#include <vector>

#include "config/config.h"
#include "model/model_config.h"
#include "model/param_layout.h"
#include "model/param_store.h"

namespace llmpi {

struct SplitCost {
  double embedding = 1.0;  // layer-equivalents of the token (+ position) embedding
  double head = 1.0;       // layer-equivalents of the final norm + head + loss
};

// Blocks per chunk of the balanced split of n_layer blocks into n_chunks chunks (each >= 1).
// Throws UserError when n_chunks > n_layer. Pure.
std::vector<int64_t> balanced_stage_layers(int64_t n_layer, int64_t n_chunks, SplitCost cost = {});

// The StageRange of every global chunk for the given blocks per chunk (the embedding on chunk
// 0, the head on the last). Throws UserError naming parallel.stage_layers when the counts do
// not sum to n_layer or one is < 1.
std::vector<StageRange> split_stages(const ModelConfig& cfg, std::span<const int64_t> layers);

// Blocks per global chunk for this configuration: parallel.stage_layers when set (validated
// against pp · virtual_stages and n_layer), else the balanced split.
std::vector<int64_t> stage_layers(const ModelConfig& cfg, const ParallelSection& par);

// The global chunk index of local chunk j of pp rank r: r + j · pp.
inline int64_t global_chunk(int64_t pp, int64_t pp_rank, int64_t local_chunk) {
  return pp_rank + local_chunk * pp;
}

// The chunks pp rank `pp_rank` holds, in local order (1 chunk, or virtual_stages chunks).
std::vector<StageRange> pipeline_chunks(const ModelConfig& cfg, const ParallelSection& par,
                                        int pp_rank);

// The parameters of one chunk: transformer_params, where the head-only copy of a tied
// embedding (a chunk with the head but without the embedding) is marked replica, so that
// gradient norms and checkpoints count embed.tokens once (the first stage's copy).
std::vector<ParamInfo> chunk_params(const ModelConfig& cfg, const StageRange& range);

// The parameters of all of a rank's chunks (chunk_params of each, in local chunk order), for
// ONE ParamStore that every chunk's Transformer binds to — so that the rank's parameters,
// gradients and optimizer state are one flat range, as without pipelining (a ZeRO shard
// stays an offset range). Names are unique: each layer is in one chunk, and with pp > 1
// the embedding and head chunks are on different ranks.
std::vector<ParamInfo> rank_params(const ModelConfig& cfg, std::span<const StageRange> chunks);

}  // namespace llmpi
