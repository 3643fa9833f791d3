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
