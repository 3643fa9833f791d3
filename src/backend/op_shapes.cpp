// The shape rules of the Backend ops, shared by every backend (see op_shapes.h).
#include "backend/op_shapes.h"

#include "core/error.h"
#include "quant/nf4.h"

namespace llmpi::op_shapes {

void check_numel(const char* op, const char* what, const Tensor& t, int64_t want) {
  LLMPI_CHECK(t.numel() == want, op, ": ", what, " ", t.shape.str(), " has ", t.numel(),
              " elements, expected ", want);
}

void check_rows(const char* op, const char* what, const Tensor& t, int64_t n, int64_t c) {
  check_numel(op, what, t, n * c);
  LLMPI_CHECK(n == 0 || last_dim(t) == c, op, ": ", what, " ", t.shape.str(), " is not [", n,
              ", ", c, "]");
}

EmbeddingSizes embedding(const char* op, const char* table_name, const Tensor& table,
                         const Tensor& ids, const char* rows_name, const Tensor& rows) {
  LLMPI_CHECK(table.shape.ndim == 2, op, ": ", table_name, " ", table.shape.str(),
              " is not [R, C]");
  const EmbeddingSizes s{ids.numel(), table.dim(0), table.dim(1)};
  check_rows(op, rows_name, rows, s.N, s.C);
  return s;
}

namespace {

LinearSizes linear_sizes(const char* op, const Tensor& in, const Tensor& w, const char* out_name,
                         const Tensor& out) {
  LLMPI_CHECK(w.shape.ndim == 2, op, ": w ", w.shape.str(), " is not [O, I]");
  const int64_t O = w.dim(0), I = w.dim(1);
  LLMPI_CHECK(last_dim(in) == I, op, ": in ", in.shape.str(), " does not end in I = ", I);
  LLMPI_CHECK(last_dim(out) == O, op, ": ", out_name, " ", out.shape.str(),
              " does not end in O = ", O);
  const LinearSizes s{row_count(out), I, O};
  check_numel(op, "in", in, s.N * I);
  return s;
}

}  // namespace

LinearSizes linear_forward(const char* op, const Tensor& out, const Tensor& in, const Tensor& w,
                           const Tensor& bias) {
  const LinearSizes s = linear_sizes(op, in, w, "out", out);
  if (!bias.empty()) check_numel(op, "bias", bias, s.O);
  LLMPI_CHECK(out.data != in.data || s.N * s.O == 0, op, ": out must not alias in");
  return s;
}

LinearSizes linear_backward(const char* op, const Tensor& din, const Tensor& dw,
                            const Tensor& dbias, const Tensor& dout, const Tensor& in,
                            const Tensor& w) {
  const LinearSizes s = linear_sizes(op, in, w, "dout", dout);
  if (!din.empty()) check_numel(op, "din", din, s.N * s.I);
  if (!dw.empty())
    LLMPI_CHECK(dw.shape == w.shape, op, ": dw ", dw.shape.str(), " is not ", w.shape.str());
  if (!dbias.empty()) check_numel(op, "dbias", dbias, s.O);
  return s;
}

LinearSizes linear_block(const char* op, const char* wide_name, const Tensor& wide,
                         int64_t col0, const Tensor& in, const Tensor& w, const Tensor& din,
                         const Tensor& dw) {
  LLMPI_CHECK(w.shape.ndim == 2, op, ": w ", w.shape.str(), " is not [O, I]");
  const int64_t O = w.dim(0), I = w.dim(1), C = last_dim(wide);
  LLMPI_CHECK(last_dim(in) == I, op, ": in ", in.shape.str(), " does not end in I = ", I);
  LLMPI_CHECK(col0 >= 0 && col0 + O <= C, op, ": columns [", col0, ", ", col0 + O, ") of ",
              wide_name, " ", wide.shape.str(), " are out of range");
  const LinearSizes s{row_count(wide), I, O};
  check_numel(op, "in", in, s.N * I);
  if (!din.empty()) check_numel(op, "din", din, s.N * I);
  if (!dw.empty())
    LLMPI_CHECK(dw.shape == w.shape, op, ": dw ", dw.shape.str(), " is not ", w.shape.str());
  // No two of the tensors share memory (the products read what they accumulate into).
  const Tensor* all[] = {&wide, &in, &w, &din, &dw};
  auto held = [](const Tensor* t) { return !t->empty() && t->numel() > 0; };
  for (size_t i = 0; i < 5; ++i)
    for (size_t j = i + 1; j < 5; ++j)
      LLMPI_CHECK(!held(all[i]) || !held(all[j]) || all[i]->data != all[j]->data, op,
                  ": two of its tensors share memory");
  return s;
}

LinearSizes linear_gelu_forward(const char* op, const Tensor& out, const Tensor& pre,
                                const Tensor& in, const Tensor& w, const Tensor& bias) {
  const LinearSizes s = linear_forward(op, out, in, w, bias);
  check_rows(op, "pre", pre, s.N, s.O);
  const bool none = s.N * s.O == 0;
  LLMPI_CHECK(pre.data != out.data || none, op, ": out must not alias pre");
  LLMPI_CHECK(pre.data != in.data || none, op, ": pre must not alias in");
  return s;
}

LinearSizes linear_backward_gelu(const char* op, const Tensor& din, const Tensor& dw,
                                 const Tensor& dbias, const Tensor& dout, const Tensor& in,
                                 const Tensor& w, const Tensor& pre) {
  LLMPI_CHECK(!din.empty(), op, ": din is empty");
  const LinearSizes s = linear_backward(op, din, dw, dbias, dout, in, w);
  check_rows(op, "pre", pre, s.N, s.I);
  LLMPI_CHECK(din.data != pre.data || s.N * s.I == 0, op, ": din must not alias pre");
  return s;
}

RowSizes norm(const char* op, NormKind kind, const Tensor& x, const Tensor& gain,
              const Tensor& mean, const Tensor& rstd, const Tensor& bias, const Tensor& dgain,
              std::initializer_list<std::pair<const char*, const Tensor*>> rows, double eps) {
  const RowSizes s{row_count(x), last_dim(x)};
  for (const auto& [name, t] : rows) check_rows(op, name, *t, s.N, s.C);
  check_numel(op, "gain", gain, s.C);
  check_numel(op, "rstd", rstd, s.N);
  if (!dgain.empty()) check_numel(op, "dgain", dgain, s.C);
  LLMPI_CHECK(eps >= 0, op, ": eps ", eps, " < 0");
  if (kind == NormKind::layernorm) {
    check_numel(op, "mean", mean, s.N);
    if (!bias.empty()) check_numel(op, "bias", bias, s.C);
  } else {
    LLMPI_CHECK(bias.empty(), op, ": rmsnorm has no bias");
  }
  return s;
}

RowSizes add_norm(const char* op, NormKind kind, const Tensor& sum, const Tensor& out,
                  const Tensor& mean, const Tensor& rstd, const Tensor& a, const Tensor& b,
                  const Tensor& gain, const Tensor& bias, double eps) {
  LLMPI_CHECK(!b.empty(), op, ": b is empty");
  LLMPI_CHECK(!sum.empty(), op, ": sum is empty");
  return norm(op, kind, a, gain, mean, rstd, bias, Tensor{},
              {{"out", &out}, {"b", &b}, {"sum", &sum}}, eps);
}

RowSizes norm_backward_add(const char* op, NormKind kind, const Tensor& dx, const Tensor& dgain,
                           const Tensor& dbias, const Tensor& dout, const Tensor& dres,
                           const Tensor& x, const Tensor& gain, const Tensor& mean,
                           const Tensor& rstd) {
  LLMPI_CHECK(!dres.empty(), op, ": dres is empty");
  return norm(op, kind, x, gain, mean, rstd, dbias, dgain,
              {{"dx", &dx}, {"dout", &dout}, {"dres", &dres}}, 0.0);
}

void same_numel(const char* op, std::initializer_list<std::pair<const char*, const Tensor*>> ts) {
  const int64_t n = ts.begin()->second->numel();
  for (const auto& [name, t] : ts) check_numel(op, name, *t, n);
}

RowSizes swiglu(const char* op, const Tensor& rows, const Tensor& in, const Tensor& din) {
  const int64_t F = last_dim(rows), N = row_count(rows);
  LLMPI_CHECK(last_dim(in) == 2 * F, op, ": in ", in.shape.str(), " is not [N, 2·", F, "]");
  check_numel(op, "in", in, N * 2 * F);
  if (!din.empty()) check_numel(op, "din", din, N * 2 * F);
  return {N, F};
}

RowSizes rope(const char* op, const Tensor& qkv, int64_t T, int64_t n_rot_heads,
              int64_t head_dim, double theta) {
  const int64_t W = last_dim(qkv), rows = row_count(qkv);
  LLMPI_CHECK(T > 0 && rows % T == 0, op, ": qkv ", qkv.shape.str(), " has ", rows,
              " rows, not a multiple of T = ", T);
  LLMPI_CHECK(head_dim > 0 && head_dim % 2 == 0, op, ": head_dim ", head_dim, " is not even");
  LLMPI_CHECK(n_rot_heads >= 0 && n_rot_heads * head_dim <= W, op, ": ", n_rot_heads,
              " heads of ", head_dim, " exceed the row width ", W);
  LLMPI_CHECK(theta > 0, op, ": theta ", theta, " <= 0");
  return {rows, W};
}

void attention(const char* op, const Tensor& qkv, const Tensor& out, const Tensor& lse,
               int64_t B, int64_t T, int64_t Hq, int64_t Hkv, int64_t D) {
  LLMPI_CHECK(B >= 0 && T >= 0 && D > 0 && Hkv > 0 && Hq > 0 && Hq % Hkv == 0, op,
              ": bad sizes B=", B, " T=", T, " Hq=", Hq, " Hkv=", Hkv, " D=", D);
  check_numel(op, "qkv", qkv, B * T * (Hq + 2 * Hkv) * D);
  LLMPI_CHECK(B * T == 0 || last_dim(qkv) == (Hq + 2 * Hkv) * D, op, ": qkv ",
              qkv.shape.str(), " rows are not (Hq + 2·Hkv)·D = ", (Hq + 2 * Hkv) * D);
  check_numel(op, "out", out, B * T * Hq * D);
  check_numel(op, "lse", lse, B * Hq * T);
  LLMPI_CHECK(out.data != qkv.data || out.numel() == 0, op, ": out must not alias qkv");
}

void attention_grads(const char* op, const Tensor& qkv, const Tensor& dqkv, const Tensor& dout,
                     int64_t B, int64_t T, int64_t Hq, int64_t D) {
  check_numel(op, "dout", dout, B * T * Hq * D);
  check_numel(op, "dqkv", dqkv, qkv.numel());
  LLMPI_CHECK(dqkv.data != qkv.data || qkv.numel() == 0, op, ": dqkv must not alias qkv");
}

RowSizes logsumexp(const char* op, const Tensor& lse, const Tensor& logits) {
  const int64_t V = last_dim(logits), N = V ? row_count(logits) : lse.numel();
  check_numel(op, "lse", lse, N);
  return {N, V};
}

RowSizes cross_entropy(const char* op, const Tensor& logits, const Tensor& targets,
                       std::initializer_list<std::pair<const char*, const Tensor*>> rows,
                       std::initializer_list<std::pair<const char*, const Tensor*>> full) {
  const int64_t V = last_dim(logits), N = targets.numel();
  check_numel(op, "logits", logits, N * V);
  for (const auto& [name, t] : rows) check_numel(op, name, *t, N);
  for (const auto& [name, t] : full) check_numel(op, name, *t, N * V);
  return {N, V};
}

void adamw_slice(const char* op, const AdamWSlice& s) {
  const int64_t n = s.param.numel();
  check_numel(op, "grad", s.grad, n);
  check_numel(op, "m", s.m, n);
  check_numel(op, "v", s.v, n);
  if (s.compute.data != nullptr) check_numel(op, "compute", s.compute, n);
}

int64_t nf4_dequantize(const char* op, const Tensor& out, const Tensor& codes,
                       const Tensor& scale_codes, const Tensor& scale_scales) {
  const int64_t n = out.numel(), blocks = (n + kNf4Block - 1) / kNf4Block;
  check_numel(op, "codes", codes, (n + 1) / 2);
  check_numel(op, "scale_codes", scale_codes, blocks);
  check_numel(op, "scale_scales", scale_scales, (blocks + kNf4ScaleGroup - 1) / kNf4ScaleGroup);
  return n;
}

}  // namespace llmpi::op_shapes
