#pragma once
// Regions: the hook points where a model's activations cross between its two kinds of region.
//   token-row region  embedding output, norms, residual adds: [n, C] rows, n = local_rows(N)
//   feature region    attention heads, MLP hidden units, vocab columns: [N, local features]
// A column-parallel map (qkv, MLP up, head) reads the FULL rows of its input; a row-parallel
// map (attention out, MLP down, the vocab-sharded embedding lookup) writes PARTIAL sums over
// full rows. The hooks move tensors across the boundary; the model code calls them at fixed
// points and knows nothing of who implements them. This base class is the identity: one
// rank, every region whole. parallel/tensor_parallel.h implements it with collectives
// (tensor parallelism: partial sums reduced; with sequence parallelism the row region holds
// a contiguous chunk of the rows). Every hook is linear; each pair is a map and its adjoint.
// Install before allocating activations (Transformer::set_regions): row counts depend on it.
#include <cstdint>

#include "backend/backend.h"
#include "core/tensor.h"

namespace llmpi {

class Regions {
 public:
  virtual ~Regions() = default;

  // Token rows of the row region held here, of n rows in [B, T] order, and the first of them
  // (its global row index).
  virtual int64_t local_rows(int64_t n) const { return n; }
  virtual int64_t first_local_row(int64_t n) const {
    (void)n;
    return 0;
  }
  bool rows_sharded(int64_t n) const { return local_rows(n) != n; }

  // Forward into the feature region (input of a column-parallel map), and backward out of a
  // row-parallel map: full[N, ·] ← the rows of every rank. `full` is `local` itself when the
  // rows are not sharded (then nothing moves).
  virtual void gather_rows(Backend&, const Tensor& full, const Tensor& local) {
    (void)full, (void)local;
  }
  // Adjoint of gather_rows (backward of the input of a column-parallel map): dlocal ← own rows
  // of the sum over ranks of each rank's partial dfull[N, ·]. In place when dlocal is dfull.
  virtual void reduce_input_grad(Backend&, const Tensor& dlocal, const Tensor& dfull) {
    (void)dlocal, (void)dfull;
  }
  // Forward out of a row-parallel map: local ← own rows of the sum over ranks of each rank's
  // partial[N, ·]. In place when local is partial. (Its backward is gather_rows.)
  virtual void reduce_partial(Backend&, const Tensor& local, const Tensor& partial) {
    (void)local, (void)partial;
  }
  // Whether this rank adds the bias of a row-parallel map to its partial sum; exactly one
  // rank of the group does, so the bias enters the reduced sum once.
  virtual bool adds_output_bias() const { return true; }

  // Loss over vocab-sharded logits. lse[N]: each rank's log-sum-exp over its vocab columns
  // → log Σ_ranks exp(lse_rank) (the log-sum-exp over the whole vocabulary), in place.
  virtual void combine_logsumexp(Backend&, const Tensor& lse) { (void)lse; }
  // picked[N]: the target logit where the target is in this rank's columns, else 0 → the
  // sum over ranks (the target logit), in place.
  virtual void combine_picked(Backend&, const Tensor& picked) { (void)picked; }
};

// The full-row [N, ·] tensor a row-region tensor `local` [n, ·] crosses into: a view of the
// caller's `scratch` when the rows are sharded, else `local` itself (the hooks then work in
// place).
inline Tensor full_rows(bool sharded, const Tensor& scratch, const Tensor& local, int64_t N) {
  if (!sharded) return local;
  LLMPI_CHECK(scratch.numel() >= N * local.dim(1), "full-row scratch of ", scratch.numel(),
              " elements for ", N, " rows of ", local.dim(1));
  return scratch.slice(0, Shape{N, local.dim(1)});
}

}  // namespace llmpi
