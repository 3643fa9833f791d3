#pragma once
// Tensor parallelism (Megatron-LM) and sequence parallelism over the tp group, applied to a
// model from outside: shard_params_tp cuts each parameter into this rank's slab, and
// TensorParallel implements the model's Regions hooks (model/regions.h) with the
// forward/backward pairs of parallel/tp_comm.h.
//   column-parallel (rows of W split): attn q/k/v (whole heads), mlp up (gate|up), head
//   row-parallel (columns of W split): attn out, mlp down; the bias is added by tp rank 0
//                before the reduction (so once), its gradient is whole on every rank
//   vocab-parallel: embed.tokens / head.weight rows (parallel/vocab_parallel.h)
//   GQA with Hkv < tp (tp % Hkv == 0): rank r holds kv head r / (tp / Hkv), which all its
//                query heads read; tp/Hkv ranks share each kv slab, their partial gradients
//                are summed in sync_grads, and all but the first are marked replica
//   replicated: norm gains/biases, learned positions, row-parallel biases (replica on r > 0)
// Sequence parallelism: the token-row region (embedding output, norms, residual) keeps rows
// [r·N/p, (r+1)·N/p); all-gather before column-parallel maps, reduce-scatter after
// row-parallel ones. Parameters used there (norms, positions) then get partial gradients,
// which sync_grads all-reduces.
#include <cstdint>
#include <vector>

#include "backend/backend.h"
#include "model/model_config.h"
#include "model/param_store.h"
#include "model/regions.h"
#include "model/transformer.h"
#include "parallel/collectives.h"

namespace llmpi {

// The install's check of the layout rules it can see (config/layout_rules.h: tp against the
// heads, kv heads, d_ff and vocabulary; sequence parallelism against tp and the `rows` =
// batch_size · seq_len token rows of a micro-batch). Throws UserError naming the model.*
// keys. shard_params_tp runs it without sequence parallelism; the engine with it.
void check_tensor_parallel(const ModelConfig& cfg, int tp_size, bool sequence_parallel,
                           int64_t rows);

// This rank's slabs of `full` (transformer_params of a stage): local_shape and local_start
// set, replica = true where another tp rank holds an identical copy. Throws UserError (naming
// the model.* keys) when the model cannot be split over tp_size ranks.
std::vector<ParamInfo> shard_params_tp(const ModelConfig& cfg, std::vector<ParamInfo> full,
                                       int tp_size, int tp_rank);

// How tensor parallelism treats a parameter (by its name).
enum class TpSplit : uint8_t {
  vocab_rows,      // embed.tokens, head.weight: vocab_range rows
  out_rows,        // column-parallel weight/bias: dim 0 split evenly (heads, MLP hidden)
  in_cols,         // row-parallel weight: dim 1 split evenly
  kv_rows,         // k/v weight/bias: whole kv heads, replicated when Hkv < tp
  row_region,      // norm gains/biases, learned positions: replicated, used on token rows
  output_bias,     // row-parallel bias: replicated, whole gradient on every rank
};
TpSplit tp_split_of(const std::string& name);

class TensorParallel : public Regions {
 public:
  // tp: the tensor-parallel group (Topology::tp()). Both must outlive this object.
  TensorParallel(Collectives& tp, bool sequence_parallel);
  TensorParallel(const TensorParallel&) = delete;
  TensorParallel& operator=(const TensorParallel&) = delete;

  int size() const { return tp_.size(); }
  int rank() const { return tp_.rank(); }
  bool sequence_parallel() const { return sp_; }

  // The model then runs tp-sharded (its store must hold shard_params_tp slabs). Call before
  // allocating its activations. The model keeps a pointer to this object.
  void install(Transformer& model);

  // After backward (all micro-batches), before the optimizer: sums the partial gradients of
  // tp-replicated parameters over the ranks that share them — norm gains/biases and learned
  // positions under sequence parallelism, shared kv slabs when Hkv < tp. One all-reduce.
  void sync_grads(Backend& be, ParamStore& store);
  // Whether sync_grads sums parameter q's gradient (the rule above, in one place).
  bool syncs_grad(const ParamInfo& q) const;

  // ---- Regions -------------------------------------------------------------------------
  int64_t local_rows(int64_t n) const override;
  int64_t first_local_row(int64_t n) const override;
  void gather_rows(Backend& be, const Tensor& full, const Tensor& local) override;
  void reduce_input_grad(Backend& be, const Tensor& dlocal, const Tensor& dfull) override;
  void reduce_partial(Backend& be, const Tensor& local, const Tensor& partial) override;
  bool adds_output_bias() const override { return tp_.rank() == 0; }
  void combine_logsumexp(Backend& be, const Tensor& lse) override;
  void combine_picked(Backend& be, const Tensor& picked) override;

 private:
  Collectives& tp_;
  bool sp_;
};

}  // namespace llmpi
