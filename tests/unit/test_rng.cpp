// Counter-based RNG: values depend only on (key, counter); moments of the normal draw.
#include <gtest/gtest.h>

#include <cmath>

#include "core/rng.h"

using namespace llmpi;

TEST(Rng, PureFunctionOfKeyAndCounter) {
  const uint64_t k = rng_key(42, "blocks.0.attn.qkv.weight");
  EXPECT_EQ(rng_bits(k, 7), rng_bits(k, 7));
  EXPECT_NE(rng_bits(k, 7), rng_bits(k, 8));
  EXPECT_NE(rng_key(42, "a"), rng_key(43, "a"));
  EXPECT_NE(rng_key(42, "a"), rng_key(42, "b"));
}

TEST(Rng, NormalMoments) {
  const uint64_t k = rng_key(1, "moments");
  const int n = 200000;
  double s = 0, s2 = 0;
  for (int i = 0; i < n; ++i) {
    const double x = rng_normal(k, i);
    s += x;
    s2 += x * x;
  }
  const double mean = s / n, var = s2 / n - mean * mean;
  EXPECT_NEAR(mean, 0.0, 0.01);  // 4.5 standard errors
  EXPECT_NEAR(var, 1.0, 0.015);
}
