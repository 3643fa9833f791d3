// Optimizer pieces against values computed here by hand: AdamW (3 steps, with and without
// weight decay, with a grad_scale, and on a ZeRO-like sub-range of the flat buffers), the
// learning-rate schedule in closed form at chosen steps, and global-norm clipping.
#include <gtest/gtest.h>

#include <cmath>
#include <numbers>

#include "core/error.h"
#include "optim/adamw.h"
#include "optim/grad_clip.h"
#include "optim/lr_schedule.h"
#include "test_model_util.h"

using namespace llmpi;
using namespace llmpi::testing;

namespace {

std::vector<ParamInfo> two_params() {
  return {full_param("w", Shape{2, 3}, InitKind::normal, 0.02, true),
          full_param("b", Shape{3}, InitKind::zeros, 0.0, false)};
}

// Hand-computed AdamW of one element.
struct Scalar {
  double p, m = 0, v = 0;
};
void adamw_ref(Scalar& s, double g, double lr, double wd, int t, double b1, double b2, double eps,
               double gs) {
  g *= gs;
  s.m = b1 * s.m + (1 - b1) * g;
  s.v = b2 * s.v + (1 - b2) * g * g;
  const double mh = s.m / (1 - std::pow(b1, t)), vh = s.v / (1 - std::pow(b2, t));
  s.p -= lr * (mh / (std::sqrt(vh) + eps) + wd * s.p);
}

}  // namespace

TEST(OptimAdamW, ThreeStepsByHandWithAndWithoutDecay) {
  auto be = make_host_backend();
  ParamStore store(*be, two_params(), DType::f32);
  const std::vector<double> p0 = {0.5, -1.0, 0.25, 2.0, -0.75, 0.1, 0.3, -0.2, 0.05};
  from_host(*be, store.master(), p0);
  const AdamWOptions o{0.9, 0.95, 1e-8, 0.1};
  AdamW opt(*be, store, o);
  ASSERT_EQ(opt.slices().size(), 2u);
  EXPECT_FLOAT_EQ(opt.slices()[0].weight_decay, 0.1f);  // "w"
  EXPECT_FLOAT_EQ(opt.slices()[1].weight_decay, 0.0f);  // "b": no decay

  std::vector<Scalar> ref;
  for (double p : p0) ref.push_back({p});
  const double lrs[3] = {1e-2, 5e-3, 2e-2}, gscale[3] = {1.0, 0.5, 0.25};
  for (int t = 1; t <= 3; ++t) {
    std::vector<double> g = normal_values(9, t, "grads");
    from_host(*be, store.grads(), g);
    opt.step(*be, lrs[t - 1], gscale[t - 1]);
    for (size_t i = 0; i < ref.size(); ++i)
      adamw_ref(ref[i], g[i], lrs[t - 1], i < 6 ? 0.1 : 0.0, t, 0.9, 0.95, 1e-8, gscale[t - 1]);
  }
  EXPECT_EQ(opt.step_count(), 3);
  const std::vector<double> p = to_host(*be, store.master()), m = to_host(*be, opt.m()),
                            v = to_host(*be, opt.v());
  for (size_t i = 0; i < ref.size(); ++i) {
    EXPECT_NEAR(p[i], ref[i].p, 2e-6 * (1 + std::abs(ref[i].p))) << i;
    EXPECT_NEAR(m[i], ref[i].m, 1e-6 * (1 + std::abs(ref[i].m))) << i;
    EXPECT_NEAR(v[i], ref[i].v, 1e-6 * (1 + std::abs(ref[i].v))) << i;
    EXPECT_NE(p[i], p0[i]);
  }
  // Per-parameter views of the moments.
  EXPECT_EQ(to_host(*be, opt.m("b"))[1], m[7]);
}

TEST(OptimAdamW, SubRangeMatchesFullRange) {
  // A ZeRO shard owns [begin, end) of the flat buffers, cutting "w" in the middle.
  auto be = make_host_backend();
  ParamStore full(*be, two_params(), DType::f32), part(*be, two_params(), DType::f32);
  const std::vector<double> p0 = normal_values(9, 1, "p"), g = normal_values(9, 2, "g");
  for (ParamStore* s : {&full, &part}) {
    from_host(*be, s->master(), p0);
    from_host(*be, s->grads(), g);
  }
  AdamW a(*be, full, AdamWOptions{}), b(*be, part, AdamWOptions{}, 4, 8);
  EXPECT_EQ(b.m().numel(), 4);
  for (int t = 0; t < 2; ++t) {
    a.step(*be, 1e-2);
    b.step(*be, 1e-2);
  }
  const std::vector<double> pa = to_host(*be, full.master()), pb = to_host(*be, part.master());
  for (int i = 0; i < 9; ++i) {
    if (i >= 4 && i < 8)
      EXPECT_EQ(pb[i], pa[i]) << i;
    else
      EXPECT_FLOAT_EQ(pb[i], static_cast<float>(p0[i])) << i;  // outside the shard: untouched
  }
}

TEST(OptimLrSchedule, ClosedFormAtChosenSteps) {
  TrainSection t;
  t.steps = 500;
  t.lr = 1e-3;
  t.min_lr = 1e-4;
  t.warmup_steps = 10;
  t.decay_steps = 110;
  t.decay = LrDecay::cosine;
  const LrSchedule cos = LrSchedule::from(t);
  EXPECT_DOUBLE_EQ(cos.at(1), 1e-4);   // 1/10 of the way up
  EXPECT_DOUBLE_EQ(cos.at(5), 5e-4);
  EXPECT_DOUBLE_EQ(cos.at(10), 1e-3);  // peak at the end of warmup
  EXPECT_NEAR(cos.at(60), 1e-4 + 9e-4 * 0.5, 1e-15);  // halfway: cos(π/2) = 0
  EXPECT_NEAR(cos.at(35), 1e-4 + 9e-4 * 0.5 * (1 + std::cos(std::numbers::pi * 0.25)), 1e-15);
  EXPECT_DOUBLE_EQ(cos.at(110), 1e-4);  // floor
  EXPECT_DOUBLE_EQ(cos.at(400), 1e-4);

  t.decay = LrDecay::linear;
  const LrSchedule lin = LrSchedule::from(t);
  EXPECT_NEAR(lin.at(35), 1e-3 - 9e-4 * 0.25, 1e-15);
  EXPECT_NEAR(lin.at(85), 1e-3 - 9e-4 * 0.75, 1e-15);
  EXPECT_DOUBLE_EQ(lin.at(111), 1e-4);

  t.decay = LrDecay::constant;
  EXPECT_DOUBLE_EQ(LrSchedule::from(t).at(3), 3e-4);
  EXPECT_DOUBLE_EQ(LrSchedule::from(t).at(300), 1e-3);

  t.decay = LrDecay::cosine;
  t.decay_steps = 0;  // means train.steps
  t.warmup_steps = 0;
  const LrSchedule whole = LrSchedule::from(t);
  EXPECT_EQ(whole.decay_steps, 500);
  EXPECT_NEAR(whole.at(250), 1e-4 + 9e-4 * 0.5, 1e-15);

  t.min_lr = 2e-3;  // above the peak
  EXPECT_THROW(LrSchedule::from(t), UserError);
}

// The schedule keeps the schema's ranges (one rule: train.lr > 0, not >= 0).
TEST(OptimLrSchedule, RefusesWhatTheSchemaRefuses) {
  TrainSection t;
  t.steps = 100;
  t.min_lr = 0.0;
  t.lr = 0.0;
  try {
    (void)LrSchedule::from(t);
    ADD_FAILURE() << "train.lr = 0 accepted";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("train.lr = 0: expected a finite number > 0"), std::string::npos)
        << e.what();
  }
  t.lr = 1e-3;
  EXPECT_NO_THROW((void)LrSchedule::from(t));
  t.warmup_steps = -1;
  EXPECT_THROW((void)LrSchedule::from(t), UserError);
  t.warmup_steps = 0;
  t.min_lr = -1e-5;
  EXPECT_THROW((void)LrSchedule::from(t), UserError);
}

TEST(OptimGradClip, GlobalNormAndScale) {
  auto be = make_host_backend();
  Buffer a = be->alloc(Shape{2}, DType::f32), b = be->alloc(Shape{2, 2}, DType::f32);
  from_host(*be, a, {3.0, 0.0});
  from_host(*be, b, {0.0, 4.0, 0.0, 12.0});
  const Tensor ts[2] = {a, b};
  const ClipResult r = clip_grad_norm(*be, ts, 1.0);  // norm sqrt(9 + 16 + 144) = 13
  EXPECT_NEAR(r.norm, 13.0, 1e-6);
  EXPECT_NEAR(r.scale, 1.0 / 13.0, 1e-8);
  EXPECT_TRUE(r.finite);
  EXPECT_DOUBLE_EQ(clip_grad_norm(*be, ts, 20.0).scale, 1.0);  // below the threshold
  EXPECT_DOUBLE_EQ(clip_grad_norm(*be, ts, 0.0).scale, 1.0);   // disabled
  // From an all-reduced sum of squares; non-finite norms are reported, not scaled.
  EXPECT_DOUBLE_EQ(clip_from_sum_squares(16.0, 2.0).scale, 0.5);
  const ClipResult bad = clip_from_sum_squares(INFINITY, 1.0);
  EXPECT_FALSE(bad.finite);
  EXPECT_DOUBLE_EQ(bad.scale, 1.0);
  EXPECT_FALSE(clip_from_sum_squares(NAN, 1.0).finite);
}
