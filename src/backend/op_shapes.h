#pragma once
// Op shapes: the shape rules of the Backend ops (backend.h), written once and used by every
// backend. Each function checks that an op's tensors fit together — ranks, element counts,
// last dimensions, aliasing — and returns the op's sizes. Placement (host or device memory)
// and dtypes stay with each backend, whose rules differ: the host computes in one float type
// (f32, or f64 for gradient checks), CUDA in bf16 with f32 statistics and gradients. A
// failure is an InternalError naming the op and the tensor (callers allocate every tensor).
// Optional tensors are empty when not given and are checked only when given.
#include <cstdint>
#include <initializer_list>
#include <utility>

#include "backend/backend.h"
#include "core/tensor.h"

namespace llmpi::op_shapes {

// A tensor viewed as [rows, last dim] (a 1-d tensor is one row).
inline int64_t last_dim(const Tensor& t) { return t.shape.ndim ? t.shape[t.shape.ndim - 1] : 1; }
inline int64_t row_count(const Tensor& t) {
  const int64_t c = last_dim(t);
  return c ? t.numel() / c : 0;
}

void check_numel(const char* op, const char* what, const Tensor& t, int64_t want);
// [n, c]: n·c elements, and rows of width c (when there are any).
void check_rows(const char* op, const char* what, const Tensor& t, int64_t n, int64_t c);

// embedding_forward / _backward: table (or dtable) [R, C]; ids [N]; rows = out (or dout) [N, C].
struct EmbeddingSizes {
  int64_t N, R, C;
};
EmbeddingSizes embedding(const char* op, const char* table_name, const Tensor& table,
                         const Tensor& ids, const char* rows_name, const Tensor& rows);

// linear_forward: w [O, I], in [N, I], out [N, O] (not aliasing in), bias [O] or empty.
// linear_backward: the same with dout for out and dbias for bias; din [N, I] and dw (w's
// shape) when given.
struct LinearSizes {
  int64_t N, I, O;
};
LinearSizes linear_forward(const char* op, const Tensor& out, const Tensor& in, const Tensor& w,
                           const Tensor& bias);
LinearSizes linear_backward(const char* op, const Tensor& din, const Tensor& dw,
                            const Tensor& dbias, const Tensor& dout, const Tensor& in,
                            const Tensor& w);
// linear_forward_add_block / linear_backward_block: w [O, I], in [N, I], the wide matrix
// (out or dout) [N, C] with 0 ≤ col0 and col0 + O ≤ C; din [N, I] and dw (w's shape) when
// given; no two of them at the same address. Returns N, I, O; C is last_dim(wide).
LinearSizes linear_block(const char* op, const char* wide_name, const Tensor& wide,
                         int64_t col0, const Tensor& in, const Tensor& w, const Tensor& din,
                         const Tensor& dw);
// linear_gelu_forward: linear_forward's rules for out = gelu(pre); pre (the product, kept for
// backward) [N, O], aliasing neither out nor in.
LinearSizes linear_gelu_forward(const char* op, const Tensor& out, const Tensor& pre,
                                const Tensor& in, const Tensor& w, const Tensor& bias);
// linear_backward_gelu: linear_backward's rules with din required, and pre [N, I] (the GELU's
// input; in = gelu(pre)), not aliasing din.
LinearSizes linear_backward_gelu(const char* op, const Tensor& din, const Tensor& dw,
                                 const Tensor& dbias, const Tensor& dout, const Tensor& in,
                                 const Tensor& w, const Tensor& pre);

// norm_forward / _backward: x [N, C]; gain [C]; rstd [N]; layernorm: mean [N], bias (or
// dbias) [C] or empty; rmsnorm: no bias. `rows` are the op's other [N, C] tensors (out;
// dx and dout); dgain [C] when given. eps >= 0 (forward; pass 0 for backward).
struct RowSizes {
  int64_t N, C;
};
RowSizes norm(const char* op, NormKind kind, const Tensor& x, const Tensor& gain,
              const Tensor& mean, const Tensor& rstd, const Tensor& bias, const Tensor& dgain,
              std::initializer_list<std::pair<const char*, const Tensor*>> rows, double eps);
// add_norm_forward: norm_forward's rules with x = a; b and sum (required) [N, C] like out.
// sum may alias a or b.
RowSizes add_norm(const char* op, NormKind kind, const Tensor& sum, const Tensor& out,
                  const Tensor& mean, const Tensor& rstd, const Tensor& a, const Tensor& b,
                  const Tensor& gain, const Tensor& bias, double eps);
// norm_backward_add: norm_backward's rules; dres (required) [N, C] like dx, which may alias it.
RowSizes norm_backward_add(const char* op, NormKind kind, const Tensor& dx, const Tensor& dgain,
                           const Tensor& dbias, const Tensor& dout, const Tensor& dres,
                           const Tensor& x, const Tensor& gain, const Tensor& mean,
                           const Tensor& rstd);

// gelu: every tensor has the same element count as the first.
void same_numel(const char* op, std::initializer_list<std::pair<const char*, const Tensor*>> ts);
// swiglu: rows = out (or dout) [N, F]; in (and din) [N, 2F].
RowSizes swiglu(const char* op, const Tensor& rows, const Tensor& in, const Tensor& din);

// rope: qkv [rows, W] with rows a multiple of T, even head_dim, n_rot_heads·head_dim <= W,
// theta > 0. Returns {rows, W}.
RowSizes rope(const char* op, const Tensor& qkv, int64_t T, int64_t n_rot_heads,
              int64_t head_dim, double theta);

// attention: positive sizes with Hq a multiple of Hkv; qkv [B·T, (Hq + 2·Hkv)·D]; out
// B·T·Hq·D elements, not aliasing qkv; lse [B, Hq, T]. Backward also: dout as out, dqkv as
// qkv and not aliasing it.
void attention(const char* op, const Tensor& qkv, const Tensor& out, const Tensor& lse,
               int64_t B, int64_t T, int64_t Hq, int64_t Hkv, int64_t D);
void attention_grads(const char* op, const Tensor& qkv, const Tensor& dqkv, const Tensor& dout,
                     int64_t B, int64_t T, int64_t Hq, int64_t D);

// row_logsumexp: logits [N, V], lse [N]. Returns {N, V}.
RowSizes logsumexp(const char* op, const Tensor& lse, const Tensor& logits);
// pick_targets / cross_entropy_backward: targets [N]; logits [N, V]; `rows` are the op's
// [N] tensors (picked; lse, row_scale), `full` its other [N, V] ones (dlogits).
RowSizes cross_entropy(const char* op, const Tensor& logits, const Tensor& targets,
                       std::initializer_list<std::pair<const char*, const Tensor*>> rows,
                       std::initializer_list<std::pair<const char*, const Tensor*>> full);

// One AdamW slice: grad, m, v (and compute, when given) have param's element count.
void adamw_slice(const char* op, const AdamWSlice& s);

// nf4_dequantize: out [n] from codes [ceil(n / 2)], scale_codes [B = ceil(n / kNf4Block)] and
// scale_scales [ceil(B / kNf4ScaleGroup)] (quant/nf4.h). Returns n.
int64_t nf4_dequantize(const char* op, const Tensor& out, const Tensor& codes,
                       const Tensor& scale_codes, const Tensor& scale_scales);

}  // namespace llmpi::op_shapes
