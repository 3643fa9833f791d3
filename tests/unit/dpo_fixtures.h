#pragma once
// Preference-pair fixtures of the DPO unit tests (test_trainer_dpo.cpp, test_lora_dpo.cpp):
// a temporary directory, pairs written as a documents-with-mask shard, and a tiny llama DPO
// config over them (train.bin / val.bin in the directory, run directory `run`); the LoRA
// section of the DPO+LoRA tests and the comparison of two reference caches.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <sstream>
#include <string>
#include <unistd.h>
#include <vector>

#include "config/config.h"
#include "data/token_shard.h"
#include "train/reference_logprobs.h"

namespace llmpi::testing {

inline std::filesystem::path dpo_temp_dir(const std::string& name) {
  const std::filesystem::path d = std::filesystem::temp_directory_path() / ("llmpi_dpo_" + name + "_" + std::to_string(::getpid()));
  std::filesystem::remove_all(d);
  std::filesystem::create_directories(d);
  return d;
}

// `pairs` preference pairs: a prompt of 3 tokens, then an answer of 3 or 4 tokens (masked
// in); the chosen answer continues the prompt's arithmetic pattern, the rejected one does not.
inline void write_pairs(const std::filesystem::path& file, int pairs, uint32_t seed, bool odd_document = false) {
  TokenShardWriter w(file.string(), 2, ShardContent::documents_with_mask);
  uint32_t t = seed;
  for (int p = 0; p < pairs; ++p) {
    std::vector<uint32_t> prompt;
    for (int i = 0; i < 3; ++i) prompt.push_back(t = (t * 7 + 3) % 61);
    for (int chosen = 1; chosen >= 0; --chosen) {
      std::vector<uint32_t> ids = prompt;
      std::vector<uint8_t> mask(3, 0);
      uint32_t a = prompt.back();
      for (int i = 0; i < 3 + p % 2; ++i) {
        a = chosen ? (a + 2) % 61 : (a * 13 + 5 + uint32_t(i)) % 61;
        ids.push_back(a);
        mask.push_back(1);
      }
      w.append_document(ids, mask);
    }
  }
  if (odd_document) w.append_document(std::vector<uint32_t>{1, 2, 3}, std::vector<uint8_t>{0, 1, 1});
  w.commit();
}

inline Config dpo_config(const std::filesystem::path& d, const std::string& run, int64_t steps,
                         const std::string& extra = "") {
  std::ostringstream t;
  t << "[model]\narch = \"llama\"\nvocab_size = 64\nn_layer = 2\nn_head = 4\nn_kv_head = 2\n"
    << "d_ff = 64\nd_model = 32\nmax_seq_len = 16\n"
    << "[train]\nobjective = \"dpo\"\nsteps = " << steps << "\nbatch_size = 2\nseq_len = 16\n"
    << "lr = 1e-2\nwarmup_steps = 0\nlog_every = 1\neval_batches = 1\neval_every = 0\n"
    << "[data]\ntrain = \"" << (d / "train.bin").string() << "\"\nval = \""
    << (d / "val.bin").string() << "\"\n[checkpoint]\nevery = 2\n[run]\ndir = \""
    << (d / run).string() << "\"\n[dpo]\nbeta = 0.5\n" << extra;
  return parse_config(t.str(), "dpo.toml");
}

// Adapters of rank 4 on every module (the DPO+LoRA tests).
inline const std::string kDpoLora =
    "[lora]\nrank = 4\nalpha = 8\n"
    "target_modules = [\"q\", \"k\", \"v\", \"o\", \"gate\", \"up\", \"down\", \"head\"]\n";

// Two caches' reference sums (train and val splits) agree within `tol` relative (1 absolute
// below 1); `what` names the comparison in failures.
inline void expect_same_logprobs(const std::vector<ReferenceSplit>& a, const std::vector<ReferenceSplit>& b,
                                 double tol, const std::string& what = "") {
  ASSERT_EQ(a.size(), 2u) << what;
  ASSERT_EQ(b.size(), 2u) << what;
  for (size_t s = 0; s < 2; ++s) {
    ASSERT_EQ(a[s].logprobs.size(), b[s].logprobs.size()) << what << ": " << a[s].name;
    for (size_t i = 0; i < a[s].logprobs.size(); ++i)
      EXPECT_NEAR(a[s].logprobs[i], b[s].logprobs[i], tol * std::max(1.0, std::abs(a[s].logprobs[i])))
          << what << ": " << a[s].name << " pair " << i / 2 << (i % 2 ? " rejected" : " chosen");
  }
}

}  // namespace llmpi::testing
