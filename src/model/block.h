#pragma once
// Pre-norm residual block (both architectures):
//   mid = x + Attention(Norm_attn(x));   out = mid + Mlp(Norm_mlp(mid))      x, mid, out: [N, C]
// Saves, per micro-batch (BlockActs): both norms' statistics, their outputs h1, h2 [N, C],
// the attention and MLP activations, mid and out. The block's input x is kept by the caller
// (it is the previous block's `out`, or the embedding output).
// Backward runs in place on the residual gradient: d(out) in, d(x) out.
#include "backend/backend.h"
#include "model/attention.h"
#include "model/mlp.h"
#include "model/model_config.h"
#include "model/norm.h"
#include "model/param_store.h"

namespace llmpi {

struct BlockActs {
  int64_t B = 0, T = 0;
  NormActs attn_norm;
  Buffer h1;  // [N, C] attn_norm(x)
  AttentionActs attn;
  Buffer mid;  // [N, C] x + attention
  NormActs mlp_norm;
  Buffer h2;  // [N, C] mlp_norm(mid)
  MlpActs mlp;
  Buffer out;  // [N, C] mid + mlp: the block output (next block's input)
};

struct BlockScratch {  // backward temporaries, shared by every block and micro-batch
  Buffer dh;    // [N, C] gradient w.r.t. a norm output
  Buffer dtmp;  // [N, C] gradient w.r.t. a norm input, added to the residual gradient
  AttentionScratch attn;
  MlpScratch mlp;
};

struct Block {
  Norm attn_norm;
  Attention attn;
  Norm mlp_norm;
  Mlp mlp;

  static Block bind(const ModelConfig& cfg, const ParamStore& store, int64_t layer);

  BlockActs alloc_acts(Backend& be, int64_t B, int64_t T, DType compute) const;
  BlockScratch alloc_scratch(Backend& be, int64_t B, int64_t T, DType compute) const;

  // x: [N, C] → a.out.
  void forward(Backend& be, BlockActs& a, const Tensor& x) const;
  // dres: [N, C], on entry d(loss)/d(out), on return d(loss)/d(x). Parameter gradients
  // accumulated.
  void backward(Backend& be, const BlockActs& a, BlockScratch& s, const Tensor& dres,
                const Tensor& x) const;
};

}  // namespace llmpi
