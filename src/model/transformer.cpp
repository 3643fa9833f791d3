// Transformer stage: embedding → blocks → final norm → head → cross-entropy.
#include "model/transformer.h"

#include "core/documents.h"
#include "model/dtypes.h"

namespace llmpi {

Transformer::Transformer(const ModelConfig& cfg, const StageRange& range,
                         const ParamStore& store, const AdapterStore& adapters)
    : cfg_(cfg), range_(range), dtype_(store.dtype()), adapters_(adapters) {
  validate_model_config(cfg);
  LLMPI_CHECK(0 <= range.first_layer && range.first_layer <= range.end_layer &&
                  range.end_layer <= cfg.n_layer,
              "stage layers [", range.first_layer, ", ", range.end_layer, ") of ", cfg.n_layer);
  LLMPI_CHECK(!range.embedding || range.first_layer == 0, "embedding on a stage without layer 0");
  LLMPI_CHECK(!range.head || range.end_layer == cfg.n_layer, "head on a stage without the last layer");
  if (range.embedding) embedding_ = Embedding::bind(cfg, store);
  for (int64_t l = range.first_layer; l < range.end_layer; ++l)
    blocks_.push_back(Block::bind(cfg, store, l, adapters));
  if (range.head) {
    final_norm_ = Norm::bind(cfg, store, "final_norm");
    const std::string w = cfg.tied_embeddings ? "embed.tokens" : "head.weight";
    vocab_offset_ = store.info(w).local_start[0];
    head_ = Linear::bind(store, {w}, {}, store.info(w).local_shape[0], cfg.d_model);
    head_lora_.in_features = cfg.d_model;
    head_lora_.out_features = head_.out_features;
    head_lora_.bind(adapters, "head", 0);
  }
  if (adapters.store)
    LLMPI_CHECK(adapters.store->dtype() == dtype_, "adapters in ", dtype_name(adapters.store->dtype()),
                " beside a base in ", dtype_name(dtype_));
}

void Transformer::set_adapters_enabled(bool on) {
  adapters_on_ = on;
  head_lora_.enabled = on;
  for (Block& b : blocks_)
    for (LoraLinear* l : {&b.attn.qkv_lora, &b.attn.proj_lora, &b.mlp.up_lora, &b.mlp.down_lora})
      l->enabled = on;
}

std::shared_ptr<LoraModelScratch> Transformer::lora_scratch(Backend& be, int64_t N) const {
  if (!adapters_.store) return nullptr;
  std::shared_ptr<LoraModelScratch> s = lora_scratch_.lock();
  if (s && lora_be_ == &be && lora_rows_ >= N) return s;
  int64_t rank = 1;
  auto grow = [&](const LoraLinear& l) {
    for (const LoraLinear::Slot& k : l.slots) rank = std::max(rank, k.branch.rank);
  };
  grow(head_lora_);
  for (const Block& b : blocks_)
    for (const LoraLinear* l : {&b.attn.qkv_lora, &b.attn.proj_lora, &b.mlp.up_lora, &b.mlp.down_lora})
      grow(*l);
  s = std::make_shared<LoraModelScratch>(alloc_lora_model_scratch(be, N, rank, dtype_));
  lora_scratch_ = s;
  lora_be_ = &be;
  lora_rows_ = N;
  return s;
}

int64_t recompute_shared_bytes(const Activations& a) {
  if (!a.shared) return 0;
  int64_t b = 0;
  for (const Buffer* x : block_buffers(*a.shared))
    if (!x->tensor().empty()) b += static_cast<int64_t>(x->tensor().bytes());
  return b;
}

int64_t activation_bytes(const Activations& a) {
  int64_t b = 0;
  auto add = [&b](const Buffer& x) {
    if (!x.tensor().empty()) b += static_cast<int64_t>(x.tensor().bytes());
  };
  auto add_norm = [&](const NormActs& n) {
    add(n.mean);
    add(n.rstd);
  };
  add(a.pos);
  add(a.doc_start);
  add(a.input);
  for (const Buffer& h : a.head_lora.h) add(h);
  for (const BlockActs& k : a.blocks) {
    for (const LoraLinearActs* l : {&k.attn.qkv_lora, &k.attn.proj_lora, &k.mlp.up_lora, &k.mlp.down_lora})
      for (const Buffer& h : l->h) add(h);
    const auto bufs = block_buffers(k);
    for (size_t i = 0; i < kBlockBuffers; ++i)
      if (block_keeps(a.recompute, i)) add(*bufs[i]);
  }
  add_norm(a.final_norm);
  for (const Buffer* x : {&a.hf, &a.logits, &a.lse, &a.picked, &a.full}) add(*x);
  return b;
}

void Transformer::set_regions(Regions* r) {
  regions_ = r;
  const bool adds_bias = r == nullptr || r->adds_output_bias();
  for (Block& b : blocks_) {
    b.attn.proj.add_bias = adds_bias;
    b.mlp.down.add_bias = adds_bias;
  }
}

int64_t Transformer::local_rows(int64_t B, int64_t T) const {
  const int64_t N = B * T;
  const int64_t n = regions_ ? regions_->local_rows(N) : N;
  LLMPI_CHECK(n > 0 && n <= N, n, " local rows of ", N);
  return n;
}

Activations Transformer::alloc_activations(Backend& be, int64_t B, int64_t T,
                                           std::shared_ptr<BlockActs> shared) const {
  LLMPI_CHECK(B > 0 && T > 0, "B = ", B, ", T = ", T);
  LLMPI_CHECK(T <= cfg_.max_seq_len, "T = ", T, " > max_seq_len = ", cfg_.max_seq_len);
  const int64_t N = B * T, C = cfg_.d_model, n = local_rows(B, T);
  Activations a;
  a.B = B;
  a.T = T;
  a.rows = n;
  if (range_.embedding && cfg_.learned_positions()) {
    a.pos = be.alloc(Shape{n}, DType::i32);
    fill_positions(be, a, {});
  }
  a.input = be.alloc(Shape{n, C}, dtype_);
  a.recompute = cfg_.recompute;
  if (a.recompute != Recompute::none && !blocks_.empty()) {
    // Every block of a stage has the same shapes, so one block's buffers serve them all.
    if (shared) {
      a.shared = std::move(shared);  // its shapes are checked buffer by buffer below
    } else {
      a.shared = shared_.lock();
      if (!a.shared || shared_be_ != &be || a.shared->B != B || a.shared->T != T ||
          a.shared->rows != n) {
        a.shared = std::make_shared<BlockActs>(
            blocks_.front().alloc_shared(be, B, T, dtype_, n, a.recompute));
        shared_ = a.shared;
        shared_be_ = &be;
      }
    }
  }
  a.blocks.reserve(blocks_.size());
  a.lora = lora_scratch(be, N);
  for (const Block& b : blocks_) {
    a.blocks.push_back(b.alloc_acts(be, B, T, dtype_, n, a.recompute, a.shared.get()));
    a.blocks.back().attn.lora = a.blocks.back().mlp.lora = a.lora.get();
  }
  if (range_.head) {
    a.final_norm = final_norm_.alloc_acts(be, n, dtype_);
    a.hf = be.alloc(Shape{n, C}, dtype_);
    a.logits = be.alloc(Shape{N, head_.out_features}, dtype_);
    a.lse = be.alloc(Shape{N}, stat_dtype(dtype_));
    a.picked = be.alloc(Shape{N}, stat_dtype(dtype_));
    a.head_lora = head_lora_.alloc_acts(be, N, dtype_);
  }
  if (n != N) a.full = be.alloc(Shape{N, C}, dtype_);
  return a;
}

void Transformer::fill_positions(Backend& be, Activations& a,
                                 std::span<const int32_t> doc_start) const {
  if (a.pos.tensor().empty()) return;
  const int64_t N = a.B * a.T, n = a.rows;
  const int64_t first = regions_ ? regions_->first_local_row(N) : 0;
  std::vector<int32_t> pos(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    const int64_t row = first + i;
    const int64_t start = doc_start.empty() ? 0 : doc_start[static_cast<size_t>(row)];
    pos[static_cast<size_t>(i)] = static_cast<int32_t>(row % a.T - start);
  }
  be.copy(a.pos, host_tensor(pos.data(), Shape{n}, DType::i32));
  be.synchronize();  // `pos` goes out of scope
}

void Transformer::set_documents(Backend& be, Activations& a,
                                std::span<const int32_t> doc_start) const {
  const int64_t N = a.B * a.T;
  if (doc_start.empty()) {
    a.doc_start = Buffer{};
  } else {
    LLMPI_CHECK(static_cast<int64_t>(doc_start.size()) == N, doc_start.size(),
                " document starts for B·T = ", N);
    check_doc_start(doc_start, a.T, "set_documents");
    if (a.doc_start.tensor().empty()) a.doc_start = be.alloc(Shape{N}, DType::i32);
    be.copy(a.doc_start, host_tensor(const_cast<int32_t*>(doc_start.data()), Shape{N},
                                     DType::i32));
  }
  for (BlockActs& b : a.blocks) b.attn.doc_start = a.doc_start.tensor();
  fill_positions(be, a, doc_start);
  be.synchronize();  // the copy has read doc_start
}

Workspace Transformer::alloc_workspace(Backend& be, int64_t B, int64_t T) const {
  const int64_t N = B * T, C = cfg_.d_model, n = local_rows(B, T);
  Workspace ws;
  ws.max_tokens = N;
  if (!blocks_.empty()) ws.block = blocks_.front().alloc_scratch(be, B, T, dtype_, n);
  ws.dres = be.alloc(Shape{n, C}, dtype_);
  if (range_.head) {
    ws.dhf = be.alloc(Shape{n, C}, dtype_);
    ws.row_scale = be.alloc(Shape{N}, stat_dtype(dtype_));
  }
  if (n != N) {
    ws.x_full = be.alloc(Shape{N, C}, dtype_);
    ws.d_full = be.alloc(Shape{N, C}, dtype_);
  }
  return ws;
}

void Transformer::forward(Backend& be, Activations& a, const Tensor& ids) const {
  Regions whole;
  Regions& r = regions_or(whole);
  const int64_t N = a.B * a.T;
  const bool sharded = r.rows_sharded(N);
  LLMPI_CHECK(r.local_rows(N) == a.rows, "activations for ", a.rows, " local rows, regions give ",
              r.local_rows(N), " (install regions before allocating)");
  if (range_.embedding) {
    LLMPI_CHECK(ids.numel() == N, "ids ", ids.shape.str(), " for B·T = ", N);
    // Vocab-sharded lookup: partial rows, summed over ranks before the positions are added.
    const Tensor xf = full_rows(sharded, a.full, a.input, N);
    embedding_.lookup(be, xf, ids);
    r.reduce_partial(be, a.input, xf);
    embedding_.add_positions(be, a.input, a.pos);
  }
  // Each block leaves its output open (without the residual `mid`); the next block's first
  // norm, or the final norm, completes it in place (Block::forward). A stage without the
  // head completes its output itself: it is sent on, or read by the caller. The observer
  // sees each block's output once it is complete.
  const Tensor* x = &a.input.tensor();
  Tensor pending;
  const auto observe = [&](size_t i) {
    if (observer_) observer_->block_output(be, range_.first_layer + int64_t(i), a.blocks[i].out.tensor());
  };
  for (size_t i = 0; i < blocks_.size(); ++i) {
    blocks_[i].forward(be, r, a.blocks[i], *x, a.full, pending, /*leave_open=*/true);
    if (i > 0) observe(i - 1);  // completed by block i's attn_norm
    x = &a.blocks[i].out.tensor();
    pending = a.blocks[i].mid.tensor();
  }
  if (!range_.head) {
    if (!pending.empty()) be.add(*x, *x, pending);
    if (!blocks_.empty()) observe(blocks_.size() - 1);
  } else {
    final_norm_.forward_add(be, a.final_norm, a.hf, *x, pending);
    if (!blocks_.empty()) observe(blocks_.size() - 1);
    const Tensor hff = full_rows(sharded, a.full, a.hf, N);
    r.gather_rows(be, hff, a.hf);
    head_.forward(be, a.logits, hff);  // vocab columns: column-parallel
    if (!head_lora_.empty()) head_lora_.forward_add(be, a.head_lora, a.logits, hff);
    be.row_logsumexp(a.lse, a.logits);
    r.combine_logsumexp(be, a.lse);
  }
}

std::vector<double> Transformer::token_losses(Backend& be, Activations& a,
                                              const Tensor& targets) const {
  std::vector<double> losses;
  std::vector<int32_t> tgt;
  read_token_losses(be, a, targets, losses, tgt);
  return losses;
}

LossSum Transformer::loss(Backend& be, Activations& a, const Tensor& targets,
                          std::vector<double>* token_losses) const {
  std::vector<double> losses;
  std::vector<int32_t> tgt;
  read_token_losses(be, a, targets, losses, tgt);
  if (token_losses) *token_losses = losses;
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
  Regions whole;
  Regions& r = regions_or(whole);
  be.pick_targets(a.picked, a.logits, targets, vocab_offset_);
  r.combine_picked(be, a.picked);
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
                                const Tensor& targets, const LossScale& scale) const {
  LLMPI_CHECK(range_.head, "backward_loss on a stage without the head");
  Regions whole;
  Regions& r = regions_or(whole);
  const int64_t N = a.B * a.T;
  const bool sharded = r.rows_sharded(N);
  LLMPI_CHECK(N <= ws.max_tokens, "workspace for ", ws.max_tokens, " tokens, batch has ", N);
  const Shape nc{a.rows, cfg_.d_model};
  const Tensor row_scale = ws.row_scale.tensor().slice(0, Shape{N});
  const Tensor dhf = ws.dhf.tensor().slice(0, nc);
  if (scale.per_token.empty()) {
    be.fill(row_scale, scale.uniform);
  } else {
    LLMPI_CHECK(int64_t(scale.per_token.size()) == N, scale.per_token.size(),
                " per-token loss scales for B·T = ", N);
    if (row_scale.dtype == DType::f64) {
      be.copy(row_scale, host_tensor(const_cast<double*>(scale.per_token.data()), Shape{N}, DType::f64));
      be.synchronize();
    } else {
      const std::vector<float> s32(scale.per_token.begin(), scale.per_token.end());
      be.copy(row_scale, host_tensor(const_cast<float*>(s32.data()), Shape{N}, DType::f32));
      be.synchronize();  // the copy has read s32
    }
  }
  be.cross_entropy_backward(a.logits, a.logits, a.lse, targets, row_scale, vocab_offset_);
  const Tensor hff = full_rows(sharded, ws.x_full, a.hf, N);
  r.gather_rows(be, hff, a.hf);  // again: hf is saved at local rows only
  const Tensor dhff = full_rows(sharded, ws.d_full, dhf, N);
  head_.backward(be, dhff, a.logits, hff);
  if (!head_lora_.empty()) head_lora_.backward(be, a.head_lora, *a.lora, dhff, a.logits, hff);
  r.reduce_input_grad(be, dhf, dhff);
  const Tensor& x = blocks_.empty() ? a.input.tensor() : a.blocks.back().out.tensor();
  final_norm_.backward(be, a.final_norm, ws.dres.tensor().slice(0, nc), dhf, x);
  if (listener_) listener_->grads_written(GradListener::kHead);
  backward_blocks(be, a, ws, ids);
}

void Transformer::backward(Backend& be, Activations& a, Workspace& ws, const Tensor& ids,
                           const Tensor& doutput) const {
  LLMPI_CHECK(!range_.head, "the last stage starts backward from the loss (backward_loss)");
  const int64_t N = a.B * a.T;
  LLMPI_CHECK(N <= ws.max_tokens, "workspace for ", ws.max_tokens, " tokens, batch has ", N);
  be.copy(ws.dres.tensor().slice(0, Shape{a.rows, cfg_.d_model}), doutput);
  backward_blocks(be, a, ws, ids);
}

void Transformer::backward_blocks(Backend& be, Activations& a, Workspace& ws,
                                  const Tensor& ids) const {
  Regions whole;
  Regions& r = regions_or(whole);
  const int64_t N = a.B * a.T;
  const Tensor dres = input_grad(ws, a);
  for (size_t i = blocks_.size(); i-- > 0;) {
    const Tensor& x = i == 0 ? a.input.tensor() : a.blocks[i - 1].out.tensor();
    // Recomputation rebuilds the dropped buffers (shared: this micro-batch's forward values
    // may have been overwritten since). ws.x_full is free until the block's backward.
    blocks_[i].recompute(be, r, a.recompute, a.blocks[i], x, ws.x_full);
    blocks_[i].backward(be, r, a.blocks[i], ws.block, dres, x, ws.x_full, ws.d_full);
    if (listener_) listener_->grads_written(range_.first_layer + int64_t(i));
  }
  if (range_.embedding && !embedding_.frozen()) {
    const Tensor dxf = full_rows(r.rows_sharded(N), ws.d_full, dres, N);
    r.gather_rows(be, dxf, dres);  // adjoint of the lookup's reduce_partial
    embedding_.lookup_backward(be, dxf, ids);
    embedding_.add_positions_backward(be, dres, a.pos);
    if (listener_) listener_->grads_written(GradListener::kEmbedding);
  }
}

Tensor Transformer::input_grad(const Workspace& ws, const Activations& a) const {
  return ws.dres.tensor().slice(0, Shape{a.rows, cfg_.d_model});
}

}  // namespace llmpi
