// Host backend op tests. One table of op cases (each builds its inputs, a forward and a
// backward) drives two checks for every op with a backward:
//   - f64 finite differences of loss = Σ out ⊙ R (central, eps 1e-6, every input element),
//     plus the gradient contract: activation grads overwritten (poisoned with 7.0 first),
//     parameter grads accumulated (a second backward adds the same amount again);
//   - f32 against f64 on the same (f32-representable) inputs, within 1e-5 relative.
// Then forward values against the naive references of op_reference.h, shard behavior,
// AdamW by hand, sum_squares, copy/bf16 rounding and argument checks.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "core/documents.h"
#include "core/error.h"
#include "core/rng.h"
#include "op_reference.h"

namespace llmpi {
namespace {

using ref::Vec;

// ---- helpers ------------------------------------------------------------------------------

// Normal values rounded to f32, so that f32 and f64 runs see identical inputs.
Vec randn(int64_t n, uint64_t seed, const char* stream, double scale = 1.0) {
  Vec v(n);
  const uint64_t key = rng_key(seed, stream);
  for (int64_t i = 0; i < n; ++i)
    v[i] = static_cast<double>(static_cast<float>(scale * rng_normal(key, i)));
  return v;
}

// Uniform integers in [lo, hi).
std::vector<int32_t> randint(int64_t n, uint64_t seed, const char* stream, int lo, int hi) {
  std::vector<int32_t> v(n);
  const uint64_t key = rng_key(seed, stream);
  for (int64_t i = 0; i < n; ++i)
    v[i] = lo + static_cast<int32_t>(rng_bits(key, i) % static_cast<uint64_t>(hi - lo));
  return v;
}

template <class T>
Tensor view_of(std::vector<T>& v, Shape s) {
  Tensor t;
  t.data = v.data();
  t.shape = s;
  t.dtype = dtype_of<T>::value;
  return t;
}

void write(Backend& be, const Tensor& dst, Vec values) {
  be.copy(dst, view_of(values, {static_cast<int64_t>(values.size())}));
}

Vec read(Backend& be, const Tensor& src) {
  Vec out(src.numel());
  be.copy(view_of(out, {src.numel()}), src);
  be.synchronize();
  return out;
}

Buffer upload(Backend& be, Shape s, DType dt, const Vec& values) {
  Buffer b = be.alloc(s, dt);
  write(be, b, values);
  return b;
}

Buffer upload_ids(Backend& be, std::vector<int32_t> ids) {
  Buffer b = be.alloc({static_cast<int64_t>(ids.size())}, DType::i32);
  be.copy(b, view_of(ids, {static_cast<int64_t>(ids.size())}));
  return b;
}

double max_abs(const Vec& a) {
  double m = 0;
  for (double x : a) m = std::max(m, std::fabs(x));
  return m;
}

// max |got − want| / max |want|: a norm-wise relative error, meaningful for vectors that
// have small entries.
double rel_err(const Vec& got, const Vec& want) {
  EXPECT_EQ(got.size(), want.size());
  double d = 0;
  for (size_t i = 0; i < got.size() && i < want.size(); ++i)
    d = std::max(d, std::fabs(got[i] - want[i]));
  const double scale = max_abs(want);
  return scale > 0 ? d / scale : d;
}

Vec minus(const Vec& a, const Vec& b) {
  Vec r(a.size());
  for (size_t i = 0; i < a.size(); ++i) r[i] = a[i] - b[i];
  return r;
}

// ---- the op table -------------------------------------------------------------------------

struct Wrt {
  std::string name;
  Tensor x, grad;
  bool param;  // parameter grads accumulate, activation grads are overwritten
};
struct Output {
  std::string name;
  Tensor value;
  Tensor weight;  // loss = Σ value ⊙ weight; empty: not part of the loss (statistics)
};

// An op instance: owned buffers, the differentiated inputs with their grads, the outputs,
// and closures running forward and backward (backward with dout = the loss weights).
struct GradProblem {
  std::vector<Buffer> mem;
  std::vector<Wrt> wrt;
  std::vector<Output> outputs;
  std::function<void()> forward, backward;

  Tensor keep(Buffer b) {
    mem.push_back(std::move(b));
    return mem.back().tensor();
  }
};

using Builder = std::function<void(Backend&, DType, GradProblem&)>;
struct OpCase {
  std::string name;
  Builder build;
};
void PrintTo(const OpCase& c, std::ostream* os) { *os << c.name; }

Builder linear_case(bool with_bias) {
  return [with_bias](Backend& be, DType dt, GradProblem& p) {
    const int64_t I = 5, O = 3;  // N = 2·2 rows, given as [B, T, ·] tensors
    const uint64_t seed = 101;
    Tensor in = p.keep(upload(be, {2, 2, I}, dt, randn(4 * I, seed, "in")));
    Tensor w = p.keep(upload(be, {O, I}, dt, randn(O * I, seed, "w")));
    Tensor b = with_bias ? p.keep(upload(be, {O}, dt, randn(O, seed, "b"))) : Tensor{};
    Tensor out = p.keep(be.alloc({2, 2, O}, dt));
    Tensor R = p.keep(upload(be, {2, 2, O}, dt, randn(4 * O, seed, "R")));
    Tensor din = p.keep(be.alloc({2, 2, I}, dt)), dw = p.keep(be.alloc({O, I}, dt));
    Tensor db = with_bias ? p.keep(be.alloc({O}, dt)) : Tensor{};
    p.wrt = {{"in", in, din, false}, {"w", w, dw, true}};
    if (with_bias) p.wrt.push_back({"bias", b, db, true});
    p.outputs = {{"out", out, R}};
    p.forward = [&be, out, in, w, b] { be.linear_forward(out, in, w, b); };
    p.backward = [&be, din, dw, db, R, in, w] { be.linear_backward(din, dw, db, R, in, w); };
  };
}

Builder norm_case(NormKind kind, bool with_bias) {
  return [kind, with_bias](Backend& be, DType dt, GradProblem& p) {
    const int64_t N = 3, C = 6;
    const uint64_t seed = 202;
    const bool ln = kind == NormKind::layernorm;
    Tensor x = p.keep(upload(be, {N, C}, dt, randn(N * C, seed, "x", 2.0)));
    Tensor gain = p.keep(upload(be, {C}, dt, randn(C, seed, "gain")));
    Tensor bias = with_bias ? p.keep(upload(be, {C}, dt, randn(C, seed, "bias"))) : Tensor{};
    Tensor out = p.keep(be.alloc({N, C}, dt));
    Tensor mean = ln ? p.keep(be.alloc({N}, dt)) : Tensor{};
    Tensor rstd = p.keep(be.alloc({N}, dt));
    Tensor R = p.keep(upload(be, {N, C}, dt, randn(N * C, seed, "R")));
    Tensor dx = p.keep(be.alloc({N, C}, dt)), dgain = p.keep(be.alloc({C}, dt));
    Tensor dbias = with_bias ? p.keep(be.alloc({C}, dt)) : Tensor{};
    p.wrt = {{"x", x, dx, false}, {"gain", gain, dgain, true}};
    if (with_bias) p.wrt.push_back({"bias", bias, dbias, true});
    p.outputs = {{"out", out, R}, {"rstd", rstd, {}}};
    if (ln) p.outputs.push_back({"mean", mean, {}});
    const double eps = 1e-5;
    p.forward = [&be, kind, out, mean, rstd, x, gain, bias, eps] {
      be.norm_forward(kind, out, mean, rstd, x, gain, bias, eps);
    };
    p.backward = [&be, kind, dx, dgain, dbias, R, x, gain, mean, rstd] {
      be.norm_backward(kind, dx, dgain, dbias, R, x, gain, mean, rstd);
    };
  };
}

// The residual stream's fused norm: sum = a + b and out = norm(sum) are both outputs (the sum
// is the residual carried on); backward gets d(sum) = R_sum directly plus the norm's part.
Builder add_norm_case(NormKind kind) {
  return [kind](Backend& be, DType dt, GradProblem& p) {
    const int64_t N = 3, C = 6;
    const uint64_t seed = 212;
    const bool ln = kind == NormKind::layernorm;
    Tensor a = p.keep(upload(be, {N, C}, dt, randn(N * C, seed, "a", 1.5)));
    Tensor b = p.keep(upload(be, {N, C}, dt, randn(N * C, seed, "b", 1.5)));
    Tensor gain = p.keep(upload(be, {C}, dt, randn(C, seed, "gain")));
    Tensor bias = ln ? p.keep(upload(be, {C}, dt, randn(C, seed, "bias"))) : Tensor{};
    Tensor sum = p.keep(be.alloc({N, C}, dt)), out = p.keep(be.alloc({N, C}, dt));
    Tensor mean = ln ? p.keep(be.alloc({N}, dt)) : Tensor{};
    Tensor rstd = p.keep(be.alloc({N}, dt));
    Tensor R = p.keep(upload(be, {N, C}, dt, randn(N * C, seed, "R")));
    Tensor Rs = p.keep(upload(be, {N, C}, dt, randn(N * C, seed, "Rs")));
    Tensor da = p.keep(be.alloc({N, C}, dt)), db = p.keep(be.alloc({N, C}, dt));
    Tensor dgain = p.keep(be.alloc({C}, dt));
    Tensor dbias = ln ? p.keep(be.alloc({C}, dt)) : Tensor{};
    p.wrt = {{"a", a, da, false}, {"b", b, db, false}, {"gain", gain, dgain, true}};
    if (ln) p.wrt.push_back({"bias", bias, dbias, true});
    p.outputs = {{"out", out, R}, {"sum", sum, Rs}, {"rstd", rstd, {}}};
    if (ln) p.outputs.push_back({"mean", mean, {}});
    const double eps = 1e-5;
    p.forward = [&be, kind, sum, out, mean, rstd, a, b, gain, bias, eps] {
      be.add_norm_forward(kind, sum, out, mean, rstd, a, b, gain, bias, eps);
    };
    // As the block runs it: the residual gradient accumulated in place (dx aliases dres).
    p.backward = [&be, kind, da, db, dgain, dbias, R, Rs, sum, gain, mean, rstd] {
      be.copy(da, Rs);
      be.norm_backward_add(kind, da, dgain, dbias, R, da, sum, gain, mean, rstd);
      be.copy(db, da);
    };
  };
}

// The GELU MLP through the fused ops: act = gelu(in·w1ᵀ + b1) (linear_gelu_forward),
// out = act·w2ᵀ + b2; backward through linear_backward_gelu, then linear_backward.
void mlp_gelu_case(Backend& be, DType dt, GradProblem& p) {
  const int64_t N = 4, C = 3, F = 5;
  const uint64_t seed = 313;
  Tensor in = p.keep(upload(be, {N, C}, dt, randn(N * C, seed, "in", 1.5)));
  Tensor w1 = p.keep(upload(be, {F, C}, dt, randn(F * C, seed, "w1")));
  Tensor b1 = p.keep(upload(be, {F}, dt, randn(F, seed, "b1")));
  Tensor w2 = p.keep(upload(be, {C, F}, dt, randn(C * F, seed, "w2")));
  Tensor b2 = p.keep(upload(be, {C}, dt, randn(C, seed, "b2")));
  Tensor pre = p.keep(be.alloc({N, F}, dt)), act = p.keep(be.alloc({N, F}, dt));
  Tensor out = p.keep(be.alloc({N, C}, dt));
  Tensor R = p.keep(upload(be, {N, C}, dt, randn(N * C, seed, "R")));
  Tensor din = p.keep(be.alloc({N, C}, dt)), dpre = p.keep(be.alloc({N, F}, dt));
  Tensor dw1 = p.keep(be.alloc({F, C}, dt)), db1 = p.keep(be.alloc({F}, dt));
  Tensor dw2 = p.keep(be.alloc({C, F}, dt)), db2 = p.keep(be.alloc({C}, dt));
  p.wrt = {{"in", in, din, false}, {"w1", w1, dw1, true}, {"b1", b1, db1, true},
           {"w2", w2, dw2, true},  {"b2", b2, db2, true}};
  p.outputs = {{"out", out, R}, {"pre", pre, {}}, {"act", act, {}}};
  p.forward = [&be, act, pre, in, w1, b1, out, w2, b2] {
    be.linear_gelu_forward(act, pre, in, w1, b1);
    be.linear_forward(out, act, w2, b2);
  };
  p.backward = [&be, dpre, dw2, db2, R, act, w2, pre, din, dw1, db1, in, w1] {
    be.linear_backward_gelu(dpre, dw2, db2, R, act, w2, pre);
    be.linear_backward(din, dw1, db1, dpre, in, w1);
  };
}

void gelu_case(Backend& be, DType dt, GradProblem& p) {
  const int64_t N = 3, F = 5;
  Tensor in = p.keep(upload(be, {N, F}, dt, randn(N * F, 303, "in", 1.5)));
  Tensor out = p.keep(be.alloc({N, F}, dt)), din = p.keep(be.alloc({N, F}, dt));
  Tensor R = p.keep(upload(be, {N, F}, dt, randn(N * F, 303, "R")));
  p.wrt = {{"in", in, din, false}};
  p.outputs = {{"out", out, R}};
  p.forward = [&be, out, in] { be.gelu_forward(out, in); };
  p.backward = [&be, din, R, in] { be.gelu_backward(din, R, in); };
}

void swiglu_case(Backend& be, DType dt, GradProblem& p) {
  const int64_t N = 3, F = 4;
  Tensor in = p.keep(upload(be, {N, 2 * F}, dt, randn(N * 2 * F, 404, "in", 1.5)));
  Tensor out = p.keep(be.alloc({N, F}, dt)), din = p.keep(be.alloc({N, 2 * F}, dt));
  Tensor R = p.keep(upload(be, {N, F}, dt, randn(N * F, 404, "R")));
  p.wrt = {{"in", in, din, false}};
  p.outputs = {{"out", out, R}};
  p.forward = [&be, out, in] { be.swiglu_forward(out, in); };
  p.backward = [&be, din, R, in] { be.swiglu_backward(din, R, in); };
}

// Document lengths of each row (packed documents), or {} for one document per row.
using RowDocs = std::vector<std::vector<int64_t>>;

// The doc_start of rows holding documents of the given lengths (empty for docs = {}).
std::vector<int32_t> doc_starts(const RowDocs& docs, int64_t T) {
  std::vector<int32_t> out;
  for (const auto& row : docs) {
    const std::vector<int32_t> r = doc_start_from_lengths(row, T);
    out.insert(out.end(), r.begin(), r.end());
  }
  return out;
}

Tensor keep_docs(Backend& be, GradProblem& p, const RowDocs& docs, int64_t T) {
  return docs.empty() ? Tensor{} : p.keep(upload_ids(be, doc_starts(docs, T)));
}

Builder rope_case(RowDocs docs) {
  return [docs](Backend& be, DType dt, GradProblem& p) {
    const int64_t T = docs.empty() ? 3 : 7, Hq = 2, Hkv = 1, D = 4, W = (Hq + 2 * Hkv) * D;
    const int64_t B = 2;
    Tensor x = p.keep(upload(be, {B, T, W}, dt, randn(B * T * W, 505, "x")));
    Tensor y = p.keep(be.alloc({B, T, W}, dt)), dx = p.keep(be.alloc({B, T, W}, dt));
    Tensor R = p.keep(upload(be, {B, T, W}, dt, randn(B * T * W, 505, "R")));
    Tensor ds = keep_docs(be, p, docs, T);
    p.wrt = {{"qkv", x, dx, false}};
    p.outputs = {{"rotated", y, R}};
    // Forward on a copy (rope is in place); backward = inverse rotation of dout.
    p.forward = [&be, x, y, T, Hq, Hkv, D, ds] {
      be.copy(y, x);
      be.rope(y, T, Hq + Hkv, D, 100.0, 2, ds, false);
    };
    p.backward = [&be, dx, R, T, Hq, Hkv, D, ds] {
      be.copy(dx, R);
      be.rope(dx, T, Hq + Hkv, D, 100.0, 2, ds, true);
    };
  };
}

Builder attention_case(int64_t B, int64_t T, int64_t Hq, int64_t Hkv, int64_t D,
                       RowDocs docs = {}) {
  return [=](Backend& be, DType dt, GradProblem& p) {
    const int64_t W = (Hq + 2 * Hkv) * D;
    Tensor qkv = p.keep(upload(be, {B, T, W}, dt, randn(B * T * W, 606, "qkv")));
    Tensor out = p.keep(be.alloc({B, T, Hq * D}, dt)), lse = p.keep(be.alloc({B, Hq, T}, dt));
    Tensor R = p.keep(upload(be, {B, T, Hq * D}, dt, randn(B * T * Hq * D, 606, "R")));
    Tensor dqkv = p.keep(be.alloc({B, T, W}, dt));
    Tensor ds = keep_docs(be, p, docs, T);
    p.wrt = {{"qkv", qkv, dqkv, false}};
    p.outputs = {{"out", out, R}, {"lse", lse, {}}};
    p.forward = [=, &be] { be.attention_forward(out, lse, qkv, B, T, Hq, Hkv, D, ds); };
    p.backward = [=, &be] {
      be.attention_backward(dqkv, R, qkv, out, lse, B, T, Hq, Hkv, D, ds);
    };
  };
}

void embedding_case(Backend& be, DType dt, GradProblem& p) {
  // A shard of rows [2, 7) of a 10-row table; ids repeat and fall inside and outside it.
  const int64_t N = 8, R = 5, C = 3, offset = 2;
  std::vector<int32_t> ids = {3, 0, 6, 3, 9, 2, 4, 3};
  Tensor id_t = p.keep(upload_ids(be, ids));
  Tensor table = p.keep(upload(be, {R, C}, dt, randn(R * C, 707, "table")));
  Tensor out = p.keep(be.alloc({N, C}, dt)), dtable = p.keep(be.alloc({R, C}, dt));
  Tensor Rw = p.keep(upload(be, {N, C}, dt, randn(N * C, 707, "R")));
  p.wrt = {{"table", table, dtable, true}};
  p.outputs = {{"out", out, Rw}};
  p.forward = [&be, out, id_t, table] { be.embedding_forward(out, id_t, table, offset, false); };
  p.backward = [&be, dtable, Rw, id_t] { be.embedding_backward(dtable, Rw, id_t, offset); };
}

void cross_entropy_case(Backend& be, DType dt, GradProblem& p) {
  // A vocab shard of columns [3, 8): targets inside, outside and ignored (−1). The shard's
  // part of the loss is Σ_n scale_n·(lse_n − picked_n) over counted rows.
  const int64_t N = 6, V = 5, offset = 3;
  std::vector<int32_t> targets = {4, 7, -1, 0, 3, 9};
  Vec scale = randn(N, 808, "scale");
  Vec w_lse(N), w_picked(N);
  for (int64_t n = 0; n < N; ++n) {
    w_lse[n] = targets[n] >= 0 ? scale[n] : 0.0;
    w_picked[n] = -w_lse[n];
  }
  Tensor tg = p.keep(upload_ids(be, targets));
  Tensor logits = p.keep(upload(be, {N, V}, dt, randn(N * V, 808, "logits", 2.0)));
  Tensor lse = p.keep(be.alloc({N}, dt)), picked = p.keep(be.alloc({N}, dt));
  Tensor row_scale = p.keep(upload(be, {N}, dt, scale));
  Tensor wl = p.keep(upload(be, {N}, dt, w_lse)), wp = p.keep(upload(be, {N}, dt, w_picked));
  Tensor dlogits = p.keep(be.alloc({N, V}, dt));
  p.wrt = {{"logits", logits, dlogits, false}};
  p.outputs = {{"lse", lse, wl}, {"picked", picked, wp}};
  p.forward = [&be, lse, picked, logits, tg] {
    be.row_logsumexp(lse, logits);
    be.pick_targets(picked, logits, tg, offset);
  };
  p.backward = [&be, dlogits, logits, lse, tg, row_scale] {
    be.cross_entropy_backward(dlogits, logits, lse, tg, row_scale, offset);
  };
}

std::vector<OpCase> op_cases() {
  return {
      {"linear", linear_case(true)},
      {"linear_nobias", linear_case(false)},
      {"layernorm", norm_case(NormKind::layernorm, true)},
      {"layernorm_nobias", norm_case(NormKind::layernorm, false)},
      {"rmsnorm", norm_case(NormKind::rmsnorm, false)},
      {"add_layernorm", add_norm_case(NormKind::layernorm)},
      {"add_rmsnorm", add_norm_case(NormKind::rmsnorm)},
      {"mlp_gelu_fused", mlp_gelu_case},
      {"gelu", gelu_case},
      {"swiglu", swiglu_case},
      {"rope", rope_case({})},
      {"rope_packed", rope_case({{2, 4, 1}, {7}})},
      {"attention_gqa", attention_case(2, 4, 4, 2, 4)},
      {"attention_mha", attention_case(1, 5, 2, 2, 4)},
      // T > 64: several query and key blocks of the tiled kernels.
      {"attention_multiblock", attention_case(1, 70, 2, 1, 4)},
      // Packed documents: one-token documents, a document across the block boundary at 64,
      // query rows of block 1 that see nothing of key block 0 (row 0: t >= 65), and a block
      // whose first document starts at 64 (row 1: key block 0 skipped).
      {"attention_packed", attention_case(2, 6, 4, 2, 4, {{1, 3, 2}, {2, 1, 1, 2}})},
      {"attention_packed_multiblock", attention_case(2, 70, 2, 1, 4, {{5, 60, 5}, {64, 6}})},
      {"embedding", embedding_case},
      {"cross_entropy", cross_entropy_case},
  };
}

double weighted_loss(Backend& be, GradProblem& p) {
  p.forward();
  double loss = 0;
  for (const Output& o : p.outputs) {
    if (o.weight.empty()) continue;
    const Vec v = read(be, o.value), w = read(be, o.weight);
    for (size_t i = 0; i < v.size(); ++i) loss += v[i] * w[i];
  }
  return loss;
}

// Initial grad contents: random for parameter grads (they must be accumulated onto),
// 7.0 for activation grads (they must be overwritten).
Vec initial_grad(const Wrt& w) {
  return w.param ? randn(w.grad.numel(), 909, w.name.c_str()) : Vec(w.grad.numel(), 7.0);
}

class HostOpTable : public ::testing::TestWithParam<OpCase> {};

TEST_P(HostOpTable, GradientsMatchFiniteDifferencesF64) {
  auto be = make_host_backend();
  GradProblem p;
  GetParam().build(*be, DType::f64, p);
  constexpr double eps = 1e-6;

  std::vector<Vec> numeric;
  for (const Wrt& w : p.wrt) {
    Vec x = read(*be, w.x), g(x.size());
    for (size_t i = 0; i < x.size(); ++i) {
      const double x0 = x[i];
      x[i] = x0 + eps;
      write(*be, w.x, x);
      const double lp = weighted_loss(*be, p);
      x[i] = x0 - eps;
      write(*be, w.x, x);
      const double lm = weighted_loss(*be, p);
      x[i] = x0;
      g[i] = (lp - lm) / (2 * eps);
    }
    write(*be, w.x, x);
    EXPECT_GT(max_abs(g), 1e-3) << w.name << ": the check needs a non-trivial gradient";
    numeric.push_back(std::move(g));
  }

  p.forward();
  std::vector<Vec> init, first;
  for (const Wrt& w : p.wrt) {
    init.push_back(initial_grad(w));
    write(*be, w.grad, init.back());
  }
  p.backward();
  for (size_t k = 0; k < p.wrt.size(); ++k) {
    const Vec got = minus(read(*be, p.wrt[k].grad), p.wrt[k].param ? init[k] : Vec(init[k].size()));
    EXPECT_LE(rel_err(got, numeric[k]), 1e-6) << "d" << p.wrt[k].name;
    first.push_back(got);
  }

  // Second backward: parameter grads gain the same amount again, activation grads are
  // replaced again (re-poisoned first).
  for (size_t k = 0; k < p.wrt.size(); ++k)
    if (!p.wrt[k].param) write(*be, p.wrt[k].grad, init[k]);
  p.backward();
  for (size_t k = 0; k < p.wrt.size(); ++k) {
    const Vec got = read(*be, p.wrt[k].grad);
    if (p.wrt[k].param) {
      Vec twice = first[k];
      for (double& x : twice) x *= 2;
      EXPECT_LE(rel_err(minus(got, init[k]), twice), 1e-12) << "d" << p.wrt[k].name << " twice";
    } else {
      EXPECT_EQ(got, first[k]) << "d" << p.wrt[k].name << " must be overwritten";
    }
  }
}

TEST_P(HostOpTable, F32AgreesWithF64) {
  auto be = make_host_backend();
  GradProblem p32, p64;
  GetParam().build(*be, DType::f32, p32);
  GetParam().build(*be, DType::f64, p64);
  p32.forward();
  p64.forward();
  for (size_t k = 0; k < p64.outputs.size(); ++k)
    EXPECT_LE(rel_err(read(*be, p32.outputs[k].value), read(*be, p64.outputs[k].value)), 1e-5)
        << p64.outputs[k].name;
  for (size_t k = 0; k < p64.wrt.size(); ++k) {
    const Vec init = initial_grad(p64.wrt[k]);
    write(*be, p32.wrt[k].grad, init);
    write(*be, p64.wrt[k].grad, init);
  }
  p32.backward();
  p64.backward();
  for (size_t k = 0; k < p64.wrt.size(); ++k)
    EXPECT_LE(rel_err(read(*be, p32.wrt[k].grad), read(*be, p64.wrt[k].grad)), 1e-5)
        << "d" << p64.wrt[k].name;
}

INSTANTIATE_TEST_SUITE_P(HostOps, HostOpTable, ::testing::ValuesIn(op_cases()),
                         [](const ::testing::TestParamInfo<OpCase>& info) {
                           return info.param.name;
                         });

// ---- forward values against the references ----------------------------------------------

TEST(HostOps, AttentionMatchesExplicitSoftmax) {
  auto be = make_host_backend();
  struct Cfg { int64_t B, T, Hq, Hkv, D; RowDocs docs; };
  const std::vector<Cfg> cfgs = {
      {2, 7, 4, 2, 8, {}}, {2, 6, 3, 3, 4, {}}, {1, 9, 4, 1, 6, {}}, {1, 150, 4, 2, 8, {}},
      // Packed: documents inside one block, across the 64-row blocks, starting exactly at a
      // block boundary, one-token documents; the explicit mask of op_reference.h.
      {2, 9, 4, 2, 8, {{3, 1, 5}, {9}}},
      {2, 150, 4, 2, 8, {{1, 63, 1, 30, 55}, {70, 10, 64, 6}}},
      {1, 200, 2, 1, 4, {{128, 1, 71}}},
  };
  for (const Cfg& c : cfgs) {
    const int64_t W = (c.Hq + 2 * c.Hkv) * c.D;
    const Vec qkv = randn(c.B * c.T * W, 11 + c.Hkv, "qkv", 1.5);
    const std::vector<int32_t> ds = doc_starts(c.docs, c.T);
    Buffer q = upload(*be, {c.B, c.T, W}, DType::f64, qkv);
    Buffer out = be->alloc({c.B, c.T, c.Hq * c.D}, DType::f64);
    Buffer lse = be->alloc({c.B, c.Hq, c.T}, DType::f64);
    Buffer dsb = ds.empty() ? Buffer{} : upload_ids(*be, ds);
    be->attention_forward(out, lse, q, c.B, c.T, c.Hq, c.Hkv, c.D, dsb);
    Vec want_lse;
    const Vec want = ref::attention(qkv, c.B, c.T, c.Hq, c.Hkv, c.D, want_lse, ds);
    EXPECT_LE(rel_err(read(*be, out), want), 1e-12)
        << "T=" << c.T << " Hq=" << c.Hq << " Hkv=" << c.Hkv << " docs=" << !ds.empty();
    EXPECT_LE(rel_err(read(*be, lse), want_lse), 1e-12)
        << "T=" << c.T << " Hq=" << c.Hq << " Hkv=" << c.Hkv << " docs=" << !ds.empty();
  }
}

TEST(HostOps, PackedAttentionEqualsEachDocumentAlone) {
  // Row = [doc a | doc b | doc c]: every output row and lse equal those of its document run
  // as a batch row of its own (so nothing leaks across a boundary, in either direction).
  auto be = make_host_backend();
  const int64_t Hq = 2, Hkv = 1, D = 8, W = (Hq + 2 * Hkv) * D;
  const std::vector<int64_t> lens = {40, 65, 25};
  const int64_t T = 130;
  const Vec qkv = randn(T * W, 77, "qkv", 1.5);
  const std::vector<int32_t> ds = doc_start_from_lengths(lens, T);
  Buffer q = upload(*be, {1, T, W}, DType::f64, qkv), dsb = upload_ids(*be, ds);
  Buffer out = be->alloc({1, T, Hq * D}, DType::f64), lse = be->alloc({1, Hq, T}, DType::f64);
  be->attention_forward(out, lse, q, 1, T, Hq, Hkv, D, dsb);
  const Vec packed = read(*be, out), packed_lse = read(*be, lse);
  int64_t t0 = 0;
  for (int64_t len : lens) {
    Vec part(qkv.begin() + t0 * W, qkv.begin() + (t0 + len) * W);
    Buffer qp = upload(*be, {1, len, W}, DType::f64, part);
    Buffer op = be->alloc({1, len, Hq * D}, DType::f64), lp = be->alloc({1, Hq, len}, DType::f64);
    be->attention_forward(op, lp, qp, 1, len, Hq, Hkv, D, Tensor{});
    const Vec alone = read(*be, op), alone_lse = read(*be, lp);
    for (int64_t t = 0; t < len; ++t) {
      for (int64_t i = 0; i < Hq * D; ++i)
        ASSERT_NEAR(packed[(t0 + t) * Hq * D + i], alone[t * Hq * D + i], 1e-12) << t0 + t;
      for (int64_t h = 0; h < Hq; ++h)
        ASSERT_NEAR(packed_lse[h * T + t0 + t], alone_lse[h * len + t], 1e-12) << t0 + t;
    }
    t0 += len;
  }
}

TEST(HostOps, NormsMatchFormulas) {
  auto be = make_host_backend();
  const int64_t N = 5, C = 16;
  const double eps = 1e-5;
  const Vec x = randn(N * C, 21, "x", 3.0), gain = randn(C, 21, "gain"), bias = randn(C, 21, "b");
  Buffer xb = upload(*be, {N, C}, DType::f64, x), gb = upload(*be, {C}, DType::f64, gain);
  Buffer bb = upload(*be, {C}, DType::f64, bias);
  Buffer out = be->alloc({N, C}, DType::f64), mean = be->alloc({N}, DType::f64),
         rstd = be->alloc({N}, DType::f64);

  Vec want_mean, want_rstd;
  be->norm_forward(NormKind::layernorm, out, mean, rstd, xb, gb, bb, eps);
  const Vec ln = ref::layernorm(x, gain, bias, N, C, eps, want_mean, want_rstd);
  EXPECT_LE(rel_err(read(*be, out), ln), 1e-13);
  EXPECT_LE(rel_err(read(*be, mean), want_mean), 1e-13);
  EXPECT_LE(rel_err(read(*be, rstd), want_rstd), 1e-13);

  be->norm_forward(NormKind::rmsnorm, out, Tensor{}, rstd, xb, gb, Tensor{}, eps);
  const Vec rms = ref::rmsnorm(x, gain, N, C, eps, want_rstd);
  EXPECT_LE(rel_err(read(*be, out), rms), 1e-13);
  EXPECT_LE(rel_err(read(*be, rstd), want_rstd), 1e-13);
}

// The fused ops give, on the host, exactly the bits of the compositions they replace, in
// the aliasings the model uses (sum = a in place; dx = dres in place).
void check_fused_equal_compositions(DType dt) {
  auto be = make_host_backend();
  const int64_t N = 7, C = 12, F = 10;
  const double eps = 1e-5;
  for (NormKind kind : {NormKind::layernorm, NormKind::rmsnorm}) {
    const bool ln = kind == NormKind::layernorm;
    const Vec a = randn(N * C, 31, "a", 2.0), b = randn(N * C, 31, "b");
    Buffer ab = upload(*be, {N, C}, dt, a), bb = upload(*be, {N, C}, dt, b);
    Buffer gain = upload(*be, {C}, dt, randn(C, 31, "gain"));
    Buffer bias = ln ? upload(*be, {C}, dt, randn(C, 31, "bias")) : Buffer{};
    auto stats = [&] { return ln ? be->alloc({N}, dt) : Buffer{}; };
    Buffer s1 = be->alloc({N, C}, dt), o1 = be->alloc({N, C}, dt), m1 = stats(),
           r1 = be->alloc({N}, dt);
    be->add(s1, ab, bb);
    be->norm_forward(kind, o1, m1, r1, s1, gain, bias, eps);
    Buffer o2 = be->alloc({N, C}, dt), m2 = stats(), r2 = be->alloc({N}, dt);
    be->add_norm_forward(kind, ab, o2, m2, r2, ab, bb, gain, bias, eps);  // in place on a
    EXPECT_EQ(read(*be, ab), read(*be, s1)) << "sum";
    EXPECT_EQ(read(*be, o2), read(*be, o1)) << "out";
    EXPECT_EQ(read(*be, r2), read(*be, r1)) << "rstd";
    if (ln) EXPECT_EQ(read(*be, m2), read(*be, m1)) << "mean";

    const Vec dres = randn(N * C, 32, "dres"), dout = randn(N * C, 32, "dout");
    Buffer dob = upload(*be, {N, C}, dt, dout), t = be->alloc({N, C}, dt);
    Buffer dx1 = be->alloc({N, C}, dt), dx2 = upload(*be, {N, C}, dt, dres);
    Buffer dr = upload(*be, {N, C}, dt, dres);
    const Vec g0 = randn(C, 33, "g0");
    Buffer dg1 = upload(*be, {C}, dt, g0), dg2 = upload(*be, {C}, dt, g0);
    Buffer db1 = ln ? upload(*be, {C}, dt, g0) : Buffer{}, db2 = ln ? upload(*be, {C}, dt, g0) : Buffer{};
    be->norm_backward(kind, t, dg1, db1, dob, s1, gain, m1, r1);
    be->add(dx1, dr, t);
    be->norm_backward_add(kind, dx2, dg2, db2, dob, dx2, s1, gain, m1, r1);  // dx aliases dres
    EXPECT_EQ(read(*be, dx2), read(*be, dx1)) << "dx";
    EXPECT_EQ(read(*be, dg2), read(*be, dg1)) << "dgain";
    if (ln) EXPECT_EQ(read(*be, db2), read(*be, db1)) << "dbias";
  }
  Buffer in = upload(*be, {N, C}, dt, randn(N * C, 34, "in")), w = upload(*be, {F, C}, dt, randn(F * C, 34, "w"));
  Buffer bias = upload(*be, {F}, dt, randn(F, 34, "bias"));
  Buffer pre1 = be->alloc({N, F}, dt), act1 = be->alloc({N, F}, dt);
  Buffer pre2 = be->alloc({N, F}, dt), act2 = be->alloc({N, F}, dt);
  be->linear_forward(pre1, in, w, bias);
  be->gelu_forward(act1, pre1);
  be->linear_gelu_forward(act2, pre2, in, w, bias);
  EXPECT_EQ(read(*be, pre2), read(*be, pre1)) << "pre";
  EXPECT_EQ(read(*be, act2), read(*be, act1)) << "act";
  Buffer w2 = upload(*be, {C, F}, dt, randn(C * F, 35, "w2")), dy = upload(*be, {N, C}, dt, randn(N * C, 35, "dy"));
  Buffer d1 = be->alloc({N, F}, dt), d2 = be->alloc({N, F}, dt);
  Buffer dw1 = be->alloc({C, F}, dt), dw2 = be->alloc({C, F}, dt);
  be->fill(dw1, 0.5);
  be->fill(dw2, 0.5);
  be->linear_backward(d1, dw1, Tensor{}, dy, act1, w2);
  be->gelu_backward(d1, d1, pre1);
  be->linear_backward_gelu(d2, dw2, Tensor{}, dy, act1, w2, pre1);
  EXPECT_EQ(read(*be, d2), read(*be, d1)) << "dpre";
  EXPECT_EQ(read(*be, dw2), read(*be, dw1)) << "dw";
}

TEST(HostOps, FusedOpsEqualTheirCompositionsF32) { check_fused_equal_compositions(DType::f32); }
TEST(HostOps, FusedOpsEqualTheirCompositionsF64) { check_fused_equal_compositions(DType::f64); }

TEST(HostOps, RopeMatchesExplicitRotationAndInverts) {
  auto be = make_host_backend();
  const int64_t B = 2, T = 5, Hq = 4, Hkv = 2, D = 8, W = (Hq + 2 * Hkv) * D;
  const Vec x = randn(B * T * W, 31, "x");
  Buffer t = upload(*be, {B, T, W}, DType::f64, x);
  be->rope(t, T, Hq + Hkv, D, 10000.0, 3, Tensor{}, false);
  const Vec rotated = read(*be, t);
  EXPECT_LE(rel_err(rotated, ref::rope(x, B * T, W, T, Hq + Hkv, D, 10000.0, 3, false)), 1e-13);
  // v heads are untouched, q/k heads moved.
  for (int64_t r = 0; r < B * T; ++r)
    for (int64_t i = (Hq + Hkv) * D; i < W; ++i) ASSERT_EQ(rotated[r * W + i], x[r * W + i]);
  EXPECT_GT(rel_err(rotated, x), 1e-2);
  be->rope(t, T, Hq + Hkv, D, 10000.0, 3, Tensor{}, true);
  EXPECT_LE(rel_err(read(*be, t), x), 1e-14);

  // Packed documents: positions restart at each document start.
  const std::vector<int32_t> ds = doc_starts({{2, 3}, {1, 1, 3}}, T);
  Buffer dsb = upload_ids(*be, ds);
  write(*be, t, x);
  be->rope(t, T, Hq + Hkv, D, 10000.0, 0, dsb, false);
  const Vec packed = read(*be, t);
  EXPECT_LE(rel_err(packed, ref::rope(x, B * T, W, T, Hq + Hkv, D, 10000.0, 0, false, ds)),
            1e-13);
  for (int64_t i = 0; i < W; ++i)  // row 1, t = 2 starts a document: position 0, unrotated
    ASSERT_EQ(packed[2 * W + i], x[2 * W + i]);
  be->rope(t, T, Hq + Hkv, D, 10000.0, 0, dsb, true);
  EXPECT_LE(rel_err(read(*be, t), x), 1e-14);
}

TEST(HostOps, CrossEntropyMatchesLogSoftmaxAndShardsCombine) {
  auto be = make_host_backend();
  const int64_t N = 8, V = 11, split = 5;
  const Vec logits = randn(N * V, 41, "logits", 3.0);
  std::vector<int32_t> targets = randint(N, 41, "targets", 0, V);
  targets[2] = -1;  // ignored
  Buffer lg = upload(*be, {N, V}, DType::f64, logits), tg = upload_ids(*be, targets);
  Buffer lse = be->alloc({N}, DType::f64), picked = be->alloc({N}, DType::f64);
  be->row_logsumexp(lse, lg);
  be->pick_targets(picked, lg, tg, 0);
  const Vec l = read(*be, lse), pk = read(*be, picked);
  const Vec logp = ref::log_softmax(logits, N, V);
  EXPECT_LE(rel_err(l, ref::row_logsumexp(logits, N, V)), 1e-14);
  for (int64_t n = 0; n < N; ++n) {
    if (targets[n] < 0) {
      EXPECT_EQ(pk[n], 0.0) << "ignored target picks 0";
      continue;
    }
    EXPECT_NEAR(l[n] - pk[n], -logp[n * V + targets[n]], 1e-12) << "row " << n;
  }

  // Two vocab shards [0, split) and [split, V): lse combines as log Σ exp, picked as a sum,
  // and each shard's dlogits (with the combined lse) is its slice of the full one.
  const Vec scale = randn(N, 41, "scale");
  Buffer sc = upload(*be, {N}, DType::f64, scale), dfull = be->alloc({N, V}, DType::f64);
  be->cross_entropy_backward(dfull, lg, lse, tg, sc, 0);
  const Vec full_grad = read(*be, dfull);
  Vec shard_lse_sum(N, 0.0), picked_sum(N, 0.0);
  for (int64_t s = 0; s < 2; ++s) {
    const int64_t c0 = s ? split : 0, w = s ? V - split : split;
    Vec part(N * w);
    for (int64_t n = 0; n < N; ++n)
      for (int64_t c = 0; c < w; ++c) part[n * w + c] = logits[n * V + c0 + c];
    Buffer pb = upload(*be, {N, w}, DType::f64, part);
    Buffer sl = be->alloc({N}, DType::f64), sp = be->alloc({N}, DType::f64);
    be->row_logsumexp(sl, pb);
    be->pick_targets(sp, pb, tg, c0);
    const Vec slv = read(*be, sl), spv = read(*be, sp);
    for (int64_t n = 0; n < N; ++n) {
      shard_lse_sum[n] += std::exp(slv[n]);
      picked_sum[n] += spv[n];
      const bool inside = targets[n] >= c0 && targets[n] < c0 + w;
      if (!inside) {
        EXPECT_EQ(spv[n], 0.0) << "target outside shard " << s << " picks 0";
      }
    }
    be->cross_entropy_backward(pb, pb, lse, tg, sc, c0);  // in place: dlogits aliases logits
    const Vec g = read(*be, pb);
    for (int64_t n = 0; n < N; ++n)
      for (int64_t c = 0; c < w; ++c)
        EXPECT_NEAR(g[n * w + c], full_grad[n * V + c0 + c], 1e-14) << n << "," << c0 + c;
  }
  for (int64_t n = 0; n < N; ++n) {
    EXPECT_NEAR(std::log(shard_lse_sum[n]), l[n], 1e-12);
    EXPECT_EQ(picked_sum[n], pk[n]);
  }
  for (int64_t c = 0; c < V; ++c) EXPECT_EQ(full_grad[2 * V + c], 0.0) << "ignored row";
}

TEST(HostOps, EmbeddingShardsGiveZeroOutsideAndAccumulate) {
  auto be = make_host_backend();
  const int64_t N = 12, C = 4, Vfull = 9, split = 4;
  const Vec full = randn(Vfull * C, 51, "table");
  const std::vector<int32_t> ids = randint(N, 51, "ids", 0, Vfull);
  Buffer idb = upload_ids(*be, ids);
  const Vec base = randn(N * C, 51, "base");
  Buffer acc = upload(*be, {N, C}, DType::f64, base);
  for (int64_t s = 0; s < 2; ++s) {
    const int64_t r0 = s ? split : 0, R = s ? Vfull - split : split;
    const Vec part(full.begin() + r0 * C, full.begin() + (r0 + R) * C);
    Buffer tb = upload(*be, {R, C}, DType::f64, part);
    Buffer out = upload(*be, {N, C}, DType::f64, randn(N * C, 51, "garbage"));
    be->embedding_forward(out, idb, tb, r0, false);
    EXPECT_EQ(read(*be, out), ref::embedding(ids, part, R, C, r0)) << "shard " << s;
    be->embedding_forward(acc, idb, tb, r0, true);
  }
  // base + Σ_shards = base + the full lookup.
  const Vec want_full = ref::embedding(ids, full, Vfull, C, 0);
  Vec want(N * C);
  for (int64_t i = 0; i < N * C; ++i) want[i] = base[i] + want_full[i];
  EXPECT_LE(rel_err(read(*be, acc), want), 1e-15);
}

TEST(HostOps, LinearAndActivationsMatchReferences) {
  auto be = make_host_backend();
  const int64_t N = 7, I = 9, O = 5;
  const Vec in = randn(N * I, 61, "in"), w = randn(O * I, 61, "w"), b = randn(O, 61, "b");
  Buffer ib = upload(*be, {N, I}, DType::f64, in), wb = upload(*be, {O, I}, DType::f64, w);
  Buffer bb = upload(*be, {O}, DType::f64, b), out = be->alloc({N, O}, DType::f64);
  be->linear_forward(out, ib, wb, bb);
  EXPECT_LE(rel_err(read(*be, out), ref::linear(in, w, b, N, I, O)), 1e-14);
  be->linear_forward(out, ib, wb, Tensor{});
  EXPECT_LE(rel_err(read(*be, out), ref::linear(in, w, {}, N, I, O)), 1e-14);

  Buffer g = be->alloc({N, I}, DType::f64);
  be->gelu_forward(g, ib);
  const Vec gv = read(*be, g);
  for (int64_t i = 0; i < N * I; ++i) EXPECT_NEAR(gv[i], ref::gelu(in[i]), 1e-15);

  const int64_t F = 4;
  const Vec sw_in = randn(N * 2 * F, 61, "swiglu");
  Buffer sb = upload(*be, {N, 2 * F}, DType::f64, sw_in), so = be->alloc({N, F}, DType::f64);
  be->swiglu_forward(so, sb);
  EXPECT_LE(rel_err(read(*be, so), ref::swiglu(sw_in, N, F)), 1e-15);
}

// The block products (LoRA's branches on a packed map) against explicit loops: they add into
// columns [col0, col0 + O) of a wider matrix and leave its other columns bit for bit alone.
TEST(HostOps, BlockProductsAccumulateIntoTheirColumnsOnly) {
  auto be = make_host_backend();
  const int64_t N = 6, I = 5, C = 11, col0 = 3, O = 4;
  const Vec wide0 = randn(N * C, 73, "wide"), in = randn(N * I, 73, "in"), w = randn(O * I, 73, "w");
  Buffer wide = upload(*be, {N, C}, DType::f64, wide0);
  Buffer ib = upload(*be, {N, I}, DType::f64, in), wb = upload(*be, {O, I}, DType::f64, w);
  be->linear_forward_add_block(wide, col0, ib, wb);
  const Vec got = read(*be, wide);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c) {
      const int64_t o = c - col0;
      if (o < 0 || o >= O) {
        EXPECT_EQ(got[n * C + c], wide0[n * C + c]) << "column " << c << " outside the block";
        continue;
      }
      double want = wide0[n * C + c];
      for (int64_t i = 0; i < I; ++i) want += in[n * I + i] * w[o * I + i];
      EXPECT_NEAR(got[n * C + c], want, 1e-13) << n << ", " << c;
    }

  const Vec dout = randn(N * C, 74, "dout"), din0 = randn(N * I, 74, "din"), dw0 = randn(O * I, 74, "dw");
  Buffer db = upload(*be, {N, C}, DType::f64, dout);
  Buffer din = upload(*be, {N, I}, DType::f64, din0), dw = upload(*be, {O, I}, DType::f64, dw0);
  be->linear_backward_block(din, dw, db, col0, ib, wb);
  const Vec gdin = read(*be, din), gdw = read(*be, dw);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t i = 0; i < I; ++i) {
      double want = din0[n * I + i];
      for (int64_t o = 0; o < O; ++o) want += dout[n * C + col0 + o] * w[o * I + i];
      EXPECT_NEAR(gdin[n * I + i], want, 1e-13) << "din " << n << ", " << i;
    }
  for (int64_t o = 0; o < O; ++o)
    for (int64_t i = 0; i < I; ++i) {
      double want = dw0[o * I + i];
      for (int64_t n = 0; n < N; ++n) want += dout[n * C + col0 + o] * in[n * I + i];
      EXPECT_NEAR(gdw[o * I + i], want, 1e-13) << "dw " << o << ", " << i;
    }
  // Each output alone: the other is skipped, and what is given accumulates again.
  be->linear_backward_block(Tensor{}, dw, db, col0, ib, wb);
  const Vec gdw2 = read(*be, dw);
  for (int64_t j = 0; j < O * I; ++j) EXPECT_NEAR(gdw2[j] - gdw[j], gdw[j] - dw0[j], 1e-13);
  EXPECT_EQ(read(*be, din), gdin);

  // Bad arguments: the block past the last column, a negative start, an output that is an input.
  EXPECT_THROW(be->linear_forward_add_block(wide, C - O + 1, ib, wb), InternalError);
  EXPECT_THROW(be->linear_forward_add_block(wide, -1, ib, wb), InternalError);
  EXPECT_THROW(be->linear_backward_block(ib, Tensor{}, db, col0, ib, wb), InternalError);
  Buffer short_in = be->alloc({N - 1, I}, DType::f64);
  EXPECT_THROW(be->linear_forward_add_block(wide, col0, short_in, wb), InternalError);
}

TEST(HostOps, LinearBackwardSkipsEmptyOutputs) {
  auto be = make_host_backend();
  const int64_t N = 6, I = 4, O = 3;
  Buffer in = upload(*be, {N, I}, DType::f64, randn(N * I, 71, "in"));
  Buffer w = upload(*be, {O, I}, DType::f64, randn(O * I, 71, "w"));
  Buffer dout = upload(*be, {N, O}, DType::f64, randn(N * O, 71, "dout"));
  Buffer din = be->alloc({N, I}, DType::f64), dw = be->alloc({O, I}, DType::f64),
         db = be->alloc({O}, DType::f64);
  be->fill(dw, 0.0);
  be->fill(db, 0.0);
  be->linear_backward(din, dw, db, dout, in, w);
  const Vec din_all = read(*be, din), dw_all = read(*be, dw), db_all = read(*be, db);

  Buffer din2 = upload(*be, {N, I}, DType::f64, randn(N * I, 71, "poison"));
  be->linear_backward(din2, Tensor{}, Tensor{}, dout, in, w);  // din only
  EXPECT_EQ(read(*be, din2), din_all);
  be->linear_backward(Tensor{}, dw, Tensor{}, dout, in, w);  // dw only: now doubled
  Vec twice = dw_all;
  for (double& x : twice) x *= 2;
  EXPECT_LE(rel_err(read(*be, dw), twice), 1e-15);
  EXPECT_EQ(read(*be, db), db_all) << "dbias untouched when empty";
}

// ---- optimizer ----------------------------------------------------------------------------

template <class T>
void check_adamw_by_hand(double tol) {
  auto be = make_host_backend();
  const DType dt = dtype_of<T>::value;
  const int64_t n0 = 7, n1 = 4;
  AdamWHyper h;
  h.lr = 0.01f;
  h.beta1 = 0.8f;
  h.beta2 = 0.9f;
  h.eps = 1e-6f;
  h.grad_scale = 0.5f;
  const float wd[2] = {0.1f, 0.f};
  const int64_t sizes[2] = {n0, n1};
  std::vector<Buffer> p, g, m, v;
  std::vector<Vec> ps, ms(2), vs(2);
  for (int s = 0; s < 2; ++s) {
    ps.push_back(randn(sizes[s], 81 + s, "p"));
    p.push_back(upload(*be, {sizes[s]}, dt, ps[s]));
    g.push_back(be->alloc({sizes[s]}, dt));
    m.push_back(upload(*be, {sizes[s]}, dt, Vec(sizes[s], 0.0)));
    v.push_back(upload(*be, {sizes[s]}, dt, Vec(sizes[s], 0.0)));
    ms[s].assign(sizes[s], 0.0);
    vs[s].assign(sizes[s], 0.0);
  }
  std::vector<AdamWSlice> slices;
  for (int s = 0; s < 2; ++s) slices.push_back({p[s], g[s], m[s], v[s], wd[s]});
  const double b1 = h.beta1, b2 = h.beta2, eps = h.eps, lr = h.lr, gs = h.grad_scale;
  for (int step = 1; step <= 3; ++step) {
    h.step = step;
    for (int s = 0; s < 2; ++s) {
      const Vec grad = randn(sizes[s], 90 + step, s ? "g1" : "g0");
      write(*be, g[s], grad);
      for (int64_t i = 0; i < sizes[s]; ++i) {  // the documented update, by hand
        const double gi = gs * grad[i];
        ms[s][i] = b1 * ms[s][i] + (1 - b1) * gi;
        vs[s][i] = b2 * vs[s][i] + (1 - b2) * gi * gi;
        const double mhat = ms[s][i] / (1 - std::pow(b1, step));
        const double vhat = vs[s][i] / (1 - std::pow(b2, step));
        ps[s][i] -= lr * (mhat / (std::sqrt(vhat) + eps) + double(wd[s]) * ps[s][i]);
      }
    }
    be->adamw_update(slices, h);
    for (int s = 0; s < 2; ++s) {
      EXPECT_LE(rel_err(read(*be, p[s]), ps[s]), tol) << "param, step " << step;
      EXPECT_LE(rel_err(read(*be, m[s]), ms[s]), tol) << "m, step " << step;
      EXPECT_LE(rel_err(read(*be, v[s]), vs[s]), tol) << "v, step " << step;
    }
  }
}

TEST(HostOps, AdamWThreeStepsByHandF64) { check_adamw_by_hand<double>(1e-14); }
TEST(HostOps, AdamWThreeStepsByHandF32) { check_adamw_by_hand<float>(1e-6); }

TEST(HostOps, SumSquaresIsExactOnIntegers) {
  auto be = make_host_backend();
  const std::vector<int32_t> a = randint(1000, 91, "a", -100, 101);
  const std::vector<int32_t> b = randint(333, 91, "b", -100, 101);
  const std::vector<int32_t> c = randint(77, 91, "c", -100, 101);
  int64_t want = 0;
  for (const auto* x : {&a, &b, &c})
    for (int32_t v : *x) want += int64_t(v) * v;
  auto to_vec = [](const std::vector<int32_t>& x) { return Vec(x.begin(), x.end()); };
  Buffer ta = upload(*be, {1000}, DType::f32, to_vec(a));
  Buffer tb = upload(*be, {333}, DType::f64, to_vec(b));
  Buffer tc = upload(*be, {77}, DType::bf16, to_vec(c));  // integers ≤ 256 are exact in bf16
  Buffer empty = be->alloc({0}, DType::f32);
  const Tensor ts[] = {ta, tb, tc, empty};
  EXPECT_EQ(be->sum_squares(ts), static_cast<double>(want));
}

// ---- memory and elementwise ---------------------------------------------------------------

float bf16_round_trip(Backend& be, double x, DType from) {
  Buffer src = upload(be, {1}, from, {x});
  Buffer mid = be.alloc({1}, DType::bf16);
  be.copy(mid, src);
  return static_cast<float>(read(be, mid)[0]);
}

TEST(HostOps, CopyRoundsBf16ToNearestEven) {
  auto be = make_host_backend();
  const double ulp = std::ldexp(1.0, -7);  // bf16 spacing in [1, 2)
  for (DType from : {DType::f32, DType::f64}) {
    EXPECT_EQ(bf16_round_trip(*be, 1.0 + ulp / 2, from), 1.0f) << "tie → even (down)";
    EXPECT_EQ(bf16_round_trip(*be, 1.0 + 3 * ulp / 2, from), float(1.0 + 2 * ulp)) << "tie up";
    EXPECT_EQ(bf16_round_trip(*be, -(1.0 + 0.6 * ulp), from), -float(1.0 + ulp));
    EXPECT_TRUE(std::isnan(bf16_round_trip(*be, std::nan(""), from)));
    EXPECT_EQ(bf16_round_trip(*be, INFINITY, from), INFINITY);
  }
  // Just above a tie in f64 but a tie after rounding to f32: no double rounding.
  EXPECT_EQ(bf16_round_trip(*be, 1.0 + ulp / 2 + std::ldexp(1.0, -40), DType::f64),
            float(1.0 + ulp));

  // Random values: the bf16 result is one of the two neighbours and the nearer one.
  const Vec x = randn(200, 95, "x", 10.0);
  Buffer src = upload(*be, {200}, DType::f32, x), mid = be->alloc({200}, DType::bf16);
  be->copy(mid, src);
  const Vec y = read(*be, mid);
  for (size_t i = 0; i < x.size(); ++i) {
    const uint32_t bits = std::bit_cast<uint32_t>(static_cast<float>(x[i]));
    const float lo = std::bit_cast<float>(bits & 0xFFFF0000u);
    const float hi = std::bit_cast<float>((bits & 0xFFFF0000u) + 0x10000u);
    ASSERT_TRUE(y[i] == lo || y[i] == hi) << x[i];
    EXPECT_LE(std::fabs(y[i] - x[i]), std::fabs(double(y[i] == lo ? hi : lo) - x[i])) << x[i];
  }
}

TEST(HostOps, CopyFillAddScale) {
  auto be = make_host_backend();
  const int64_t n = 37;
  const Vec a = randn(n, 97, "a"), b = randn(n, 97, "b");
  Buffer a32 = upload(*be, {n}, DType::f32, a), b64 = upload(*be, {n}, DType::f64, b);
  EXPECT_EQ(read(*be, a32), a) << "f64 → f32 → f64 is exact on f32 values";
  Buffer b32 = be->alloc({n}, DType::f32);
  be->copy(b32, b64);
  be->add(a32, a32, b32);  // out aliases a
  be->scale(a32, -0.5);
  const Vec got = read(*be, a32);
  for (int64_t i = 0; i < n; ++i)
    EXPECT_EQ(got[i], double(-0.5f * (float(a[i]) + float(b[i]))));
  be->fill(b64, 2.25);
  EXPECT_EQ(read(*be, b64), Vec(n, 2.25));
  std::vector<int32_t> ids(5);
  Buffer ib = be->alloc({5}, DType::i32);
  be->fill(ib, -3);
  be->copy(view_of(ids, {5}), ib);
  EXPECT_EQ(ids, std::vector<int32_t>(5, -3));
}

TEST(HostOps, RejectsBadArguments) {
  auto be = make_host_backend();
  Buffer x = be->alloc({4, 6}, DType::f32), w = be->alloc({3, 5}, DType::f32);
  Buffer out = be->alloc({4, 3}, DType::f32), x64 = be->alloc({4, 6}, DType::f64);
  Buffer ids = be->alloc({4, 6}, DType::i32);
  be->fill(x, 1.0);
  be->fill(w, 1.0);
  EXPECT_THROW(be->linear_forward(out, x, w, Tensor{}), InternalError);  // I: 6 vs 5
  EXPECT_THROW(be->gelu_forward(x, x64), InternalError);                 // dtype mismatch
  EXPECT_THROW(be->gelu_forward(ids, ids), InternalError);               // not a float dtype
  Buffer qkv = be->alloc({1, 2, 4 * 2}, DType::f32), ao = be->alloc({1, 2, 3 * 2}, DType::f32),
         lse = be->alloc({1, 3, 2}, DType::f32);
  EXPECT_THROW(be->attention_forward(ao, lse, qkv, 1, 2, 3, 2, 2, Tensor{}),
               InternalError);  // 3 % 2
  // Document starts that break the contract (backend.h): not 0 at t = 0, a jump to neither
  // the previous start nor t, the wrong count, the wrong dtype.
  Buffer q2 = be->alloc({1, 4, 3 * 2}, DType::f32), o2 = be->alloc({1, 4, 2}, DType::f32),
         l2 = be->alloc({1, 1, 4}, DType::f32);
  be->fill(q2, 0.5);
  for (const std::vector<int32_t>& bad :
       {std::vector<int32_t>{1, 1, 2, 2}, {0, 0, 1, 1}, {0, 0, 2}, {0, 1, 1, 0}}) {
    Buffer ds = upload_ids(*be, bad);
    EXPECT_THROW(be->attention_forward(o2, l2, q2, 1, 4, 1, 1, 2, ds), InternalError);
    EXPECT_THROW(be->rope(q2, 4, 2, 2, 10000.0, 0, ds, false), InternalError);
  }
  Buffer ds_f32 = be->alloc({4}, DType::f32);
  be->fill(ds_f32, 0.0);
  EXPECT_THROW(be->attention_forward(o2, l2, q2, 1, 4, 1, 1, 2, ds_f32), InternalError);
  Buffer good = upload_ids(*be, {0, 1, 1, 3});
  EXPECT_NO_THROW(be->attention_forward(o2, l2, q2, 1, 4, 1, 1, 2, good));
  Buffer gain = be->alloc({6}, DType::f32), rstd = be->alloc({4}, DType::f32),
         mean = be->alloc({4}, DType::f32), small = be->alloc({4, 5}, DType::f32);
  EXPECT_THROW(be->add_norm_forward(NormKind::rmsnorm, x, x, Tensor{}, rstd, x, small, gain,
                                    Tensor{}, 1e-5),
               InternalError);  // b is [4, 5], not [4, 6]
  EXPECT_THROW(be->norm_backward_add(NormKind::layernorm, x, gain, Tensor{}, x, Tensor{}, x, gain,
                                     mean, rstd),
               InternalError);  // no residual gradient
  Buffer pre = be->alloc({4, 3}, DType::f32);
  EXPECT_THROW(be->linear_gelu_forward(out, out, x, w, Tensor{}), InternalError);  // out = pre
  EXPECT_THROW(be->linear_backward_gelu(x, Tensor{}, Tensor{}, out, x, w, pre), InternalError);
}

}  // namespace
}  // namespace llmpi
