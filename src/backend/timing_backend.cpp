// TimingBackend (see timing_backend.h): every op forwarded between two clock marks, with the
// FLOPs and bytes of its floors (the conventions of docs/performance.md's profiles).
#include "backend/timing_backend.h"

#include <algorithm>
#include <map>
#include <utility>

#include "core/error.h"

namespace llmpi {
namespace {

double bytes_of(const Tensor& t) {
  return t.data ? static_cast<double>(t.numel()) * static_cast<double>(dtype_size(t.dtype)) : 0.0;
}

std::string weight_shape(const Tensor& w) {
  return std::to_string(w.shape[0]) + "x" + std::to_string(w.shape[1]);
}

// A block product's FLOPs (one product, 2·N·O·I) and the bytes of its block of the wide
// matrix (N·O elements of `wide`'s dtype); x [N, I], w [O, I].
std::pair<double, double> block_costs(const Tensor& wide, const Tensor& x, const Tensor& w) {
  const double n = double(x.numel()) / double(std::max<int64_t>(w.dim(1), 1));
  return {2.0 * n * double(w.numel()), n * double(w.dim(0)) * double(dtype_size(wide.dtype))};
}

}  // namespace

int64_t HostOpClock::mark() {
  be_.synchronize();
  marks_.push_back(std::chrono::steady_clock::now());
  return static_cast<int64_t>(marks_.size()) - 1;
}

double HostOpClock::ms_between(int64_t a, int64_t b) {
  LLMPI_CHECK(0 <= a && a <= b && b < static_cast<int64_t>(marks_.size()), "marks ", a, ", ", b,
              " of ", marks_.size());
  return std::chrono::duration<double, std::milli>(marks_[size_t(b)] - marks_[size_t(a)]).count();
}

template <class F>
void TimingBackend::timed(const char* op, std::string shape, double flops, double bytes, F&& f) {
  OpRecord r;
  r.op = op;
  r.shape = std::move(shape);
  r.flops = flops;
  r.bytes = bytes;
  r.begin = clock_.mark();
  f();
  r.end = clock_.mark();
  records_.push_back(std::move(r));
}

std::vector<OpRecord> TimingBackend::records() {
  std::vector<OpRecord> out = records_;
  for (OpRecord& r : out) r.ms = clock_.ms_between(r.begin, r.end);
  return out;
}

void TimingBackend::clear() {
  records_.clear();
  clock_.clear();
}

void TimingBackend::copy(const Tensor& d, const Tensor& s) {
  timed("copy", "", 0, bytes_of(d) + bytes_of(s), [&] { in_.copy(d, s); });
}
void TimingBackend::fill(const Tensor& t, double v) {
  timed("fill", "", 0, bytes_of(t), [&] { in_.fill(t, v); });
}
void TimingBackend::add(const Tensor& o, const Tensor& a, const Tensor& b) {
  timed("add", "", 0, bytes_of(o) + bytes_of(a) + bytes_of(b), [&] { in_.add(o, a, b); });
}
void TimingBackend::scale(const Tensor& t, double s) {
  timed("scale", "", 0, 2 * bytes_of(t), [&] { in_.scale(t, s); });
}
void TimingBackend::embedding_forward(const Tensor& out, const Tensor& ids, const Tensor& table,
                                      int64_t ro, bool acc) {
  timed("embedding_forward", "", 0, (acc ? 3 : 2) * bytes_of(out) + bytes_of(ids),
        [&] { in_.embedding_forward(out, ids, table, ro, acc); });
}
void TimingBackend::embedding_backward(const Tensor& dt, const Tensor& dout, const Tensor& ids,
                                       int64_t ro) {
  timed("embedding_backward", "", 0, 3 * bytes_of(dout) + bytes_of(ids),
        [&] { in_.embedding_backward(dt, dout, ids, ro); });
}
void TimingBackend::linear_forward(const Tensor& out, const Tensor& x, const Tensor& w,
                                   const Tensor& b) {
  const double f = 2.0 * static_cast<double>(x.shape[0]) * static_cast<double>(w.numel());
  timed("linear_forward", weight_shape(w), f, bytes_of(out) + bytes_of(x) + bytes_of(w) + bytes_of(b),
        [&] { in_.linear_forward(out, x, w, b); });
}
void TimingBackend::linear_backward(const Tensor& dx, const Tensor& dw, const Tensor& db,
                                    const Tensor& dout, const Tensor& x, const Tensor& w) {
  const double mm = 2.0 * static_cast<double>(dout.shape[0]) * static_cast<double>(w.numel());
  const double f = (dx.data ? mm : 0) + (dw.data ? mm : 0);
  const double by = bytes_of(dx) + 2 * bytes_of(dw) + 2 * bytes_of(db) + bytes_of(dout) +
                    bytes_of(x) + bytes_of(w);
  timed("linear_backward", weight_shape(w), f, by, [&] { in_.linear_backward(dx, dw, db, dout, x, w); });
}
void TimingBackend::linear_forward_add_block(const Tensor& out, int64_t col0, const Tensor& x,
                                             const Tensor& w) {
  const auto [mm, block] = block_costs(out, x, w);
  timed("linear_forward_add_block", weight_shape(w), mm, 2 * block + bytes_of(x) + bytes_of(w),
        [&] { in_.linear_forward_add_block(out, col0, x, w); });
}
void TimingBackend::linear_backward_block(const Tensor& dx, const Tensor& dw, const Tensor& dout,
                                          int64_t col0, const Tensor& x, const Tensor& w) {
  const auto [mm, block] = block_costs(dout, x, w);
  timed("linear_backward_block", weight_shape(w), (dx.data ? mm : 0) + (dw.data ? mm : 0),
        block + 2 * bytes_of(dx) + 2 * bytes_of(dw) + bytes_of(x) + bytes_of(w),
        [&] { in_.linear_backward_block(dx, dw, dout, col0, x, w); });
}
void TimingBackend::norm_forward(NormKind k, const Tensor& out, const Tensor& mean,
                                 const Tensor& rstd, const Tensor& x, const Tensor& g,
                                 const Tensor& b, double eps) {
  timed("norm_forward", "", 0, bytes_of(out) + bytes_of(x),
        [&] { in_.norm_forward(k, out, mean, rstd, x, g, b, eps); });
}
void TimingBackend::norm_backward(NormKind k, const Tensor& dx, const Tensor& dg, const Tensor& db,
                                  const Tensor& dout, const Tensor& x, const Tensor& g,
                                  const Tensor& mean, const Tensor& rstd) {
  timed("norm_backward", "", 0, bytes_of(dx) + bytes_of(dout) + bytes_of(x),
        [&] { in_.norm_backward(k, dx, dg, db, dout, x, g, mean, rstd); });
}
void TimingBackend::add_norm_forward(NormKind k, const Tensor& sum, const Tensor& out,
                                     const Tensor& mean, const Tensor& rstd, const Tensor& a,
                                     const Tensor& b, const Tensor& g, const Tensor& bias,
                                     double eps) {
  timed("add_norm_forward", "", 0, bytes_of(sum) + bytes_of(out) + bytes_of(a) + bytes_of(b),
        [&] { in_.add_norm_forward(k, sum, out, mean, rstd, a, b, g, bias, eps); });
}
void TimingBackend::norm_backward_add(NormKind k, const Tensor& dx, const Tensor& dg,
                                      const Tensor& db, const Tensor& dout, const Tensor& dres,
                                      const Tensor& x, const Tensor& g, const Tensor& mean,
                                      const Tensor& rstd) {
  timed("norm_backward_add", "", 0, bytes_of(dx) + bytes_of(dout) + bytes_of(dres) + bytes_of(x),
        [&] { in_.norm_backward_add(k, dx, dg, db, dout, dres, x, g, mean, rstd); });
}
void TimingBackend::linear_gelu_forward(const Tensor& out, const Tensor& pre, const Tensor& x,
                                        const Tensor& w, const Tensor& b) {
  const double f = 2.0 * static_cast<double>(x.shape[0]) * static_cast<double>(w.numel());
  timed("linear_gelu_forward", weight_shape(w), f,
        bytes_of(out) + bytes_of(pre) + bytes_of(x) + bytes_of(w) + bytes_of(b),
        [&] { in_.linear_gelu_forward(out, pre, x, w, b); });
}
void TimingBackend::linear_backward_gelu(const Tensor& dx, const Tensor& dw, const Tensor& db,
                                         const Tensor& dout, const Tensor& x, const Tensor& w,
                                         const Tensor& pre) {
  const double mm = 2.0 * static_cast<double>(dout.shape[0]) * static_cast<double>(w.numel());
  const double f = mm + (dw.data ? mm : 0);
  const double by = bytes_of(dx) + 2 * bytes_of(dw) + 2 * bytes_of(db) + bytes_of(dout) +
                    bytes_of(x) + bytes_of(w) + bytes_of(pre);
  timed("linear_backward_gelu", weight_shape(w), f, by,
        [&] { in_.linear_backward_gelu(dx, dw, db, dout, x, w, pre); });
}
void TimingBackend::gelu_forward(const Tensor& o, const Tensor& i) {
  timed("gelu_forward", "", 0, bytes_of(o) + bytes_of(i), [&] { in_.gelu_forward(o, i); });
}
void TimingBackend::gelu_backward(const Tensor& di, const Tensor& d, const Tensor& i) {
  timed("gelu_backward", "", 0, bytes_of(di) + bytes_of(d) + bytes_of(i),
        [&] { in_.gelu_backward(di, d, i); });
}
void TimingBackend::swiglu_forward(const Tensor& o, const Tensor& i) {
  timed("swiglu_forward", "", 0, bytes_of(o) + bytes_of(i), [&] { in_.swiglu_forward(o, i); });
}
void TimingBackend::swiglu_backward(const Tensor& di, const Tensor& d, const Tensor& i) {
  timed("swiglu_backward", "", 0, bytes_of(di) + bytes_of(d) + bytes_of(i),
        [&] { in_.swiglu_backward(di, d, i); });
}
void TimingBackend::rope(const Tensor& qkv, int64_t T, int64_t nr, int64_t hd, double th,
                         int64_t po, const Tensor& ds, bool inv) {
  timed(inv ? "rope_backward" : "rope_forward", "", 0, 2 * bytes_of(qkv),
        [&] { in_.rope(qkv, T, nr, hd, th, po, ds, inv); });
}
void TimingBackend::attention_forward(const Tensor& out, const Tensor& lse, const Tensor& qkv,
                                      int64_t B, int64_t T, int64_t Hq, int64_t Hkv, int64_t D,
                                      const Tensor& ds) {
  // FLOPs as if unpacked (packed documents do less work: the rate is then a lower bound).
  const double f = 2.0 * double(B) * double(Hq) * double(T) * double(T) * double(D);  // causal half of 4·B·H·T²·D
  timed("attention_forward", "", f, bytes_of(out) + bytes_of(lse) + bytes_of(qkv),
        [&] { in_.attention_forward(out, lse, qkv, B, T, Hq, Hkv, D, ds); });
}
void TimingBackend::attention_backward(const Tensor& dqkv, const Tensor& dout, const Tensor& qkv,
                                       const Tensor& out, const Tensor& lse, int64_t B, int64_t T,
                                       int64_t Hq, int64_t Hkv, int64_t D, const Tensor& ds) {
  const double f = 5.0 * double(B) * double(Hq) * double(T) * double(T) * double(D);  // 5 causal products
  timed("attention_backward", "", f,
        bytes_of(dqkv) + bytes_of(dout) + bytes_of(qkv) + bytes_of(out) + bytes_of(lse),
        [&] { in_.attention_backward(dqkv, dout, qkv, out, lse, B, T, Hq, Hkv, D, ds); });
}
void TimingBackend::nf4_dequantize(const Tensor& out, const Tensor& c, const Tensor& sc,
                                   const Tensor& ss, double off) {
  timed("nf4_dequantize", "", 0, bytes_of(out) + bytes_of(c) + bytes_of(sc) + bytes_of(ss),
        [&] { in_.nf4_dequantize(out, c, sc, ss, off); });
}
void TimingBackend::row_logsumexp(const Tensor& lse, const Tensor& logits) {
  timed("row_logsumexp", "", 0, bytes_of(logits), [&] { in_.row_logsumexp(lse, logits); });
}
void TimingBackend::pick_targets(const Tensor& p, const Tensor& l, const Tensor& t, int64_t co) {
  timed("pick_targets", "", 0, bytes_of(p) + bytes_of(t), [&] { in_.pick_targets(p, l, t, co); });
}
void TimingBackend::cross_entropy_backward(const Tensor& dl, const Tensor& l, const Tensor& lse,
                                           const Tensor& t, const Tensor& rs, int64_t co) {
  timed("cross_entropy_backward", "", 0, bytes_of(dl) + bytes_of(l),
        [&] { in_.cross_entropy_backward(dl, l, lse, t, rs, co); });
}
double TimingBackend::sum_squares(std::span<const Tensor> ts) {
  double by = 0;
  for (const Tensor& t : ts) by += bytes_of(t);
  double r = 0;
  timed("sum_squares", "", 0, by, [&] { r = in_.sum_squares(ts); });
  return r;
}
void TimingBackend::adamw_update(std::span<const AdamWSlice> sl, const AdamWHyper& h) {
  double by = 0;
  for (const AdamWSlice& s : sl)
    by += 2 * (bytes_of(s.param) + bytes_of(s.m) + bytes_of(s.v)) + bytes_of(s.grad) +
          bytes_of(s.compute);
  timed("adamw_update", "", 0, by, [&] { in_.adamw_update(sl, h); });
}

std::vector<OpSummary> summarize_ops(std::span<const OpRecord> records) {
  std::map<std::string, OpSummary> by;
  for (const OpRecord& r : records) {
    OpSummary& s = by[r.label()];
    s.label = r.label();
    ++s.calls;
    s.ms += r.ms;
    s.flops += r.flops;
    s.bytes += r.bytes;
  }
  std::vector<OpSummary> rows;
  for (auto& [k, s] : by) rows.push_back(s);
  std::sort(rows.begin(), rows.end(), [](const OpSummary& a, const OpSummary& b) { return a.ms > b.ms; });
  return rows;
}

}  // namespace llmpi
