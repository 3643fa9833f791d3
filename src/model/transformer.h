#pragma once
// Transformer: a decoder-only language model, or one pipeline stage of it (StageRange):
//   x0 = Embedding(ids)                                  first stage   [N, C], N = B·T
//   x_{l+1} = Block_l(x_l)  for l in [first_layer, end_layer)
//   logits = Norm_final(x_L) · W_headᵀ                   last stage    [N, V]
//   loss = Σ_{n: target_n >= 0} (logsumexp(logits_n) - logits_n[target_n])
// W_head is embed.tokens when the embeddings are tied. Parameters live in a ParamStore (not
// owned); the layers hold views into it. Activations of one micro-batch live in an
// Activations struct owned by the caller (a pipeline schedule keeps several in flight);
// backward temporaries live in one Workspace, reused by every micro-batch.
// Loss scaling: loss() returns the SUM of token losses and the COUNT of counted targets;
// backward_loss() takes the per-token scale (1 / counted targets of the whole global step),
// so accumulation over micro-batches and data-parallel ranks gives the global mean.
// Tensor/sequence parallelism (installed by parallel/, see model/regions.h): the store holds
// local slabs (head and MLP slices, a vocab slab of the embedding/head), which the layers
// bind as they find them; the Regions hooks move activations between the token-row region
// ([n, C], n = local_rows(B·T)) and the feature-sharded one. Logits are [N, V_local]; the
// loss is combined over ranks, so every rank of the group returns the same LossSum.
// Packed documents (core/documents.h): set_documents gives a micro-batch's document starts;
// positions (learned, or RoPE's) then restart at each document and attention is blocked across
// documents. Targets across a document boundary are the caller's to ignore (-1).
// Activation recomputation (cfg.recompute, see block.h): the blocks' dropped activations live
// in one BlockActs shared by every Activations this model allocates (all blocks, every
// micro-batch in flight); backward rebuilds a block's part of it right before the block's
// backward, so micro-batches may interleave freely (pipeline schedules).
// LoRA (model/lora_targets.h): with adapters, `store` holds the frozen base (StoreRole::frozen:
// no gradients but the vectors' sink) and the adapters' store the trainable branches beside
// the targeted maps; set_adapters_enabled(false) runs the base alone (DPO's reference model)
// until set again. The branches share one scratch per model (LoraModelScratch), like `shared`.
#include <memory>
#include <span>
#include <vector>

#include "backend/backend.h"
#include "model/block.h"
#include "model/embedding.h"
#include "model/linear.h"
#include "model/lora_linear.h"
#include "model/model_config.h"
#include "model/norm.h"
#include "model/param_layout.h"
#include "model/param_store.h"
#include "model/regions.h"

namespace llmpi {

struct LossSum {
  double sum = 0.0;   // Σ of per-token cross-entropy over counted targets (nats)
  int64_t count = 0;  // number of targets >= 0
};

// The per-token scale of backward_loss: d(loss)/d(cross-entropy of token n). `uniform` for
// every token (1 / counted targets of the global step), or — when per_token is given (host,
// one entry per token of the step's micro-batches, M·B·T) — per_token[m·B·T + n] for token n
// of micro-batch m (DPO: train/dpo_objective.h). of_micro(m, N) is micro-batch m's part.
struct LossScale {
  double uniform = 0.0;
  std::span<const double> per_token;
  LossScale(double s = 0.0) : uniform(s) {}  // NOLINT: a plain number is a uniform scale
  LossScale(double s, std::span<const double> t) : uniform(s), per_token(t) {}
  LossScale of_micro(int64_t m, int64_t N) const {
    return per_token.empty() ? *this : LossScale{uniform, per_token.subspan(size_t(m * N), size_t(N))};
  }
};

// One micro-batch's activations kept for backward. Allocated once for (B, T), reused.
// N = B·T token rows; n = the rows of the token-row region held here (N unless the regions
// shard the rows: sequence parallelism).
struct Activations {
  int64_t B = 0, T = 0;
  int64_t rows = 0;  // n
  Buffer pos;    // i32 [n], position of each local row (learned positions; first stage, gpt2):
                 // t − doc_start of the row's token
  Buffer doc_start;  // i32 [N] document starts of the micro-batch; empty: one per row
  Buffer input;  // [n, C] first block's input: the embedding output, or (non-first stage)
                 // the previous stage's output, written there by the caller before forward
  std::vector<BlockActs> blocks;  // one per layer of the stage
  NormActs final_norm;            // last stage only
  Buffer hf;      // [n, C] final_norm(last block output)
  Buffer logits;  // [N, V_local]; backward_loss overwrites it with d(loss)/d(logits)
  Buffer lse;     // [N] log-sum-exp of each logits row, whole vocabulary (statistics dtype)
  Buffer picked;  // [N] logit of the target (0 for ignored targets)
  Buffer full;    // [N, C] forward scratch for full rows; only when rows are sharded
  LoraLinearActs head_lora;  // the head's adapter (last stage, when targeted)
  std::shared_ptr<LoraModelScratch> lora;  // the model's LoRA scratch (null without adapters)
  // Recomputation: the mode `blocks` were allocated for, and (not none) the model's shared
  // block activations that their dropped buffers view. Shared, not owned: it is counted by
  // recompute_shared_bytes, once per model, not per micro-batch.
  Recompute recompute = Recompute::none;
  std::shared_ptr<BlockActs> shared;

  // The stage's output: the last block's `out` (the input when the stage has no layers).
  const Tensor& output() const { return blocks.empty() ? input.tensor() : blocks.back().out.tensor(); }
};

// Bytes of the buffers `a` owns (what one more micro-batch in flight costs on this rank);
// with recomputation, the views of the shared block activations are not counted.
int64_t activation_bytes(const Activations& a);
// Bytes of the shared block activations `a` views (0 without recomputation): paid once per
// model, whatever the number of micro-batches in flight.
int64_t recompute_shared_bytes(const Activations& a);

// Backward temporaries, one per model; sized for the largest (B, T) it serves.
struct Workspace {
  int64_t max_tokens = 0;  // B·T it was allocated for
  BlockScratch block;
  Buffer dres;       // [n, C] residual-stream gradient; after backward: d(loss)/d(input)
  Buffer dhf;        // [n, C] d(loss)/d(final norm output)
  Buffer row_scale;  // [N] per-token loss scale
  Buffer x_full, d_full;  // [N, C] backward scratch for full rows; only when rows are sharded
};

// Receives each block's output during forward (the logbook's per-layer activation RMS):
// `layer` is the global layer index, `out` the block's output rows held by this rank, [n, C].
// Only Transformer::forward reports (not the recomputation inside backward).
class BlockObserver {
 public:
  virtual ~BlockObserver() = default;
  virtual void block_output(Backend& be, int64_t layer, const Tensor& out) = 0;
  // Whether block_output does anything now: a forward recorded for replay (Backend::record)
  // must not be one that an observer measures.
  virtual bool observing() const { return true; }
};

// GradListener: told each time a backward has finished writing (accumulating) the gradients
// of one part of the model, so that their reduction can start while the backward goes on
// (parallel/grad_reducer.h). part: the global block index, or kHead (final norm and head,
// written first) or kEmbedding (written last). Called on the backend's order (a device
// backend may still be computing them: synchronize before reading).
class GradListener {
 public:
  static constexpr int64_t kHead = -2, kEmbedding = -1;
  virtual ~GradListener() = default;
  virtual void grads_written(int64_t part) = 0;
};

class Transformer {
 public:
  // Binds the layers of `range` to `store`, which must hold transformer_params(cfg, range),
  // and to the LoRA branches of `adapters` (adapter_params of the range), if any.
  Transformer(const ModelConfig& cfg, const StageRange& range, const ParamStore& store,
              const AdapterStore& adapters = {});

  const ModelConfig& config() const { return cfg_; }
  const StageRange& range() const { return range_; }
  DType dtype() const { return dtype_; }

  // Installs the region hooks (not owned; nullptr: one rank, the default). Call before
  // allocating activations and workspaces: their row counts depend on it.
  void set_regions(Regions* r);
  Regions* regions() const { return regions_; }
  // Whether the LoRA branches run (default true; no effect without adapters). Disabled, the
  // model computes the base model's forward and backward (the adapters get no gradient).
  void set_adapters_enabled(bool on);
  bool adapters_enabled() const { return adapters_on_; }
  bool has_adapters() const { return adapters_.store != nullptr; }
  // The observer of block outputs (not owned; nullptr, the default: none).
  void set_block_observer(BlockObserver* o) { observer_ = o; }
  // Installs the listener of backward's gradient writes (not owned; nullptr: none).
  void set_grad_listener(GradListener* l) { listener_ = l; }
  // Token rows of the row region held here for a micro-batch of B·T rows.
  int64_t local_rows(int64_t B, int64_t T) const;

  // shared (recomputation only): the shared block activations to view, e.g. another model's
  // `Activations::shared` when several one-layer models run in turn (ZeRO-3 units); they must
  // have this model's block shapes. Null: this model's own, allocated on first use.
  Activations alloc_activations(Backend& be, int64_t B, int64_t T,
                                std::shared_ptr<BlockActs> shared = nullptr) const;
  Workspace alloc_workspace(Backend& be, int64_t B, int64_t T) const;

  // The documents of the micro-batch(es) run next with `a`: doc_start [B·T] on the host (every
  // row's starts, whatever rows this rank holds), or empty for one document per row (the
  // state after allocation). Stays in effect for `a` until set again. Every stage needs it
  // (attention blocks documents in every layer; RoPE in every layer; learned positions in the
  // first stage).
  void set_documents(Backend& be, Activations& a, std::span<const int32_t> doc_start) const;

  // Forward of one micro-batch. ids: i32 [B·T] on the backend (read by the first stage only;
  // may be empty otherwise, in which case a.input must hold the stage's input). On the last
  // stage fills a.logits and a.lse.
  void forward(Backend& be, Activations& a, const Tensor& ids) const;

  // ---- last stage, after forward -------------------------------------------------------
  // targets: i32 [B·T] on the backend; negative targets are ignored. token_losses (optional)
  // receives the per-token cross-entropy [B·T] (0 where ignored).
  LossSum loss(Backend& be, Activations& a, const Tensor& targets,
               std::vector<double>* token_losses = nullptr) const;
  // Per-token cross-entropy [B·T] (0 where the target is ignored), for evaluation.
  std::vector<double> token_losses(Backend& be, Activations& a, const Tensor& targets) const;
  // Logits at position t of every sequence, [B, V_local] row-major, for sampling. (Causal
  // attention: they depend only on tokens 0..t, so a batch padded after t gives the same.)
  std::vector<float> logits_at(Backend& be, const Activations& a, int64_t t) const;
  // Backward from the loss: d(loss)/d(logits) = scale_n · (softmax - onehot(target)), scale
  // uniform or per token (LossScale, this micro-batch's B·T entries).
  // Accumulates parameter gradients; overwrites a.logits.
  void backward_loss(Backend& be, Activations& a, Workspace& ws, const Tensor& ids,
                     const Tensor& targets, const LossScale& scale) const;

  // ---- non-last stage ------------------------------------------------------------------
  // Backward from doutput = d(loss)/d(output) [n, C] received from the next stage.
  void backward(Backend& be, Activations& a, Workspace& ws, const Tensor& ids,
                const Tensor& doutput) const;

  // After a backward on a non-first stage: d(loss)/d(input) [n, C], to send upstream.
  Tensor input_grad(const Workspace& ws, const Activations& a) const;

 private:
  void backward_blocks(Backend& be, Activations& a, Workspace& ws, const Tensor& ids) const;
  // a.pos (when allocated) = t − doc_start for the local rows (doc_start empty: t).
  void fill_positions(Backend& be, Activations& a, std::span<const int32_t> doc_start) const;
  // The installed regions, or `whole` (the identity) when none are.
  Regions& regions_or(Regions& whole) const { return regions_ ? *regions_ : whole; }
  // Per-token losses (0 where ignored) and the targets, both read back to the host.
  void read_token_losses(Backend& be, Activations& a, const Tensor& targets,
                         std::vector<double>& losses, std::vector<int32_t>& tgt) const;

  ModelConfig cfg_;
  StageRange range_;
  DType dtype_;
  Regions* regions_ = nullptr;
  BlockObserver* observer_ = nullptr;
  GradListener* listener_ = nullptr;
  int64_t vocab_offset_ = 0;  // first vocab column of the local head slab
  Embedding embedding_;       // first stage only
  std::vector<Block> blocks_;
  Norm final_norm_;           // last stage only
  Linear head_;               // W [V, C], no bias; last stage only
  LoraLinear head_lora_;      // its adapter (empty: none)
  AdapterStore adapters_;
  bool adapters_on_ = true;
  // The LoRA scratch shared by the Activations this model allocates (as shared_ below).
  mutable std::weak_ptr<LoraModelScratch> lora_scratch_;
  mutable const Backend* lora_be_ = nullptr;
  mutable int64_t lora_rows_ = 0;
  std::shared_ptr<LoraModelScratch> lora_scratch(Backend& be, int64_t N) const;
  // The shared block activations of recomputation, handed to every Activations allocated
  // for the same (backend, B, T); weak: they live as long as some Activations does.
  mutable std::weak_ptr<BlockActs> shared_;
  mutable const Backend* shared_be_ = nullptr;
};

}  // namespace llmpi
