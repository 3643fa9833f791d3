// One table-driven test of the CUDA backend against the host backend (the f32 reference):
// every op of backend.h, forward and backward, on fresh random inputs. Inputs are drawn
// once in f32, rounded to bf16 where the CUDA op takes bf16, and given identically to both
// backends, so a difference measures only the CUDA op's arithmetic and bf16 outputs.
// Outputs are poisoned with NaN before each op (accumulated outputs start from the same
// random values on both sides). Error = ‖cuda − host‖ / ‖host‖ per output, against a per-row
// tolerance: 1e-2 where the CUDA output is bf16, 1e-5 for f32 paths (optimizer, loss
// statistics). Attention rows run the own kernels and cuDNN's fused graph separately.
// The fused rows (issue 16: residual add + norm, GELU epilogues, one-pass SwiGLU) run twice:
// on the default backend (fusions on) and on one with LLMPI_FUSED=none semantics (the
// compositions of the unfused kernels), both against the host; where a reduction must be
// reproducible, a second CUDA run is compared bit for bit.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <functional>
#include <limits>
#include <string>
#include <tuple>
#include <vector>

#include "backend/backend.h"
#include "backend/cuda/cuda_backend.h"
#include "core/documents.h"
#include "core/error.h"
#include "core/rng.h"
#include "quant/nf4.h"

namespace llmpi {
namespace {

constexpr double kBf16Tol = 1e-2;
constexpr double kF32Tol = 1e-5;
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

float round_to_bf16(float x) {
  uint32_t u = std::bit_cast<uint32_t>(x);
  u += 0x7FFFu + ((u >> 16) & 1u);
  return std::bit_cast<float>(u & 0xFFFF0000u);
}

// A tensor held twice: host memory in f32 (the reference's) and device memory in the dtype
// the CUDA op takes.
struct Twin {
  Buffer h, d;
  const Tensor& host() const { return h.tensor(); }
  const Tensor& dev() const { return d.tensor(); }
};

// Everything one table row needs: both backends, a random stream, and the error record.
class OpEnv {
 public:
  OpEnv(Backend& host, Backend& cuda, uint64_t key) : host_(host), cuda_(cuda), key_(key) {}
  Backend& host() { return host_; }
  Backend& cuda() { return cuda_; }

  // Normal(0, scale²) values (+ shift), rounded to bf16 when the device dtype is bf16.
  Twin random(Shape s, DType dt, double scale = 1.0, double shift = 0.0, bool positive = false) {
    Twin t{host_.alloc(s, DType::f32), cuda_.alloc(s, dt)};
    float* p = t.h.ptr<float>();
    for (int64_t i = 0; i < s.numel(); ++i) {
      double v = scale * rng_normal(key_, counter_++) + shift;
      if (positive) v = std::fabs(v) + 1e-3;
      p[i] = dt == DType::bf16 ? round_to_bf16(static_cast<float>(v)) : static_cast<float>(v);
    }
    cuda_.copy(t.dev(), t.host());
    return t;
  }
  // i32 values uniform in [lo, hi).
  Twin ints(Shape s, int lo, int hi) {
    Twin t{host_.alloc(s, DType::i32), cuda_.alloc(s, DType::i32)};
    int32_t* p = t.h.ptr<int32_t>();
    for (int64_t i = 0; i < s.numel(); ++i)
      p[i] = lo + static_cast<int32_t>(rng_bits(key_, counter_++) % static_cast<uint64_t>(hi - lo));
    cuda_.copy(t.dev(), t.host());
    return t;
  }
  // The document starts (i32 [B·T]) of rows holding documents of these lengths; an empty
  // pair (one document per row) for docs = {}.
  Twin doc_starts(const std::vector<std::vector<int64_t>>& docs, int64_t T) {
    if (docs.empty()) return {};
    std::vector<int32_t> all;
    for (const auto& row : docs) {
      const std::vector<int32_t> r = doc_start_from_lengths(row, T);
      all.insert(all.end(), r.begin(), r.end());
    }
    const Shape s{static_cast<int64_t>(all.size())};
    Twin t{host_.alloc(s, DType::i32), cuda_.alloc(s, DType::i32)};
    host_.copy(t.host(), host_tensor(all.data(), s, DType::i32));
    cuda_.copy(t.dev(), host_tensor(all.data(), s, DType::i32));
    cuda_.synchronize();
    return t;
  }
  Twin poisoned(Shape s, DType dt) {
    Twin t{host_.alloc(s, DType::f32), cuda_.alloc(s, dt)};
    host_.fill(t.host(), kNaN);
    cuda_.fill(t.dev(), kNaN);
    return t;
  }
  // A device copy (dtype dt) of a host f32 tensor computed by the reference.
  Twin from_host(const Tensor& h, DType dt) {
    Twin t{host_.alloc(h.shape, DType::f32), cuda_.alloc(h.shape, dt)};
    host_.copy(t.host(), h);
    cuda_.copy(t.dev(), h);
    return t;
  }

  // ‖cuda − host‖ / ‖host‖ (‖cuda − host‖ when host is all zero); +inf if any NaN.
  void check(const std::string& what, const Twin& t) {
    cuda_.synchronize();
    host_.synchronize();
    Buffer got = host_.alloc(t.host().shape, DType::f32);
    cuda_.copy(got, t.dev());
    errors_.push_back({what, relative_error(got.ptr<const float>(), t.h.ptr<const float>(),
                                            t.host().numel())});
  }
  void check_scalar(const std::string& what, double got, double want) {
    errors_.push_back({what, std::isfinite(got) ? std::fabs(got - want) / std::fabs(want)
                                                : std::numeric_limits<double>::infinity()});
  }
  // 0 when the two device tensors hold the same bits, +inf otherwise.
  void check_same(const std::string& what, const Tensor& a, const Tensor& b) {
    cuda_.synchronize();
    std::vector<char> x(a.bytes()), y(b.bytes());
    cuda_.copy(host_tensor(x.data(), a.shape, a.dtype), a);
    cuda_.copy(host_tensor(y.data(), b.shape, b.dtype), b);
    errors_.push_back({what, x == y ? 0.0 : std::numeric_limits<double>::infinity()});
  }
  const std::vector<std::pair<std::string, double>>& errors() const { return errors_; }

 private:
  static double relative_error(const float* a, const float* b, int64_t n) {
    double diff = 0, norm = 0;
    for (int64_t i = 0; i < n; ++i) {
      if (!std::isfinite(a[i])) return std::numeric_limits<double>::infinity();
      diff += (static_cast<double>(a[i]) - b[i]) * (static_cast<double>(a[i]) - b[i]);
      norm += static_cast<double>(b[i]) * b[i];
    }
    return norm > 0 ? std::sqrt(diff / norm) : std::sqrt(diff);
  }

  Backend& host_;
  Backend& cuda_;
  uint64_t key_;
  uint64_t counter_ = 0;
  std::vector<std::pair<std::string, double>> errors_;
};

struct OpCase {
  std::string name;
  double tol;
  CudaAttention attention;  // which CUDA backend runs the row
  std::function<void(OpEnv&)> run;
  bool unfused = false;  // run on a backend with every CudaFusions switch off
};

// Rows of the fused ops (issue 16), added once per backend variant (fusions on / off).
void add_fused_rows(std::vector<OpCase>& cases, bool unfused) {
  const auto A = CudaAttention::automatic;
  const std::string tag = unfused ? "[unfused]" : "[fused]";
  struct NormShape { int64_t N, C; };
  // C = 768 / 2048: GPT-2 / TinyLlama widths (several rows per block, N past one grid step);
  // 64: 16 rows per block; 4096: one row per block of 512; 4104 (too wide) and 100 (not a
  // multiple of 8): the warp-per-row fallback.
  for (NormKind kind : {NormKind::layernorm, NormKind::rmsnorm}) {
    for (const NormShape sh : {NormShape{3001, 768}, NormShape{1500, 2048}, NormShape{517, 64},
                               NormShape{70, 4096}, NormShape{40, 4104}, NormShape{37, 100}}) {
      const bool layer = kind == NormKind::layernorm;
      const std::string name = detail::concat("add_", layer ? "layernorm" : "rmsnorm", tag,
                                              "/N=", sh.N, ",C=", sh.C);
      cases.push_back({name, kBf16Tol, A, [kind, layer, sh](OpEnv& e) {
        const int64_t N = sh.N, C = sh.C;
        Twin a = e.random({N, C}, DType::bf16, 2.0, 0.5), b = e.random({N, C}, DType::bf16);
        Twin gain = e.random({C}, DType::bf16, 0.2, 1.0);
        Twin bias = layer ? e.random({C}, DType::bf16) : Twin{};
        Twin out = e.poisoned({N, C}, DType::bf16);
        Twin mean = layer ? e.poisoned({N}, DType::f32) : Twin{};
        Twin rstd = e.poisoned({N}, DType::f32);
        // In place, as the model runs it: the sum replaces a.
        e.host().add_norm_forward(kind, a.host(), out.host(), mean.host(), rstd.host(), a.host(),
                                  b.host(), gain.host(), bias.host(), 1e-5);
        e.cuda().add_norm_forward(kind, a.dev(), out.dev(), mean.dev(), rstd.dev(), a.dev(),
                                  b.dev(), gain.dev(), bias.dev(), 1e-5);
        e.check("sum", a);
        e.check("forward", out);
        if (layer) e.check("mean", mean);
        e.check("rstd", rstd);
        Twin dout = e.random({N, C}, DType::bf16);
        Twin dres = e.random({N, C}, DType::bf16);
        Twin dgain = e.random({C}, DType::f32);
        Twin dbias = layer ? e.random({C}, DType::f32) : Twin{};
        Twin dgain2 = e.from_host(dgain.host(), DType::f32);
        Twin dbias2 = layer ? e.from_host(dbias.host(), DType::f32) : Twin{};
        Twin dres2 = e.from_host(dres.host(), DType::bf16);
        // dx aliases dres (the residual gradient accumulated in place).
        e.host().norm_backward_add(kind, dres.host(), dgain.host(), dbias.host(), dout.host(),
                                   dres.host(), a.host(), gain.host(), mean.host(), rstd.host());
        e.cuda().norm_backward_add(kind, dres.dev(), dgain.dev(), dbias.dev(), dout.dev(),
                                   dres.dev(), a.dev(), gain.dev(), mean.dev(), rstd.dev());
        e.check("dx", dres);
        e.check("dgain", dgain);
        if (layer) e.check("dbias", dbias);
        e.cuda().norm_backward_add(kind, dres2.dev(), dgain2.dev(), dbias2.dev(), dout.dev(),
                                   dres2.dev(), a.dev(), gain.dev(), mean.dev(), rstd.dev());
        e.check_same("dx_repeat_bitwise", dres.dev(), dres2.dev());
        e.check_same("dgain_repeat_bitwise", dgain.dev(), dgain2.dev());
        // The plain backward on the same rows: the one-pass kernel without a residual.
        Twin dx = e.poisoned({N, C}, DType::bf16);
        e.host().norm_backward(kind, dx.host(), dgain.host(), dbias.host(), dout.host(), a.host(),
                               gain.host(), mean.host(), rstd.host());
        e.cuda().norm_backward(kind, dx.dev(), dgain.dev(), dbias.dev(), dout.dev(), a.dev(),
                               gain.dev(), mean.dev(), rstd.dev());
        e.check("dx_plain", dx);
        e.check("dgain_plain", dgain);
      }, unfused});
    }
  }
  struct LinShape { int64_t N, I, O; };
  // (64, 96, 128): the epilogues apply; (33, 40, 36): O % 8 != 0, cuBLASLt's aux rule refuses.
  for (const LinShape sh : {LinShape{64, 96, 128}, LinShape{33, 40, 36}}) {
    const std::string name =
        detail::concat("linear_gelu", tag, "/N=", sh.N, ",I=", sh.I, ",O=", sh.O);
    cases.push_back({name, kBf16Tol, A, [sh](OpEnv& e) {
      const int64_t N = sh.N, I = sh.I, O = sh.O;
      Twin in = e.random({N, I}, DType::bf16), w = e.random({O, I}, DType::bf16, 0.15);
      Twin bias = e.random({O}, DType::bf16, 0.5);
      Twin pre = e.poisoned({N, O}, DType::bf16), act = e.poisoned({N, O}, DType::bf16);
      e.host().linear_gelu_forward(act.host(), pre.host(), in.host(), w.host(), bias.host());
      e.cuda().linear_gelu_forward(act.dev(), pre.dev(), in.dev(), w.dev(), bias.dev());
      e.check("pre", pre);
      e.check("act", act);
      // The next layer's backward through the GELU: w2 [I, O] maps act back to width I.
      Twin w2 = e.random({I, O}, DType::bf16, 0.15);
      Twin dout = e.random({N, I}, DType::bf16);
      Twin dpre = e.poisoned({N, O}, DType::bf16);
      Twin dw2 = e.random({I, O}, DType::f32), db2 = e.random({I}, DType::f32);
      e.host().linear_backward_gelu(dpre.host(), dw2.host(), db2.host(), dout.host(), act.host(),
                                    w2.host(), pre.host());
      e.cuda().linear_backward_gelu(dpre.dev(), dw2.dev(), db2.dev(), dout.dev(), act.dev(),
                                    w2.dev(), pre.dev());
      e.check("dpre", dpre);
      e.check("dw", dw2);
      e.check("dbias", db2);
    }, unfused});
  }
  cases.push_back({"swiglu" + tag + "/N=64,F=256", kBf16Tol, A, [](OpEnv& e) {
    const int64_t N = 64, F = 256;
    Twin in = e.random({N, 2 * F}, DType::bf16, 2.0);
    Twin out = e.poisoned({N, F}, DType::bf16);
    e.host().swiglu_forward(out.host(), in.host());
    e.cuda().swiglu_forward(out.dev(), in.dev());
    e.check("forward", out);
    Twin dout = e.random({N, F}, DType::bf16);
    // In place (din aliases in), as allowed by the contract.
    e.host().swiglu_backward(in.host(), dout.host(), in.host());
    e.cuda().swiglu_backward(in.dev(), dout.dev(), in.dev());
    e.check("backward_in_place", in);
  }, unfused});
}

struct AttnShape {
  int64_t B, T, Hq, Hkv, D;
};
using RowDocs = std::vector<std::vector<int64_t>>;  // document lengths of each row

std::vector<OpCase> op_cases() {
  std::vector<OpCase> cases;
  const auto A = CudaAttention::automatic;
  cases.push_back({"copy_fill", kBf16Tol, A, [](OpEnv& e) {
    Twin a = e.random({1000}, DType::bf16);  // host f32 → device bf16 conversion
    e.check("upload", a);
    Twin f = e.poisoned({1000}, DType::f32);  // device bf16 → device f32 conversion
    e.host().copy(f.host(), a.host());
    e.cuda().copy(f.dev(), a.dev());
    e.check("convert", f);
    Twin g = e.poisoned({333}, DType::bf16);
    e.host().fill(g.host(), 0.3);
    e.cuda().fill(g.dev(), 0.3);
    e.check("fill", g);
  }});
  for (int64_t n : {4096, 1001}) {
    cases.push_back({"add_scale/n=" + std::to_string(n), kBf16Tol, A, [n](OpEnv& e) {
      Twin a = e.random({n}, DType::bf16), b = e.random({n}, DType::bf16);
      Twin out = e.poisoned({n}, DType::bf16);
      e.host().add(out.host(), a.host(), b.host());
      e.cuda().add(out.dev(), a.dev(), b.dev());
      e.check("add", out);
      e.host().scale(out.host(), -0.37);
      e.cuda().scale(out.dev(), -0.37);
      e.check("scale", out);
    }});
  }
  for (int64_t C : {64, 36}) {
    cases.push_back({"embedding/C=" + std::to_string(C), kBf16Tol, A, [C](OpEnv& e) {
      const int64_t N = 40, R = 50, off = 10;
      Twin ids = e.ints({N}, 0, 70);  // some ids fall outside the shard [10, 60)
      Twin table = e.random({R, C}, DType::bf16), table2 = e.random({R, C}, DType::bf16);
      Twin out = e.poisoned({N, C}, DType::bf16);
      e.host().embedding_forward(out.host(), ids.host(), table.host(), off, false);
      e.cuda().embedding_forward(out.dev(), ids.dev(), table.dev(), off, false);
      e.check("forward", out);
      e.host().embedding_forward(out.host(), ids.host(), table2.host(), off, true);
      e.cuda().embedding_forward(out.dev(), ids.dev(), table2.dev(), off, true);
      e.check("forward_accumulate", out);
      Twin dtable = e.random({R, C}, DType::f32);
      Twin dout = e.random({N, C}, DType::bf16);
      e.host().embedding_backward(dtable.host(), dout.host(), ids.host(), off);
      e.cuda().embedding_backward(dtable.dev(), dout.dev(), ids.dev(), off);
      e.check("backward", dtable);
    }});
  }
  cases.push_back({"linear", kBf16Tol, A, [](OpEnv& e) {
    const int64_t N = 48, I = 96, O = 80;
    Twin in = e.random({N, I}, DType::bf16), w = e.random({O, I}, DType::bf16, 0.1);
    Twin bias = e.random({O}, DType::bf16);
    Twin out = e.poisoned({N, O}, DType::bf16);
    e.host().linear_forward(out.host(), in.host(), w.host(), bias.host());
    e.cuda().linear_forward(out.dev(), in.dev(), w.dev(), bias.dev());
    e.check("forward_bias", out);
    Twin out2 = e.poisoned({N, O}, DType::bf16);
    e.host().linear_forward(out2.host(), in.host(), w.host(), Tensor{});
    e.cuda().linear_forward(out2.dev(), in.dev(), w.dev(), Tensor{});
    e.check("forward", out2);
    Twin dout = e.random({N, O}, DType::bf16);
    Twin din = e.poisoned({N, I}, DType::bf16);
    Twin dw = e.random({O, I}, DType::f32), db = e.random({O}, DType::f32);
    e.host().linear_backward(din.host(), dw.host(), db.host(), dout.host(), in.host(), w.host());
    e.cuda().linear_backward(din.dev(), dw.dev(), db.dev(), dout.dev(), in.dev(), w.dev());
    e.check("din", din);
    e.check("dw", dw);
    e.check("dbias", db);
  }});
  // LoRA's block products (a branch of rank r on columns [col0, col0 + O) of a packed map of
  // width C): the second shape's block starts at 8-byte alignment and its rows are 200 bytes
  // apart. The whole wide matrix is compared, so a write outside the block shows.
  struct BlockShape { int64_t N, r, C, col0, O; };
  for (const BlockShape sh : {BlockShape{64, 16, 320, 256, 64}, BlockShape{33, 8, 100, 36, 28}}) {
    const std::string name = detail::concat("linear_block/N=", sh.N, ",r=", sh.r, ",C=", sh.C,
                                            ",col0=", sh.col0, ",O=", sh.O);
    cases.push_back({name, kBf16Tol, A, [sh](OpEnv& e) {
      const int64_t N = sh.N, r = sh.r, C = sh.C, O = sh.O;
      Twin wide = e.random({N, C}, DType::bf16, 2.0);
      Twin h = e.random({N, r}, DType::bf16), b = e.random({O, r}, DType::bf16, 0.3);
      e.host().linear_forward_add_block(wide.host(), sh.col0, h.host(), b.host());
      e.cuda().linear_forward_add_block(wide.dev(), sh.col0, h.dev(), b.dev());
      e.check("forward_add", wide);
      Twin dout = e.random({N, C}, DType::bf16);
      Twin dh = e.random({N, r}, DType::bf16), db = e.random({O, r}, DType::f32);
      e.host().linear_backward_block(dh.host(), db.host(), dout.host(), sh.col0, h.host(), b.host());
      e.cuda().linear_backward_block(dh.dev(), db.dev(), dout.dev(), sh.col0, h.dev(), b.dev());
      e.check("din_add", dh);
      e.check("dw_add", db);
      e.host().linear_backward_block(Tensor{}, db.host(), dout.host(), sh.col0, h.host(), b.host());
      e.cuda().linear_backward_block(Tensor{}, db.dev(), dout.dev(), sh.col0, h.dev(), b.dev());
      e.check("dw_only", db);
    }});
  }
  for (NormKind kind : {NormKind::layernorm, NormKind::rmsnorm}) {
    for (int64_t C : {256, 100}) {
      const bool layer = kind == NormKind::layernorm;
      const std::string name = std::string(layer ? "layernorm" : "rmsnorm") + "/C=" +
                               std::to_string(C);
      cases.push_back({name, kBf16Tol, A, [kind, layer, C](OpEnv& e) {
        const int64_t N = 37;
        Twin x = e.random({N, C}, DType::bf16, 2.0, 0.5);
        Twin gain = e.random({C}, DType::bf16, 0.2, 1.0);
        Twin bias = layer ? e.random({C}, DType::bf16) : Twin{};
        Twin out = e.poisoned({N, C}, DType::bf16);
        Twin mean = layer ? e.poisoned({N}, DType::f32) : Twin{};
        Twin rstd = e.poisoned({N}, DType::f32);
        e.host().norm_forward(kind, out.host(), mean.host(), rstd.host(), x.host(), gain.host(),
                              bias.host(), 1e-5);
        e.cuda().norm_forward(kind, out.dev(), mean.dev(), rstd.dev(), x.dev(), gain.dev(),
                              bias.dev(), 1e-5);
        e.check("forward", out);
        if (layer) e.check("mean", mean);
        e.check("rstd", rstd);
        Twin dout = e.random({N, C}, DType::bf16);
        Twin dx = e.poisoned({N, C}, DType::bf16);
        Twin dgain = e.random({C}, DType::f32);
        Twin dbias = layer ? e.random({C}, DType::f32) : Twin{};
        e.host().norm_backward(kind, dx.host(), dgain.host(), dbias.host(), dout.host(), x.host(),
                               gain.host(), mean.host(), rstd.host());
        e.cuda().norm_backward(kind, dx.dev(), dgain.dev(), dbias.dev(), dout.dev(), x.dev(),
                               gain.dev(), mean.dev(), rstd.dev());
        e.check("dx", dx);
        e.check("dgain", dgain);
        if (layer) e.check("dbias", dbias);
      }});
    }
  }
  for (int64_t n : {4096, 1001}) {
    cases.push_back({"gelu/n=" + std::to_string(n), kBf16Tol, A, [n](OpEnv& e) {
      Twin in = e.random({n}, DType::bf16, 2.0);
      Twin out = e.poisoned({n}, DType::bf16);
      e.host().gelu_forward(out.host(), in.host());
      e.cuda().gelu_forward(out.dev(), in.dev());
      e.check("forward", out);
      Twin dout = e.random({n}, DType::bf16);
      Twin din = e.poisoned({n}, DType::bf16);
      e.host().gelu_backward(din.host(), dout.host(), in.host());
      e.cuda().gelu_backward(din.dev(), dout.dev(), in.dev());
      e.check("backward", din);
    }});
  }
  cases.push_back({"swiglu", kBf16Tol, A, [](OpEnv& e) {
    const int64_t N = 33, F = 70;
    Twin in = e.random({N, 2 * F}, DType::bf16, 2.0);
    Twin out = e.poisoned({N, F}, DType::bf16);
    e.host().swiglu_forward(out.host(), in.host());
    e.cuda().swiglu_forward(out.dev(), in.dev());
    e.check("forward", out);
    Twin dout = e.random({N, F}, DType::bf16);
    Twin din = e.poisoned({N, 2 * F}, DType::bf16);
    e.host().swiglu_backward(din.host(), dout.host(), in.host());
    e.cuda().swiglu_backward(din.dev(), dout.dev(), in.dev());
    e.check("backward", din);
  }});
  for (const bool packed : {false, true}) {
    cases.push_back({packed ? "rope_packed" : "rope", kBf16Tol, A, [packed](OpEnv& e) {
      const int64_t B = 2, T = 24, Hq = 4, Hkv = 2, D = 32, W = (Hq + 2 * Hkv) * D;
      Twin qkv = e.random({B, T, W}, DType::bf16);
      Twin docs = e.doc_starts(packed ? RowDocs{{5, 1, 18}, {24}} : RowDocs{}, T);
      e.host().rope(qkv.host(), T, Hq + Hkv, D, 10000.0, 5, docs.host(), false);
      e.cuda().rope(qkv.dev(), T, Hq + Hkv, D, 10000.0, 5, docs.dev(), false);
      e.check("forward", qkv);
      e.host().rope(qkv.host(), T, Hq + Hkv, D, 10000.0, 5, docs.host(), true);
      e.cuda().rope(qkv.dev(), T, Hq + Hkv, D, 10000.0, 5, docs.dev(), true);
      e.check("inverse", qkv);
    }});
  }
  const std::vector<std::pair<CudaAttention, AttnShape>> attn = {
      {CudaAttention::own, {2, 80, 4, 2, 64}},   // GQA, T not a tile multiple
      {CudaAttention::own, {1, 64, 2, 1, 128}},  // MQA, D = 128
      {CudaAttention::own, {2, 40, 3, 3, 32}},   // MHA, D = 32
      {CudaAttention::own, {1, 33, 2, 2, 80}},   // D not a multiple of 32
      {CudaAttention::own, {1, 48, 2, 1, 256}},  // the largest D
      {CudaAttention::own, {1, 200, 8, 2, 64}},  // several 64-row tiles, group of 4
      {CudaAttention::own, {2, 136, 2, 1, 96}},  // D = 96 (tensor-core backward)
      {CudaAttention::cudnn, {2, 128, 4, 2, 64}},
      {CudaAttention::cudnn, {1, 384, 4, 1, 64}},  // cuDNN stats into the backward, MQA
      {CudaAttention::cudnn, {1, 256, 8, 8, 128}},  // MHA: cuDNN's backward graph too
      {CudaAttention::cudnn, {2, 128, 4, 4, 64}},   // MHA, D = 64 (GPT-2's head)
      {CudaAttention::cudnn, {1, 512, 6, 6, 64}},   // MHA, several key blocks
  };
  // Packed documents (own kernels; the automatic mode routes packed batches there): a
  // one-token document, documents across the 32/64-row tiles, starting exactly at a tile
  // boundary (64, 128), tiles whose rows see none of an earlier key tile; D = 64 and 128 take
  // the tensor-core backward, D = 80 the SIMT one.
  const std::vector<std::tuple<CudaAttention, AttnShape, RowDocs>> packed = {
      {A, {2, 200, 4, 2, 64}, {{1, 63, 64, 40, 32}, {100, 100}}},
      {A, {1, 256, 8, 2, 128}, {{128, 1, 95, 32}}},
      {A, {2, 96, 2, 2, 80}, {{33, 31, 32}, {96}}},
      {CudaAttention::own, {1, 130, 4, 1, 32}, {{70, 60}}},
  };
  auto attention_row = [](AttnShape s, RowDocs docs) {
    return [s, docs](OpEnv& e) {
      const int64_t W = (s.Hq + 2 * s.Hkv) * s.D;
      Twin qkv = e.random({s.B, s.T, W}, DType::bf16);
      Twin ds = e.doc_starts(docs, s.T);
      Twin out = e.poisoned({s.B, s.T, s.Hq * s.D}, DType::bf16);
      Twin lse = e.poisoned({s.B, s.Hq, s.T}, DType::f32);
      e.host().attention_forward(out.host(), lse.host(), qkv.host(), s.B, s.T, s.Hq, s.Hkv, s.D,
                                 ds.host());
      e.cuda().attention_forward(out.dev(), lse.dev(), qkv.dev(), s.B, s.T, s.Hq, s.Hkv, s.D,
                                 ds.dev());
      e.check("out", out);
      e.check("lse", lse);
      Twin dout = e.random({s.B, s.T, s.Hq * s.D}, DType::bf16);
      Twin dqkv = e.poisoned({s.B, s.T, W}, DType::bf16);
      e.host().attention_backward(dqkv.host(), dout.host(), qkv.host(), out.host(), lse.host(),
                                  s.B, s.T, s.Hq, s.Hkv, s.D, ds.host());
      e.cuda().attention_backward(dqkv.dev(), dout.dev(), qkv.dev(), out.dev(), lse.dev(), s.B,
                                  s.T, s.Hq, s.Hkv, s.D, ds.dev());
      e.check("dqkv", dqkv);
    };
  };
  auto attention_name = [](const char* kind, const AttnShape& s) {
    return detail::concat("attention", kind, "/B=", s.B, ",T=", s.T, ",Hq=", s.Hq, ",Hkv=", s.Hkv,
                          ",D=", s.D);
  };
  for (const auto& [mode, s] : attn)
    cases.push_back({attention_name(mode == CudaAttention::own ? "[own]" : "[cudnn]", s), kBf16Tol,
                     mode, attention_row(s, {})});
  for (const auto& [mode, s, docs] : packed)
    cases.push_back({attention_name(mode == CudaAttention::own ? "_packed[own]" : "_packed", s),
                     kBf16Tol, mode, attention_row(s, docs)});
  // NF4 dequantisation: two scale groups, a partial last block, an odd count; the codes and
  // scales come from the host quantiser, identical on both sides.
  for (const DType out_dt : {DType::bf16, DType::f32}) {
    const bool bf = out_dt == DType::bf16;
    cases.push_back({bf ? "nf4_dequantize/bf16" : "nf4_dequantize/f32", bf ? kBf16Tol : kF32Tol,
                     A, [out_dt](OpEnv& e) {
      const int64_t n = kNf4Block * 300 + 7;
      Twin w = e.random({n}, DType::f32, 0.05);
      const Nf4Tensor q = nf4_quantize({w.h.ptr<const float>(), static_cast<size_t>(n)});
      auto bytes = [&e](const void* data, int64_t count, DType dt) {
        const Shape s{count};
        Twin t{e.host().alloc(s, dt), e.cuda().alloc(s, dt)};
        const Tensor src = host_tensor(const_cast<void*>(data), s, dt);
        e.host().copy(t.host(), src);
        e.cuda().copy(t.dev(), src);
        return t;
      };
      Twin codes = bytes(q.codes.data(), static_cast<int64_t>(q.codes.size()), DType::u8);
      Twin sc = bytes(q.scale_codes.data(), static_cast<int64_t>(q.scale_codes.size()), DType::u8);
      Twin ss = bytes(q.scale_scales.data(), static_cast<int64_t>(q.scale_scales.size()),
                      DType::f32);
      Twin out = e.poisoned({n}, out_dt);
      e.host().nf4_dequantize(out.host(), codes.host(), sc.host(), ss.host(), q.scale_offset);
      e.cuda().nf4_dequantize(out.dev(), codes.dev(), sc.dev(), ss.dev(), q.scale_offset);
      e.check("out", out);
    }});
  }
  for (int64_t V : {264, 100}) {
    // lse and picked are f32 arithmetic on identical inputs: the f32 tolerance applies.
    const int64_t N = 24, off = 50;
    auto setup = [N, V, off](OpEnv& e) {
      Twin logits = e.random({N, V}, DType::bf16, 3.0);
      Twin targets = e.ints({N}, -1, static_cast<int>(off + V + 20));  // some ignored / off-shard
      return std::make_pair(std::move(logits), std::move(targets));
    };
    cases.push_back({"cross_entropy_stats/V=" + std::to_string(V), kF32Tol, A,
                     [setup, N, off](OpEnv& e) {
      auto [logits, targets] = setup(e);
      Twin lse = e.poisoned({N}, DType::f32), picked = e.poisoned({N}, DType::f32);
      e.host().row_logsumexp(lse.host(), logits.host());
      e.cuda().row_logsumexp(lse.dev(), logits.dev());
      e.check("row_logsumexp", lse);
      e.host().pick_targets(picked.host(), logits.host(), targets.host(), off);
      e.cuda().pick_targets(picked.dev(), logits.dev(), targets.dev(), off);
      e.check("pick_targets", picked);
    }});
    cases.push_back({"cross_entropy_backward/V=" + std::to_string(V), kBf16Tol, A,
                     [setup, N, V, off](OpEnv& e) {
      auto [logits, targets] = setup(e);
      Twin lse = e.poisoned({N}, DType::f32);
      e.host().row_logsumexp(lse.host(), logits.host());
      e.cuda().row_logsumexp(lse.dev(), logits.dev());
      Twin scale = e.random({N}, DType::f32, 0.1, 0.0, true);
      Twin dlogits = e.poisoned({N, V}, DType::bf16);
      e.host().cross_entropy_backward(dlogits.host(), logits.host(), lse.host(), targets.host(),
                                      scale.host(), off);
      // In place on the device, as training runs it: dlogits aliases logits.
      e.cuda().cross_entropy_backward(logits.dev(), logits.dev(), lse.dev(), targets.dev(),
                                      scale.dev(), off);
      e.cuda().copy(dlogits.dev(), logits.dev());
      e.check("dlogits_in_place", dlogits);
    }});
  }
  add_fused_rows(cases, false);
  add_fused_rows(cases, true);
  // Three dtypes, chunks of every length, slices that start off a 16-byte boundary.
  cases.push_back({"sum_squares", kF32Tol, A, [](OpEnv& e) {
    Twin a = e.random({1000}, DType::f32), b = e.random({70001}, DType::bf16),
         c = e.random({3}, DType::f32), d = e.random({4099}, DType::bf16),
         f = e.random({5002}, DType::f32), g = e.random({77}, DType::f64);
    const Tensor hs[] = {a.host(), b.host(), c.host(), d.host().slice(3, Shape{4096}),
                         f.host().slice(1, Shape{5001}), g.host()};
    const Tensor ds[] = {a.dev(), b.dev(), c.dev(), d.dev().slice(3, Shape{4096}),
                         f.dev().slice(1, Shape{5001}), g.dev()};
    e.check_scalar("sum", e.cuda().sum_squares(ds), e.host().sum_squares(hs));
  }});
  // Slices of 40000 (two chunks, vectors), 100, 3 (a tail only) and 999 starting one element
  // into its buffers (element by element).
  cases.push_back({"adamw", kF32Tol, A, [](OpEnv& e) {
    struct Slot { Twin p, g, m, v; float wd; int64_t skip; };
    std::vector<Slot> slots;
    for (auto [n, wd, skip] : {std::tuple<int64_t, float, int64_t>{40000, 0.1f, 0},
                               {100, 0.f, 0}, {3, 0.1f, 0}, {1000, 0.1f, 1}})
      slots.push_back({e.random({n}, DType::f32), e.random({n}, DType::f32),
                       e.random({n}, DType::f32, 0.1), e.random({n}, DType::f32, 0.01, 0, true),
                       wd, skip});
    std::vector<AdamWSlice> hs, ds;
    for (auto& s : slots) {
      const Shape part{s.p.host().numel() - s.skip};
      auto h = [&](const Twin& t) { return t.host().slice(s.skip, part); };
      auto d = [&](const Twin& t) { return t.dev().slice(s.skip, part); };
      hs.push_back({h(s.p), h(s.g), h(s.m), h(s.v), s.wd, Tensor{}});
      ds.push_back({d(s.p), d(s.g), d(s.m), d(s.v), s.wd, Tensor{}});
    }
    AdamWHyper h;
    h.lr = 1e-3f, h.step = 3, h.grad_scale = 0.5f;
    e.host().adamw_update(hs, h);
    e.cuda().adamw_update(ds, h);
    for (size_t i = 0; i < slots.size(); ++i) {
      e.check(detail::concat("param", i), slots[i].p);
      e.check(detail::concat("m", i), slots[i].m);
      e.check(detail::concat("v", i), slots[i].v);
    }
  }});
  // The clip scale and the bf16 compute copy in the same launch: compute = bf16(p_new)
  // (round to nearest even), the same bits as converting the updated master afterwards.
  cases.push_back({"adamw[clip scale, bf16 compute]", kBf16Tol, A, [](OpEnv& e) {
    const int64_t n = 70001;
    Twin p = e.random({n}, DType::f32), g = e.random({n}, DType::f32, 3.0),
         m = e.random({n}, DType::f32, 0.1), v = e.random({n}, DType::f32, 0.01, 0, true);
    Twin compute = e.poisoned({n}, DType::bf16);
    AdamWHyper h;
    h.lr = 1e-2f, h.step = 7, h.grad_scale = 0.125f;
    const AdamWSlice hs[] = {{p.host(), g.host(), m.host(), v.host(), 0.1f, compute.host()}};
    const AdamWSlice ds[] = {{p.dev(), g.dev(), m.dev(), v.dev(), 0.1f, compute.dev()}};
    e.host().adamw_update(hs, h);
    e.cuda().adamw_update(ds, h);
    e.check("param", p);
    e.check("compute", compute);
    Buffer rounded = e.cuda().alloc({n}, DType::bf16);
    e.cuda().copy(rounded, p.dev());
    e.check_same("compute == bf16(param)", compute.dev(), rounded.tensor());
  }});
  return cases;
}

TEST(CudaOps, MatchHostBackend) {
  auto host = make_host_backend();
  CudaBackendOptions o;
  o.attention = CudaAttention::automatic;
  auto cuda_auto = make_cuda_backend(o);
  o.attention = CudaAttention::own;
  auto cuda_own = make_cuda_backend(o);
  o.attention = CudaAttention::cudnn;
  auto cuda_cudnn = make_cuda_backend(o);
  o.attention = CudaAttention::automatic;
  o.fused = CudaFusions{false, false, false};
  auto cuda_unfused = make_cuda_backend(o);
  // Fresh inputs on every run: the key mixes in the wall clock (printed for reproduction).
  const uint64_t seed = static_cast<uint64_t>(std::time(nullptr));
  std::printf("CudaOps seed %llu\n", static_cast<unsigned long long>(seed));
  int row = 0, checked = 0;
  for (const OpCase& c : op_cases()) {
    Backend& cuda = c.unfused                             ? *cuda_unfused
                    : c.attention == CudaAttention::own     ? *cuda_own
                    : c.attention == CudaAttention::cudnn ? *cuda_cudnn
                                                          : *cuda_auto;
    OpEnv env(*host, cuda, rng_key(seed, c.name) + static_cast<uint64_t>(row++));
    try {
      c.run(env);
    } catch (const std::exception& ex) {
      ADD_FAILURE() << c.name << ": threw: " << ex.what();
      std::printf("%-44s %-20s %s\n", c.name.c_str(), "-", "THREW");
      continue;
    }
    EXPECT_FALSE(env.errors().empty()) << c.name << " checked nothing";
    for (const auto& [what, err] : env.errors()) {
      ++checked;
      EXPECT_LE(err, c.tol) << c.name << " / " << what << ": relative error " << err;
      std::printf("%-44s %-20s %.3e (tol %.0e) %s\n", c.name.c_str(), what.c_str(), err, c.tol,
                  err <= c.tol ? "ok" : "FAIL");
    }
  }
  EXPECT_GT(checked, 60);
}

// LLMPI_ATTENTION=cudnn never reroutes: a packed batch (own kernels only) is refused.
TEST(CudaOps, ForcedCudnnRefusesPackedDocuments) {
  CudaBackendOptions o;
  o.attention = CudaAttention::cudnn;
  auto cuda = make_cuda_backend(o);
  const int64_t B = 1, T = 64, H = 2, D = 64;
  Buffer qkv = cuda->alloc({B, T, 3 * H * D}, DType::bf16);
  Buffer out = cuda->alloc({B, T, H * D}, DType::bf16), lse = cuda->alloc({B, H, T}, DType::f32);
  cuda->fill(qkv, 0.25);
  std::vector<int32_t> starts = doc_start_from_lengths(std::vector<int64_t>{32, 32}, T);
  Buffer ds = cuda->alloc({T}, DType::i32);
  cuda->copy(ds, host_tensor(starts.data(), Shape{T}, DType::i32));
  cuda->synchronize();
  EXPECT_THROW(cuda->attention_forward(out, lse, qkv, B, T, H, H, D, ds), InternalError);
  EXPECT_NO_THROW(cuda->attention_forward(out, lse, qkv, B, T, H, H, D, Tensor{}));
}

// LLMPI_FUSED selects the fusions that stay on; a bad value is a UserError naming it.
TEST(CudaOps, LlmpiFusedSelectsFusions) {
  const char* saved = std::getenv("LLMPI_FUSED");
  const std::string keep = saved ? saved : "";
  auto fused = [](const char* v) {
    setenv("LLMPI_FUSED", v, 1);
    return CudaBackendOptions::from_env().fused;
  };
  CudaFusions f = fused("all");
  EXPECT_TRUE(f.norm && f.gelu && f.swiglu);
  f = fused("1");
  EXPECT_TRUE(f.norm && f.gelu && f.swiglu);
  f = fused("none");
  EXPECT_FALSE(f.norm || f.gelu || f.swiglu);
  f = fused("0");
  EXPECT_FALSE(f.norm || f.gelu || f.swiglu);
  f = fused("gelu,swiglu");
  EXPECT_TRUE(!f.norm && f.gelu && f.swiglu);
  f = fused("norm");
  EXPECT_TRUE(f.norm && !f.gelu && !f.swiglu);
  EXPECT_THROW(fused("norm,glu"), UserError);
  EXPECT_THROW(fused("norm,"), UserError);
  EXPECT_THROW(fused("2"), UserError);
  if (saved) setenv("LLMPI_FUSED", keep.c_str(), 1);
  else unsetenv("LLMPI_FUSED");
}

}  // namespace
}  // namespace llmpi
