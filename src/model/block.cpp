// Pre-norm transformer block.
#include "model/block.h"

#include "model/param_layout.h"

namespace llmpi {

Block Block::bind(const ModelConfig& cfg, const ParamStore& store, int64_t layer) {
  const std::string p = layer_prefix(layer);
  Block b;
  b.attn_norm = Norm::bind(cfg, store, p + "attn_norm");
  b.attn = Attention::bind(cfg, store, p + "attn");
  b.mlp_norm = Norm::bind(cfg, store, p + "mlp_norm");
  b.mlp = Mlp::bind(cfg, store, p + "mlp");
  return b;
}

BlockActs Block::alloc_acts(Backend& be, int64_t B, int64_t T, DType compute) const {
  const int64_t N = B * T, C = attn_norm.dim;
  BlockActs a;
  a.B = B;
  a.T = T;
  a.attn_norm = attn_norm.alloc_acts(be, N, compute);
  a.h1 = be.alloc(Shape{N, C}, compute);
  a.attn = attn.alloc_acts(be, B, T, compute);
  a.mid = be.alloc(Shape{N, C}, compute);
  a.mlp_norm = mlp_norm.alloc_acts(be, N, compute);
  a.h2 = be.alloc(Shape{N, C}, compute);
  a.mlp = mlp.alloc_acts(be, N, compute);
  a.out = be.alloc(Shape{N, C}, compute);
  return a;
}

BlockScratch Block::alloc_scratch(Backend& be, int64_t B, int64_t T, DType compute) const {
  const int64_t N = B * T, C = attn_norm.dim;
  BlockScratch s;
  s.dh = be.alloc(Shape{N, C}, compute);
  s.dtmp = be.alloc(Shape{N, C}, compute);
  s.attn = attn.alloc_scratch(be, B, T, compute);
  s.mlp = mlp.alloc_scratch(be, N, compute);
  return s;
}

void Block::forward(Backend& be, BlockActs& a, const Tensor& x) const {
  attn_norm.forward(be, a.attn_norm, a.h1, x);
  attn.forward(be, a.attn, a.mid, a.h1);
  be.add(a.mid, a.mid, x);
  mlp_norm.forward(be, a.mlp_norm, a.h2, a.mid);
  mlp.forward(be, a.mlp, a.out, a.h2);
  be.add(a.out, a.out, a.mid);
}

void Block::backward(Backend& be, const BlockActs& a, BlockScratch& s, const Tensor& dres,
                     const Tensor& x) const {
  const Shape nc{a.B * a.T, attn_norm.dim};
  const Tensor dh = s.dh.tensor().slice(0, nc);
  const Tensor dtmp = s.dtmp.tensor().slice(0, nc);
  mlp.backward(be, a.mlp, s.mlp, dh, dres, a.h2);
  mlp_norm.backward(be, a.mlp_norm, dtmp, dh, a.mid);
  be.add(dres, dres, dtmp);  // d(mid) = d(out) + d(mlp branch)/d(mid)
  attn.backward(be, a.attn, s.attn, dh, dres, a.h1);
  attn_norm.backward(be, a.attn_norm, dtmp, dh, x);
  be.add(dres, dres, dtmp);  // d(x) = d(mid) + d(attention branch)/d(x)
}

}  // namespace llmpi
