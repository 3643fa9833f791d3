#pragma once
// Layout search: every Plan of a GPU count that the engine accepts (plan_problems), whose
// largest rank fits the memory limit (memory_model.h plus a fixed reserve), ranked by the
// step model's tokens/s. Enumerated: tp among the divisors of the GPUs per node (a tp group
// stays inside a node), pp dividing what is left, dp = GPUs / (tp · pp), ZeRO 0–3,
// micro-batch size B, micro-batches M = global batch / (B · dp) (whole numbers only), virtual
// stages, sequence parallelism (tp > 1) and recomputation.
#include <cstdint>
#include <vector>

#include "bench/perfmodel/step_model.h"

namespace llmpi::perf {

struct SearchSpace {
  std::vector<int64_t> tp = {1, 2, 4, 8};
  std::vector<int64_t> batch = {1, 2, 4};
  std::vector<int64_t> virtual_stages = {1, 2, 4};
  std::vector<int> zero = {0, 1, 2, 3};
  std::vector<Recompute> recompute = {Recompute::none, Recompute::selective, Recompute::full};
  int64_t max_pp = 64;
};

struct Candidate {
  Plan plan;
  StepPrediction pred;
};

struct SearchResult {
  std::vector<Candidate> best;  // the fastest first, at most `keep`
  int64_t considered = 0;       // plans enumerated
  int64_t valid = 0;            // accepted by the engine's rules
  int64_t fitting = 0;          // ... and within the memory limit
};

// Divisors of n in increasing order.
std::vector<int64_t> divisors(int64_t n);

// The plans of `gpus` GPUs for a global batch of `global_sequences` sequences of `seq_len`
// tokens (before the memory and speed filters). Pure.
std::vector<Plan> enumerate_plans(const ModelConfig& m, int64_t gpus, int64_t per_node,
                                  int64_t global_sequences, int64_t seq_len, const SearchSpace& s);

SearchResult search_layouts(const ModelConfig& m, int64_t gpus, int64_t per_node,
                            int64_t global_sequences, int64_t seq_len, double memory_limit_bytes,
                            const SearchSpace& s, const OpProfile& prof, const CommCost& comm,
                            const ModelOptions& o, size_t keep = 5);

}  // namespace llmpi::perf
