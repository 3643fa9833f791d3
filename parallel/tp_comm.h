#pragma once
// Tensor- and sequence-parallel communication as forward/backward pairs (Megatron-LM,
// Shoeybi et al. 2019; sequence parallelism: Korthikanti et al. 2022). Each pair is the
// communication of a linear map and its adjoint, so that Σ_ranks ⟨F(x), dy⟩ = Σ_ranks
// ⟨x, B(dy)⟩ — the backward is the transpose of the forward. All run on the tp group.
//
// MLP with tp ranks: Y = act(X·A), A = [A_1 … A_p] split by columns (column-parallel);
// Z = Y·B = Σ_i Y_i·B_i, B split by rows (row-parallel). Attention splits heads alike.
//   copy_to_tp      X → X on every rank      fwd identity      bwd all-reduce  (Megatron f)
//   reduce_from_tp  Z_i → Σ_i Z_i            fwd all-reduce    bwd identity    (Megatron g)
// With sequence parallelism the activations outside the two parallel linears (norms,
// residual adds, dropout) are split by token rows instead of replicated:
//   gather_from_sp        X^s_r → [X^s_0; …; X^s_{p-1}]    fwd all-gather      bwd reduce-scatter
//   reduce_scatter_to_sp  Z_i → Z^s_r = rows r of Σ_i Z_i  fwd reduce-scatter  bwd all-gather
//   scatter_to_sp         X → X^s_r (own rows)             fwd split (view)    bwd all-gather
//
// Row layout (a decision, relied on by every sequence-parallel layer): tensors are [N, …]
// with N = B·T token rows in [B, T] order (row = b·T + t). Under sequence parallelism tp
// rank r holds the CONTIGUOUS rows [r·N/p, (r+1)·N/p) of that flattened order — not a
// T-chunk of every sequence (Megatron's [T, B] layout). Thus a rank's rows are a plain view
// of the full tensor, all-gather/reduce-scatter along dim 0 are equal contiguous chunks
// and produce the full [B, T, …] order with no permutation, and a local row i is global
// row r·N/p + i (b = row / T, t = row % T) for anything that needs positions.
// Requires N % p == 0: the layout rule sp_rows (config/layout_rules.h), so seq_len itself
// need not be a multiple of p.
#include <cstdint>

#include "core/tensor.h"
#include "parallel/collectives.h"

namespace llmpi {

// Rows of the sequence-parallel chunk: n_rows / tp (checked to divide).
int64_t sp_chunk_rows(int64_t n_rows, int tp_size);
// This rank's sequence-parallel rows of a full [N, …] tensor: a view, no copy.
Tensor sp_chunk(const Tensor& full, const Collectives& tp);

// f: the input of a column-parallel layer, replicated over tp.
namespace copy_to_tp {
// y = x on every rank: nothing to do (kept so that call sites read as the math).
inline void forward(Collectives&, const Tensor&) {}
// dx ← Σ_ranks dx (in place): each rank's columns contribute a partial dX_i = dY_i·A_iᵀ.
void backward(Collectives& tp, const Tensor& dx);
}  // namespace copy_to_tp

// g: the output of a row-parallel layer, partial sums over tp.
namespace reduce_from_tp {
// y ← Σ_ranks y (in place).
void forward(Collectives& tp, const Tensor& y);
// dZ_i = dZ on every rank: nothing to do.
inline void backward(Collectives&, const Tensor&) {}
}  // namespace reduce_from_tp

// The sequence-parallel rows → the full rows, before a column-parallel layer.
namespace gather_from_sp {
// full[N, …] ← [local of rank 0; …; local of rank p-1]; local: [N/p, …].
// local may be this rank's chunk of full (in place).
void forward(Collectives& tp, const Tensor& full, const Tensor& local);
// dlocal[N/p, …] ← rows r of Σ_ranks dfull (dfull is each rank's partial gradient).
void backward(Collectives& tp, const Tensor& dlocal, const Tensor& dfull);
}  // namespace gather_from_sp

// Partial sums of a row-parallel layer → this rank's summed rows.
namespace reduce_scatter_to_sp {
// local[N/p, …] ← rows r of Σ_ranks full; full: [N, …].
void forward(Collectives& tp, const Tensor& local, const Tensor& full);
// dfull[N, …] ← [dlocal of rank 0; …]: every rank's Z_i needs the whole dZ.
void backward(Collectives& tp, const Tensor& dfull, const Tensor& dlocal);
}  // namespace reduce_scatter_to_sp

// A tensor replicated over tp → this rank's rows, entering the sequence-parallel region.
namespace scatter_to_sp {
// The own rows of full, as a view (no copy, no traffic).
inline Tensor forward(const Collectives& tp, const Tensor& full) { return sp_chunk(full, tp); }
// dfull[N, …] ← [dlocal of rank 0; …] (dlocal may be this rank's chunk of dfull).
void backward(Collectives& tp, const Tensor& dfull, const Tensor& dlocal);
}  // namespace scatter_to_sp

}  // namespace llmpi
