#pragma once
// A token corpus with learnable structure for the training tests: token t+1 is (7t + 3) mod 61
// with probability 0.9, else i mod 61 (the noise keyed by `seed`); vocabulary 64. A model
// learns it within tens of steps, so "the loss falls" is a real check.
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "core/rng.h"
#include "data/token_shard.h"

namespace llmpi::testing {

// n tokens; the noise draws use counter indices index_offset + i.
inline std::vector<uint32_t> learnable_tokens(uint64_t seed, int n, uint64_t index_offset = 0) {
  const uint64_t key = rng_key(seed, "corpus");
  std::vector<uint32_t> toks;
  toks.reserve(static_cast<size_t>(n));
  uint32_t t = 1;
  for (int i = 0; i < n; ++i) {
    toks.push_back(t);
    t = rng_uniform(key, uint64_t(i) + index_offset) < 0.9 ? (t * 7 + 3) % 61 : uint32_t(i % 61);
  }
  return toks;
}

// A fresh directory <tmp>/llmpi_<name>_<pid> with train.bin (n_train tokens) and, when
// n_val > 0, val.bin (n_val tokens drawn from counter indices 10^6 onwards).
inline std::filesystem::path learnable_corpus(const std::string& name, uint64_t seed, int n_train,
                                              int n_val = 0) {
  namespace fs = std::filesystem;
  const fs::path d = fs::temp_directory_path() / ("llmpi_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  write_token_shard((d / "train.bin").string(), learnable_tokens(seed, n_train), 64);
  if (n_val > 0)
    write_token_shard((d / "val.bin").string(), learnable_tokens(seed, n_val, 1000000), 64);
  return d;
}

}  // namespace llmpi::testing
