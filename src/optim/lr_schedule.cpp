// Warmup + cosine/linear/constant decay.
#include "optim/lr_schedule.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "core/error.h"

namespace llmpi {

LrSchedule LrSchedule::from(const TrainSection& t) {
  LrSchedule s;
  s.lr = t.lr;
  s.min_lr = t.min_lr;
  s.warmup_steps = t.warmup_steps;
  s.decay_steps = t.decay_steps > 0 ? t.decay_steps : t.steps;
  s.decay = t.decay;
  // The same ranges as the config's (config_schema.cpp decides them: train.lr > 0), for a
  // section built by hand; a loaded Config always meets them.
  if (!(s.lr > 0)) user_error("train.lr = ", s.lr, ": expected > 0");
  if (!(s.min_lr >= 0 && s.min_lr <= s.lr))
    user_error("train.min_lr = ", s.min_lr, ": expected between 0 and train.lr = ", s.lr);
  if (s.warmup_steps < 0) user_error("train.warmup_steps = ", s.warmup_steps, ": expected >= 0");
  if (s.decay_steps < 0) user_error("train.decay_steps = ", s.decay_steps, ": expected >= 0");
  return s;
}

double LrSchedule::at(int64_t step) const {
  LLMPI_CHECK(step >= 1, "learning rate of step ", step, " (steps are 1-based)");
  if (step <= warmup_steps)
    return lr * static_cast<double>(step) / static_cast<double>(warmup_steps);
  if (decay == LrDecay::constant) return lr;
  if (step >= decay_steps) return min_lr;  // also when decay_steps <= warmup_steps
  const double p = static_cast<double>(step - warmup_steps) /
                   static_cast<double>(decay_steps - warmup_steps);
  if (decay == LrDecay::cosine)
    return min_lr + (lr - min_lr) * 0.5 * (1.0 + std::cos(std::numbers::pi * p));
  return lr - (lr - min_lr) * p;
}

}  // namespace llmpi
