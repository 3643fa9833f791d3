#pragma once
// Learning-rate schedule, a pure function of the 1-based optimizer step s:
//   warmup   s <= W:           lr · s / W                        (linear from 0; W = 0: none)
//   decay    W < s <= S_d:     p = (s - W) / (S_d - W)
//            cosine: min_lr + (lr - min_lr) · (1 + cos(π p)) / 2
//            linear: lr - (lr - min_lr) · p
//            constant: lr
//   after    s > S_d:          min_lr (constant: lr)
// S_d = decay_steps, or train.steps when decay_steps is 0 (see TrainSection).
#include <cstdint>

#include "config/config.h"

namespace llmpi {

struct LrSchedule {
  double lr = 0.0;          // peak
  double min_lr = 0.0;      // floor of the decay
  int64_t warmup_steps = 0;
  int64_t decay_steps = 0;  // step at which the decay reaches min_lr
  LrDecay decay = LrDecay::cosine;

  // From the [train] section; throws UserError naming the key when out of range. The ranges
  // are the config's, decided there (config_schema.cpp): train.lr > 0 — a run whose peak
  // rate is 0 trains nothing, so 0 is refused as a mistake (docs/config.md) — and
  // 0 <= min_lr <= lr, warmup_steps >= 0, decay_steps >= 0.
  static LrSchedule from(const TrainSection& t);

  double at(int64_t step) const;  // step >= 1
};

}  // namespace llmpi
