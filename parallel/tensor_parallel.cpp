// Tensor/sequence parallelism: parameter slabs, region hooks over the tp group, and the
// gradient sync of tp-replicated parameters.
#include "parallel/tensor_parallel.h"

#include <string_view>

#include "config/layout_rules.h"
#include "core/error.h"
#include "parallel/tp_comm.h"
#include "parallel/vocab_parallel.h"

namespace llmpi {

namespace {

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// Same memory (the non-sequence-parallel regions work in place).
bool same(const Tensor& a, const Tensor& b) { return a.data == b.data && a.numel() == b.numel(); }

}  // namespace

void check_tensor_parallel(const ModelConfig& c, int p, bool sequence_parallel, int64_t rows) {
  std::string why;
  auto add = [&](auto&&... parts) { why += detail::concat(why.empty() ? "" : "; ", parts...); };
  for (LayoutRule r : broken_layout_rules(LayoutFacts::of_tp(c, p, sequence_parallel, rows)))
    switch (r) {
      case LayoutRule::tp_heads:
        add("model.n_head = ", c.n_head, " is not divisible by parallel.tp = ", p,
            ": every tp rank computes n_head / tp whole attention heads");
        break;
      case LayoutRule::tp_kv_heads:
        add("model.n_kv_head = ", c.kv_heads(), " and parallel.tp = ", p,
            ": one must divide the other (kv heads split over tp, or each kv head "
            "replicated on tp / n_kv_head ranks)");
        break;
      case LayoutRule::tp_d_ff:
        add("model.d_ff = ", c.d_ff, " is not divisible by parallel.tp = ", p,
            ": the MLP hidden width is split evenly over the tp ranks");
        break;
      case LayoutRule::tp_vocab:
        add("model.vocab_size = ", c.vocab_size, " is smaller than parallel.tp = ", p,
            ": every tp rank holds a slab of the vocabulary");
        break;
      case LayoutRule::sp_needs_tp:
        add("sequence parallelism needs parallel.tp > 1: it splits the token rows over the "
            "tensor-parallel group");
        break;
      case LayoutRule::sp_rows:
        add("sequence parallelism over parallel.tp = ", p, " ranks: the ", rows,
            " token rows of a micro-batch (train.batch_size × train.seq_len) do not split "
            "evenly");
        break;
      default:
        LLMPI_CHECK(false, "the tensor-parallel install broke rule ", layout_rule_name(r),
                    ", which it does not see");
    }
  if (!why.empty()) user_error("tensor parallelism cannot split this model: ", why);
}

TpSplit tp_split_of(const std::string& n) {
  if (n == "embed.tokens" || n == "head.weight") return TpSplit::vocab_rows;
  if (n == "embed.positions" || ends_with(n, "norm.weight") || ends_with(n, "norm.bias"))
    return TpSplit::row_region;
  if (ends_with(n, "attn.q.weight") || ends_with(n, "attn.q.bias") ||
      ends_with(n, "mlp.gate.weight") || ends_with(n, "mlp.up.weight") ||
      ends_with(n, "mlp.up.bias"))
    return TpSplit::out_rows;
  if (ends_with(n, "attn.k.weight") || ends_with(n, "attn.k.bias") ||
      ends_with(n, "attn.v.weight") || ends_with(n, "attn.v.bias"))
    return TpSplit::kv_rows;
  if (ends_with(n, "attn.out.weight") || ends_with(n, "mlp.down.weight")) return TpSplit::in_cols;
  if (ends_with(n, "attn.out.bias") || ends_with(n, "mlp.down.bias")) return TpSplit::output_bias;
  LLMPI_CHECK(false, "no tensor-parallel rule for parameter ", n);
  return TpSplit::row_region;
}

std::vector<ParamInfo> shard_params_tp(const ModelConfig& cfg, std::vector<ParamInfo> params,
                                       int p, int r) {
  LLMPI_CHECK(p >= 1 && 0 <= r && r < p, "tp rank ", r, " of ", p);
  if (p == 1) return params;
  check_tensor_parallel(cfg, p, /*sequence_parallel=*/false, /*rows=*/0);
  const int64_t D = cfg.head_dim(), hkv = cfg.kv_heads();
  auto slab = [](ParamInfo& q, int dim, int64_t begin, int64_t size) {
    LLMPI_CHECK(begin >= 0 && begin + size <= q.global_shape[dim], q.name, ": slab [", begin,
                ", ", begin + size, ") of ", q.global_shape.str(), " in dim ", dim);
    q.local_shape.dims[dim] = size;
    q.local_start[static_cast<size_t>(dim)] = begin;
  };
  for (ParamInfo& q : params) {
    LLMPI_CHECK(q.local_shape == q.global_shape, q.name, " is already sharded");
    switch (tp_split_of(q.name)) {
      case TpSplit::vocab_rows: {
        const VocabRange v = vocab_range(cfg.vocab_size, p, r);
        slab(q, 0, v.begin, v.size());
        break;
      }
      case TpSplit::out_rows: {
        const int64_t n = q.global_shape[0] / p;
        slab(q, 0, r * n, n);
        break;
      }
      case TpSplit::in_cols: {
        const int64_t n = q.global_shape[1] / p;
        slab(q, 1, r * n, n);
        break;
      }
      case TpSplit::kv_rows:
        if (hkv >= p) {
          const int64_t n = q.global_shape[0] / p;
          slab(q, 0, r * n, n);
        } else {  // rank r's query heads all read kv head r / (p / hkv)
          const int sharing = static_cast<int>(p / hkv);
          slab(q, 0, (r / sharing) * D, D);
          q.replica = r % sharing != 0;
        }
        break;
      case TpSplit::row_region:
      case TpSplit::output_bias: q.replica = r != 0; break;
    }
  }
  return params;
}

TensorParallel::TensorParallel(Collectives& tp, bool sequence_parallel)
    : tp_(tp), sp_(sequence_parallel && tp.size() > 1) {}

void TensorParallel::install(Transformer& model) { model.set_regions(this); }

int64_t TensorParallel::local_rows(int64_t n) const {
  return sp_ ? sp_chunk_rows(n, tp_.size()) : n;
}

int64_t TensorParallel::first_local_row(int64_t n) const {
  return sp_ ? tp_.rank() * sp_chunk_rows(n, tp_.size()) : 0;
}

void TensorParallel::gather_rows(Backend& be, const Tensor& full, const Tensor& local) {
  if (!sp_) {  // forward of copy_to_tp / backward of reduce_from_tp: identity
    LLMPI_CHECK(same(full, local), "gather_rows without sequence parallelism works in place");
    return;
  }
  be.synchronize();
  gather_from_sp::forward(tp_, full, local);
}

void TensorParallel::reduce_input_grad(Backend& be, const Tensor& dlocal, const Tensor& dfull) {
  be.synchronize();
  if (sp_) {
    gather_from_sp::backward(tp_, dlocal, dfull);
  } else {
    LLMPI_CHECK(same(dlocal, dfull), "reduce_input_grad without sequence parallelism is in place");
    copy_to_tp::backward(tp_, dfull);
  }
}

void TensorParallel::reduce_partial(Backend& be, const Tensor& local, const Tensor& partial) {
  be.synchronize();
  if (sp_) {
    reduce_scatter_to_sp::forward(tp_, local, partial);
  } else {
    LLMPI_CHECK(same(local, partial), "reduce_partial without sequence parallelism is in place");
    reduce_from_tp::forward(tp_, partial);
  }
}

void TensorParallel::combine_logsumexp(Backend& be, const Tensor& lse) {
  combine_vocab_logsumexp(tp_, be, lse);
}

void TensorParallel::combine_picked(Backend& be, const Tensor& picked) {
  combine_vocab_picked(tp_, be, picked);
}

bool TensorParallel::syncs_grad(const ParamInfo& q) const {
  if (tp_.size() == 1) return false;
  const TpSplit split = tp_split_of(q.name);
  return (split == TpSplit::row_region && sp_) ||
         (split == TpSplit::kv_rows && q.local_shape[0] * tp_.size() > q.global_shape[0]);
}

void TensorParallel::sync_grads(Backend& be, ParamStore& store) {
  if (tp_.size() == 1) return;
  // Each gradient to sum is placed at `at` in one buffer: a row-region parameter whole; a
  // shared kv slab at its rows of the GLOBAL tensor (zeros elsewhere), so the sum adds
  // exactly the ranks that share each kv head.
  struct Part {
    Tensor grad;
    int64_t at;
  };
  std::vector<Part> parts;
  int64_t total = 0;
  for (const ParamInfo& q : store.params()) {
    if (!syncs_grad(q)) continue;
    if (tp_split_of(q.name) == TpSplit::row_region) {
      parts.push_back({store.grad(q.name), total});
      total += q.numel();
    } else {
      const int64_t row_elems = q.global_shape.numel() / q.global_shape[0];
      parts.push_back({store.grad(q.name), total + q.local_start[0] * row_elems});
      total += q.global_shape.numel();
    }
  }
  if (parts.empty()) return;
  Buffer buf = be.alloc(Shape{total}, store.master_dtype());  // gradients: master dtype
  be.fill(buf, 0.0);
  for (const Part& part : parts) be.copy(buf.tensor().slice(part.at, part.grad.shape), part.grad);
  be.synchronize();
  tp_.all_reduce(buf, ReduceOp::sum);
  for (const Part& part : parts) be.copy(part.grad, buf.tensor().slice(part.at, part.grad.shape));
  be.synchronize();
}

}  // namespace llmpi
