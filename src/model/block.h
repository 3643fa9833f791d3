#pragma once
// Pre-norm residual block (both architectures):
//   mid = x + Attention(Norm_attn(x));   out = mid + Mlp(Norm_mlp(mid))      x, mid, out: [n, C]
// Saves, per micro-batch (BlockActs): both norms' statistics, their outputs h1, h2 [n, C],
// the attention and MLP activations, mid and out. The block's input x is kept by the caller
// (it is the previous block's `out`, or the embedding output).
// Backward runs in place on the residual gradient: d(out) in, d(x) out.
// Residual adds are fused into the norms that read them (Norm::forward_add / backward_add):
// mid = x + attention is formed by mlp_norm's forward; out = mid + mlp may be left open
// (`leave_open`) for the next consumer of out — the next block's attn_norm, or the final norm
// — which completes it in place as its `pending` residual. Backward adds each norm's input
// gradient into the residual gradient inside the norm's backward.
// Regions (model/regions.h): norms and residual adds form the token-row region ([n, C],
// n = local_rows(N), N = B·T); attention and MLP run on full rows [N, ·]. Crossing points:
// h1, h2 are gathered to full rows before the column-parallel maps; the partial outputs of
// the row-parallel maps are reduced into mid / out. When rows are sharded, the full-row
// tensors live in caller-provided [N, C] scratch (one forward buffer, two backward ones);
// backward gathers h1, h2 again rather than saving them at full size.
// Activation recomputation (Recompute, docs/model.md): a mode keeps some of BlockActs per
// micro-batch (block_keeps); the rest are non-owning views of one BlockActs shared by every
// block and micro-batch of a model, overwritten by each forward and rebuilt by recompute()
// right before the block's backward.
#include <array>
#include <cstddef>

#include "backend/backend.h"
#include "model/attention.h"
#include "model/mlp.h"
#include "model/model_config.h"
#include "model/norm.h"
#include "model/param_store.h"
#include "model/regions.h"

namespace llmpi {

struct BlockActs {
  int64_t B = 0, T = 0;
  int64_t rows = 0;  // n: token rows of the row region held here (B·T unless sharded)
  NormActs attn_norm;
  Buffer h1;  // [n, C] attn_norm(x)
  AttentionActs attn;
  Buffer mid;  // [n, C] x + attention
  NormActs mlp_norm;
  Buffer h2;  // [n, C] mlp_norm(mid)
  MlpActs mlp;
  Buffer out;  // [n, C] mid + mlp: the block output (next block's input)
};

// Every buffer of a BlockActs, in a fixed order (the index block_keeps takes):
//   0 attn_norm.mean  1 attn_norm.rstd  2 h1  3 attn.qkv  4 attn.out  5 attn.lse  6 mid
//   7 mlp_norm.mean   8 mlp_norm.rstd   9 h2  10 mlp.pre  11 mlp.act  12 out
// (mean is empty for RMSNorm.)
constexpr size_t kBlockBuffers = 13;
std::array<Buffer*, kBlockBuffers> block_buffers(BlockActs& a);
std::array<const Buffer*, kBlockBuffers> block_buffers(const BlockActs& a);
// Whether `mode` keeps buffer i of block_buffers per micro-batch:
//   none       all of them
//   selective  qkv, attn.out, attn.lse, mid, mlp.pre, out (the GEMM and attention outputs)
//   full       out (the next block's input; the block's own input is the previous one's out)
bool block_keeps(Recompute mode, size_t i);

struct BlockScratch {  // backward temporaries, shared by every block and micro-batch
  Buffer dh;    // [n, C] gradient w.r.t. a norm output
  AttentionScratch attn;
  MlpScratch mlp;
};

struct Block {
  Norm attn_norm;
  Attention attn;
  Norm mlp_norm;
  Mlp mlp;

  static Block bind(const ModelConfig& cfg, const ParamStore& store, int64_t layer);

  // rows: n, the local rows of the row region (default B·T).
  BlockActs alloc_acts(Backend& be, int64_t B, int64_t T, DType compute, int64_t rows = -1) const;
  BlockScratch alloc_scratch(Backend& be, int64_t B, int64_t T, DType compute,
                             int64_t rows = -1) const;

  // x: [n, C] → a.out. full: [N, C] scratch, needed only when r shards the rows.
  // pending ([n, C], may be empty): a residual not yet added to x — x += pending happens in
  // place inside attn_norm, so x holds the block input afterwards. leave_open: a.out is left
  // without its residual a.mid, which the caller must add (as the next norm's pending, or
  // with Backend::add); otherwise a.out is complete.
  void forward(Backend& be, Regions& r, BlockActs& a, const Tensor& x, const Tensor& full,
               const Tensor& pending = Tensor{}, bool leave_open = false) const;
  // dres: [n, C], on entry d(loss)/d(out), on return d(loss)/d(x). Parameter gradients
  // accumulated. x_full, d_full: [N, C] scratch, needed only when r shards the rows.
  void backward(Backend& be, Regions& r, const BlockActs& a, BlockScratch& s, const Tensor& dres,
                const Tensor& x, const Tensor& x_full, const Tensor& d_full) const;

  // Per micro-batch activations under `mode`: the buffers block_keeps allocated, the others
  // non-owning views of `shared` (which must outlive them and hold those buffers; it may be
  // null for none). alloc_shared gives that shared part: the buffers `mode` drops.
  BlockActs alloc_acts(Backend& be, int64_t B, int64_t T, DType compute, int64_t rows,
                       Recompute mode, BlockActs* shared) const;
  BlockActs alloc_shared(Backend& be, int64_t B, int64_t T, DType compute, int64_t rows,
                         Recompute mode) const;

  // Before backward: rebuilds in `a` what `mode` dropped, bitwise as forward made it, from the
  // block input x [n, C] and what `mode` kept. selective: both norms (outputs and statistics)
  // and the MLP activation, row-local, no region hook called. full: forward up to the MLP
  // activation (backward needs no block output, so the MLP-down GEMM is skipped); this calls
  // gather_rows / reduce_partial in the order forward does, so under tensor parallelism every
  // rank of the group issues the same collectives in the same order. full_scratch: [N, C],
  // needed only when r shards the rows. none: nothing.
  void recompute(Backend& be, Regions& r, Recompute mode, BlockActs& a, const Tensor& x,
                 const Tensor& full_scratch) const;

  // forward up to the MLP activation: everything but the MLP-down GEMM, its reduction and
  // the residual add into out. pending as forward().
  void forward_hidden(Backend& be, Regions& r, BlockActs& a, const Tensor& x,
                      const Tensor& full, const Tensor& pending = Tensor{}) const;

  // One rank, every region whole.
  void forward(Backend& be, BlockActs& a, const Tensor& x) const;
  void backward(Backend& be, const BlockActs& a, BlockScratch& s, const Tensor& dres,
                const Tensor& x) const;
};

}  // namespace llmpi
