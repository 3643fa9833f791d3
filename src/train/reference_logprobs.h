#pragma once
// Reference log-probabilities of DPO: for every preference pair of a data split, the sums
// ρ_c, ρ_r of log π_ref over the chosen and rejected completion tokens (train/dpo_loss.h),
// computed once with the initial model in a first pass over the split and cached in the run
// directory, so the reference model is never kept in memory beside the policy.
// File <run.dir>/reference_logprobs.h5 (h5py-readable; written by world rank 0 under a
// temporary name, then renamed):
//   root attrs   format_version = 1, reference (ReferenceKey::reference), model (the
//                [model] section as TOML)
//   /<split>     one group per split ("train", "val"):
//     logprobs   f64 [pairs, 2]: row p = (ρ_c, ρ_r) of pair p (the data's pair order)
//     attrs      data_hash (TokenDataset::content_hash), tokens, pairs
// A cache is stale when any recorded identity differs from the run's (another data set,
// another reference model or shape); read_reference_cache says which and why.
// With LoRA (not wired yet) the reference is the base with its adapters disabled: the frozen
// base never changes, so the pass could then run at any step, a resumed one included.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace llmpi {

// What one split's reference sums depend on.
struct ReferenceKey {
  std::string reference;  // the reference model: "init_from = <source>" or "seeded init (seed N)"
  std::string model;      // the [model] section, as TOML
  uint64_t data_hash = 0; // content hash of the split's tokens
  int64_t tokens = 0;     // tokens of the split
  int64_t pairs = 0;      // preference pairs of the split
};

struct ReferenceSplit {
  std::string name;              // "train" | "val"
  ReferenceKey key;
  std::vector<double> logprobs;  // [pairs · 2]: chosen, rejected of each pair
};

// The cache file of a run directory.
std::string reference_cache_path(const std::string& run_dir);

// Serial (world rank 0): writes every split (atomically: temporary file, then rename).
void write_reference_cache(const std::string& path, const std::vector<ReferenceSplit>& splits);

// Serial: the cached sums of each split of `wanted` (its name and key), in that order, or
// nullopt with `why` saying what is missing or differs ("no file", "train: data_hash
// 0x... differs from the data's 0x...", ...). A file that is not a readable cache is
// reported the same way (stale), never trusted.
std::optional<std::vector<ReferenceSplit>> read_reference_cache(
    const std::string& path, const std::vector<ReferenceSplit>& wanted, std::string& why);

}  // namespace llmpi
