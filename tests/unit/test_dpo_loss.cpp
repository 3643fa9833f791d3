// DPO loss (train/dpo_loss.h): hand-computed cases of every variant, numerical stability at
// large margins, and f64 finite differences of the loss w.r.t. the policy log-prob sums.
#include <gtest/gtest.h>

#include <cmath>

#include "core/error.h"
#include "core/rng.h"
#include "train/dpo_loss.h"

using namespace llmpi;

namespace {

// π_c = −10, π_r = −12, ρ_c = ρ_r = −11: chosen log-ratio +1, rejected −1, h = 2.
constexpr DpoPair kPair{-10, -12, -11, -11};

}  // namespace

TEST(DpoLoss, SigmoidByHand) {
  const DpoPairResult r = dpo_pair({0.1, DpoLossType::sigmoid, 0.0}, kPair);
  // β h = 0.2: L = −log σ(0.2) = log(1 + e^−0.2); L' = −β σ(−0.2).
  EXPECT_NEAR(r.loss, 0.5981388693815918, 1e-15);
  EXPECT_NEAR(r.dpolicy_chosen, -0.04501660026875222, 1e-15);
  EXPECT_NEAR(r.dpolicy_rejected, 0.04501660026875222, 1e-15);
  EXPECT_NEAR(r.chosen_reward, 0.1, 1e-15);
  EXPECT_NEAR(r.rejected_reward, -0.1, 1e-15);
}

TEST(DpoLoss, LabelSmoothingByHand) {
  // ε = 0.1: L = 0.9 log(1 + e^−0.2) + 0.1 log(1 + e^0.2) = log(1 + e^−0.2) + 0.1 · 0.2.
  const DpoPairResult r = dpo_pair({0.1, DpoLossType::sigmoid, 0.1}, kPair);
  EXPECT_NEAR(r.loss, 0.5981388693815918 + 0.02, 1e-15);
  // L' = β (ε σ(0.2) − (1 − ε) σ(−0.2)) = −β σ(−0.2) + β ε.
  EXPECT_NEAR(r.dpolicy_chosen, -0.04501660026875222 + 0.01, 1e-15);
}

TEST(DpoLoss, IpoByHand) {
  // (h − 1/(2β))² = (2 − 5)² = 9; L' = 2 (2 − 5) = −6.
  const DpoPairResult r = dpo_pair({0.1, DpoLossType::ipo, 0.0}, kPair);
  EXPECT_DOUBLE_EQ(r.loss, 9.0);
  EXPECT_DOUBLE_EQ(r.dpolicy_chosen, -6.0);
  EXPECT_DOUBLE_EQ(r.dpolicy_rejected, 6.0);
  // At the IPO target margin h = 1/(2β) the loss and its gradient vanish.
  const DpoPairResult at = dpo_pair({0.25, DpoLossType::ipo, 0.0}, {-1, -3, 0, 0});
  EXPECT_DOUBLE_EQ(at.loss, 0.0);
  EXPECT_DOUBLE_EQ(at.dpolicy_chosen, 0.0);
}

TEST(DpoLoss, SumsAndMeans) {
  DpoSums s;
  s.add(dpo_pair({0.1, DpoLossType::sigmoid, 0.0}, kPair));         // correct, margin 0.2
  s.add(dpo_pair({0.1, DpoLossType::sigmoid, 0.0}, {-5, -5, -5, -5}));  // tie: not correct
  s.add(dpo_pair({0.1, DpoLossType::sigmoid, 0.0}, {-12, -10, -11, -11}));  // wrong, −0.2
  EXPECT_EQ(s.pairs, 3);
  EXPECT_EQ(s.correct, 1);
  EXPECT_NEAR(s.accuracy(), 1.0 / 3, 1e-15);
  EXPECT_NEAR(s.mean_margin(), 0.0, 1e-15);
  EXPECT_NEAR(s.mean_loss(),
              (std::log1p(std::exp(-0.2)) + std::log(2.0) + std::log1p(std::exp(0.2))) / 3,
              1e-15);
  DpoSums t;
  t.add(s);
  t.add(s);
  EXPECT_EQ(t.pairs, 6);
  EXPECT_NEAR(t.mean_loss(), s.mean_loss(), 1e-15);
}

TEST(DpoLoss, StableAtLargeMargins) {
  // β h = ±800: exp would overflow a naive formula.
  const DpoPairResult far_right = dpo_pair({1.0, DpoLossType::sigmoid, 0.0}, {0, -800, 0, 0});
  EXPECT_EQ(far_right.loss, 0.0);
  EXPECT_EQ(far_right.dpolicy_chosen, -0.0);
  const DpoPairResult far_wrong = dpo_pair({1.0, DpoLossType::sigmoid, 0.1}, {-800, 0, 0, 0});
  EXPECT_NEAR(far_wrong.loss, 0.9 * 800, 1e-9);
  EXPECT_NEAR(far_wrong.dpolicy_chosen, -0.9, 1e-12);
  EXPECT_NEAR(log_sigmoid(-1000), -1000, 1e-12);
  EXPECT_NEAR(log_sigmoid(40), -std::exp(-40.0), 1e-30);
}

TEST(DpoLoss, GradientsMatchFiniteDifferences) {
  const uint64_t key = rng_key(3, "dpo");
  const DpoOptions variants[] = {{0.1, DpoLossType::sigmoid, 0.0},
                                 {0.5, DpoLossType::sigmoid, 0.2},
                                 {0.05, DpoLossType::ipo, 0.0}};
  for (const DpoOptions& o : variants)
    for (int k = 0; k < 20; ++k) {
      DpoPair p{-20 + 5 * rng_normal(key, 4 * k), -20 + 5 * rng_normal(key, 4 * k + 1),
                -20 + 5 * rng_normal(key, 4 * k + 2), -20 + 5 * rng_normal(key, 4 * k + 3)};
      const DpoPairResult r = dpo_pair(o, p);
      const double h = 1e-6;
      auto loss_at = [&](double dc, double dr) {
        DpoPair q = p;
        q.policy_chosen += dc;
        q.policy_rejected += dr;
        return dpo_pair(o, q).loss;
      };
      const double num_c = (loss_at(h, 0) - loss_at(-h, 0)) / (2 * h);
      const double num_r = (loss_at(0, h) - loss_at(0, -h)) / (2 * h);
      const double tol = 1e-7 * std::max(1.0, std::fabs(r.loss));
      EXPECT_NEAR(r.dpolicy_chosen, num_c, tol) << dpo_loss_name(o.type) << " pair " << k;
      EXPECT_NEAR(r.dpolicy_rejected, num_r, tol) << dpo_loss_name(o.type) << " pair " << k;
      // The reference sums shift the loss the opposite way (they enter with a minus sign).
      DpoPair q = p;
      q.ref_chosen += h;
      EXPECT_NEAR((dpo_pair(o, q).loss - r.loss) / h, -r.dpolicy_chosen, 1e-4 + tol * 10);
    }
}

TEST(DpoLoss, RejectsBadOptions) {
  EXPECT_THROW(dpo_pair({0.0, DpoLossType::sigmoid, 0.0}, kPair), InternalError);
  EXPECT_THROW(dpo_pair({0.1, DpoLossType::sigmoid, 0.5}, kPair), InternalError);
  EXPECT_THROW(dpo_pair({0.1, DpoLossType::ipo, 0.1}, kPair), InternalError);
  DpoLossType t;
  EXPECT_TRUE(parse_dpo_loss("ipo", t));
  EXPECT_EQ(t, DpoLossType::ipo);
  EXPECT_FALSE(parse_dpo_loss("hinge", t));
}
