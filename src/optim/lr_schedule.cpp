// Warmup + cosine/linear/constant decay.
#include "optim/lr_schedule.h"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <string_view>

#include "config/config_schema.h"
#include "core/error.h"

namespace llmpi {
namespace {

// UserError unless `value` is in the range config_schema.cpp gives train.<name>.
void check_train_key(std::string_view name, double value) {
  const config::ConfigKey* key = config::find_config_key("train", name);
  LLMPI_CHECK(key != nullptr, "no schema row train.", name);
  if (!key->bounds.contains(value))
    user_error(key->path(), " = ", value, ": expected ", key->expected());
}

}  // namespace

LrSchedule LrSchedule::from(const TrainSection& t) {
  LrSchedule s;
  s.lr = t.lr;
  s.min_lr = t.min_lr;
  s.warmup_steps = t.warmup_steps;
  s.decay_steps = t.decay_steps > 0 ? t.decay_steps : t.steps;
  s.decay = t.decay;
  // A section built by hand meets the config's rules: each key's range is its schema row
  // (train.lr > 0, ...), min_lr <= lr as config_checks.cpp has it. A loaded Config always
  // meets them.
  check_train_key("lr", t.lr);
  check_train_key("min_lr", t.min_lr);
  check_train_key("warmup_steps", static_cast<double>(t.warmup_steps));
  check_train_key("decay_steps", static_cast<double>(t.decay_steps));
  if (s.min_lr > s.lr)
    user_error("train.min_lr = ", s.min_lr, ": expected a number in [0, lr]; train.lr = ", s.lr);
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
