// NF4 (quant/nf4.h): the level table against its definition (normal quantiles), the nearest-
// level rule, the nibble layout, the error bounds of both quantisation levels on normal data,
// the storage size (≈ 0.5 byte per weight + scales), and the host backend's dequantise op
// against the reference, bit for bit.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "backend/backend.h"
#include "core/error.h"
#include "core/rng.h"
#include "quant/nf4.h"

using namespace llmpi;

namespace {

// Φ⁻¹(p) by bisection on Φ(x) = erfc(−x/√2)/2 (to double precision; p in (0, 1)).
double normal_quantile(double p) {
  double lo = -10, hi = 10;
  for (int i = 0; i < 200; ++i) {
    const double mid = 0.5 * (lo + hi);
    (0.5 * std::erfc(-mid / std::sqrt(2.0)) < p ? lo : hi) = mid;
  }
  return 0.5 * (lo + hi);
}

std::vector<float> normal_weights(int64_t n, uint64_t seed, double std) {
  std::vector<float> w(static_cast<size_t>(n));
  const uint64_t key = rng_key(seed, "nf4");
  for (int64_t i = 0; i < n; ++i) w[static_cast<size_t>(i)] = float(std * rng_normal(key, i));
  return w;
}

}  // namespace

TEST(Nf4, LevelsAreTheNormalQuantilesOfTheQloraPaper) {
  // The construction behind the published table: 8 positive quantiles Φ⁻¹(p) at p evenly
  // spaced from δ to 1/2 (9 points, 1/2 excluded), 7 negative ones from 8 points, and an
  // exact zero; normalised by Φ⁻¹(δ) so the ends are ±1. δ = 0.9677083 (the paper's offset).
  const double delta = 0.9677083, top = normal_quantile(delta);
  std::vector<double> want;
  for (int i = 0; i < 7; ++i) want.push_back(-normal_quantile(delta + (0.5 - delta) * i / 7.0) / top);
  want.push_back(0.0);
  for (int i = 7; i >= 0; --i) want.push_back(normal_quantile(delta + (0.5 - delta) * i / 8.0) / top);
  std::sort(want.begin(), want.end());
  ASSERT_EQ(want.size(), 16u);
  for (size_t k = 0; k < 16; ++k) EXPECT_NEAR(kNf4Levels[k], want[k], 2e-7) << "level " << k;
  EXPECT_EQ(kNf4Levels[kNf4Zero], 0.0f);
  double max_half_gap = 0;
  for (size_t k = 0; k + 1 < 16; ++k) {
    EXPECT_LT(kNf4Levels[k], kNf4Levels[k + 1]);
    max_half_gap = std::max(max_half_gap, 0.5 * (kNf4Levels[k + 1] - kNf4Levels[k]));
  }
  EXPECT_NEAR(max_half_gap, kNf4MaxHalfGap, 1e-7);
}

TEST(Nf4, NearestLevel) {
  for (uint8_t k = 0; k < 16; ++k) EXPECT_EQ(nf4_code(kNf4Levels[k]), k);
  for (uint8_t k = 0; k + 1 < 16; ++k) {
    const float mid = 0.5f * (kNf4Levels[k] + kNf4Levels[k + 1]);
    EXPECT_EQ(nf4_code(mid), k) << "a tie goes to the lower level";
    EXPECT_EQ(nf4_code(std::nextafter(mid, 2.f)), k + 1);
  }
  EXPECT_EQ(nf4_code(-1.f), 0);
  EXPECT_EQ(nf4_code(1.f), 15);
}

TEST(Nf4, NibbleLayoutAndZeroBlocks) {
  // Element 0 in the high nibble; block absmax 2 maps ±2 to ±1; an odd count pads a zero code.
  const std::vector<float> w = {2.f, -2.f, 0.f};
  const Nf4Tensor q = nf4_quantize(w);
  ASSERT_EQ(q.codes.size(), 2u);
  EXPECT_EQ(q.codes[0], 0xF0);
  EXPECT_EQ(q.codes[1], (kNf4Zero << 4) | kNf4Zero);
  std::vector<float> back(3);
  nf4_dequantize(q, back);
  EXPECT_EQ(back, w);  // one block: its scale is the offset itself, exact
  // An all-zero tensor dequantises to exact zeros.
  const std::vector<float> zeros(130, 0.f);
  const Nf4Tensor qz = nf4_quantize(zeros);
  std::vector<float> bz(zeros.size(), 1.f);
  nf4_dequantize(qz, bz);
  EXPECT_EQ(bz, zeros);
  EXPECT_THROW(nf4_quantize(std::vector<float>{1.f, NAN}), InternalError);
}

TEST(Nf4, ErrorBoundsOnNormalWeights) {
  // > 256 blocks (two scale groups), a partial last block, an odd count; blocks of larger
  // spread in the second half so the scales differ.
  const int64_t n = kNf4Block * 300 + 17;
  std::vector<float> w = normal_weights(n, 5, 0.02);
  for (int64_t i = n / 2; i < n; ++i) w[static_cast<size_t>(i)] *= 3.f;
  const Nf4Tensor q = nf4_quantize(w);
  ASSERT_EQ(q.blocks(), 301);
  ASSERT_EQ(q.scale_scales.size(), 2u);
  std::vector<float> back(static_cast<size_t>(n));
  nf4_dequantize(q, back);
  const std::vector<float> s_hat = nf4_block_scales(q);
  double sq_err = 0, sq = 0;
  for (int64_t b = 0; b < q.blocks(); ++b) {
    float absmax = 0;
    for (int64_t i = b * kNf4Block; i < std::min(n, (b + 1) * kNf4Block); ++i)
      absmax = std::max(absmax, std::fabs(w[static_cast<size_t>(i)]));
    const double c = q.scale_scales[static_cast<size_t>(b / kNf4ScaleGroup)];
    // Second level: the scale is off by at most half an int8 step.
    EXPECT_LE(std::fabs(s_hat[static_cast<size_t>(b)] - absmax), c / 254 * (1 + 1e-5) + 1e-9)
        << "block " << b;
    for (int64_t i = b * kNf4Block; i < std::min(n, (b + 1) * kNf4Block); ++i) {
      const double e = std::fabs(double(back[static_cast<size_t>(i)]) - w[static_cast<size_t>(i)]);
      ASSERT_LE(e, absmax * kNf4MaxHalfGap + c / 254 * (1 + 1e-5) + 1e-7) << "element " << i;
      sq_err += e * e;
      sq += double(w[static_cast<size_t>(i)]) * w[static_cast<size_t>(i)];
    }
  }
  // NF4 on normal data: the RMS error is about a tenth of the RMS value.
  EXPECT_LT(std::sqrt(sq_err / sq), 0.12);
  // Storage: 0.5 byte per weight plus ~1/64 byte of scales.
  const Nf4Tensor big = nf4_quantize(normal_weights(1 << 20, 6, 1.0));
  const double per_weight = double(big.bytes()) / double(1 << 20);
  EXPECT_GT(per_weight, 0.5);
  EXPECT_LT(per_weight, 0.5 + 1.0 / 64 + 1e-3);
}

TEST(Nf4, HostBackendOpEqualsTheReference) {
  auto be = make_host_backend();
  const int64_t n = kNf4Block * 260 + 33;
  const Nf4Tensor q = nf4_quantize(normal_weights(n, 7, 0.5));
  std::vector<float> want(static_cast<size_t>(n));
  nf4_dequantize(q, want);
  auto view = [](auto& v, DType dt) {
    return host_tensor(const_cast<void*>(static_cast<const void*>(v.data())),
                       Shape{static_cast<int64_t>(v.size())}, dt);
  };
  for (DType dt : {DType::f32, DType::f64}) {
    Buffer out = be->alloc(Shape{n}, dt);
    be->nf4_dequantize(out, view(q.codes, DType::u8), view(q.scale_codes, DType::u8),
                       view(q.scale_scales, DType::f32), q.scale_offset);
    std::vector<double> got(static_cast<size_t>(n));
    be->copy(host_tensor(got.data(), Shape{n}, DType::f64), out);
    for (int64_t i = 0; i < n; ++i)
      ASSERT_EQ(got[static_cast<size_t>(i)], double(want[static_cast<size_t>(i)])) << i;
  }
  Buffer out = be->alloc(Shape{n}, DType::f32);
  EXPECT_THROW(be->nf4_dequantize(out, view(q.scale_codes, DType::u8),
                                  view(q.scale_codes, DType::u8),
                                  view(q.scale_scales, DType::f32), q.scale_offset),
               InternalError);  // codes of the wrong size
}
