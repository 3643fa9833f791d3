// Pre-norm transformer block, with the region crossings of tensor/sequence parallelism.
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

BlockActs Block::alloc_acts(Backend& be, int64_t B, int64_t T, DType compute,
                            int64_t rows) const {
  const int64_t N = B * T, C = attn_norm.dim, n = rows < 0 ? N : rows;
  BlockActs a;
  a.B = B;
  a.T = T;
  a.rows = n;
  a.attn_norm = attn_norm.alloc_acts(be, n, compute);
  a.h1 = be.alloc(Shape{n, C}, compute);
  a.attn = attn.alloc_acts(be, B, T, compute);
  a.mid = be.alloc(Shape{n, C}, compute);
  a.mlp_norm = mlp_norm.alloc_acts(be, n, compute);
  a.h2 = be.alloc(Shape{n, C}, compute);
  a.mlp = mlp.alloc_acts(be, N, compute);
  a.out = be.alloc(Shape{n, C}, compute);
  return a;
}

std::array<Buffer*, kBlockBuffers> block_buffers(BlockActs& a) {
  return {&a.attn_norm.mean, &a.attn_norm.rstd, &a.h1,          &a.attn.qkv, &a.attn.out,
          &a.attn.lse,       &a.mid,            &a.mlp_norm.mean, &a.mlp_norm.rstd,
          &a.h2,             &a.mlp.pre,        &a.mlp.act,     &a.out};
}

std::array<const Buffer*, kBlockBuffers> block_buffers(const BlockActs& a) {
  const std::array<Buffer*, kBlockBuffers> b = block_buffers(const_cast<BlockActs&>(a));
  std::array<const Buffer*, kBlockBuffers> c{};
  for (size_t i = 0; i < kBlockBuffers; ++i) c[i] = b[i];
  return c;
}

bool block_keeps(Recompute mode, size_t i) {
  LLMPI_CHECK(i < kBlockBuffers, "block buffer ", i);
  //                                         mean  rstd  h1     qkv   out   lse   mid
  //                                         mean  rstd  h2     pre   act    out
  static constexpr bool kSelective[kBlockBuffers] = {false, false, false, true, true, true, true,
                                                     false, false, false, true, false, true};
  switch (mode) {
    case Recompute::none: return true;
    case Recompute::selective: return kSelective[i];
    case Recompute::full: return i == kBlockBuffers - 1;  // out
  }
  return true;
}

// Both allocate every buffer through the layers' alloc_acts, then release the part the other
// one holds: a transient of at most one block's activations, at allocation time only.
BlockActs Block::alloc_acts(Backend& be, int64_t B, int64_t T, DType compute, int64_t rows,
                            Recompute mode, BlockActs* shared) const {
  BlockActs a = alloc_acts(be, B, T, compute, rows);
  if (mode == Recompute::none) return a;
  LLMPI_CHECK(shared && shared->B == B && shared->T == T && shared->rows == a.rows,
              "recompute ", recompute_name(mode), ": no shared block activations for B = ", B,
              ", T = ", T, ", ", a.rows, " rows");
  const auto mine = block_buffers(a);
  const auto theirs = block_buffers(*shared);
  for (size_t i = 0; i < kBlockBuffers; ++i) {
    if (block_keeps(mode, i)) continue;
    LLMPI_CHECK(theirs[i]->tensor().shape == mine[i]->tensor().shape &&
                    theirs[i]->tensor().dtype == mine[i]->tensor().dtype,
                "shared block buffer ", i, " is ", theirs[i]->tensor().shape.str(), ", needs ",
                mine[i]->tensor().shape.str());
    *mine[i] = Buffer(nullptr, theirs[i]->tensor());  // no backend: a view, never freed
  }
  return a;
}

BlockActs Block::alloc_shared(Backend& be, int64_t B, int64_t T, DType compute, int64_t rows,
                              Recompute mode) const {
  BlockActs s = alloc_acts(be, B, T, compute, rows);
  const auto bufs = block_buffers(s);
  for (size_t i = 0; i < kBlockBuffers; ++i)
    if (block_keeps(mode, i)) *bufs[i] = Buffer{};
  return s;
}

BlockScratch Block::alloc_scratch(Backend& be, int64_t B, int64_t T, DType compute,
                                  int64_t rows) const {
  const int64_t N = B * T, C = attn_norm.dim, n = rows < 0 ? N : rows;
  BlockScratch s;
  s.dh = be.alloc(Shape{n, C}, compute);
  s.attn = attn.alloc_scratch(be, B, T, compute);
  s.mlp = mlp.alloc_scratch(be, N, compute);
  return s;
}

void Block::forward(Backend& be, Regions& r, BlockActs& a, const Tensor& x, const Tensor& full,
                    const Tensor& pending, bool leave_open) const {
  forward_hidden(be, r, a, x, full, pending);
  // The MLP output: row-parallel partial sums reduced into out, then (unless left open) the
  // residual. Under sharding zf shares `full` with h2f, which the up GEMM has already read.
  const int64_t N = a.B * a.T;
  const Tensor zf = full_rows(r.rows_sharded(N), full, a.out, N);
  mlp.down.forward(be, zf, a.mlp.act);
  r.reduce_partial(be, a.out, zf);
  if (!leave_open) be.add(a.out, a.out, a.mid);
}

void Block::forward_hidden(Backend& be, Regions& r, BlockActs& a, const Tensor& x,
                           const Tensor& full, const Tensor& pending) const {
  const int64_t N = a.B * a.T;
  const bool sharded = r.rows_sharded(N);
  // Attention branch. h1f and the partial output share `full`: Attention::forward reads its
  // input (the qkv GEMM) before it writes its output (the out GEMM).
  attn_norm.forward_add(be, a.attn_norm, a.h1, x, pending);
  const Tensor h1f = full_rows(sharded, full, a.h1, N);
  r.gather_rows(be, h1f, a.h1);
  const Tensor yf = full_rows(sharded, full, a.mid, N);
  attn.forward(be, a.attn, yf, h1f);
  r.reduce_partial(be, a.mid, yf);
  // mid = attention + x, fused into the MLP norm; then the MLP branch up to the activation
  // (Mlp::forward without its down GEMM).
  mlp_norm.forward_add(be, a.mlp_norm, a.h2, a.mid, x);
  const Tensor h2f = full_rows(sharded, full, a.h2, N);
  r.gather_rows(be, h2f, a.h2);
  mlp.up_activate(be, a.mlp, h2f);
}

void Block::backward(Backend& be, Regions& r, const BlockActs& a, BlockScratch& s,
                     const Tensor& dres, const Tensor& x, const Tensor& x_full,
                     const Tensor& d_full) const {
  const int64_t N = a.B * a.T;
  const bool sharded = r.rows_sharded(N);
  const Shape nc{a.rows, attn_norm.dim};
  const Tensor dh = s.dh.tensor().slice(0, nc);
  // d(out) → full rows (adjoint of reduce_partial); the branch input gathered again. Under
  // sharding dxf shares d_full with dyf: each layer reads dy before it writes dx.
  const Tensor dyf = full_rows(sharded, d_full, dres, N);
  const Tensor dxf = full_rows(sharded, d_full, dh, N);
  r.gather_rows(be, dyf, dres);
  const Tensor h2f = full_rows(sharded, x_full, a.h2, N);
  r.gather_rows(be, h2f, a.h2);
  mlp.backward(be, a.mlp, s.mlp, dxf, dyf, h2f);
  r.reduce_input_grad(be, dh, dxf);
  mlp_norm.backward_add(be, a.mlp_norm, dres, dh, a.mid, dres);  // d(mid) = d(out) + ∂mlp/∂mid

  r.gather_rows(be, dyf, dres);
  const Tensor h1f = full_rows(sharded, x_full, a.h1, N);
  r.gather_rows(be, h1f, a.h1);
  attn.backward(be, a.attn, s.attn, dxf, dyf, h1f);
  r.reduce_input_grad(be, dh, dxf);
  attn_norm.backward_add(be, a.attn_norm, dres, dh, x, dres);  // d(x) = d(mid) + ∂attn/∂x
}

void Block::recompute(Backend& be, Regions& r, Recompute mode, BlockActs& a, const Tensor& x,
                      const Tensor& full_scratch) const {
  switch (mode) {
    case Recompute::none:
      return;
    case Recompute::selective:
      // The same three ops as forward, on the same kept inputs (x, mid, pre).
      attn_norm.forward(be, a.attn_norm, a.h1, x);
      mlp_norm.forward(be, a.mlp_norm, a.h2, a.mid);
      mlp.activate(be, a.mlp);
      return;
    case Recompute::full:
      // forward() but the MLP-down GEMM, its reduction and the residual add: backward does
      // not read the block output, and a.out is kept anyway (the next block's input).
      forward_hidden(be, r, a, x, full_scratch);
      return;
  }
}

void Block::forward(Backend& be, BlockActs& a, const Tensor& x) const {
  Regions whole;
  forward(be, whole, a, x, Tensor{});
}

void Block::backward(Backend& be, const BlockActs& a, BlockScratch& s, const Tensor& dres,
                     const Tensor& x) const {
  Regions whole;
  backward(be, whole, a, s, dres, x, Tensor{}, Tensor{});
}

}  // namespace llmpi
