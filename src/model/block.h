#pragma once
// Pre-norm residual block (both architectures):
//   mid = x + Attention(Norm_attn(x));   out = mid + Mlp(Norm_mlp(mid))      x, mid, out: [n, C]
// Saves, per micro-batch (BlockActs): both norms' statistics, their outputs h1, h2 [n, C],
// the attention and MLP activations, mid and out. The block's input x is kept by the caller
// (it is the previous block's `out`, or the embedding output).
// Backward runs in place on the residual gradient: d(out) in, d(x) out.
// Regions (model/regions.h): norms and residual adds form the token-row region ([n, C],
// n = local_rows(N), N = B·T); attention and MLP run on full rows [N, ·]. Crossing points:
// h1, h2 are gathered to full rows before the column-parallel maps; the partial outputs of
// the row-parallel maps are reduced into mid / out. When rows are sharded, the full-row
// tensors live in caller-provided [N, C] scratch (one forward buffer, two backward ones);
// backward gathers h1, h2 again rather than saving them at full size.
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

struct BlockScratch {  // backward temporaries, shared by every block and micro-batch
  Buffer dh;    // [n, C] gradient w.r.t. a norm output
  Buffer dtmp;  // [n, C] gradient w.r.t. a norm input, added to the residual gradient
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
  void forward(Backend& be, Regions& r, BlockActs& a, const Tensor& x, const Tensor& full) const;
  // dres: [n, C], on entry d(loss)/d(out), on return d(loss)/d(x). Parameter gradients
  // accumulated. x_full, d_full: [N, C] scratch, needed only when r shards the rows.
  void backward(Backend& be, Regions& r, const BlockActs& a, BlockScratch& s, const Tensor& dres,
                const Tensor& x, const Tensor& x_full, const Tensor& d_full) const;

  // One rank, every region whole.
  void forward(Backend& be, BlockActs& a, const Tensor& x) const;
  void backward(Backend& be, const BlockActs& a, BlockScratch& s, const Tensor& dres,
                const Tensor& x) const;
};

}  // namespace llmpi
