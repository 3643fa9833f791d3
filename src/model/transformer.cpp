// Transformer stage: embedding → blocks → final norm → head → cross-entropy.
#include "model/transformer.h"

#include "model/dtypes.h"

namespace llmpi {
namespace {

Tensor host_tensor(void* p, Shape s, DType t) {
  Tensor x;
  x.data = p;
  x.shape = s;
  x.dtype = t;
  x.device = Device::host;
  return x;
}

}  // namespace

Transformer::Transformer(const ModelConfig& cfg, const StageRange& range,
                         const ParamStore& store)
    : cfg_(cfg), range_(range), dtype_(store.dtype()) {
  validate_model_config(cfg);
  LLMPI_CHECK(0 <= range.first_layer && range.first_layer <= range.end_layer &&
                  range.end_layer <= cfg.n_layer,
              "stage layers [", range.first_layer, ", ", range.end_layer, ") of ", cfg.n_layer);
  LLMPI_CHECK(!range.embedding || range.first_layer == 0, "embedding on a stage without layer 0");
  LLMPI_CHECK(!range.head || range.end_layer == cfg.n_layer, "head on a stage without the last layer");
  if (range.embedding) embedding_ = Embedding::bind(cfg, store);
  for (int64_t l = range.first_layer; l < range.end_layer; ++l)
    blocks_.push_back(Block::bind(cfg, store, l));
  if (range.head) {
    final_norm_ = Norm::bind(cfg, store, "final_norm");
    const std::string w = cfg.tied_embeddings ? "embed.tokens" : "head.weight";
    vocab_offset_ = store.info(w).local_start[0];
    head_ = Linear::bind(store, {w}, {}, store.info(w).local_shape[0], cfg.d_model);
  }
}

Activations Transformer::alloc_activations(Backend& be, int64_t B, int64_t T) const {
  LLMPI_CHECK(B > 0 && T > 0, "B = ", B, ", T = ", T);
  LLMPI_CHECK(T <= cfg_.max_seq_len, "T = ", T, " > max_seq_len = ", cfg_.max_seq_len);
  const int64_t N = B * T, C = cfg_.d_model;
  Activations a;
  a.B = B;
  a.T = T;
  if (range_.embedding && cfg_.learned_positions()) {
    std::vector<int32_t> pos(static_cast<size_t>(N));
    for (int64_t n = 0; n < N; ++n) pos[static_cast<size_t>(n)] = static_cast<int32_t>(n % T);
    a.pos = be.alloc(Shape{N}, DType::i32);
    be.copy(a.pos, host_tensor(pos.data(), Shape{N}, DType::i32));
    be.synchronize();  // `pos` goes out of scope
  }
  a.input = be.alloc(Shape{N, C}, dtype_);
  a.blocks.reserve(blocks_.size());
  for (const Block& b : blocks_) a.blocks.push_back(b.alloc_acts(be, B, T, dtype_));
  if (range_.head) {
    a.final_norm = final_norm_.alloc_acts(be, N, dtype_);
    a.hf = be.alloc(Shape{N, C}, dtype_);
    a.logits = be.alloc(Shape{N, head_.out_features}, dtype_);
    a.lse = be.alloc(Shape{N}, stat_dtype(dtype_));
    a.picked = be.alloc(Shape{N}, stat_dtype(dtype_));
  }
  return a;
}

Workspace Transformer::alloc_workspace(Backend& be, int64_t B, int64_t T) const {
  const int64_t N = B * T, C = cfg_.d_model;
  Workspace ws;
  ws.max_tokens = N;
  if (!blocks_.empty()) ws.block = blocks_.front().alloc_scratch(be, B, T, dtype_);
  ws.dres = be.alloc(Shape{N, C}, dtype_);
  if (range_.head) {
    ws.dhf = be.alloc(Shape{N, C}, dtype_);
    ws.row_scale = be.alloc(Shape{N}, stat_dtype(dtype_));
  }
  return ws;
}

void Transformer::forward(Backend& be, Activations& a, const Tensor& ids) const {
  if (range_.embedding) {
    LLMPI_CHECK(ids.numel() == a.B * a.T, "ids ", ids.shape.str(), " for B·T = ", a.B * a.T);
    embedding_.forward(be, a.input, ids, a.pos);
  }
  const Tensor* x = &a.input.tensor();
  for (size_t i = 0; i < blocks_.size(); ++i) {
    blocks_[i].forward(be, a.blocks[i], *x);
    x = &a.blocks[i].out.tensor();
  }
  if (range_.head) {
    final_norm_.forward(be, a.final_norm, a.hf, *x);
    head_.forward(be, a.logits, a.hf);
    be.row_logsumexp(a.lse, a.logits);
  }
}

std::vector<double> Transformer::token_losses(Backend& be, Activations& a,
                                              const Tensor& targets) const {
  std::vector<double> losses;
  std::vector<int32_t> tgt;
  read_token_losses(be, a, targets, losses, tgt);
  return losses;
}

LossSum Transformer::loss(Backend& be, Activations& a, const Tensor& targets) const {
  std::vector<double> losses;
  std::vector<int32_t> tgt;
  read_token_losses(be, a, targets, losses, tgt);
  LossSum s;
  for (size_t n = 0; n < tgt.size(); ++n) {
    if (tgt[n] < 0) continue;
    s.sum += losses[n];
    ++s.count;  // counted even when its loss is exactly 0
  }
  return s;
}

void Transformer::read_token_losses(Backend& be, Activations& a, const Tensor& targets,
                                    std::vector<double>& losses,
                                    std::vector<int32_t>& tgt) const {
  LLMPI_CHECK(range_.head, "loss on a stage without the head");
  const int64_t N = a.B * a.T;
  LLMPI_CHECK(targets.numel() == N && targets.dtype == DType::i32, "targets ",
              targets.shape.str(), " for B·T = ", N);
  be.pick_targets(a.picked, a.logits, targets, vocab_offset_);
  std::vector<double> lse(static_cast<size_t>(N)), picked(lse.size());
  tgt.assign(lse.size(), 0);
  be.copy(host_tensor(lse.data(), Shape{N}, DType::f64), a.lse);
  be.copy(host_tensor(picked.data(), Shape{N}, DType::f64), a.picked);
  be.copy(host_tensor(tgt.data(), Shape{N}, DType::i32), targets);
  be.synchronize();
  losses.assign(lse.size(), 0.0);
  for (size_t n = 0; n < losses.size(); ++n)
    if (tgt[n] >= 0) losses[n] = lse[n] - picked[n];
}

std::vector<float> Transformer::logits_at(Backend& be, const Activations& a, int64_t t) const {
  LLMPI_CHECK(range_.head, "logits on a stage without the head");
  LLMPI_CHECK(0 <= t && t < a.T, "position ", t, " of T = ", a.T);
  const int64_t V = head_.out_features;
  std::vector<float> out(static_cast<size_t>(a.B * V));
  for (int64_t b = 0; b < a.B; ++b)
    be.copy(host_tensor(out.data() + b * V, Shape{V}, DType::f32),
            a.logits.tensor().rows(b * a.T + t, 1).view(Shape{V}));
  be.synchronize();
  return out;
}

void Transformer::backward_loss(Backend& be, Activations& a, Workspace& ws, const Tensor& ids,
                                const Tensor& targets, double scale) const {
  LLMPI_CHECK(range_.head, "backward_loss on a stage without the head");
  const int64_t N = a.B * a.T;
  LLMPI_CHECK(N <= ws.max_tokens, "workspace for ", ws.max_tokens, " tokens, batch has ", N);
  const Shape nc{N, cfg_.d_model};
  const Tensor row_scale = ws.row_scale.tensor().slice(0, Shape{N});
  const Tensor dhf = ws.dhf.tensor().slice(0, nc);
  be.fill(row_scale, scale);
  be.cross_entropy_backward(a.logits, a.logits, a.lse, targets, row_scale, vocab_offset_);
  head_.backward(be, dhf, a.logits, a.hf);
  const Tensor& x = blocks_.empty() ? a.input.tensor() : a.blocks.back().out.tensor();
  final_norm_.backward(be, a.final_norm, ws.dres.tensor().slice(0, nc), dhf, x);
  backward_blocks(be, a, ws, ids);
}

void Transformer::backward(Backend& be, Activations& a, Workspace& ws, const Tensor& ids,
                           const Tensor& doutput) const {
  LLMPI_CHECK(!range_.head, "the last stage starts backward from the loss (backward_loss)");
  const int64_t N = a.B * a.T;
  LLMPI_CHECK(N <= ws.max_tokens, "workspace for ", ws.max_tokens, " tokens, batch has ", N);
  be.copy(ws.dres.tensor().slice(0, Shape{N, cfg_.d_model}), doutput);
  backward_blocks(be, a, ws, ids);
}

void Transformer::backward_blocks(Backend& be, Activations& a, Workspace& ws,
                                  const Tensor& ids) const {
  const Tensor dres = input_grad(ws, a);
  for (size_t i = blocks_.size(); i-- > 0;) {
    const Tensor& x = i == 0 ? a.input.tensor() : a.blocks[i - 1].out.tensor();
    blocks_[i].backward(be, a.blocks[i], ws.block, dres, x);
  }
  if (range_.embedding) embedding_.backward(be, dres, ids, a.pos);
}

Tensor Transformer::input_grad(const Workspace& ws, const Activations& a) const {
  return ws.dres.tensor().slice(0, Shape{a.B * a.T, cfg_.d_model});
}

}  // namespace llmpi
