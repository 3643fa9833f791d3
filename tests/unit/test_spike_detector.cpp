// SpikeDetector: rolling z-scores of loss and gradient norm; non-finite values always spike;
// flagged steps stay out of the window; restore() reproduces the uninterrupted decisions.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "train/spike_detector.h"

using namespace llmpi;

namespace {
// A noisy, slowly falling loss and a steady gradient norm (closed form, no RNG).
double loss_at(int64_t s) { return 4.0 - 0.001 * double(s) + 0.02 * std::sin(0.7 * double(s)); }
double grad_at(int64_t s) { return 1.0 + 0.05 * std::cos(1.3 * double(s)); }
}  // namespace

TEST(SpikeDetector, WarmsUpThenFlagsUpwardJumpsOnly) {
  SpikeDetector d({.window = 50, .threshold = 6.0, .warmup = 10});
  for (int64_t s = 1; s <= 9; ++s) {
    const SpikeVerdict v = d.check(loss_at(s) * 10, grad_at(s));  // huge, but no history yet
    EXPECT_FALSE(v.spike) << s;
    EXPECT_TRUE(std::isnan(v.loss_z));
    d.accept(loss_at(s), grad_at(s));
  }
  d.accept(loss_at(10), grad_at(10));
  for (int64_t s = 11; s <= 60; ++s) {
    const SpikeVerdict v = d.check(loss_at(s), grad_at(s));
    EXPECT_FALSE(v.spike) << "ordinary step " << s << " z " << v.loss_z << " " << v.grad_z;
    d.accept(loss_at(s), grad_at(s));
  }
  EXPECT_EQ(d.size(), 50);  // the window is bounded
  // The loss std over the window is ~0.02: +0.5 is a z of ~25; a drop is never a spike.
  EXPECT_TRUE(d.check(loss_at(61) + 0.5, grad_at(61)).spike);
  EXPECT_GT(d.check(loss_at(61) + 0.5, grad_at(61)).loss_z, 6.0);
  EXPECT_FALSE(d.check(loss_at(61) - 0.5, grad_at(61)).spike);
  // A gradient-norm jump alone is a spike too.
  const SpikeVerdict g = d.check(loss_at(61), 3.0);
  EXPECT_TRUE(g.spike);
  EXPECT_GT(g.grad_z, 6.0);
  EXPECT_FALSE(g.nonfinite);
}

TEST(SpikeDetector, NonFiniteIsAlwaysASpike) {
  SpikeDetector d({.window = 5, .threshold = 100.0, .warmup = 5});
  const double inf = std::numeric_limits<double>::infinity();
  for (double bad : {std::nan(""), inf, -inf}) {
    EXPECT_TRUE(d.check(bad, 1.0).spike);
    EXPECT_TRUE(d.check(bad, 1.0).nonfinite);
    EXPECT_TRUE(d.check(1.0, bad).nonfinite);  // even before any history
  }
  EXPECT_FALSE(d.check(1.0, 1.0).spike);
}

TEST(SpikeDetector, FlatHistoryUsesTheRelativeFloor) {
  SpikeDetector d({.window = 20, .threshold = 6.0, .warmup = 5});
  for (int i = 0; i < 20; ++i) d.accept(2.0, 1.0);
  // std = 0: the floor is 1e-3 · 2.0 = 2e-3, so +0.01 is z = 5 (no spike) and +0.02 is z = 10.
  EXPECT_NEAR(d.check(2.01, 1.0).loss_z, 5.0, 1e-9);
  EXPECT_FALSE(d.check(2.01, 1.0).spike);
  EXPECT_TRUE(d.check(2.02, 1.0).spike);
}

TEST(SpikeDetector, RestoreGivesTheUninterruptedDecisions) {
  const SpikeOptions opt{.window = 30, .threshold = 3.0, .warmup = 10};
  SpikeDetector a(opt);
  std::vector<bool> decisions;
  SpikeDetector b(opt);
  for (int64_t s = 1; s <= 120; ++s) {
    const double loss = loss_at(s) + (s % 37 == 0 ? 0.3 : 0.0);  // a few real spikes
    const SpikeVerdict v = a.check(loss, grad_at(s));
    if (!v.spike) a.accept(loss, grad_at(s));
    if (s == 70) b.restore(a.loss_history(), a.grad_history());  // "resume" after step 70
    if (s > 70) {
      const SpikeVerdict w = b.check(loss, grad_at(s));
      EXPECT_EQ(w.spike, v.spike) << s;
      EXPECT_EQ(w.loss_z, v.loss_z) << s;  // bitwise: the same window, the same sums
      if (!w.spike) b.accept(loss, grad_at(s));
    }
    decisions.push_back(v.spike);
  }
  EXPECT_EQ(std::count(decisions.begin(), decisions.end(), true), 3);  // steps 37, 74, 111
  // A longer saved history keeps its newest `window` values.
  std::vector<double> l(100, 1.0), g(100, 1.0);
  l.back() = 5.0;
  b.restore(l, g);
  EXPECT_EQ(b.size(), 30);
  EXPECT_EQ(b.loss_history().back(), 5.0);
}
