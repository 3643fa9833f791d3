#pragma once
// Pipeline parallelism: one training step's forward and backward passes of this rank's
// model chunks, in the 1F1B or interleaved 1F1B order (pipeline_order.h), with the
// activations between chunks moved over the pp group by non-blocking send/recv.
//
// Global chunk g (of K = pp · v) lives on pp rank g mod pp; its input comes from chunk g-1
// (rank g-1 mod pp), its output gradient from chunk g+1. Messages are the stage activations
// [rows, C] (rows = B·T, or this rank's sequence-parallel rows) and their gradients, tagged
// 2·(receiving chunk) + (0 activation | 1 gradient); per (sender, tag) they are posted in
// micro-batch order on both sides, so MPI's non-overtaking rule pairs them.
// Buffers: chunk j keeps a pool of slots, one per micro-batch in flight; a slot is its
// Activations (PipelineChunk::acts[i]) plus its token ids/targets and the two gradient
// buffers. A slot is taken when its micro-batch's input receive is posted (ahead of the
// forward, to overlap it with compute) and returned after its backward; its outstanding
// sends are completed (RAII Requests) before it is reused. No wait can form a cycle: a send
// is only waited on after its receiver has posted the matching receive (the output's
// gradient receive is posted right after the forward, before the next chunk can run).
// Tied embeddings: the last stage's copy of embed.tokens gets the head's gradient, the
// first stage's the embedding's; sync_tied_embedding sums them over the embedding group so
// both copies take the identical optimizer step.
#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "backend/backend.h"
#include "config/config.h"
#include "model/param_store.h"
#include "model/transformer.h"
#include "parallel/collectives.h"
#include "parallel/pipeline_order.h"
#include "parallel/pipeline_split.h"
#include "parallel/topology.h"

namespace llmpi {

// One model chunk of this rank (local order, as pipeline_chunks returns them). Not owned.
struct PipelineChunk {
  const Transformer* model = nullptr;
  ParamStore* store = nullptr;
  std::vector<Activations>* acts = nullptr;  // the slot pool; grown by the schedule on demand
  Workspace* ws = nullptr;
};

// Fills ids and targets (i32 [B·T] on the backend) of micro-batch `micro` of this step.
using PipelineLoad =
    std::function<void(int64_t micro, const Tensor& ids, const Tensor& targets)>;

class PipelineSchedule {
 public:
  // pp: the pipeline group (rank = pp coordinate). B, T: the micro-batch shape; activations
  // are allocated by each chunk's model for (B, T). par: pp, virtual_stages, micro_batches.
  PipelineSchedule(Collectives& pp, const ParallelSection& par, int pp_rank, int64_t B, int64_t T);
  PipelineSchedule(const PipelineSchedule&) = delete;
  PipelineSchedule& operator=(const PipelineSchedule&) = delete;
  ~PipelineSchedule();

  // Runs every forward and backward pass of this rank for one step; gradients ACCUMULATE
  // into each chunk's store (zero them before). `load` is called once per micro-batch on
  // each chunk that holds the embedding or the head (only there are ids/targets read).
  // loss_scale: the per-token scale of backward_loss (1 / counted targets of the global
  // step, or per token: LossScale). doc_start: i32 [M·B·T] the micro-batches' document
  // starts (core/documents.h), set on every chunk's activations before its forward, or
  // empty (one document per row). Returns the loss sum and count of this rank's head chunk: the step's totals on
  // the last stage, {0, 0} on every other stage — so a sum over the pp group gives the
  // totals everywhere.
  LossSum run(Backend& be, std::span<PipelineChunk> chunks, const PipelineLoad& load,
              const LossScale& loss_scale, std::span<const int32_t> doc_start = {});

  // Forward passes only (evaluation): `micro_batches` micro-batches, each through this
  // rank's chunks in global chunk order; no activations kept beyond one slot per chunk.
  // Returns the loss as run() does (totals on the last stage, {0, 0} elsewhere). Every rank
  // of the pp group calls it with the same micro_batches. doc_start as in run();
  // token_losses (micro_batches = 1 only): the head chunk's per-token losses [B·T].
  LossSum forward_only(Backend& be, std::span<PipelineChunk> chunks, const PipelineLoad& load,
                       int64_t micro_batches, std::span<const int32_t> doc_start = {},
                       std::vector<double>* token_losses = nullptr);

  const std::vector<PipelineStep>& order() const { return order_; }
  // Most micro-batch activations (over all chunks) held at once in the last run(), counting
  // slots reserved for a posted input receive. ≤ pp for 1F1B.
  int64_t max_in_flight() const { return max_in_flight_; }

 private:
  struct Slot;
  struct ChunkState;
  // Index of a free slot of chunk state s (a new one if none), now holding `micro`.
  size_t take_slot(Backend& be, PipelineChunk& c, ChunkState& s, int64_t micro);
  void post_input(Backend& be, std::span<PipelineChunk> chunks, const PipelineStep& step);
  int64_t global(int64_t local_chunk) const { return global_chunk(pp_size_, pp_rank_, local_chunk); }

  Collectives& pp_;
  int64_t pp_size_, pp_rank_, virtual_stages_, micro_batches_, B_, T_;
  std::vector<PipelineStep> order_;
  std::vector<ChunkState> state_;  // per local chunk
  int64_t in_flight_ = 0, max_in_flight_ = 0;
};

// Sums the gradient of embed.tokens over the embedding group (first and last stage of this
// rank's pipeline), so that the tied copies stay identical after the optimizer step. No-op
// without tied embeddings, with pp == 1, or on a rank outside the embedding group. Every
// member of the group must call it after backward and before clipping/optimizer.
void sync_tied_embedding(Backend& be, Collectives& embedding, std::span<PipelineChunk> chunks);
void sync_tied_embedding(Backend& be, Topology& topo, const ModelConfig& cfg,
                         std::span<PipelineChunk> chunks);

}  // namespace llmpi
