#pragma once
// Next-token sampling from one row of logits [V]:
//   temperature == 0  → greedy (argmax; lowest id wins ties)
//   else              p ∝ exp(logits / temperature), restricted to the top_k most likely
//                     tokens (top_k == 0: all), then to the smallest prefix of them whose
//                     mass reaches top_p (nucleus; top_p == 1: all), renormalized.
// The draw is rng_uniform(key, counter) (core/rng.h): seeded and reproducible.
#include <cstdint>
#include <span>

namespace llmpi {

struct SamplingOptions {
  double temperature = 1.0;
  int64_t top_k = 0;
  double top_p = 1.0;
};

int64_t sample_token(std::span<const float> logits, const SamplingOptions& opt, uint64_t key,
                     uint64_t counter);

}  // namespace llmpi
