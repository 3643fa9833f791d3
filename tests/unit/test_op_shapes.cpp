// The shared shape rules of the Backend ops (backend/op_shapes.h), checked without a backend:
// each rule accepts the shapes an op is called with and refuses, with an InternalError that
// names the op and the tensor, the shapes that do not fit. Both backends call these rules,
// so the CUDA backend refuses exactly what the host backend refuses (the embedding table's
// rank used to be checked on the host only).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "backend/op_shapes.h"
#include "core/error.h"

namespace llmpi {
namespace {

// A tensor of the given shape over a scratch buffer (the rules never read the elements).
struct Scratch {
  std::vector<std::vector<float>> bufs;
  Tensor operator()(Shape s, DType dt = DType::f32) {
    bufs.emplace_back(size_t(s.numel() > 0 ? s.numel() : 1));
    return Tensor{bufs.back().data(), s, dt, Device::host};
  }
};

// The message of the InternalError `f` throws ("" when it throws none).
template <class F>
std::string failure(F&& f) {
  try {
    f();
  } catch (const InternalError& e) {
    return e.what();
  }
  return "";
}

TEST(OpShapes, EmbeddingNeedsATableOfRankTwo) {
  Scratch t;
  const Tensor table = t({10, 4}), ids = t({6}, DType::i32), out = t({2, 3, 4});
  const op_shapes::EmbeddingSizes s = op_shapes::embedding("emb", "table", table, ids, "out", out);
  EXPECT_EQ(s.N, 6);
  EXPECT_EQ(s.R, 10);
  EXPECT_EQ(s.C, 4);
  const std::string flat =
      failure([&] { op_shapes::embedding("emb", "table", t({40}), ids, "out", out); });
  EXPECT_NE(flat.find("emb: table [40] is not [R, C]"), std::string::npos) << flat;
  const std::string wide =
      failure([&] { op_shapes::embedding("emb", "dtable", table, ids, "dout", t({6, 5})); });
  EXPECT_NE(wide.find("emb: dout"), std::string::npos) << wide;
}

TEST(OpShapes, LinearChecksEveryOperand) {
  Scratch t;
  const Tensor w = t({3, 5}), in = t({4, 5}), out = t({4, 3});
  const op_shapes::LinearSizes s = op_shapes::linear_forward("lin", out, in, w, t({3}));
  EXPECT_EQ(s.N, 4);
  EXPECT_EQ(s.I, 5);
  EXPECT_EQ(s.O, 3);
  EXPECT_NE(failure([&] { op_shapes::linear_forward("lin", out, t({4, 6}), w, Tensor{}); })
                .find("lin: in [4, 6] does not end in I = 5"),
            std::string::npos);
  EXPECT_NE(failure([&] { op_shapes::linear_forward("lin", out, in, w, t({4})); }).find("bias"),
            std::string::npos);
  const Tensor same = t({4, 4}), sq = t({4, 4});
  EXPECT_NE(failure([&] { op_shapes::linear_forward("lin", same, same, sq, Tensor{}); })
                .find("must not alias"),
            std::string::npos);
  EXPECT_EQ(failure([&] { op_shapes::linear_backward("lin", in, t({3, 5}), t({3}), out, in, w); }),
            "");
  EXPECT_NE(failure([&] { op_shapes::linear_backward("lin", in, t({5, 3}), {}, out, in, w); })
                .find("dw [5, 3] is not [3, 5]"),
            std::string::npos);
}

TEST(OpShapes, NormAndActivations) {
  Scratch t;
  const Tensor x = t({6, 8}), y = t({6, 8}), gain = t({8}), mean = t({6}), rstd = t({6});
  EXPECT_EQ(failure([&] {
              op_shapes::norm("ln", NormKind::layernorm, x, gain, mean, rstd, t({8}), {},
                              {{"out", &y}}, 1e-5);
            }),
            "");
  EXPECT_NE(failure([&] {
              op_shapes::norm("rms", NormKind::rmsnorm, x, gain, {}, rstd, t({8}), {},
                              {{"out", &y}}, 1e-5);
            }).find("rmsnorm has no bias"),
            std::string::npos);
  EXPECT_NE(failure([&] {
              op_shapes::norm("ln", NormKind::layernorm, x, gain, mean, rstd, {}, {},
                              {{"out", &y}}, -1.0);
            }).find("eps"),
            std::string::npos);
  const Tensor odd = t({6, 7});
  EXPECT_NE(failure([&] { op_shapes::same_numel("gelu", {{"in", &x}, {"out", &odd}}); })
                .find("gelu: out [6, 7] has 42 elements, expected 48"),
            std::string::npos);
  const op_shapes::RowSizes sw = op_shapes::swiglu("swiglu", t({6, 4}), x, Tensor{});
  EXPECT_EQ(sw.N, 6);
  EXPECT_EQ(sw.C, 4);
  EXPECT_NE(failure([&] { op_shapes::swiglu("swiglu", t({6, 3}), x, Tensor{}); }).find("2·3"),
            std::string::npos);
}

// The fused ops (add_norm_forward, norm_backward_add) are the plain norm's rules plus their
// residual operand, which must be given and have the rows' shape.
TEST(OpShapes, FusedResidualNorms) {
  Scratch t;
  const Tensor a = t({6, 8}), b = t({6, 8}), out = t({6, 8}), gain = t({8}), mean = t({6}),
               rstd = t({6}), bias = t({8});
  const op_shapes::RowSizes s =
      op_shapes::add_norm("an", NormKind::layernorm, a, out, mean, rstd, a, b, gain, bias, 1e-5);
  EXPECT_EQ(s.N, 6);
  EXPECT_EQ(s.C, 8);
  const Tensor narrow = t({6, 7}), tall = t({8, 6});
  EXPECT_NE(failure([&] {
              op_shapes::add_norm("an", NormKind::rmsnorm, a, out, {}, rstd, a, narrow, gain, {},
                                  1e-5);
            }).find("an: b [6, 7] has 42 elements, expected 48"),
            std::string::npos);
  EXPECT_NE(failure([&] {
              op_shapes::add_norm("an", NormKind::rmsnorm, tall, out, {}, rstd, a, b, gain, {},
                                  1e-5);
            }).find("an: sum [8, 6] is not [6, 8]"),
            std::string::npos);
  EXPECT_NE(failure([&] {
              op_shapes::add_norm("an", NormKind::rmsnorm, a, out, {}, rstd, a, Tensor{}, gain,
                                  {}, 1e-5);
            }).find("an: b is empty"),
            std::string::npos);
  EXPECT_NE(failure([&] {
              op_shapes::add_norm("an", NormKind::rmsnorm, a, out, {}, rstd, a, b, gain, bias,
                                  1e-5);
            }).find("rmsnorm has no bias"),
            std::string::npos);

  const Tensor dx = t({6, 8}), dout = t({6, 8}), dgain = t({8});
  EXPECT_EQ(failure([&] {
              op_shapes::norm_backward_add("nba", NormKind::rmsnorm, dx, dgain, {}, dout, dx, a,
                                           gain, {}, rstd);
            }),
            "");  // dres may be dx itself
  EXPECT_NE(failure([&] {
              op_shapes::norm_backward_add("nba", NormKind::rmsnorm, dx, dgain, {}, dout,
                                           Tensor{}, a, gain, {}, rstd);
            }).find("nba: dres is empty"),
            std::string::npos);
  EXPECT_NE(failure([&] {
              op_shapes::norm_backward_add("nba", NormKind::layernorm, dx, dgain, {}, dout,
                                           narrow, a, gain, mean, rstd);
            }).find("nba: dres [6, 7]"),
            std::string::npos);
}

// linear_gelu_forward / linear_backward_gelu: the linear rules, and pre (the GELU's input)
// shaped like the product it holds, never sharing memory with the op's output.
TEST(OpShapes, LinearWithGelu) {
  Scratch t;
  const Tensor w = t({3, 5}), in = t({4, 5}), out = t({4, 3}), pre = t({4, 3});
  const op_shapes::LinearSizes s =
      op_shapes::linear_gelu_forward("lg", out, pre, in, w, t({3}));
  EXPECT_EQ(s.N, 4);
  EXPECT_EQ(s.I, 5);
  EXPECT_EQ(s.O, 3);
  EXPECT_NE(failure([&] { op_shapes::linear_gelu_forward("lg", out, t({3, 4}), in, w, {}); })
                .find("lg: pre [3, 4] is not [4, 3]"),
            std::string::npos);
  EXPECT_NE(failure([&] { op_shapes::linear_gelu_forward("lg", out, out, in, w, {}); })
                .find("out must not alias pre"),
            std::string::npos);
  const Tensor sq_in = t({4, 4}), sq_w = t({4, 4}), sq_out = t({4, 4});
  EXPECT_NE(failure([&] {
              op_shapes::linear_gelu_forward("lg", sq_out, sq_in, sq_in, sq_w, {});
            }).find("pre must not alias in"),
            std::string::npos);
  EXPECT_NE(failure([&] { op_shapes::linear_gelu_forward("lg", out, pre, t({4, 6}), w, {}); })
                .find("does not end in I = 5"),
            std::string::npos);

  // Backward: din [N, I] and pre [N, I] (in = gelu(pre)), dout [N, O].
  const Tensor din = t({4, 5}), bpre = t({4, 5}), dw = t({3, 5});
  EXPECT_EQ(op_shapes::linear_backward_gelu("lbg", din, dw, {}, out, in, w, bpre).N, 4);
  EXPECT_NE(failure([&] {
              op_shapes::linear_backward_gelu("lbg", Tensor{}, dw, {}, out, in, w, bpre);
            }).find("lbg: din is empty"),
            std::string::npos);
  EXPECT_NE(failure([&] {
              op_shapes::linear_backward_gelu("lbg", din, dw, {}, out, in, w, t({5, 4}));
            }).find("lbg: pre [5, 4] is not [4, 5]"),
            std::string::npos);
  EXPECT_NE(failure([&] { op_shapes::linear_backward_gelu("lbg", din, dw, {}, out, in, w, din); })
                .find("din must not alias pre"),
            std::string::npos);
}

TEST(OpShapes, RopeAndAttention) {
  Scratch t;
  const int64_t B = 2, T = 3, Hq = 4, Hkv = 2, D = 2;
  const Tensor qkv = t({B * T, (Hq + 2 * Hkv) * D}), out = t({B, T, Hq * D}),
               lse = t({B, Hq, T});
  EXPECT_EQ(op_shapes::rope("rope", qkv, T, Hq + Hkv, D, 1e4).N, B * T);
  EXPECT_NE(failure([&] { op_shapes::rope("rope", qkv, 4, Hq + Hkv, D, 1e4); })
                .find("not a multiple of T = 4"),
            std::string::npos);
  EXPECT_NE(failure([&] { op_shapes::rope("rope", t({6, 9}), T, 3, 3, 1e4); }).find("not even"),
            std::string::npos);
  EXPECT_EQ(failure([&] { op_shapes::attention("attn", qkv, out, lse, B, T, Hq, Hkv, D); }), "");
  EXPECT_NE(failure([&] { op_shapes::attention("attn", qkv, out, lse, B, T, Hq, 3, D); })
                .find("bad sizes"),
            std::string::npos);
  EXPECT_NE(failure([&] { op_shapes::attention_grads("attn", qkv, qkv, out, B, T, Hq, D); })
                .find("dqkv must not alias qkv"),
            std::string::npos);
}

TEST(OpShapes, CrossEntropyAndAdamW) {
  Scratch t;
  const Tensor logits = t({5, 7}), targets = t({5}, DType::i32), lse = t({5});
  const op_shapes::RowSizes s = op_shapes::cross_entropy("ce", logits, targets, {{"lse", &lse}}, {});
  EXPECT_EQ(s.N, 5);
  EXPECT_EQ(s.C, 7);
  const Tensor short_lse = t({4});
  EXPECT_NE(failure([&] { op_shapes::logsumexp("lse", short_lse, logits); }).find("lse: lse"),
            std::string::npos);
  const Tensor dl = t({5, 6});
  EXPECT_NE(failure([&] {
              op_shapes::cross_entropy("ce", logits, targets, {}, {{"dlogits", &dl}});
            }).find("ce: dlogits"),
            std::string::npos);
  AdamWSlice a;
  a.param = t({9});
  a.grad = t({9});
  a.m = t({9});
  a.v = t({8});
  EXPECT_NE(failure([&] { op_shapes::adamw_slice("adamw", a); }).find("adamw: v [8]"),
            std::string::npos);
}

}  // namespace
}  // namespace llmpi
